"""``webhook_events``: raw vendor webhooks, stored before they are processed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, UUIDPk
from cerniq.models.columns import WEBHOOK_STATUS, EagerDefaults, counter, json_object
from cerniq.models.enums import WebhookStatus


class WebhookEvent(UUIDPk, EagerDefaults, Base):
    """A row is one webhook delivery from a vendor (timelinesai, instantly, resend), keyed by the
    vendor's event identity so a redelivery is recognised; the tenant is known once matched."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("provider", "event_key"),
        Index("ix_webhook_events_status_received", "status", "received_at"),
    )

    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(Text)
    event_type: Mapped[str | None] = mapped_column(Text)
    event_key: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = json_object()
    headers: Mapped[dict[str, Any]] = json_object()
    status: Mapped[WebhookStatus] = mapped_column(
        WEBHOOK_STATUS, default=WebhookStatus.RECEIVED, server_default=WebhookStatus.RECEIVED.value
    )
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = counter()
    lead_journey_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("gold_lead_journey.id", ondelete="SET NULL"), index=True
    )
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    processed_at: Mapped[datetime | None]
