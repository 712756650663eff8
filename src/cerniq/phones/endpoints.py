"""``/api/v1/outreach/phones``: the pool, one phone, registration and edits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from cerniq.auth.dependencies import Admin, Operator, Session, Viewer
from cerniq.models.enums import PhoneStatus
from cerniq.phones import service
from cerniq.phones.schemas import PhoneCreate, PhonePatch

router = APIRouter(prefix="/api/v1/outreach/phones", tags=["phones"])


@router.get("")
async def list_phones(
    principal: Viewer,
    session: Session,
    status: PhoneStatus | None = Query(None),
    isEnabled: bool | None = Query(None),
) -> dict[str, Any]:
    """Every phone with today's quota: `{"phones": [{id, label, phoneNumber, status, quota: {used, limit,
    remaining, resetAt}, ...}]}`."""
    return await service.list_view(session, principal.tenant_id, status=status, is_enabled=isEnabled)


@router.post("", status_code=201)
async def create_phone(body: PhoneCreate, principal: Admin, session: Session) -> dict[str, Any]:
    """Register a phone (runbook 2.3); its queue starts serving without a restart."""
    phone = await service.create_phone(
        session,
        principal,
        phone_number=body.phoneNumber,
        label=body.label,
        timelinesai_account_id=body.timelinesaiAccountId,
        daily_quota_limit=body.dailyQuotaLimit,
        priority=body.priority,
        is_enabled=body.isEnabled,
    )
    (item,) = await service.phone_views(session, principal.tenant_id, [phone])
    return item


@router.get("/{phone_id}")
async def get_phone(phone_id: str, principal: Viewer, session: Session) -> dict[str, Any]:
    """One phone with quota history, assigned leads and recent incidents."""
    return await service.detail_view(session, principal.tenant_id, phone_id)


@router.patch("/{phone_id}")
async def patch_phone(
    phone_id: str, body: PhonePatch, principal: Operator, session: Session
) -> dict[str, Any]:
    """Edit label, enabled flag, priority, quota limit, or set status ACTIVE / PAUSED."""
    phone = await service.update_phone(session, principal, phone_id, body.model_dump(exclude_unset=True))
    (item,) = await service.phone_views(session, principal.tenant_id, [phone])
    return item
