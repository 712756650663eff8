"""``/api/v1/outreach/analytics/sla-performance`` (runbook 5.1 step 5)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from cerniq.auth.dependencies import Session, Viewer
from cerniq.reviews import service

router = APIRouter(prefix="/api/v1/outreach/analytics", tags=["analytics", "reviews"])


@router.get("/sla-performance")
async def sla_performance(
    principal: Viewer, session: Session, days: int = Query(7, ge=1, le=365)
) -> dict[str, Any]:
    """Review SLA figures over the reviews opened in the last `days` days, per priority:
    total, resolved, breached, breachRate, avgResolutionMinutes, p90ResolutionMinutes,
    withinSlaPercent; plus `overall`."""
    return await service.sla_performance(session, principal.tenant_id, days=days)
