"""``/health`` and ``/api/admin/queues/health``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from cerniq.auth.dependencies import Session, Viewer
from cerniq.ops import health, queue_admin

router = APIRouter(tags=["health"])


@router.get("/health")
async def get_health(session: Session) -> JSONResponse:
    """PostgreSQL, Redis, each queue, the phone pool and the workers; `status` is the worst of them.
    Answers 503 when unhealthy, so load balancers can use it."""
    report = await health.check(session)
    return JSONResponse(report, status_code=503 if report["status"] == "unhealthy" else 200)


@router.get("/api/admin/queues/health")
async def queues_health(principal: Viewer, session: Session) -> dict[str, Any]:
    """`{"queues": {name: {waiting, active, failed, delayed, completed, paused}}}` for every queue."""
    del principal
    return await queue_admin.health(session)
