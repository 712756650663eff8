"""``phone_incidents``: the history of what happened to a phone (bans, outages, pauses)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, UUIDPk
from cerniq.models.columns import EagerDefaults, created_now, json_object


class PhoneIncident(UUIDPk, TenantScoped, EagerDefaults, Base):
    """A row is one event in a phone's life: its kind (BANNED, OFFLINE, RECONNECTED, PAUSED,
    RESUMED, QUOTA_RESET, ...), why, who did it, and when it was resolved."""

    __tablename__ = "phone_incidents"
    __table_args__ = (Index("ix_phone_incidents_phone_created", "phone_id", "created_at"),)

    phone_id: Mapped[str] = mapped_column(Text, ForeignKey("wa_phone_numbers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = json_object()
    actor: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_now()
    resolved_at: Mapped[datetime | None]
