"""``hitl_audit_log``: everything done to a review item, append-only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, UUIDPk
from cerniq.models.columns import EagerDefaults


class HitlAuditEntry(UUIDPk, TenantScoped, EagerDefaults, Base):
    """A row is one action on a review (CREATED, ASSIGNED, VIEWED, EDITED, RESOLVED, ESCALATED,
    SLA_BREACH, TAKEOVER_INITIATED, MESSAGE_*): who, when, and the state before and after."""

    __tablename__ = "hitl_audit_log"
    __table_args__ = (Index("ix_hitl_audit_log_review_performed", "review_id", "performed_at"),)

    review_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("human_review_queue.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(Text)
    performed_by: Mapped[str | None] = mapped_column(Text)
    performed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    previous_state: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    new_state: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    notes: Mapped[str | None] = mapped_column(Text)
    ip_address: Mapped[str | None] = mapped_column(Text)
    user_agent: Mapped[str | None] = mapped_column(Text)
