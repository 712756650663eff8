"""Queue inspection straight from BullMQ's Redis layout (``bull:<queue>:wait|active|...``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.kit.redis import get_queue_redis
from cerniq.phones import repository as phones_repository
from cerniq.worker import registry
from cerniq.worker.names import DECLARED_QUEUES, phone_queue

COUNT_FIELDS = ("waiting", "active", "completed", "failed", "delayed", "paused")


async def queue_names(session: AsyncSession) -> list[str]:
    """The declared queues, any other queue with a consumer, and one queue per registered phone."""
    registry.load_all_tasks()
    names = set(DECLARED_QUEUES) | set(registry.static_queues())
    names.update(
        phone_queue(pid) for pid in await phones_repository.all_phone_ids(session, enabled_only=False)
    )
    return sorted(names)


async def counts_many(names: list[str]) -> dict[str, dict[str, int]]:
    """Job counts per queue in one Redis round trip.

    ``waiting`` counts jobs ready to run, whether in the plain wait list, the prioritized set or
    the paused list; ``paused`` is 1 when the queue is paused.
    """
    redis = get_queue_redis()
    pipe = redis.pipeline(transaction=False)
    for name in names:
        key = f"bull:{name}"
        pipe.llen(f"{key}:wait")
        pipe.zcard(f"{key}:prioritized")
        pipe.llen(f"{key}:paused")
        pipe.llen(f"{key}:active")
        pipe.zcard(f"{key}:completed")
        pipe.zcard(f"{key}:failed")
        pipe.zcard(f"{key}:delayed")
        pipe.hexists(f"{key}:meta", "paused")
    raw = await pipe.execute()
    out: dict[str, dict[str, int]] = {}
    for index, name in enumerate(names):
        wait, prioritized, paused_list, active, completed, failed, delayed, paused = raw[
            index * 8 : index * 8 + 8
        ]
        out[name] = {
            "waiting": int(wait) + int(prioritized) + int(paused_list),
            "active": int(active),
            "completed": int(completed),
            "failed": int(failed),
            "delayed": int(delayed),
            "paused": 1 if paused else 0,
        }
    return out


async def health(session: AsyncSession) -> dict[str, Any]:
    names = await queue_names(session)
    return {"queues": await counts_many(names)}
