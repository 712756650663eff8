"""Console: queue health, the dead-letter list, one queue's failed jobs, and the queue actions.

Reads and actions go through :mod:`cerniq.ops.queue_admin`, the service behind
``/api/admin/queues`` and ``/api/admin/dlq``, with the same roles and the same audit rows:
retrying is for operators, pausing, resuming and draining for admins.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import Principal
from cerniq.console import web
from cerniq.console.content_forms import page_of
from cerniq.console.i18n import add_strings
from cerniq.errors import CerniqError, NotFound, ValidationFailed
from cerniq.kit.db import transaction
from cerniq.models.enums import Role
from cerniq.ops import queue_admin

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 25
DLQ_SHOWN = 50

add_strings(
    {
        "q_queue": {"ro": "Coadă", "en": "Queue"},
        "q_waiting": {"ro": "În așteptare", "en": "Waiting"},
        "q_active": {"ro": "Active", "en": "Active"},
        "q_delayed": {"ro": "Amânate", "en": "Delayed"},
        "q_failed": {"ro": "Eșuate", "en": "Failed"},
        "q_completed": {"ro": "Finalizate", "en": "Completed"},
        "q_paused": {"ro": "În pauză", "en": "Paused"},
        "q_running": {"ro": "Rulează", "en": "Running"},
        "q_no_queues": {"ro": "Nicio coadă.", "en": "No queues."},
        "q_retry": {"ro": "Reîncearcă", "en": "Retry"},
        "q_retry_all_failed": {"ro": "Reîncearcă toate eșuatele", "en": "Retry all failed"},
        "q_failed_jobs": {"ro": "Joburi eșuate", "en": "Failed jobs"},
        "q_no_failed": {"ro": "Niciun job eșuat.", "en": "No failed jobs."},
        "q_job": {"ro": "Job", "en": "Job"},
        "q_reason": {"ro": "Motivul eșecului", "en": "Failure reason"},
        "q_attempts": {"ro": "Încercări", "en": "Attempts"},
        "q_failed_at": {"ro": "Eșuat la", "en": "Failed at"},
        "q_stacktrace": {"ro": "Stiva de apeluri", "en": "Stack trace"},
        "q_data": {"ro": "Date", "en": "Data"},
        "q_stuck": {"ro": "Joburi blocate (active > 5 min)", "en": "Stuck jobs (active > 5 min)"},
        "q_drain": {"ro": "Golește coada", "en": "Drain the queue"},
        "q_drain_hint": {
            "ro": "Șterge toate joburile în așteptare; mesajele lor sunt anulate, "
            "iar lead-urile revin la dispecerizare.",
            "en": "Removes every waiting job; their messages are cancelled "
            "and the leads go back to dispatch.",
        },
        "q_drain_delayed": {"ro": "Și joburile amânate", "en": "Delayed jobs too"},
        "q_drain_confirm": {
            "ro": "Confirm că șterg joburile în așteptare",
            "en": "I confirm removing the waiting jobs",
        },
        "q_dlq": {"ro": "Eșecuri definitive (DLQ)", "en": "Final failures (DLQ)"},
        "q_dlq_empty": {"ro": "Lista DLQ e goală.", "en": "The DLQ is empty."},
        "q_dlq_retry_all": {"ro": "Reîncearcă toate intrările DLQ", "en": "Retry every DLQ entry"},
        "q_entries": {"ro": "intrări", "en": "entries"},
        "q_back": {"ro": "Înapoi la cozi", "en": "Back to queues"},
    }
)


def _moment(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def queue_href(name: str) -> str:
    return "/console/queues/" + quote(name, safe=":")


async def _audit(
    session: AsyncSession,
    request: Request,
    principal: Principal,
    action: str,
    queue: str,
    *,
    after: dict[str, Any],
    reason: str | None = None,
) -> None:
    """The audit row the JSON API writes for the same action."""
    request_id = getattr(request.state, "request_id", None)
    await queue_admin.audit(
        session, principal, action, queue, after=after, reason=reason, request_id=request_id
    )


@router.get("/queues")
async def queues_page(request: Request) -> Response:
    found = await web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    async with transaction() as session:
        health = await queue_admin.health(session, principal.tenant_id)
    dlq = await queue_admin.dlq_entries(DLQ_SHOWN, 0)
    rows = [{"name": name, "href": queue_href(name), **counts} for name, counts in health["queues"].items()]
    return await web.render(request, "queues.html", principal, csrf, queues=rows, dlq=dlq)


@router.post("/dlq/retry")
async def dlq_retry(request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)

    async def work(session: AsyncSession) -> None:
        if form.get("all") == "1":
            results = [r.as_dict() for r in await queue_admin.dlq_retry_all()]
        else:
            try:
                index = int(form.get("index", ""))
            except ValueError:
                raise ValidationFailed("choose the DLQ entry to retry") from None
            if index < 0:
                raise ValidationFailed("choose the DLQ entry to retry")
            results = [(await queue_admin.dlq_retry(index)).as_dict()]
        await _audit(
            session,
            request,
            principal,
            "dlq.retry",
            "dlq:outreach",
            after={"count": len(results)},
        )

    return await web.act("/console/queues", work)


@router.post("/queues/{name:path}/jobs/{job_id}/retry")
async def retry_job(name: str, job_id: str, request: Request) -> Response:
    principal, _ = await web.guard(request, Role.OPERATOR)

    async def work(session: AsyncSession) -> None:
        queue = await queue_admin.require_queue(session, name, principal.tenant_id)
        result = await queue_admin.retry_job(queue, job_id)
        await _audit(session, request, principal, "queue.retry_job", queue, after=result)

    return await web.act(queue_href(name), work)


@router.post("/queues/{name:path}/{verb}")
async def queue_action(name: str, verb: str, request: Request) -> Response:
    """``retry-failed`` (operator), ``pause``, ``resume`` and ``drain`` (admin)."""
    needed = Role.OPERATOR if verb == "retry-failed" else Role.ADMIN
    principal, form = await web.guard(request, needed)

    async def work(session: AsyncSession) -> None:
        queue = await queue_admin.require_queue(session, name, principal.tenant_id)
        if verb == "retry-failed":
            result = await queue_admin.retry_failed(queue)
            await _audit(session, request, principal, "queue.retry_failed", queue, after=result)
        elif verb in ("pause", "resume"):
            result = await queue_admin.set_paused(queue, verb == "pause")
            await _audit(session, request, principal, f"queue.{verb}", queue, after=result)
        elif verb == "drain":
            if form.get("confirm") != "yes":
                raise ValidationFailed("tick the confirmation to drain the queue")
            result = await queue_admin.drain(session, queue, delayed=form.get("delayed") == "1")
            reason = form.get("reason", "").strip() or None
            await _audit(session, request, principal, "queue.drain", queue, after=result, reason=reason)
        else:
            raise NotFound(f"no queue action {verb!r}")

    return await web.act(web.safe_next(form.get("next"), queue_href(name)), work)


@router.get("/queues/{name:path}")
async def queue_page(name: str, request: Request) -> Response:
    found = await web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    page = page_of(request.query_params.get("page"))
    try:
        async with transaction() as session:
            name = await queue_admin.require_queue(session, name, principal.tenant_id)
    except CerniqError as exc:
        return web.redirect("/console/queues", error=web.error_text(exc))
    summary = await queue_admin.queue_summary(name)
    failed = await queue_admin.list_jobs(name, "failed", limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    for job in failed:
        job["failedAt"] = _moment(job["finishedOn"] or job["processedOn"] or job["timestamp"])
    total = int(summary["failed"])
    pages = max(1, -(-total // PAGE_SIZE))
    return await web.render(
        request,
        "queue.html",
        principal,
        csrf,
        queue=summary,
        href=queue_href(name),
        failed=failed,
        page=page,
        pages=pages,
    )
