"""``/api/admin/queues/...`` (runbook 4) and ``/api/admin/dlq``: inspect and repair the queues.

Queue names contain ``:`` (``q:wa:phone_01``, ``outreach:orchestrator:dispatch``), so they are
matched as paths; the fixed routes (``/health``, ``/failed``, ``/clean-completed``) come first.
Lists are JSON arrays (the runbook pipes them to ``jq 'length'`` and ``jq '.[0]'``); the total
behind a truncated list is in the ``X-Total-Count`` header.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Request, Response

from cerniq.auth.dependencies import Admin, Operator, Session, Viewer
from cerniq.auth.principal import Principal
from cerniq.kit.metrics import register_refresher
from cerniq.ops import gauges, queue_admin

router = APIRouter(tags=["queues"])
register_refresher(gauges.refresh)

PREFIX = "/api/admin/queues"


async def _audit(
    session: Session,
    request: Request,
    principal: Principal,
    action: str,
    name: str,
    *,
    after: dict[str, Any],
    reason: str | None = None,
) -> None:
    request_id = getattr(request.state, "request_id", None)
    await queue_admin.audit(
        session, principal, action, name, after=after, reason=reason, request_id=request_id
    )


# --- fixed routes (before the {name:path} ones) --------------------------------------------


@router.get(f"{PREFIX}/failed")
async def failed_everywhere(
    principal: Viewer,
    session: Session,
    limit: int = Query(100, ge=1, le=1000, description="Failed jobs listed per queue"),
) -> list[dict[str, Any]]:
    """Failed jobs of every queue, newest first: `[{id, queue, name, failedReason, attemptsMade, ...}]`."""
    return await queue_admin.failed_everywhere(session, principal.tenant_id, limit=limit)


@router.post(f"{PREFIX}/clean-completed")
async def clean_completed(
    request: Request,
    principal: Admin,
    session: Session,
    maxAge: int = Query(604800, ge=0, description="Remove completed jobs older than this many seconds"),
) -> dict[str, Any]:
    """Remove completed jobs older than `maxAge` seconds from every queue (runbook 10.1)."""
    result = await queue_admin.clean_everywhere(session, principal.tenant_id, "completed", age_seconds=maxAge)
    await _audit(session, request, principal, "queue.clean_completed", "*", after=result)
    return result


# --- one queue -------------------------------------------------------------------------------


async def _jobs(
    name: str, state: str, principal: Principal, session: Session, response: Response, limit: int, offset: int
) -> list[dict[str, Any]]:
    name = await queue_admin.require_queue(session, name, principal.tenant_id)
    jobs = await queue_admin.list_jobs(name, state, limit=limit, offset=offset)
    response.headers["X-Total-Count"] = str(await queue_admin.total_in_state(name, state))
    return jobs


@router.get(PREFIX + "/{name:path}/waiting")
async def waiting_jobs(
    name: str,
    principal: Viewer,
    session: Session,
    response: Response,
    limit: int = Query(1000, ge=1, le=10000),
    offset: int = Query(0, ge=0),
) -> list[dict[str, Any]]:
    """Jobs waiting to run, in the order they will run."""
    return await _jobs(name, "waiting", principal, session, response, limit, offset)


@router.get(PREFIX + "/{name:path}/active")
async def active_jobs(
    name: str,
    principal: Viewer,
    session: Session,
    response: Response,
    limit: int = Query(1000, ge=1, le=10000),
    offset: int = Query(0, ge=0),
) -> list[dict[str, Any]]:
    """Jobs running now, with `activeForSeconds` and `stuck` (active more than 5 minutes)."""
    return await _jobs(name, "active", principal, session, response, limit, offset)


@router.get(PREFIX + "/{name:path}/delayed")
async def delayed_jobs(
    name: str,
    principal: Viewer,
    session: Session,
    response: Response,
    limit: int = Query(1000, ge=1, le=10000),
    offset: int = Query(0, ge=0),
) -> list[dict[str, Any]]:
    """Jobs waiting for a time (`delayUntil`, ms since the epoch)."""
    return await _jobs(name, "delayed", principal, session, response, limit, offset)


@router.get(PREFIX + "/{name:path}/failed")
async def failed_jobs(
    name: str,
    principal: Viewer,
    session: Session,
    response: Response,
    limit: int = Query(50, ge=1, le=10000),
    offset: int = Query(0, ge=0),
) -> list[dict[str, Any]]:
    """Failed jobs, newest first, each with `failedReason` and `stacktrace`."""
    return await _jobs(name, "failed", principal, session, response, limit, offset)


@router.get(PREFIX + "/{name:path}/completed")
async def completed_jobs(
    name: str,
    principal: Viewer,
    session: Session,
    response: Response,
    limit: int = Query(50, ge=1, le=10000),
    offset: int = Query(0, ge=0),
) -> list[dict[str, Any]]:
    """Completed jobs, newest first."""
    return await _jobs(name, "completed", principal, session, response, limit, offset)


@router.get(PREFIX + "/{name:path}/jobs/{job_id}")
async def get_job(name: str, job_id: str, principal: Viewer, session: Session) -> dict[str, Any]:
    """One job: data, opts (attempts, delay, priority), attemptsMade, failedReason, stacktrace, state."""
    name = await queue_admin.require_queue(session, name, principal.tenant_id)
    return await queue_admin.get_job(name, job_id)


@router.post(PREFIX + "/{name:path}/jobs/{job_id}/retry")
async def retry_job(
    name: str,
    job_id: str,
    request: Request,
    principal: Operator,
    session: Session,
    force: bool = Query(False, description="Also requeue an active job that is not stuck yet"),
) -> dict[str, Any]:
    """Run a failed, completed, delayed or stuck (active > 5 min) job again, with fresh attempts."""
    name = await queue_admin.require_queue(session, name, principal.tenant_id)
    result = await queue_admin.retry_job(name, job_id, force=force)
    await _audit(session, request, principal, "queue.retry_job", name, after=result)
    return result


@router.post(PREFIX + "/{name:path}/retry-failed")
async def retry_failed(name: str, request: Request, principal: Operator, session: Session) -> dict[str, Any]:
    """Move every failed job back to waiting (runbook 4.2 step 4): `{"retried": n}`."""
    name = await queue_admin.require_queue(session, name, principal.tenant_id)
    result = await queue_admin.retry_failed(name)
    await _audit(session, request, principal, "queue.retry_failed", name, after=result)
    return result


@router.post(PREFIX + "/{name:path}/clean-failed")
async def clean_failed(
    name: str,
    request: Request,
    principal: Admin,
    session: Session,
    age: int = Query(86400, ge=0, description="Remove failed jobs older than this many seconds"),
) -> dict[str, Any]:
    """Remove failed jobs older than `age` seconds (runbook 4.2 step 5): `{"removed": n}`."""
    name = await queue_admin.require_queue(session, name, principal.tenant_id)
    result = await queue_admin.clean(name, "failed", age_seconds=age)
    await _audit(session, request, principal, "queue.clean_failed", name, after=result)
    return result


@router.post(PREFIX + "/{name:path}/clean")
async def clean(
    name: str,
    request: Request,
    principal: Admin,
    session: Session,
    state: str = Query("completed", description="completed, failed, delayed, wait, active or prioritized"),
    age: int = Query(86400, ge=0, description="Remove jobs older than this many seconds"),
) -> dict[str, Any]:
    """Remove jobs of one state older than `age` seconds: `{"removed": n}`."""
    name = await queue_admin.require_queue(session, name, principal.tenant_id)
    result = await queue_admin.clean(name, state, age_seconds=age)
    await _audit(session, request, principal, "queue.clean", name, after=result)
    return result


@router.post(PREFIX + "/{name:path}/drain")
async def drain(
    name: str,
    request: Request,
    principal: Admin,
    session: Session,
    delayed: bool = Query(False, description="Also remove delayed jobs"),
    body: dict[str, Any] | None = Body(None),
) -> dict[str, Any]:
    """Remove every waiting job (runbook 4.1, "lost cause"): `{"removed": n}`.

    On a send queue the drained messages are cancelled (SKIPPED, `QUEUE_DRAINED`) and their leads
    are due again for the next dispatch. The runbook's curl sends no body; the CLI asks first."""
    name = await queue_admin.require_queue(session, name, principal.tenant_id)
    reason = str(body.get("reason")) if body and body.get("reason") else None
    result = await queue_admin.drain(session, name, delayed=delayed)
    await _audit(session, request, principal, "queue.drain", name, after=result, reason=reason)
    return result


@router.post(PREFIX + "/{name:path}/pause")
async def pause(name: str, request: Request, principal: Admin, session: Session) -> dict[str, Any]:
    """Stop workers taking new jobs from this queue (running jobs finish): `{"paused": true}`."""
    name = await queue_admin.require_queue(session, name, principal.tenant_id)
    result = await queue_admin.set_paused(name, True)
    await _audit(session, request, principal, "queue.pause", name, after=result)
    return result


@router.post(PREFIX + "/{name:path}/resume")
async def resume(name: str, request: Request, principal: Admin, session: Session) -> dict[str, Any]:
    """Let workers take jobs from this queue again: `{"paused": false}`."""
    name = await queue_admin.require_queue(session, name, principal.tenant_id)
    result = await queue_admin.set_paused(name, False)
    await _audit(session, request, principal, "queue.resume", name, after=result)
    return result


@router.get(PREFIX + "/{name:path}")
async def show_queue(name: str, principal: Viewer, session: Session) -> dict[str, Any]:
    """`{name, waiting, active, completed, failed, delayed, paused, isPaused, stuckActive}`."""
    name = await queue_admin.require_queue(session, name, principal.tenant_id)
    return await queue_admin.queue_summary(name)


# --- the dead-letter list ----------------------------------------------------------------------


@router.get("/api/admin/dlq")
async def dlq_list(
    principal: Viewer,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    """Final failures in `bull:dlq:outreach`, newest first: `{"total", "entries": [{index, queue,
    jobId, name, failedReason, attemptsMade, data, failedAt}]}`."""
    del principal
    return await queue_admin.dlq_entries(limit, offset)


@router.post("/api/admin/dlq/retry")
async def dlq_retry(
    request: Request,
    principal: Operator,
    session: Session,
    index: int | None = Query(None, ge=0, description="The entry to retry (0 = newest)"),
    all: bool = Query(False, description="Retry every entry"),
) -> dict[str, Any]:
    """Put DLQ entries' jobs back on their queues under their original ids."""
    if all:
        results = [r.as_dict() for r in await queue_admin.dlq_retry_all()]
    elif index is not None:
        results = [(await queue_admin.dlq_retry(index)).as_dict()]
    else:
        from cerniq.errors import ValidationFailed

        raise ValidationFailed("give ?index=N or ?all=true")
    result = {"retried": results}
    await _audit(session, request, principal, "dlq.retry", "dlq:outreach", after={"count": len(results)})
    return result


@router.post("/api/admin/dlq/trim")
async def dlq_trim(
    request: Request,
    principal: Admin,
    session: Session,
    keep: int = Query(1000, ge=0, description="Entries to keep (the newest)"),
) -> dict[str, Any]:
    """Keep the newest `keep` entries (runbook 10.1 step 4): `{"removed": n}`."""
    result = await queue_admin.dlq_trim(keep)
    await _audit(session, request, principal, "dlq.trim", "dlq:outreach", after=result)
    return result
