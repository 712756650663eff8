"""``alerts``: operational alerts (phone offline, bounce rate, SLA breach, ...)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, Timestamps, UUIDPk
from cerniq.models.columns import (
    ALERT_SEVERITY,
    ALERT_STATUS,
    EagerDefaults,
    counter,
    json_object,
    text_column,
)
from cerniq.models.enums import AlertSeverity, AlertStatus


class Alert(UUIDPk, Timestamps, EagerDefaults, Base):
    """A row is one alert condition (e.g. ``phone:offline`` for phone_03): while it is open,
    repeats bump ``occurrences`` on the same row (one open row per ``dedup_key``); it can be
    acknowledged, silenced, escalated and resolved."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "ux_alerts_dedup_open",
            "dedup_key",
            unique=True,
            postgresql_where=text("status IN ('OPEN', 'ACKNOWLEDGED', 'SILENCED')"),
        ),
        Index("ix_alerts_status_severity", "status", "severity"),
        Index("ix_alerts_tenant_created", "tenant_id", "created_at"),
    )

    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    alert_type: Mapped[str] = mapped_column(Text)
    severity: Mapped[AlertSeverity] = mapped_column(ALERT_SEVERITY)
    status: Mapped[AlertStatus] = mapped_column(
        ALERT_STATUS, default=AlertStatus.OPEN, server_default=AlertStatus.OPEN.value
    )
    dedup_key: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)  # what it is about, e.g. a phone id
    title: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = text_column("")
    details: Mapped[dict[str, Any]] = json_object()
    occurrences: Mapped[int] = counter(1)
    first_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(Text)
    silenced_until: Mapped[datetime | None]
    escalation_level: Mapped[int] = counter(1)
    last_notified_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
