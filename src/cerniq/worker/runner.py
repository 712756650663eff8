"""The worker process: consumes queues, runs the scheduler, owns phone queues through leases.

* Static queues (dispatch, webhooks, email, monitors, ...) get one BullMQ Worker each.
* Phone queues ``q:wa:phone_NN`` are consumed one at a time across every process and host:
  a process serves a phone queue only while it holds the queue's lease in Redis (renewed every
  few seconds, expiring after ``LEASE_TTL``), with BullMQ global concurrency 1 as a backstop. A
  phone whose owner dies is taken over when the lease expires. New phones (even ones inserted
  with SQL) are picked up on the next lease round, without a restart.
* Cron schedules are upserted as BullMQ job schedulers: one job per tick whatever the number of
  workers.
* SIGTERM stops fetching, lets in-flight jobs finish for ``grace`` seconds, then force-closes;
  jobs still active are returned to the queue by the stalled-job check of the next worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from bullmq import DelayedError, UnrecoverableError, Worker

from cerniq.config import Settings, get_settings
from cerniq.kit.metrics import JOB_SECONDS
from cerniq.kit.redis import get_queue_redis
from cerniq.logging import get_logger
from cerniq.worker import dlq, registry
from cerniq.worker.names import PHONE_QUEUE_PREFIX
from cerniq.worker.queues import get_queue, make_worker

LEASE_TTL_MS = 15000
LEASE_ROUND_S = 3.0
LOOPS_STOP_S = 5.0  # how long stop() lets a lease round under way finish
HEARTBEAT_TTL_S = 30
WORKERS_KEY = "cerniq:workers"
PHONE_WORKERS_KEY = "cerniq:phone-workers"
PRESENCE_TTL_S = 10

PhoneQueueSource = Callable[[], Awaitable[list[str]]]
_phone_queue_source: PhoneQueueSource | None = None

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def set_phone_queue_source(source: PhoneQueueSource) -> None:
    """Register the function listing the phone queues that should be served (from the database)."""
    global _phone_queue_source
    _phone_queue_source = source


def lease_key(queue_name: str) -> str:
    return f"cerniq:lease:{queue_name}"


def build_processor(queue_name: str, settings: Settings) -> Callable[[Any, str], Awaitable[Any]]:
    """Wrap the registered handlers of ``queue_name``: logging, metrics and the dead-letter list."""
    log = get_logger("cerniq.worker")

    async def process(job: Any, token: str) -> Any:
        spec = registry.find_handler(queue_name, job.name)
        if spec is None:
            raise UnrecoverableError(f"no handler for job {job.name!r} on queue {queue_name!r}")
        bound = log.bind(queue=queue_name, job=job.id, job_name=job.name)
        ctx = registry.JobContext(job=job, token=token, queue_name=queue_name, settings=settings, log=bound)
        started = time.perf_counter()
        status = "completed"
        with structlog.contextvars.bound_contextvars(job=job.id, queue=queue_name):
            try:
                return await spec.handler(ctx, dict(job.data or {}))
            except DelayedError:
                status = "delayed"
                raise
            except Exception as exc:
                status = "failed"
                final = isinstance(exc, UnrecoverableError) or ctx.is_last_attempt
                bound.warning(
                    "job.failed",
                    error=type(exc).__name__,
                    message=str(exc)[:500],
                    final=final,
                    attempt=ctx.attempt,
                )
                if final:
                    try:
                        await dlq.push(
                            queue=queue_name,
                            job_id=str(job.id),
                            name=str(job.name),
                            reason=f"{type(exc).__name__}: {exc}",
                            attempts=ctx.attempt,
                            data=dict(job.data or {}),
                        )
                    except Exception:
                        bound.error("dlq.push_failed", trace=traceback.format_exc()[-2000:])
                raise
            finally:
                JOB_SECONDS.labels(queue=_metric_queue(queue_name), status=status).observe(
                    time.perf_counter() - started
                )

    return process


def _metric_queue(queue_name: str) -> str:
    return "q:wa:phone" if queue_name.startswith(PHONE_QUEUE_PREFIX) else queue_name


class WorkerProcess:
    """One worker process. ``queues`` limits what it consumes (None: everything)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        queues: list[str] | None = None,
        serve_phones: bool = True,
        run_scheduler: bool = True,
        grace_seconds: float = 25.0,
        lock_duration_ms: int = 30000,
        stalled_interval_ms: int = 30000,
    ) -> None:
        self.settings = settings or get_settings()
        self.only = set(queues) if queues else None
        self.serve_phones = serve_phones and (
            self.only is None or any(q.startswith(PHONE_QUEUE_PREFIX) or q == "phones" for q in self.only)
        )
        self.run_scheduler = run_scheduler
        self.grace_seconds = grace_seconds
        self.lock_duration_ms = lock_duration_ms
        self.stalled_interval_ms = stalled_interval_ms
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.workers: dict[str, Worker] = {}
        self.phone_workers: dict[str, Worker] = {}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.log = get_logger("cerniq.worker").bind(worker=self.id)

    def _wanted(self, queue: str) -> bool:
        return self.only is None or queue in self.only

    async def start(self) -> None:
        registry.load_all_tasks()
        for queue in registry.static_queues():
            if not self._wanted(queue):
                continue
            self.workers[queue] = self._make(queue, registry.queue_concurrency(queue))
        if self.run_scheduler:
            await self.upsert_schedules()
        self._tasks.append(asyncio.create_task(self._heartbeat_loop()))
        if self.serve_phones:
            await self._lease_round()
            self._tasks.append(asyncio.create_task(self._lease_loop()))
        self.log.info("worker.started", queues=sorted(self.workers), phones=sorted(self.phone_workers))

    def _make(self, queue: str, concurrency: int) -> Worker:
        worker = make_worker(
            queue,
            build_processor(queue, self.settings),
            concurrency=concurrency,
            settings=self.settings,
            lock_duration_ms=self.lock_duration_ms,
            stalled_interval_ms=self.stalled_interval_ms,
        )
        worker.on("error", lambda err, *_: self.log.warning("bullmq.error", queue=queue, error=str(err)))
        return worker

    async def upsert_schedules(self) -> None:
        for spec in registry.schedules():
            if not self._wanted(spec.queue):
                continue
            repeat: dict[str, Any] = {"pattern": spec.pattern}
            repeat["tz"] = spec.tz or self.settings.timezone
            await get_queue(spec.queue, self.settings).upsertJobScheduler(
                spec.scheduler_id, repeat, spec.job_name, spec.data
            )

    async def _lease_loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=LEASE_ROUND_S)
            if self._stop.is_set():
                break
            try:
                await self._lease_round()
            except Exception as exc:
                self.log.warning("lease.round_failed", error=str(exc))

    async def _lease_round(self) -> None:
        if _phone_queue_source is None:
            return
        wanted = [
            q
            for q in await _phone_queue_source()
            if self._wanted(q) or self.only is None or "phones" in (self.only or set())
        ]
        redis = get_queue_redis(self.settings)
        # A process told which phone queues to serve (``--queues q:wa:phone_01,...``) takes them
        # all; processes serving "every phone" share the phones out evenly among themselves.
        shared = self.only is None or "phones" in self.only
        share = await self._fair_share(len(wanted)) if shared else len(wanted)
        for queue in wanted:
            key = lease_key(queue)
            if queue in self.phone_workers:
                renewed = await redis.eval(_RENEW, 1, key, self.id, LEASE_TTL_MS)
                if not renewed:
                    self.log.warning("lease.lost", queue=queue)
                    worker = self.phone_workers.pop(queue)
                    await worker.close(force=True)
                continue
            if len(self.phone_workers) >= share:
                continue  # leave it to another worker process: phones are shared out evenly
            acquired = await redis.set(key, self.id, nx=True, px=LEASE_TTL_MS)
            if acquired:
                await get_queue(queue, self.settings).setGlobalConcurrency(1)
                self.phone_workers[queue] = self._make(queue, 1)
                self.log.info("lease.acquired", queue=queue)
        surplus = [q for q in self.phone_workers if q not in wanted]
        kept = sorted((q for q in self.phone_workers if q in wanted), key=lambda q: (len(q), q))
        surplus += kept[share:]  # another process joined: hand over what is above our share
        for queue in surplus:
            worker = self.phone_workers.pop(queue)
            await worker.close()  # finishes the job in flight first
            await redis.eval(_RELEASE, 1, lease_key(queue), self.id)
            if queue in wanted:
                self.log.info("lease.handed_over", queue=queue, share=share)

    async def _fair_share(self, phones: int) -> int:
        """How many phone queues this process may hold: an even share among the live processes
        that serve phones (each announces itself every lease round, expiring after PRESENCE_TTL_S)."""
        redis = get_queue_redis(self.settings)
        await redis.set(f"{PHONE_WORKERS_KEY}:{self.id}", 1, ex=PRESENCE_TTL_S)
        others = [k for k in await redis.keys(f"{PHONE_WORKERS_KEY}:*") if not k.endswith(self.id)]
        return max(1, math.ceil(phones / (len(others) + 1))) if phones else 0

    async def _heartbeat_loop(self) -> None:
        redis = get_queue_redis(self.settings)
        while not self._stop.is_set():
            try:
                key = f"{WORKERS_KEY}:{self.id}"
                await redis.hset(
                    key,
                    mapping={
                        "id": self.id,
                        "host": socket.gethostname(),
                        "pid": os.getpid(),
                        "queues": ",".join(sorted(self.workers)),
                        "phones": ",".join(sorted(self.phone_workers)),
                        "beat_at": int(time.time()),
                    },
                )
                await redis.expire(key, HEARTBEAT_TTL_S)
            except Exception as exc:
                self.log.warning("heartbeat.failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=5)

    def request_stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        """Stop fetching, let in-flight jobs finish within the grace period, release the leases."""
        self._stop.set()
        # The lease and heartbeat loops end at their next look at the stop flag. A lease round
        # under way finishes first (for a few seconds at most, out of the grace period), so a
        # phone worker it starts is closed below and its lease released, not left to expire.
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=min(self.grace_seconds, LOOPS_STOP_S))
            for task in late:
                task.cancel()
        workers = list(self.workers.values()) + list(self.phone_workers.values())
        try:
            await asyncio.wait_for(
                asyncio.gather(*(w.close() for w in workers), return_exceptions=True),
                timeout=self.grace_seconds,
            )
        except TimeoutError:
            self.log.warning("worker.grace_expired")
            await asyncio.gather(*(w.close(force=True) for w in workers), return_exceptions=True)
        redis = get_queue_redis(self.settings)
        for queue in list(self.phone_workers):
            try:
                await redis.eval(_RELEASE, 1, lease_key(queue), self.id)
            except Exception:  # noqa: S110 - the lease expires on its own
                pass
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await redis.delete(f"{WORKERS_KEY}:{self.id}", f"{PHONE_WORKERS_KEY}:{self.id}")
        except Exception:  # noqa: S110
            pass
        self.workers.clear()
        self.phone_workers.clear()
        self.log.info("worker.stopped")


async def run_worker(settings: Settings | None = None, **kwargs: Any) -> None:
    """Run a worker process until SIGTERM or SIGINT."""
    process = WorkerProcess(settings, **kwargs)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, process.request_stop)
    await process.start()
    await process.wait()
    await process.stop()
