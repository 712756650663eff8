"""``email_campaigns``: Instantly cold-email campaigns and their circuit-breaker state."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, Timestamps, UUIDPk
from cerniq.models.columns import EagerDefaults, flag, json_object, text_column


class EmailCampaign(UUIDPk, TenantScoped, Timestamps, EagerDefaults, Base):
    """A row is one cold-email campaign mirrored from Instantly: its status (DRAFT, ACTIVE,
    PAUSED, COMPLETED, RUNNING_SUBSEQUENCES, ACCOUNT_SUSPENDED, ACCOUNTS_UNHEALTHY,
    BOUNCE_PROTECT), who or what paused it (the bounce breaker), and the last analytics."""

    __tablename__ = "email_campaigns"
    __table_args__ = (Index("ix_email_campaigns_tenant_status", "tenant_id", "status"),)

    name: Mapped[str] = mapped_column(Text)
    instantly_campaign_id: Mapped[str | None] = mapped_column(Text, unique=True)
    sequence_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("outreach_sequences.id", ondelete="SET NULL"), index=True
    )
    sequence_step_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("outreach_sequence_steps.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = text_column("DRAFT")
    instantly_status: Mapped[int | None]
    sending_domain: Mapped[str | None] = mapped_column(Text)
    paused_reason: Mapped[str | None] = mapped_column(Text)
    paused_at: Mapped[datetime | None]
    paused_by: Mapped[str | None] = mapped_column(Text)
    paused_by_breaker: Mapped[bool] = flag(False)
    breaker_grace_until: Mapped[datetime | None]
    stats: Mapped[dict[str, Any]] = json_object()
    last_analytics_at: Mapped[datetime | None]
