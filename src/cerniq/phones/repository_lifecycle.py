"""SQL of the phone lifecycle: health checks, operator actions and lead reassignment."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.models import GoldCommunicationLog, GoldCompany, GoldLeadJourney, WaPhoneNumber
from cerniq.models.enums import Channel, Direction, LeadState, MessageStatus, PhoneStatus

REASSIGNABLE = (LeadState.COLD, LeadState.CONTACTED_WA)


async def phones(
    session: AsyncSession,
    tenant_id: uuid.UUID | None = None,
    *,
    statuses: Sequence[PhoneStatus] | None = None,
    lock: bool = False,
) -> list[WaPhoneNumber]:
    """Phones of one tenant (or all), in id order; ``lock`` takes their rows FOR UPDATE (always in
    the same order, so two health checks never deadlock)."""
    query = select(WaPhoneNumber)
    if tenant_id is not None:
        query = query.where(WaPhoneNumber.tenant_id == tenant_id)
    if statuses is not None:
        query = query.where(WaPhoneNumber.status.in_(list(statuses)))
    query = query.order_by(WaPhoneNumber.id)
    if lock:
        query = query.with_for_update()
    return list((await session.execute(query)).scalars())


async def record_health(
    session: AsyncSession, phone_id: str, *, connected: bool | None, at: datetime
) -> None:
    """Stamp ``last_health_check_at`` and, when the vendor answered, ``is_online``."""
    values: dict[str, object] = {"last_health_check_at": at}
    if connected is not None:
        values["is_online"] = connected
    await session.execute(update(WaPhoneNumber).where(WaPhoneNumber.id == phone_id).values(**values))


async def set_online(session: AsyncSession, phone_id: str, online: bool) -> None:
    await session.execute(update(WaPhoneNumber).where(WaPhoneNumber.id == phone_id).values(is_online=online))


@dataclass(frozen=True)
class Unassigned:
    journey_id: uuid.UUID
    state: LeadState
    next_action_at: datetime | None
    human: bool


async def skip_queued_messages(
    session: AsyncSession, phone_id: str, *, code: str, now: datetime
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """SKIP the QUEUED outbound WhatsApp messages of ``phone_id`` to its COLD / CONTACTED_WA leads
    (their job finds the row SKIPPED and does nothing). Returns ``(message id, journey id)``."""
    reassignable = select(GoldLeadJourney.id).where(
        GoldLeadJourney.assigned_phone_id == phone_id, GoldLeadJourney.current_state.in_(REASSIGNABLE)
    )
    rows = await session.execute(
        update(GoldCommunicationLog)
        .where(
            GoldCommunicationLog.phone_id == phone_id,
            GoldCommunicationLog.channel == Channel.WHATSAPP,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.status == MessageStatus.QUEUED,
            GoldCommunicationLog.lead_journey_id.in_(reassignable),
        )
        .values(status=MessageStatus.SKIPPED, error_code=code, status_updated_at=now)
        .returning(GoldCommunicationLog.id, GoldCommunicationLog.lead_journey_id)
    )
    return [(r[0], r[1]) for r in rows]


async def unassign_leads(session: AsyncSession, phone_id: str) -> list[Unassigned]:
    """Runbook 2.2 step 4: the phone's COLD / CONTACTED_WA leads lose their sticky phone and chat."""
    rows = await session.execute(
        update(GoldLeadJourney)
        .where(GoldLeadJourney.assigned_phone_id == phone_id, GoldLeadJourney.current_state.in_(REASSIGNABLE))
        .values(assigned_phone_id=None, assigned_at=None, wa_chat_id=None)
        .returning(
            GoldLeadJourney.id,
            GoldLeadJourney.current_state,
            GoldLeadJourney.next_action_at,
            GoldLeadJourney.is_human_controlled,
        )
    )
    return [Unassigned(r[0], LeadState(r[1]), r[2], bool(r[3])) for r in rows]


async def make_due(session: AsyncSession, journey_ids: Sequence[uuid.UUID], now: datetime) -> None:
    if journey_ids:
        await session.execute(
            update(GoldLeadJourney)
            .where(GoldLeadJourney.id.in_(list(journey_ids)), GoldLeadJourney.is_human_controlled.is_(False))
            .values(next_action_at=now)
        )


async def company_by_cui(session: AsyncSession, tenant_id: uuid.UUID, cui: str) -> GoldCompany | None:
    return (
        await session.execute(
            select(GoldCompany).where(GoldCompany.tenant_id == tenant_id, GoldCompany.cui == cui)
        )
    ).scalar_one_or_none()


async def journey_of_company(
    session: AsyncSession, tenant_id: uuid.UUID, company_id: uuid.UUID, *, lock: bool = False
) -> GoldLeadJourney | None:
    query = select(GoldLeadJourney).where(
        GoldLeadJourney.tenant_id == tenant_id, GoldLeadJourney.lead_id == company_id
    )
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def add(session: AsyncSession, row: object) -> None:
    session.add(row)
    await session.flush()


async def count_enabled(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[int, int]:
    """(enabled phones, enabled ACTIVE phones) of a tenant."""
    rows = await session.execute(
        select(WaPhoneNumber.status, func.count())
        .where(WaPhoneNumber.tenant_id == tenant_id, WaPhoneNumber.is_enabled.is_(True))
        .group_by(WaPhoneNumber.status)
    )
    counts = {PhoneStatus(r[0]): int(r[1]) for r in rows}
    return sum(counts.values()), counts.get(PhoneStatus.ACTIVE, 0)
