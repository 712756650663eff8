"""Queue administration (runbook 4) on BullMQ's Redis layout (``bull:<queue>:wait|active|...``).

Counts come straight from Redis in one round trip; job lists, retries, cleaning, draining and
pausing go through the ``bullmq`` Queue API (:func:`cerniq.worker.queues.get_queue`), so the
layout stays exactly BullMQ's and Node tools keep working on it.

Queues are shared infrastructure except the phone queues ``q:wa:phone_NN``, which belong to the
tenant of their phone: another tenant's phone queue is a 404.

Send jobs are safe to retry: their ids are derived from the ``gold_communication_log`` row and
the send path re-checks that row before any vendor call, so a retried job whose message already
went out only notices that and completes.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import Principal
from cerniq.auth.service import record_audit
from cerniq.errors import Conflict, NotFound, ValidationFailed
from cerniq.kit.clock import utcnow
from cerniq.kit.redis import get_queue_redis
from cerniq.models import GoldCommunicationLog, GoldLeadJourney, WaPhoneNumber
from cerniq.models.enums import MessageStatus
from cerniq.phones import repository as phones_repository
from cerniq.worker import dlq, registry
from cerniq.worker.names import (
    DECLARED_QUEUES,
    DLQ_KEY,
    EMAIL_COLD,
    EMAIL_WARM,
    phone_of_queue,
    phone_queue,
)
from cerniq.worker.queues import DEFAULT_JOB_OPTIONS, get_queue

COUNT_FIELDS = ("waiting", "active", "completed", "failed", "delayed", "paused")
STUCK_AFTER_SECONDS = 300
JOB_LIST_STATES = ("waiting", "active", "delayed", "failed", "completed")
CLEANABLE = ("completed", "failed", "delayed", "wait", "active", "prioritized")
LIVE_STATES = {"waiting", "active", "delayed", "prioritized", "waiting-children", "paused"}
# Send queues and the prefix of their job ids (``wa-<row id>``): draining them cancels the rows.
_SEND_JOB_PREFIXES = ("wa-", "warm-", "cold-")


async def queue_names(session: AsyncSession, tenant_id: uuid.UUID | None = None) -> list[str]:
    """The declared queues, any other queue with a consumer, and one queue per registered phone
    (only the phones of ``tenant_id`` when given)."""
    registry.load_all_tasks()
    names = set(DECLARED_QUEUES) | set(registry.static_queues())
    if tenant_id is None:
        phone_ids = await phones_repository.all_phone_ids(session, enabled_only=False)
    else:
        phone_ids = [p.id for p in await phones_repository.list_phones(session, tenant_id)]
    names.update(phone_queue(pid) for pid in phone_ids)
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


async def health(session: AsyncSession, tenant_id: uuid.UUID | None = None) -> dict[str, Any]:
    names = await queue_names(session, tenant_id)
    return {"queues": await counts_many(names)}


# --- one queue -----------------------------------------------------------------------------


async def require_queue(session: AsyncSession, name: str, tenant_id: uuid.UUID) -> str:
    """``name`` if it is a queue the caller may see, else NotFound (404).

    A queue is known when it is declared, has a consumer, belongs to a phone of the caller's
    tenant, or still has data in Redis (e.g. the queue of a phone deleted since)."""
    phone_id = phone_of_queue(name)
    if phone_id is not None:
        phone = await session.get(WaPhoneNumber, phone_id)
        if phone is not None:
            if phone.tenant_id != tenant_id:
                raise NotFound(f"queue {name!r} not found", code="QUEUE_NOT_FOUND")
            return name
    elif name in await queue_names(session, tenant_id):
        return name
    redis = get_queue_redis()
    if await redis.exists(f"bull:{name}:meta", f"bull:{name}:id"):
        return name
    raise NotFound(
        f"queue {name!r} not found",
        code="QUEUE_NOT_FOUND",
        details={"hint": "GET /api/admin/queues/health lists the queues"},
    )


async def queue_summary(name: str) -> dict[str, Any]:
    """``{name, waiting, active, completed, failed, delayed, paused, stuck}`` of one queue."""
    counts = (await counts_many([name]))[name]
    stuck = [j["id"] for j in await list_jobs(name, "active", limit=100) if j["stuck"]]
    return {"name": name, **counts, "isPaused": bool(counts["paused"]), "stuckActive": stuck}


def _ms(value: Any) -> int | None:
    try:
        number = int(value or 0)
    except (TypeError, ValueError):
        return None
    return number or None


def job_view(job: Any, queue_name: str, state: str, now_ms: int | None = None) -> dict[str, Any]:
    """A job as the runbook's jq lines read it: id, data, attempts, failedReason, stacktrace..."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    opts: dict[str, Any] = dict(job.opts or {})
    timestamp = _ms(job.timestamp)
    processed = _ms(job.processedOn)
    delay = _ms(opts.get("delay")) or _ms(job.delay)
    view: dict[str, Any] = {
        "id": str(job.id),
        "name": job.name,
        "queue": queue_name,
        "data": job.data,
        "opts": {
            "attempts": opts.get("attempts"),
            "delay": delay or 0,
            "priority": opts.get("priority") or job.priority or 0,
            "backoff": opts.get("backoff"),
        },
        "attemptsMade": int(job.attemptsMade or 0),
        "failedReason": job.failedReason,
        "stacktrace": list(job.stacktrace or []),
        "timestamp": timestamp,
        "processedOn": processed,
        "finishedOn": _ms(job.finishedOn),
        "delayUntil": (timestamp + delay) if (state == "delayed" and timestamp and delay) else None,
        "state": state,
        "activeForSeconds": None,
        "stuck": False,
    }
    if state == "active" and processed:
        active_for = max(now_ms - processed, 0) / 1000
        view["activeForSeconds"] = round(active_for, 1)
        view["stuck"] = active_for > STUCK_AFTER_SECONDS
    return view


async def list_jobs(name: str, state: str, *, limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
    """Jobs of ``name`` in ``state`` (waiting, active, delayed, failed, completed), oldest first
    for waiting/active/delayed and newest first for failed/completed, as BullMQ lists them."""
    if state not in JOB_LIST_STATES:
        raise ValidationFailed(f"state must be one of {', '.join(JOB_LIST_STATES)}", details={"state": state})
    queue = get_queue(name)
    start, end = offset, offset + limit - 1
    now_ms = int(time.time() * 1000)
    if state == "waiting":
        # one list over the wait list, the prioritized set and BullMQ's legacy paused list
        jobs: list[Any] = []
        skip = offset
        for part in ("waiting", "prioritized", "paused"):
            size = await _part_size(name, part)
            if skip >= size:
                skip -= size
                continue
            want = limit - len(jobs)
            jobs += list(await queue.getJobs([part], skip, skip + want - 1, True))
            skip = 0
            if len(jobs) >= limit:
                break
    else:
        jobs = list(await queue.getJobs([state], start, end, state in ("active", "delayed")))
    return [job_view(job, name, state, now_ms) for job in jobs[:limit]]


async def _part_size(name: str, part: str) -> int:
    redis = get_queue_redis()
    key = f"bull:{name}"
    if part == "prioritized":
        return int(await redis.zcard(f"{key}:prioritized"))
    return int(await redis.llen(f"{key}:{'wait' if part == 'waiting' else part}"))


async def get_job(name: str, job_id: str) -> dict[str, Any]:
    """One job with its state, data, attempts and stacktrace; NotFound if it is gone."""
    queue = get_queue(name)
    job = await queue.getJob(job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} not found in queue {name!r}", code="JOB_NOT_FOUND")
    state = str(await queue.getJobState(job_id))
    if state in ("prioritized", "paused", "wait"):
        state = "waiting"
    return job_view(job, name, state)


async def total_in_state(name: str, state: str) -> int:
    counts = (await counts_many([name]))[name]
    return counts.get(state, 0)


# --- mutations -------------------------------------------------------------------------------

_REQUEUE_ACTIVE = """
-- KEYS: 1 active, 2 wait, 3 prioritized, 4 priority counter, 5 marker, 6 job hash, 7 lock,
--       8 events, 9 meta, 10 stalled
-- ARGV: 1 job id, 2 priority
if redis.call('LREM', KEYS[1], 0, ARGV[1]) == 0 then
  return 0
end
redis.call('DEL', KEYS[7])
redis.call('SREM', KEYS[10], ARGV[1])
local priority = tonumber(ARGV[2]) or 0
if priority > 0 then
  local counter = redis.call('INCR', KEYS[4])
  redis.call('ZADD', KEYS[3], priority * 0x100000000 + counter % 0x100000000, ARGV[1])
else
  redis.call('LPUSH', KEYS[2], ARGV[1])
end
redis.call('HDEL', KEYS[6], 'processedOn', 'finishedOn', 'failedReason')
if redis.call('HEXISTS', KEYS[9], 'paused') == 0 then
  redis.call('ZADD', KEYS[5], 0, '0')
end
redis.call('XADD', KEYS[8], '*', 'event', 'waiting', 'jobId', ARGV[1], 'prev', 'active')
return 1
"""


async def retry_job(name: str, job_id: str, *, force: bool = False) -> dict[str, Any]:
    """Run a job again (runbook 4.1 "single job stuck", 4.2 "retry"), with a fresh set of attempts.

    * failed or completed: moved back to waiting under the same id (BullMQ ``reprocessJob``);
    * delayed: promoted to run now;
    * active: only when stuck (active more than 5 minutes) or ``force``: its lock is dropped and
      it goes back to waiting. A worker that was still on it cannot complete it any more (its
      lock is gone), and the send path's per-row checks make the second run harmless;
    * waiting: nothing to do.
    """
    queue = get_queue(name)
    job = await queue.getJob(job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} not found in queue {name!r}", code="JOB_NOT_FOUND")
    state = str(await queue.getJobState(job_id))
    if state in ("failed", "completed"):
        try:
            await job.retry(state, {"resetAttemptsMade": True, "resetAttemptsStarted": True})
        except Exception as exc:
            raise Conflict(f"job {job_id!r} could not be retried: {exc}", code="JOB_NOT_RETRYABLE") from exc
        return {"queue": name, "jobId": job_id, "retried": True, "from": state, "state": "waiting"}
    if state == "delayed":
        await job.promote()
        return {"queue": name, "jobId": job_id, "retried": True, "from": state, "state": "waiting"}
    if state == "active":
        view = job_view(job, name, "active")
        if not (view["stuck"] or force):
            raise Conflict(
                f"job {job_id!r} is running (for {view['activeForSeconds']} s); only a job active for "
                f"more than {STUCK_AFTER_SECONDS} s is retried, unless forced",
                code="JOB_ACTIVE",
                details={"activeForSeconds": view["activeForSeconds"]},
            )
        key = f"bull:{name}"
        moved = await get_queue_redis().eval(
            _REQUEUE_ACTIVE,
            10,
            f"{key}:active",
            f"{key}:wait",
            f"{key}:prioritized",
            f"{key}:pc",
            f"{key}:marker",
            f"{key}:{job_id}",
            f"{key}:{job_id}:lock",
            f"{key}:events",
            f"{key}:meta",
            f"{key}:stalled",
            job_id,
            int(view["opts"]["priority"] or 0),
        )
        if not moved:
            raise Conflict(f"job {job_id!r} left the active list meanwhile", code="JOB_STATE_CHANGED")
        return {"queue": name, "jobId": job_id, "retried": True, "from": state, "state": "waiting"}
    return {"queue": name, "jobId": job_id, "retried": False, "from": state, "state": "waiting"}


async def retry_failed(name: str, *, batch: int = 500) -> dict[str, Any]:
    """Move every failed job of ``name`` back to waiting (fresh attempts, priorities kept)."""
    queue = get_queue(name)
    retried = 0
    errors: list[str] = []
    seen: set[str] = set()
    while True:
        jobs = [j for j in await queue.getJobs(["failed"], 0, batch - 1, False) if str(j.id) not in seen]
        if not jobs:
            break
        for job in jobs:
            seen.add(str(job.id))
            try:
                await job.retry("failed", {"resetAttemptsMade": True, "resetAttemptsStarted": True})
                retried += 1
            except Exception as exc:
                errors.append(f"{job.id}: {exc}")
    return {"queue": name, "retried": retried, "errors": errors[:20]}


async def clean(name: str, state: str, *, age_seconds: int, limit: int = 0) -> dict[str, Any]:
    """Remove ``state`` jobs (completed, failed, ...) older than ``age_seconds``."""
    if state not in CLEANABLE:
        raise ValidationFailed(f"state must be one of {', '.join(CLEANABLE)}", details={"state": state})
    if age_seconds < 0:
        raise ValidationFailed("age must be >= 0 seconds", details={"age": age_seconds})
    removed = await get_queue(name).clean(age_seconds * 1000, limit, state)
    return {"queue": name, "state": state, "removed": len(removed or []), "olderThanSeconds": age_seconds}


async def clean_everywhere(
    session: AsyncSession, tenant_id: uuid.UUID, state: str, *, age_seconds: int
) -> dict[str, Any]:
    """Clean ``state`` jobs older than ``age_seconds`` in every queue (runbook 10.1 step 3)."""
    per_queue: dict[str, int] = {}
    for name in await queue_names(session, tenant_id):
        result = await clean(name, state, age_seconds=age_seconds)
        if result["removed"]:
            per_queue[name] = int(result["removed"])
    return {
        "state": state,
        "removed": sum(per_queue.values()),
        "olderThanSeconds": age_seconds,
        "queues": per_queue,
    }


async def _waiting_ids(name: str, *, delayed: bool) -> list[str]:
    redis = get_queue_redis()
    key = f"bull:{name}"
    pipe = redis.pipeline(transaction=False)
    pipe.lrange(f"{key}:wait", 0, -1)
    pipe.zrange(f"{key}:prioritized", 0, -1)
    pipe.lrange(f"{key}:paused", 0, -1)
    if delayed:
        pipe.zrange(f"{key}:delayed", 0, -1)
    ids: list[str] = []
    for part in await pipe.execute():
        ids.extend(str(i) for i in part)
    return ids


async def drain(session: AsyncSession, name: str, *, delayed: bool = False) -> dict[str, Any]:
    """Remove every waiting job of ``name`` (and the delayed ones with ``delayed``); active,
    failed and completed jobs stay. Returns the count removed.

    On a send queue the drained jobs' messages are cancelled: rows still QUEUED become SKIPPED
    (``QUEUE_DRAINED``) so the outbox relay does not re-create their jobs, and their leads are
    due again, so the next dispatch decides afresh (another phone, or later)."""
    before = await _waiting_ids(name, delayed=delayed)
    await get_queue(name).drain(delayed)
    after = set(await _waiting_ids(name, delayed=delayed))
    removed = [i for i in before if i not in after]
    cancelled = 0
    if removed and (phone_of_queue(name) is not None or name in (EMAIL_COLD, EMAIL_WARM)):
        cancelled = await _cancel_rows(session, removed)
    return {
        "queue": name,
        "removed": len(removed),
        "delayedIncluded": delayed,
        "messagesCancelled": cancelled,
    }


async def _cancel_rows(session: AsyncSession, job_ids: list[str]) -> int:
    message_ids: list[uuid.UUID] = []
    for job_id in job_ids:
        for prefix in _SEND_JOB_PREFIXES:
            if job_id.startswith(prefix):
                try:
                    message_ids.append(uuid.UUID(job_id[len(prefix) :]))
                except ValueError:
                    pass
    if not message_ids:
        return 0
    now = utcnow()
    rows = await session.execute(
        update(GoldCommunicationLog)
        .where(GoldCommunicationLog.id.in_(message_ids), GoldCommunicationLog.status == MessageStatus.QUEUED)
        .values(status=MessageStatus.SKIPPED, error_code="QUEUE_DRAINED", status_updated_at=now)
        .returning(GoldCommunicationLog.lead_journey_id)
    )
    journeys = {r[0] for r in rows}
    if journeys:
        await session.execute(
            update(GoldLeadJourney)
            .where(
                GoldLeadJourney.id.in_(journeys),
                GoldLeadJourney.next_action_at.is_(None),
                GoldLeadJourney.is_human_controlled.is_(False),
            )
            .values(next_action_at=now)
        )
    return len(journeys)


async def set_paused(name: str, paused: bool) -> dict[str, Any]:
    queue = get_queue(name)
    if paused:
        await queue.pause()
    else:
        await queue.resume()
    return {"queue": name, "paused": bool(await queue.isPaused())}


async def failed_everywhere(
    session: AsyncSession, tenant_id: uuid.UUID, *, limit: int = 100
) -> list[dict[str, Any]]:
    """Failed jobs of every queue (``limit`` per queue), newest first, each with its queue."""
    names = await queue_names(session, tenant_id)
    counts = await counts_many(names)
    out: list[dict[str, Any]] = []
    for name in names:
        if counts[name]["failed"]:
            out.extend(await list_jobs(name, "failed", limit=limit))
    out.sort(key=lambda j: j["finishedOn"] or 0, reverse=True)
    return out


# --- the dead-letter list bull:dlq:outreach ----------------------------------------------------


@dataclass
class DlqRetry:
    index: int
    queue: str | None
    job_id: str | None
    outcome: str  # requeued | retried | already-queued | unreadable

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "queue": self.queue, "jobId": self.job_id, "outcome": self.outcome}


async def dlq_entries(limit: int = 50, offset: int = 0) -> dict[str, Any]:
    return {"total": await dlq.length(), "entries": await dlq.entries(limit, offset)}


async def _retry_entry(index: int, raw: str) -> DlqRetry:
    try:
        entry = json.loads(raw)
        queue_name = str(entry["queue"])
        job_id = str(entry["jobId"])
        name = str(entry.get("name") or "job")
        data = dict(entry.get("data") or {})
    except (ValueError, KeyError, TypeError):
        return DlqRetry(index, None, None, "unreadable")
    queue = get_queue(queue_name)
    state = str(await queue.getJobState(job_id))
    if state in LIVE_STATES:
        outcome = "already-queued"
    elif state == "failed":
        job = await queue.getJob(job_id)
        assert job is not None
        await job.retry("failed", {"resetAttemptsMade": True, "resetAttemptsStarted": True})
        outcome = "retried"
    else:
        if state != "unknown" or await queue.getJob(job_id) is not None:
            await queue.remove(job_id)
        await queue.add(name, data, {**DEFAULT_JOB_OPTIONS, "jobId": job_id})
        outcome = "requeued"
    await dlq.remove(raw)
    return DlqRetry(index, queue_name, job_id, outcome)


async def dlq_retry(index: int) -> DlqRetry:
    """Put the job of DLQ entry ``index`` (0 = newest) back on its queue under its original id
    and drop the entry. A job still failed in its queue is retried in place (keeping its
    options); one already removed is added again with the default options."""
    raw = await get_queue_redis().lindex(DLQ_KEY, index)
    if raw is None:
        raise NotFound(f"no DLQ entry at index {index}", code="DLQ_ENTRY_NOT_FOUND")
    return await _retry_entry(index, str(raw))


async def dlq_retry_all(limit: int = 10000) -> list[DlqRetry]:
    raws = await get_queue_redis().lrange(DLQ_KEY, 0, limit - 1)
    return [await _retry_entry(i, str(raw)) for i, raw in enumerate(raws)]


async def dlq_trim(keep: int) -> dict[str, Any]:
    if keep < 0:
        raise ValidationFailed("keep must be >= 0", details={"keep": keep})
    removed = await dlq.trim(keep)
    return {"kept": min(keep, await dlq.length()), "removed": removed}


async def audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    queue: str,
    *,
    after: dict[str, Any],
    reason: str | None = None,
    request_id: str | None = None,
) -> None:
    """The audit row of an operator's action on a queue (or the DLQ), from the API or the console."""
    await record_audit(
        session,
        principal,
        action,
        entity_type="queue",
        entity_id=queue,
        reason=reason,
        after=after,
        request_id=request_id,
    )
