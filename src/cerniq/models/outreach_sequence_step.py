"""``outreach_sequence_steps``: the ordered steps of a sequence (delay, channel, template)."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, Timestamps, UUIDPk
from cerniq.models.columns import CHANNEL, EagerDefaults, counter, flag
from cerniq.models.enums import Channel


class OutreachSequenceStep(UUIDPk, TenantScoped, Timestamps, EagerDefaults, Base):
    """A row is step N of a sequence: wait ``delay_hours``/``delay_minutes`` (step 1 from
    enrolment, later steps from the previous step), then send the template on the channel,
    unless the lead replied (or opened) and the skip flags say so."""

    __tablename__ = "outreach_sequence_steps"
    __table_args__ = (UniqueConstraint("sequence_id", "step_number"),)

    sequence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("outreach_sequences.id", ondelete="CASCADE"))
    step_number: Mapped[int]
    delay_hours: Mapped[int] = counter(24)
    delay_minutes: Mapped[int] = counter(0)
    channel: Mapped[Channel] = mapped_column(
        CHANNEL, default=Channel.WHATSAPP, server_default=Channel.WHATSAPP.value
    )
    template_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("outreach_templates.id", ondelete="SET NULL"), index=True
    )
    # Used instead of the template's text when set.
    subject_override: Mapped[str | None] = mapped_column(Text)
    content_override: Mapped[str | None] = mapped_column(Text)
    skip_if_replied: Mapped[bool] = flag(True)
    skip_if_opened: Mapped[bool] = flag(False)
    is_ab_test: Mapped[bool] = flag(False)
    ab_variant: Mapped[str | None] = mapped_column(Text)
    ab_percentage: Mapped[int] = counter(50)
    is_active: Mapped[bool] = flag(True)
