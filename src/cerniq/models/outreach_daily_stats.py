"""``outreach_daily_stats``: one row of outreach figures per tenant and business day."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, Timestamps, UUIDPk
from cerniq.models.columns import EagerDefaults, counter


class OutreachDailyStats(UUIDPk, TenantScoped, Timestamps, EagerDefaults, Base):
    """A row is one tenant's day: WhatsApp, cold and warm email, lead and review counts, the
    cold-email bounce rate and average sentiment, plus the full daily report once computed."""

    __tablename__ = "outreach_daily_stats"
    __table_args__ = (UniqueConstraint("tenant_id", "stat_date"),)

    stat_date: Mapped[date]
    wa_new_contacts_sent: Mapped[int] = counter()
    wa_followups_sent: Mapped[int] = counter()
    wa_replies_received: Mapped[int] = counter()
    wa_quota_used: Mapped[int] = counter()
    wa_quota_remaining: Mapped[int] = counter()
    email_cold_sent: Mapped[int] = counter()
    email_cold_opens: Mapped[int] = counter()
    email_cold_clicks: Mapped[int] = counter()
    email_cold_replies: Mapped[int] = counter()
    email_cold_bounces: Mapped[int] = counter()
    # A fraction (0.03 = 3 %).
    email_cold_bounce_rate: Mapped[Decimal] = mapped_column(
        Numeric(7, 4), default=Decimal(0), server_default=text("0")
    )
    email_warm_sent: Mapped[int] = counter()
    email_warm_opens: Mapped[int] = counter()
    leads_contacted: Mapped[int] = counter()
    leads_replied: Mapped[int] = counter()
    leads_positive_replies: Mapped[int] = counter()
    leads_converted: Mapped[int] = counter()
    leads_marked_dead: Mapped[int] = counter()
    reviews_created: Mapped[int] = counter()
    reviews_resolved: Mapped[int] = counter()
    reviews_sla_breached: Mapped[int] = counter()
    sentiment_avg: Mapped[Decimal | None] = mapped_column(Numeric(7, 2))
    report: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Per phone, template and sequence: {"phones": {id: {sent, newContacts, leadsContacted,
    # leadsReplied, positiveReplies}}, "templates": {...}, "sequences": {...}}.
    breakdowns: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    computed_at: Mapped[datetime] = mapped_column(server_default=func.now())
