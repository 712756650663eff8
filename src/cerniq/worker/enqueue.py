"""Putting jobs on queues: at once, or only after the surrounding transaction commits.

Job ids come from domain ids (``wa-<log row id>``), so enqueueing the same thing twice is a
no-op: BullMQ keeps one job per id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.kit.db import after_commit
from cerniq.worker.queues import DEFAULT_JOB_OPTIONS, get_queue


@dataclass
class JobRequest:
    queue: str
    name: str
    data: dict[str, Any]
    job_id: str | None = None
    delay: timedelta | None = None
    run_at: datetime | None = None
    priority: int | None = None
    attempts: int | None = None
    backoff: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = dict(DEFAULT_JOB_OPTIONS)
        if self.job_id:
            opts["jobId"] = self.job_id
        delay_ms = 0
        if self.delay is not None:
            delay_ms = int(self.delay.total_seconds() * 1000)
        if self.run_at is not None:
            delay_ms = int((self.run_at.timestamp() - datetime.now().timestamp()) * 1000)
        if delay_ms > 0:
            opts["delay"] = delay_ms
        if self.priority:
            opts["priority"] = self.priority
        if self.attempts is not None:
            opts["attempts"] = self.attempts
        if self.backoff is not None:
            opts["backoff"] = self.backoff
        opts.update(self.extra)
        return opts


async def enqueue(
    queue: str,
    name: str,
    data: dict[str, Any],
    *,
    job_id: str | None = None,
    delay: timedelta | None = None,
    run_at: datetime | None = None,
    priority: int | None = None,
    attempts: int | None = None,
    backoff: dict[str, Any] | None = None,
    **extra: Any,
) -> str:
    """Add a job now and return its id."""
    request = JobRequest(queue, name, data, job_id, delay, run_at, priority, attempts, backoff, extra)
    return await submit(request)


async def submit(request: JobRequest) -> str:
    job = await get_queue(request.queue).add(request.name, request.data, request.options())
    return str(job.id)


async def submit_many(requests: list[JobRequest]) -> None:
    """Add many jobs, grouped per queue with one ``addBulk`` each."""
    by_queue: dict[str, list[dict[str, Any]]] = {}
    for request in requests:
        by_queue.setdefault(request.queue, []).append(
            {"name": request.name, "data": request.data, "opts": request.options()}
        )
    for queue, jobs in by_queue.items():
        for start in range(0, len(jobs), 1000):
            await get_queue(queue).addBulk(jobs[start : start + 1000])


def enqueue_after_commit(
    session: AsyncSession,
    queue: str,
    name: str,
    data: dict[str, Any],
    *,
    job_id: str | None = None,
    delay: timedelta | None = None,
    run_at: datetime | None = None,
    priority: int | None = None,
    attempts: int | None = None,
    backoff: dict[str, Any] | None = None,
    **extra: Any,
) -> None:
    """Buffer a job on the session; it is added only once the transaction commits.

    If the process dies between the commit and the push, the row the job was derived from is
    still in PostgreSQL and a sweeper (the outbox relay) enqueues it again under the same id.
    """
    request = JobRequest(queue, name, data, job_id, delay, run_at, priority, attempts, backoff, extra)
    pending: list[JobRequest] | None = session.info.get("cerniq_pending_jobs")
    if pending is None:
        pending = []
        session.info["cerniq_pending_jobs"] = pending

        async def flush() -> None:
            jobs = session.info.pop("cerniq_pending_jobs", [])
            if jobs:
                await submit_many(jobs)

        after_commit(session, flush)
    pending.append(request)
