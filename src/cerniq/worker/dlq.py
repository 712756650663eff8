"""The dead-letter list ``bull:dlq:outreach``: final failures with their reasons.

Each entry is a JSON object {queue, jobId, name, failedReason, attemptsMade, data, failedAt}.
The newest entries are at the head (LPUSH), so ``LTRIM 0 999`` keeps the last 1,000.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from cerniq.kit.redis import get_queue_redis
from cerniq.worker.names import DLQ_KEY


async def push(
    *, queue: str, job_id: str, name: str, reason: str, attempts: int, data: dict[str, Any]
) -> None:
    entry = {
        "queue": queue,
        "jobId": job_id,
        "name": name,
        "failedReason": reason[:2000],
        "attemptsMade": attempts,
        "data": data,
        "failedAt": datetime.now(UTC).isoformat(),
    }
    await get_queue_redis().lpush(DLQ_KEY, json.dumps(entry, default=str))


async def length() -> int:
    return int(await get_queue_redis().llen(DLQ_KEY))


async def entries(limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    raw = await get_queue_redis().lrange(DLQ_KEY, offset, offset + limit - 1)
    out: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        try:
            entry = json.loads(item)
        except ValueError:
            entry = {"raw": item}
        entry["index"] = offset + index
        out.append(entry)
    return out


async def trim(keep: int) -> int:
    """Keep the newest ``keep`` entries; return how many were removed."""
    redis = get_queue_redis()
    before = int(await redis.llen(DLQ_KEY))
    await redis.ltrim(DLQ_KEY, 0, max(keep, 0) - 1)
    return max(before - keep, 0)


async def remove(entry_raw: str) -> None:
    await get_queue_redis().lrem(DLQ_KEY, 1, entry_raw)
