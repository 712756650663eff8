"""SQL for phones and their incidents."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.kit.clock import utcnow
from cerniq.models import GoldLeadJourney, PhoneIncident, WaPhoneNumber, WaQuotaUsage
from cerniq.models.enums import PhoneStatus


async def list_phones(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    status: PhoneStatus | None = None,
    is_enabled: bool | None = None,
) -> list[WaPhoneNumber]:
    query = select(WaPhoneNumber).where(WaPhoneNumber.tenant_id == tenant_id)
    if status is not None:
        query = query.where(WaPhoneNumber.status == status)
    if is_enabled is not None:
        query = query.where(WaPhoneNumber.is_enabled == is_enabled)
    query = query.order_by(func.length(WaPhoneNumber.id), WaPhoneNumber.id)
    return list((await session.execute(query)).scalars())


async def get_phone(
    session: AsyncSession, tenant_id: uuid.UUID, phone_id: str, *, for_update: bool = False
) -> WaPhoneNumber | None:
    query = select(WaPhoneNumber).where(WaPhoneNumber.tenant_id == tenant_id, WaPhoneNumber.id == phone_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_phone_any_tenant(session: AsyncSession, phone_id: str) -> WaPhoneNumber | None:
    return await session.get(WaPhoneNumber, phone_id)


async def phone_by_number(session: AsyncSession, tenant_id: uuid.UUID, number: str) -> WaPhoneNumber | None:
    return (
        await session.execute(
            select(WaPhoneNumber).where(
                WaPhoneNumber.tenant_id == tenant_id, WaPhoneNumber.phone_number == number
            )
        )
    ).scalar_one_or_none()


async def phone_by_account_phone(session: AsyncSession, number: str) -> Sequence[WaPhoneNumber]:
    """Phones of any tenant with this WhatsApp number (webhooks name the account by number)."""
    return list(
        (await session.execute(select(WaPhoneNumber).where(WaPhoneNumber.phone_number == number))).scalars()
    )


async def add_phone(session: AsyncSession, **values: Any) -> WaPhoneNumber:
    phone = WaPhoneNumber(**values)
    session.add(phone)
    await session.flush()
    await session.refresh(phone)
    return phone


async def all_phone_ids(session: AsyncSession, *, enabled_only: bool = True) -> list[str]:
    query = select(WaPhoneNumber.id)
    if enabled_only:
        query = query.where(WaPhoneNumber.is_enabled.is_(True))
    return list((await session.execute(query.order_by(WaPhoneNumber.id))).scalars())


async def all_statuses(session: AsyncSession) -> list[tuple[str, PhoneStatus]]:
    rows = await session.execute(select(WaPhoneNumber.id, WaPhoneNumber.status))
    return [(r[0], PhoneStatus(r[1])) for r in rows]


async def set_status(session: AsyncSession, phone_id: str, status: PhoneStatus, reason: str | None) -> None:
    await session.execute(
        update(WaPhoneNumber)
        .where(WaPhoneNumber.id == phone_id)
        .values(
            status=status,
            status_reason=reason,
            status_changed_at=utcnow(),
            is_online=status in (PhoneStatus.ACTIVE, PhoneStatus.PAUSED),
        )
    )


async def add_incident(session: AsyncSession, **values: Any) -> PhoneIncident:
    incident = PhoneIncident(**values)
    session.add(incident)
    await session.flush()
    return incident


async def incidents(
    session: AsyncSession, tenant_id: uuid.UUID, phone_id: str | None = None, limit: int = 100
) -> list[PhoneIncident]:
    query = select(PhoneIncident).where(PhoneIncident.tenant_id == tenant_id)
    if phone_id:
        query = query.where(PhoneIncident.phone_id == phone_id)
    query = query.order_by(PhoneIncident.created_at.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def assigned_lead_counts(
    session: AsyncSession, tenant_id: uuid.UUID, phone_id: str | None = None
) -> dict[str, int]:
    """Leads assigned per phone (only ``phone_id``'s when given)."""
    j = GoldLeadJourney
    which = j.assigned_phone_id.is_not(None) if phone_id is None else j.assigned_phone_id == phone_id
    rows = await session.execute(
        select(j.assigned_phone_id, func.count())
        .where(j.tenant_id == tenant_id, which)
        .group_by(j.assigned_phone_id)
    )
    return {str(r[0]): int(r[1]) for r in rows}


async def quota_history(session: AsyncSession, phone_id: str, since: date) -> list[WaQuotaUsage]:
    query = (
        select(WaQuotaUsage)
        .where(WaQuotaUsage.phone_id == phone_id, WaQuotaUsage.usage_date >= since)
        .order_by(WaQuotaUsage.usage_date.desc())
    )
    return list((await session.execute(query)).scalars())
