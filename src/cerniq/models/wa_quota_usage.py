"""``wa_quota_usage``: one audit row per phone and business day of WhatsApp quota spent."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, Timestamps, UUIDPk
from cerniq.models.columns import EagerDefaults, counter, flag


class WaQuotaUsage(UUIDPk, TenantScoped, Timestamps, EagerDefaults, Base):
    """A row is one phone's quota for one business day (Europe/Bucharest): new contacts and
    follow-ups sent, the limit, and the Redis and ledger counts compared at reset."""

    __tablename__ = "wa_quota_usage"
    __table_args__ = (
        UniqueConstraint("phone_id", "usage_date"),
        Index("ix_wa_quota_usage_usage_date", text("usage_date DESC")),
    )

    phone_id: Mapped[str] = mapped_column(Text, ForeignKey("wa_phone_numbers.id", ondelete="CASCADE"))
    usage_date: Mapped[date]
    new_contacts_sent: Mapped[int] = counter()
    followups_sent: Mapped[int] = counter()
    total_sent: Mapped[int] = counter()
    quota_limit: Mapped[int] = counter(200)
    quota_remaining: Mapped[int | None]
    # The Redis counter and the quota_cost ledger count seen at reset; they should agree.
    redis_count: Mapped[int | None]
    ledger_count: Mapped[int | None]
    mismatch: Mapped[bool] = flag(False)
    first_message_at: Mapped[datetime | None]
    last_message_at: Mapped[datetime | None]
    quota_reset_at: Mapped[datetime | None]
