"""Redis clients: the state database (status keys, quota counters) and the queue database."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, TypeAlias

from redis.asyncio import Redis

from cerniq.config import Settings, get_settings

# redis-py annotates every command as returning ``Awaitable[T] | T`` (one signature for the sync
# and async clients), which strict mypy cannot await. Callers get the client as ``RedisClient``.
RedisClient: TypeAlias = Any

_clients: dict[tuple[str, int], RedisClient] = {}


def _loop_id() -> int:
    try:
        return id(asyncio.get_running_loop())
    except RuntimeError:
        return 0


def get_redis(settings: Settings | None = None) -> RedisClient:
    """Client of the state database (``phone:status:*``, ``quota:wa:*``), strings decoded."""
    settings = settings or get_settings()
    key = (settings.redis_url, _loop_id())
    client = _clients.get(key)
    if client is None:
        client = Redis.from_url(settings.redis_url, decode_responses=True, socket_timeout=30)
        _clients[key] = client
    return client


def get_queue_redis(settings: Settings | None = None) -> RedisClient:
    """Client of the queue database (BullMQ data, ``bull:dlq:outreach``), strings decoded."""
    settings = settings or get_settings()
    url = settings.queue_redis_url
    key = (url, _loop_id())
    client = _clients.get(key)
    if client is None:
        client = Redis.from_url(url, decode_responses=True, socket_timeout=30)
        _clients[key] = client
    return client


async def close_redis() -> None:
    for client in list(_clients.values()):
        with contextlib.suppress(RuntimeError):
            await client.aclose()
    _clients.clear()
