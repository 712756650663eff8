"""``wa_phone_numbers``: the pool of WhatsApp sender numbers connected through TimelinesAI."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Sequence, Text, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, Timestamps
from cerniq.models.columns import PHONE_STATUS, EagerDefaults, counter, flag
from cerniq.models.enums import PhoneStatus

PHONE_ID_SEQUENCE = Sequence("wa_phone_numbers_id_seq", metadata=Base.metadata)

# phone_01, phone_02, ... phone_99, phone_100: zero-padded to two digits, never truncated (which
# lpad(..., 2, '0') would do from 100 on). The runbook's queue and Redis key names use these ids.
PHONE_ID_DEFAULT = "'phone_' || to_char(nextval('wa_phone_numbers_id_seq'), 'FM9999999999999999900')"


class WaPhoneNumber(TenantScoped, Timestamps, EagerDefaults, Base):
    """A row is one WhatsApp sender: its readable id (``phone_01``), number, TimelinesAI
    account, status, daily new-contact quota (200) and follow-up cap (500), and counters."""

    __tablename__ = "wa_phone_numbers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "phone_number"),
        Index("ix_wa_phone_numbers_tenant_status", "tenant_id", "status"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True, server_default=text(PHONE_ID_DEFAULT))
    phone_number: Mapped[str] = mapped_column(Text)  # E.164
    phone_label: Mapped[str] = mapped_column(Text)
    timelinesai_account_id: Mapped[str | None] = mapped_column(Text)
    timelinesai_phone_id: Mapped[str | None] = mapped_column(Text, unique=True)
    status: Mapped[PhoneStatus] = mapped_column(
        PHONE_STATUS, default=PhoneStatus.ACTIVE, server_default=PhoneStatus.ACTIVE.value
    )
    status_changed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    status_reason: Mapped[str | None] = mapped_column(Text)
    last_health_check_at: Mapped[datetime | None]
    last_message_sent_at: Mapped[datetime | None]
    last_message_received_at: Mapped[datetime | None]
    is_online: Mapped[bool] = flag(True)
    daily_quota_limit: Mapped[int] = counter(200)
    followup_limit: Mapped[int] = counter(500)
    total_messages_sent: Mapped[int] = counter()
    total_leads_assigned: Mapped[int] = counter()
    total_conversations: Mapped[int] = counter()
    is_enabled: Mapped[bool] = flag(True)
    priority: Mapped[int] = counter(50)
    reputation_score: Mapped[int] = counter(100)
