"""The registry of task handlers and periodic schedules.

Feature packages declare their jobs in their ``tasks.py``::

    @task(names.DISPATCH)
    async def dispatch(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]: ...

    schedule(names.DISPATCH, "*/5 * * * *", job_name="dispatch")

The runner imports every ``cerniq.<feature>.tasks`` module, so a declaration is all it takes.
``q:wa:*`` registers the handler of every phone queue.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bullmq import DelayedError

from cerniq.config import Settings

Handler = Callable[["JobContext", dict[str, Any]], Awaitable[Any]]


@dataclass
class JobContext:
    """What a handler gets besides the job's data."""

    job: Any
    token: str
    queue_name: str
    settings: Settings
    log: Any

    @property
    def job_id(self) -> str:
        return str(self.job.id)

    @property
    def attempt(self) -> int:
        """1 for the first run, 2 for the first retry, ..."""
        return int(self.job.attemptsMade) + 1

    @property
    def max_attempts(self) -> int:
        return int((self.job.opts or {}).get("attempts") or 1)

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    async def delay_until(self, when: datetime) -> None:
        """Put the job back as delayed until ``when`` without spending an attempt; never returns."""
        await self.job.moveToDelayed(int(when.timestamp() * 1000), self.token)
        raise DelayedError()


@dataclass(frozen=True)
class TaskSpec:
    queue: str
    handler: Handler
    job_name: str | None = None
    concurrency: int = 1


@dataclass(frozen=True)
class ScheduleSpec:
    queue: str
    pattern: str
    job_name: str
    scheduler_id: str
    data: dict[str, Any] = field(default_factory=dict)
    tz: str | None = None


_tasks: list[TaskSpec] = []
_schedules: dict[str, ScheduleSpec] = {}


def task(queue: str, *, job_name: str | None = None, concurrency: int = 1) -> Callable[[Handler], Handler]:
    """Register ``handler`` for jobs of ``queue`` (all job names, or only ``job_name``)."""

    def decorate(handler: Handler) -> Handler:
        _tasks.append(TaskSpec(queue=queue, handler=handler, job_name=job_name, concurrency=concurrency))
        return handler

    return decorate


def schedule(
    queue: str,
    pattern: str,
    *,
    job_name: str,
    data: dict[str, Any] | None = None,
    tz: str | None = None,
    scheduler_id: str | None = None,
) -> None:
    """Declare a cron schedule; it fires once per tick however many workers run."""
    sid = scheduler_id or f"cron-{queue}-{job_name}".replace(":", "_")
    _schedules[sid] = ScheduleSpec(
        queue=queue, pattern=pattern, job_name=job_name, scheduler_id=sid, data=data or {}, tz=tz
    )


def find_handler(queue: str, job_name: str) -> TaskSpec | None:
    """The handler of ``job_name`` on ``queue``: an exact job-name match first, then a catch-all."""
    candidates = [t for t in _tasks if t.queue == queue or fnmatch.fnmatchcase(queue, t.queue)]
    for spec in candidates:
        if spec.job_name == job_name:
            return spec
    for spec in candidates:
        if spec.job_name is None:
            return spec
    return None


def task_specs() -> list[TaskSpec]:
    return list(_tasks)


def schedules() -> list[ScheduleSpec]:
    return list(_schedules.values())


def static_queues() -> list[str]:
    """Every queue with a handler whose name is not a pattern, with the highest concurrency declared."""
    return sorted({t.queue for t in _tasks if not any(c in t.queue for c in "*?[")})


def queue_concurrency(queue: str) -> int:
    return max((t.concurrency for t in _tasks if t.queue == queue), default=1)


_loaded = False


def load_all_tasks() -> None:
    """Import every ``cerniq.<feature>.tasks`` module so their declarations run."""
    global _loaded
    if _loaded:
        return
    import cerniq

    for module in pkgutil.iter_modules(cerniq.__path__):
        if not module.ispkg:
            continue
        name = f"cerniq.{module.name}.tasks"
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    _loaded = True
