"""``sequence_enrollments``: a lead's progress through one sequence."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Text, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, Timestamps, UUIDPk
from cerniq.models.columns import ENROLLMENT_STATUS, EagerDefaults, counter
from cerniq.models.enums import EnrollmentStatus


class SequenceEnrollment(UUIDPk, TenantScoped, Timestamps, EagerDefaults, Base):
    """A row is one lead journey enrolled in one sequence: the current step, when the next is
    due, why it stopped (reply, takeover, opt-out), and per-enrolment counters."""

    __tablename__ = "sequence_enrollments"
    __table_args__ = (
        UniqueConstraint("lead_journey_id", "sequence_id"),
        Index(
            "ix_sequence_enrollments_next_step_active",
            "next_step_at",
            postgresql_where=text("status = 'ACTIVE'"),
        ),
    )

    lead_journey_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("gold_lead_journey.id", ondelete="CASCADE"))
    sequence_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("outreach_sequences.id", ondelete="CASCADE"), index=True
    )
    current_step: Mapped[int] = counter(0)
    total_steps: Mapped[int] = counter(0)
    status: Mapped[EnrollmentStatus] = mapped_column(
        ENROLLMENT_STATUS, default=EnrollmentStatus.ACTIVE, server_default=EnrollmentStatus.ACTIVE.value
    )
    enrolled_at: Mapped[datetime] = mapped_column(server_default=func.now())
    next_step_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    stop_reason: Mapped[str | None] = mapped_column(Text)
    messages_sent: Mapped[int] = counter()
    opens: Mapped[int] = counter()
    clicks: Mapped[int] = counter()
    replies: Mapped[int] = counter()
