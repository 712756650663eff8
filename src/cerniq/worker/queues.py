"""The one factory every BullMQ Queue and Worker goes through.

It applies the three settings the Python port needs (STACK.md): redis-py < 8 (pinned in
pyproject), ``drainDelay: 1`` on every Worker, and the 1 ms blocking capabilities on Redis
>= 7.0.8.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bullmq import Queue, Worker
from bullmq.redis_connection import RedisConnection

from cerniq.config import Settings, get_settings

RedisConnection.capabilities = {"canBlockFor1Ms": True, "canDoubleTimeout": True}

DEFAULT_JOB_OPTIONS: dict[str, Any] = {
    "attempts": 3,
    "backoff": {"type": "exponential", "delay": 5000},
    "removeOnComplete": {"age": 7 * 24 * 3600, "count": 10000},
    "removeOnFail": {"age": 30 * 24 * 3600},
}

_queues: dict[tuple[str, str], Queue] = {}


def connection_url(settings: Settings | None = None) -> str:
    return (settings or get_settings()).queue_redis_url


def get_queue(name: str, settings: Settings | None = None) -> Queue:
    """A cached producer/admin handle on queue ``name`` (one per process and URL)."""
    url = connection_url(settings)
    key = (url, name)
    queue = _queues.get(key)
    if queue is None:
        queue = Queue(name, {"connection": url})
        _queues[key] = queue
    return queue


async def close_queues() -> None:
    for queue in list(_queues.values()):
        try:
            await queue.close()
        except Exception:  # noqa: S110 - closing on shutdown, nothing to do
            pass
    _queues.clear()


def make_worker(
    name: str,
    processor: Callable[[Any, str], Awaitable[Any]],
    *,
    concurrency: int = 1,
    settings: Settings | None = None,
    lock_duration_ms: int = 30000,
    stalled_interval_ms: int = 30000,
    autorun: bool = True,
) -> Worker:
    """A Worker with the settings the Python port needs."""
    return Worker(
        name,
        processor,
        {
            "connection": connection_url(settings),
            "concurrency": concurrency,
            "drainDelay": 1,
            "lockDuration": lock_duration_ms,
            "stalledInterval": stalled_interval_ms,
            "maxStalledCount": 1,
            "autorun": autorun,
        },
    )
