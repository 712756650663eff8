"""``/api/v1/webhooks/{timelinesai/{token},instantly,resend}``: vendor deliveries.

Each answers ``200 {"received": true, "duplicate": bool}`` once the raw delivery is stored
(also for bodies that cannot be used: those are quarantined, never dropped), 401 for a forged
delivery, 413 for a body over 1 MB. Processing happens on ``webhook:{provider}:ingest``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from cerniq.webhooks import service

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Stored (or a redelivery of a stored event)"},
    401: {"description": "Unknown token or forged signature"},
    413: {"description": "Body larger than 1 MB"},
}


@router.post("/timelinesai/{token}", responses=_RESPONSES)
async def timelinesai(token: str, request: Request) -> dict[str, Any]:
    """TimelinesAI (unsigned): the tenant's secret webhook token is the last path segment."""
    del token  # read from the path by the source's authenticate
    return (await service.ingest("timelinesai", request)).body()


@router.post("/instantly", responses=_RESPONSES)
async def instantly(request: Request) -> dict[str, Any]:
    """Instantly: authenticated by the secret header set on the webhook (email feature)."""
    return (await service.ingest("instantly", request)).body()


@router.post("/resend", responses=_RESPONSES)
async def resend(request: Request) -> dict[str, Any]:
    """Resend: Svix-signed (email feature)."""
    return (await service.ingest("resend", request)).body()
