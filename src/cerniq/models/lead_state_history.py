"""``lead_state_history``: every state change of a lead journey, append-only."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, UUIDPk
from cerniq.models.columns import CURRENT_STATE, EagerDefaults, created_now, text_column
from cerniq.models.enums import LeadState


class LeadStateHistory(UUIDPk, TenantScoped, EagerDefaults, Base):
    """A row is one transition of a lead from one state to another: what triggered it
    (MANUAL, WEBHOOK_REPLY, SEND, SEQUENCE, REVIEW, SYSTEM, IMPORT), why, and who."""

    __tablename__ = "lead_state_history"
    __table_args__ = (
        Index("ix_lead_state_history_journey_created", "lead_journey_id", "created_at"),
        # leads marked DEAD in a day (the daily figures; migration 0005)
        Index(
            "ix_lead_state_history_tenant_dead",
            "tenant_id",
            "created_at",
            postgresql_where=text("to_state = 'DEAD'"),
        ),
    )

    lead_journey_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("gold_lead_journey.id", ondelete="CASCADE"))
    from_state: Mapped[LeadState | None] = mapped_column(CURRENT_STATE)
    to_state: Mapped[LeadState] = mapped_column(CURRENT_STATE)
    trigger: Mapped[str] = text_column("SYSTEM")
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_now()
