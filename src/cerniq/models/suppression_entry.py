"""``suppression_list``: addresses and numbers that must never be contacted again."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, Timestamps, UUIDPk
from cerniq.models.columns import SUPPRESSION_REASON, EagerDefaults, counter, flag, json_object
from cerniq.models.enums import SuppressionReason

SUPPRESSION_CHANNELS = ("EMAIL", "WHATSAPP", "ALL")


class SuppressionEntry(UUIDPk, TenantScoped, Timestamps, EagerDefaults, Base):
    """A row is one suppressed value of a tenant on a channel (EMAIL, WHATSAPP or ALL): a
    lower-cased email or an E.164 number, why (bounce, complaint, opt-out, ...), and until when
    if it is not permanent."""

    __tablename__ = "suppression_list"
    __table_args__ = (
        UniqueConstraint("tenant_id", "channel", "value"),
        CheckConstraint("channel IN ('EMAIL', 'WHATSAPP', 'ALL')", name="channel_valid"),
        CheckConstraint("value = lower(value)", name="value_lower"),
    )

    channel: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text)
    reason: Mapped[SuppressionReason] = mapped_column(SUPPRESSION_REASON)
    source: Mapped[str | None] = mapped_column(Text)
    bounce_count: Mapped[int] = counter()
    is_permanent: Mapped[bool] = flag(True)
    expires_at: Mapped[datetime | None]
    lead_journey_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("gold_lead_journey.id", ondelete="SET NULL"), index=True
    )
    details: Mapped[dict[str, Any]] = json_object()
