"""``/api/v1/outreach/analytics/phones/{id}/history`` (runbook 2.2 step 6)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from cerniq.analytics.phones import MAX_DAYS, phone_history
from cerniq.auth.dependencies import Session, Viewer

router = APIRouter(prefix="/api/v1/outreach/analytics/phones", tags=["analytics"])


@router.get("/{phone_id}/history")
async def history(
    phone_id: str,
    principal: Viewer,
    session: Session,
    days: int = Query(7, ge=1, le=MAX_DAYS, description="How many days back, today included (1-90)"),
) -> dict[str, Any]:
    """`{"phoneId", "dailyStats": [{date, newContacts, followUps, totalSent, delivered, read, replies,
    failed, quotaLimit}]}`, one entry per day in Europe/Bucharest, oldest first."""
    return await phone_history(session, principal.tenant_id, phone_id, days)
