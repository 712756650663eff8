"""``/health``: PostgreSQL, Redis, each queue, the phone pool, workers; overall = the worst."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.kit.redis import get_queue_redis, get_redis
from cerniq.models.enums import PhoneStatus
from cerniq.ops import queue_admin
from cerniq.phones import repository as phones_repository

_ORDER = {"healthy": 0, "degraded": 1, "unhealthy": 2}


def worst(*states: str) -> str:
    return max(states, key=lambda s: _ORDER[s]) if states else "healthy"


async def check(session: AsyncSession) -> dict[str, Any]:
    components: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        await session.execute(text("SELECT 1"))
        components["postgres"] = {
            "status": "healthy",
            "latencyMs": round((time.perf_counter() - started) * 1000, 1),
        }
    except Exception as exc:
        components["postgres"] = {"status": "unhealthy", "error": type(exc).__name__}
    started = time.perf_counter()
    try:
        await get_redis().ping()
        await get_queue_redis().ping()
        components["redis"] = {
            "status": "healthy",
            "latencyMs": round((time.perf_counter() - started) * 1000, 1),
        }
    except Exception as exc:
        components["redis"] = {"status": "unhealthy", "error": type(exc).__name__}

    queues: dict[str, Any] = {}
    if components["redis"]["status"] == "healthy" and components["postgres"]["status"] == "healthy":
        counts = await queue_admin.counts_many(await queue_admin.queue_names(session))
        for name, c in counts.items():
            state = "healthy" if c["active"] > 0 or c["waiting"] == 0 or c["paused"] else "degraded"
            queues[name] = {"status": state, **c}
        statuses = await phones_repository.all_statuses(session)
        total = len(statuses)
        active = sum(1 for _pid, s in statuses if s == PhoneStatus.ACTIVE)
        if total == 0:
            phone_state = "degraded"
        elif active * 2 >= total:
            phone_state = "healthy"
        elif active * 4 >= total:
            phone_state = "degraded"
        else:
            phone_state = "unhealthy"
        components["phones"] = {"status": phone_state, "active": active, "total": total}
        workers = await get_queue_redis().keys("cerniq:workers:*")
        components["workers"] = {"status": "healthy" if workers else "degraded", "count": len(workers)}
    components["queues"] = {
        "status": worst(*(q["status"] for q in queues.values())) if queues else "healthy",
        "items": queues,
    }
    overall = worst(*(c["status"] for c in components.values()))
    return {"status": overall, "components": components}
