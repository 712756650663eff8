"""``GET /api/v1/outreach/analytics/sequences``: results per sequence."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cerniq.auth.dependencies import Session, Viewer
from cerniq.sequences import service

router = APIRouter(prefix="/api/v1/outreach/analytics", tags=["analytics"])


@router.get("/sequences")
async def sequence_analytics(principal: Viewer, session: Session) -> list[dict[str, Any]]:
    """`[{sequenceId, name, enrollments, completions, stopped, conversions, avgStepsCompleted,
    responseRate}]`; responseRate is replied / contacted enrollments."""
    return await service.analytics_view(session, principal.tenant_id)
