"""``outreach_sequences``: follow-up sequences (a cadence of steps) leads can be enrolled in."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Index, Numeric, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, Timestamps, UUIDPk
from cerniq.models.columns import (
    CHANNEL,
    DEFAULT_TIMEZONE,
    SEQUENCE_STATUS,
    EagerDefaults,
    counter,
    flag,
    text_column,
)
from cerniq.models.enums import Channel, SequenceStatus


class OutreachSequence(UUIDPk, TenantScoped, Timestamps, EagerDefaults, Base):
    """A row is one sequence of a tenant: its channels, whether it respects business hours and
    stops on reply or bounce, its status, and enrolment counters. ``is_active = false`` stops
    it (the runbook's emergency stop sets that)."""

    __tablename__ = "outreach_sequences"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        Index("ix_outreach_sequences_tenant_active", "tenant_id", "is_active"),
    )

    name: Mapped[str] = mapped_column(Text)
    code: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[SequenceStatus] = mapped_column(
        SEQUENCE_STATUS, default=SequenceStatus.ACTIVE, server_default=SequenceStatus.ACTIVE.value
    )
    is_active: Mapped[bool] = flag(True)
    is_default: Mapped[bool] = flag(False)
    primary_channel: Mapped[Channel] = mapped_column(
        CHANNEL, default=Channel.WHATSAPP, server_default=Channel.WHATSAPP.value
    )
    fallback_channel: Mapped[Channel | None] = mapped_column(CHANNEL)
    respect_business_hours: Mapped[bool] = flag(True)
    timezone: Mapped[str] = text_column(DEFAULT_TIMEZONE)
    stop_on_reply: Mapped[bool] = flag(True)
    stop_on_bounce: Mapped[bool] = flag(True)
    max_attempts: Mapped[int] = counter(5)
    max_steps: Mapped[int] = counter(5)
    total_enrolled: Mapped[int] = counter()
    total_completed: Mapped[int] = counter()
    total_converted: Mapped[int] = counter()
    avg_response_rate: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
