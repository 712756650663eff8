"""SQL of quota operations: the quota ledger in ``gold_communication_log`` and ``wa_quota_usage``.

The ledger of a business day is the outbound WhatsApp rows whose ``quota_date`` is that day:
``quota_cost = 1`` rows are new contacts (whatever their status: a reservation is only given back
together with ``quota_cost = 0``), ``quota_cost = 0`` rows are follow-ups once they hold a
reservation (SENDING or later; QUEUED, SKIPPED and FAILED rows hold none).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.models import GoldCommunicationLog, WaPhoneNumber, WaQuotaUsage
from cerniq.models.enums import Channel, Direction, MessageStatus

NO_RESERVATION = (MessageStatus.QUEUED, MessageStatus.SKIPPED, MessageStatus.FAILED)
IN_FLIGHT = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.AMBIGUOUS)


@dataclass
class LedgerDay:
    """One phone's ledger for one business day."""

    new_contacts: int = 0
    followups: int = 0
    reservations: dict[str, int] = field(default_factory=dict)
    first_at: datetime | None = None
    last_at: datetime | None = None

    def add(self, row_id: str, cost: int, at: datetime | None) -> None:
        self.reservations[row_id] = cost
        if cost:
            self.new_contacts += 1
        else:
            self.followups += 1
        if at is not None:
            self.first_at = at if self.first_at is None else min(self.first_at, at)
            self.last_at = at if self.last_at is None else max(self.last_at, at)


async def phones(session: AsyncSession, tenant_id: uuid.UUID | None = None) -> list[WaPhoneNumber]:
    """Every phone (of one tenant, or of all), in id order (phone_02 before phone_10)."""
    query = select(WaPhoneNumber)
    if tenant_id is not None:
        query = query.where(WaPhoneNumber.tenant_id == tenant_id)
    query = query.order_by(func.length(WaPhoneNumber.id), WaPhoneNumber.id)
    return list((await session.execute(query)).scalars())


async def ledger(
    session: AsyncSession, day: date, phone_ids: Sequence[str] | None = None
) -> dict[str, LedgerDay]:
    """The ledger of ``day`` per phone (phones without rows are absent)."""
    at = func.coalesce(
        GoldCommunicationLog.sent_at, GoldCommunicationLog.status_updated_at, GoldCommunicationLog.created_at
    )
    query = select(
        GoldCommunicationLog.phone_id, GoldCommunicationLog.id, GoldCommunicationLog.quota_cost, at
    ).where(
        GoldCommunicationLog.quota_date == day,
        GoldCommunicationLog.channel == Channel.WHATSAPP,
        GoldCommunicationLog.direction == Direction.OUTBOUND,
        GoldCommunicationLog.phone_id.is_not(None),
        or_(
            GoldCommunicationLog.quota_cost == 1,
            GoldCommunicationLog.status.not_in(NO_RESERVATION),
        ),
    )
    if phone_ids is not None:
        query = query.where(GoldCommunicationLog.phone_id.in_(list(phone_ids)))
    out: dict[str, LedgerDay] = {}
    for phone_id, row_id, cost, when in await session.execute(query):
        out.setdefault(str(phone_id), LedgerDay()).add(str(row_id), 1 if cost else 0, when)
    return out


async def in_flight_ids(session: AsyncSession, phone_id: str, row_ids: Iterable[str]) -> set[str]:
    """Which of ``row_ids`` are messages of ``phone_id`` still in flight (QUEUED/SENDING/AMBIGUOUS):
    their reservation may precede the commit that records it, so a resync keeps it."""
    ids = []
    for raw in row_ids:
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            continue
    if not ids:
        return set()
    rows = await session.execute(
        select(GoldCommunicationLog.id).where(
            GoldCommunicationLog.id.in_(ids),
            GoldCommunicationLog.phone_id == phone_id,
            GoldCommunicationLog.status.in_(IN_FLIGHT),
        )
    )
    return {str(r[0]) for r in rows}


async def usage_rows(session: AsyncSession, day: date) -> dict[str, WaQuotaUsage]:
    rows = await session.execute(select(WaQuotaUsage).where(WaQuotaUsage.usage_date == day))
    return {row.phone_id: row for row in rows.scalars()}


async def upsert_usage(session: AsyncSession, values: list[dict[str, Any]]) -> None:
    """Insert or overwrite ``wa_quota_usage`` rows on (phone_id, usage_date)."""
    if not values:
        return
    statement = insert(WaQuotaUsage).values(values)
    updated: dict[str, Any] = {
        column: statement.excluded[column]
        for column in (
            "tenant_id",
            "new_contacts_sent",
            "followups_sent",
            "total_sent",
            "quota_limit",
            "quota_remaining",
            "redis_count",
            "ledger_count",
            "mismatch",
            "first_message_at",
            "last_message_at",
            "quota_reset_at",
        )
    }
    updated["updated_at"] = func.now()
    await session.execute(
        statement.on_conflict_do_update(index_elements=["phone_id", "usage_date"], set_=updated)
    )
