"""``/api/v1/outreach/analytics/email-deliverability`` and ``/bounces`` (runbook 6.1 steps 1, 3)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from cerniq.auth.dependencies import Session, Viewer
from cerniq.email import analytics

router = APIRouter(prefix="/api/v1/outreach/analytics", tags=["email"])


@router.get("/email-deliverability")
async def email_deliverability(principal: Viewer, session: Session) -> dict[str, Any]:
    """`{"bounceRate": percent over the rolling window, "threshold": 3.0, "campaigns": [...],
    "domains": [...], ...}`."""
    return await analytics.deliverability_view(session, principal.tenant_id)


@router.get("/bounces")
async def bounces(
    principal: Viewer, session: Session, limit: int = Query(100, ge=1, le=1000)
) -> dict[str, Any]:
    """`{"bounces": [{email, bounceType, reason, timestamp, channel, campaignId, leadId}]}`, newest first."""
    return await analytics.bounces_view(session, principal.tenant_id, limit)
