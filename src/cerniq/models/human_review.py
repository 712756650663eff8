"""``human_review_queue``: replies and situations waiting for a human decision, with SLAs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, Timestamps, UUIDPk
from cerniq.models.columns import (
    REVIEW_ACTION,
    REVIEW_PRIORITY,
    REVIEW_REASON,
    REVIEW_STATUS,
    EagerDefaults,
    counter,
    flag,
)
from cerniq.models.enums import ReviewAction, ReviewPriority, ReviewReason, ReviewStatus


class HumanReview(UUIDPk, TenantScoped, Timestamps, EagerDefaults, Base):
    """A row is one item in the review queue: the lead and (at most one review per) inbound
    message that triggered it, why and how urgent, the AI's analysis and suggested answer, who
    has it, its SLA deadline and escalation, and how it was resolved."""

    __tablename__ = "human_review_queue"
    __table_args__ = (
        UniqueConstraint("communication_id"),
        Index("ix_human_review_queue_tenant_status_priority", "tenant_id", "status", "priority"),
        Index("ix_human_review_queue_assigned_status", "assigned_to", "status"),
        Index(
            "ix_human_review_queue_sla_open",
            "sla_due_at",
            postgresql_where=text("status IN ('PENDING', 'ASSIGNED')"),
        ),
        Index("ix_human_review_queue_journey", "lead_journey_id"),
    )

    lead_journey_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("gold_lead_journey.id", ondelete="CASCADE"))
    # SET NULL so the weekly archive can delete old log rows a review points at.
    communication_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("gold_communication_log.id", ondelete="SET NULL")
    )
    reason: Mapped[ReviewReason] = mapped_column(REVIEW_REASON)
    priority: Mapped[ReviewPriority] = mapped_column(
        REVIEW_PRIORITY, default=ReviewPriority.MEDIUM, server_default=ReviewPriority.MEDIUM.value
    )
    status: Mapped[ReviewStatus] = mapped_column(
        REVIEW_STATUS, default=ReviewStatus.PENDING, server_default=ReviewStatus.PENDING.value
    )
    trigger_content: Mapped[str | None] = mapped_column(Text)
    trigger_sentiment_score: Mapped[int | None]
    ai_analysis: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    suggested_response: Mapped[str | None] = mapped_column(Text)
    confidence_score: Mapped[float | None] = mapped_column(Float)
    assigned_to: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    assigned_at: Mapped[datetime | None]
    sla_due_at: Mapped[datetime]
    sla_breached: Mapped[bool] = flag(False)
    sla_breached_at: Mapped[datetime | None]
    first_human_action_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    escalated_to: Mapped[str | None] = mapped_column(Text)
    escalation_level: Mapped[int] = counter(0)
    resolution_action: Mapped[ReviewAction | None] = mapped_column(REVIEW_ACTION)
    resolution_notes: Mapped[str | None] = mapped_column(Text)
    response_content: Mapped[str | None] = mapped_column(Text)
    response_message_id: Mapped[uuid.UUID | None]  # the log row of the answer sent, if any
    resolved_by: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]
