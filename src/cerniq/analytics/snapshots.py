"""Counts too costly to take on every page view at scale, taken once a minute by a job and kept
in Redis: the lead funnel (it reads every journey, about a second at 1M leads), the
enrollment figures of every sequence (every enrollment joined to its journey) and the leads
assigned to each phone.

A page reads the stored count while it is at most ``FRESH`` old and says when it was taken;
when there is none (no worker running the job, Redis emptied or unreachable) it counts live, so
the figures are never older than ``FRESH`` and never missing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.analytics import repository
from cerniq.kit.clock import utcnow
from cerniq.kit.redis import get_redis
from cerniq.phones import repository as phones
from cerniq.sequences import repository as sequences

KEY = "analytics:snapshot:{}:{}"
FRESH = timedelta(minutes=5)


async def _sequence_stats(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, Any]:
    return {str(k): v for k, v in (await sequences.enrollment_stats(session, tenant_id)).items()}


async def _assigned(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, Any]:
    return dict(await phones.assigned_lead_counts(session, tenant_id))


COUNTS: dict[str, Callable[[AsyncSession, uuid.UUID], Awaitable[dict[str, Any]]]] = {
    "funnel": repository.funnel,
    "sequences": _sequence_stats,
    "assigned": _assigned,
}


async def refresh(session: AsyncSession) -> int:
    """Take every count of ``COUNTS`` for every tenant; returns how many tenants."""
    tenants = await repository.tenant_ids(session)
    redis = get_redis()
    ttl = int(FRESH.total_seconds()) * 2
    for tenant_id in tenants:
        at = utcnow().isoformat()  # one time for all of a tenant's counts
        for name, count in COUNTS.items():
            value = {"at": at, "value": await count(session, tenant_id)}
            await redis.set(KEY.format(name, tenant_id), json.dumps(value), ex=ttl)
    return len(tenants)


async def read(
    session: AsyncSession, tenant_id: uuid.UUID, name: str
) -> tuple[dict[str, Any], datetime | None]:
    """The count ``name`` of the tenant and when it was taken: the stored one while fresh,
    else counted now (``None``)."""
    try:
        stored = await get_redis().get(KEY.format(name, tenant_id))
    except RedisError:
        stored = None
    if stored:
        snapshot = json.loads(stored)
        at = datetime.fromisoformat(snapshot["at"])
        if utcnow() - at <= FRESH:
            return dict(snapshot["value"]), at
    return await COUNTS[name](session, tenant_id), None
