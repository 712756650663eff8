"""Webhook ingest and processing (DESIGN §9 "webhooks").

Ingest (the HTTP request) does as little as possible and loses nothing: authenticate, store
the raw delivery in ``webhook_events`` (deduplicated on the vendor's event identity), commit,
enqueue ``wh-<row id>`` on ``webhook:{provider}:ingest`` and answer 200. A body that is not JSON
or not of a known shape is stored too, QUARANTINED with the reason, and still answered 200 so
the vendor stops retrying. Only a forged delivery (401) or an oversized body (413) is refused.

Processing (the job) locks the row, runs its source's ``process`` and records the outcome:
PROCESSED, IGNORED, or QUARANTINED (an operator looks at ``cerniq webhooks quarantine`` and
replays once the cause is fixed). A sweeper re-enqueues RECEIVED rows whose job was lost, and
a retention job prunes old payloads while keeping the rows (so redeliveries stay no-ops).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import Request
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import Principal
from cerniq.auth.service import record_audit
from cerniq.errors import CerniqError, Conflict, NotFound, ServiceUnavailable, ValidationFailed
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.kit.ids import job_id
from cerniq.kit.metrics import WEBHOOKS_RECEIVED
from cerniq.logging import get_logger, mask_phone
from cerniq.models import WebhookEvent
from cerniq.models.enums import Channel, Direction, WebhookStatus
from cerniq.phones import service as phones
from cerniq.replies import service as replies
from cerniq.webhooks import registry, repository
from cerniq.webhooks.normalize import EventKind, InboundEvent
from cerniq.webhooks.registry import Ignore, Quarantine
from cerniq.worker.enqueue import enqueue
from cerniq.worker.queues import get_queue

__all__ = [
    "MAX_BODY_BYTES",
    "TIMELINESAI_EVENTS",
    "IngestResult",
    "PayloadTooLarge",
    "apply_event",
    "ingest",
    "ingest_queue",
    "process_event",
    "prune_payloads",
    "register_timelinesai",
    "replay",
    "safe_headers",
    "sweep",
    "timelinesai_url",
]

log = get_logger("cerniq.webhooks")

MAX_BODY_BYTES = 1_000_000
PROCESS_ATTEMPTS = 5
PROCESS_BACKOFF = {"type": "exponential", "delay": 5000}
#: A RECEIVED row whose job is gone is re-enqueued after this long; after this many failed
#: attempts it is quarantined instead (a poison event must not loop forever).
SWEEP_AFTER = timedelta(seconds=60)
SWEEP_MAX_ATTEMPTS = 10
LIVE_JOB_STATES = {"waiting", "active", "delayed", "prioritized", "waiting-children", "paused"}
#: Header names never stored (plus anything that looks like a credential, see :func:`safe_headers`).
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-webhook-secret"}
)
_SECRET_WORDS = ("secret", "token", "password", "signature", "auth", "api-key", "apikey")
#: What ``cerniq webhooks register`` subscribes (providers.md §1.5).
TIMELINESAI_EVENTS = (
    "message:received:new",
    "message:sent:new",
    "whatsapp:account:connected",
    "whatsapp:account:disconnected",
    "whatsapp:account:suspended",
    "whatsapp:account:resumed",
)


class PayloadTooLarge(CerniqError):
    status_code = 413
    code = "PAYLOAD_TOO_LARGE"


@dataclass(frozen=True)
class IngestResult:
    event_id: uuid.UUID | None
    duplicate: bool
    status: WebhookStatus

    def body(self) -> dict[str, Any]:
        return {"received": True, "duplicate": self.duplicate}


def ingest_queue(provider: str) -> str:
    """``webhook:{provider}:ingest``."""
    return f"webhook:{provider}:ingest"


def safe_headers(headers: Any, source: registry.WebhookSource | None) -> dict[str, str]:
    """The request headers worth keeping for debugging, without credentials."""
    extra = source.secret_headers if source is not None else frozenset()
    kept: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in SECRET_HEADERS or key in extra or any(word in key for word in _SECRET_WORDS):
            continue
        kept[key] = value[:500]
    return kept


def _parse(raw: bytes) -> tuple[dict[str, Any], str | None]:
    """The JSON object of ``raw``, or ``({"raw": text}, error)`` when it is not one."""
    text = raw.decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except ValueError as exc:
        return {"raw": text}, f"malformed JSON: {exc}"
    if not isinstance(body, dict):
        return {"raw": body}, f"the body is a JSON {type(body).__name__}, not an object"
    return body, None


def _guess_type(payload: dict[str, Any]) -> str | None:
    for key in ("event_type", "type", "event"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value[:200]
    return None


async def ingest(provider: str, request: Request) -> IngestResult:
    """Store one delivery of ``provider`` and queue its processing (see the module docstring).

    Raises Unauthorized (401) for a forged delivery and PayloadTooLarge (413) for an oversized
    body; everything else is stored and answered 200.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        WEBHOOKS_RECEIVED.labels(provider=provider, outcome="too_large").inc()
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        WEBHOOKS_RECEIVED.labels(provider=provider, outcome="too_large").inc()
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")

    source = registry.get_source(provider)
    tenant_id: uuid.UUID | None = None
    error: str | None = None
    if source is not None:
        try:
            tenant_id = await registry.authenticate(source, request, raw)
        except CerniqError:
            WEBHOOKS_RECEIVED.labels(provider=provider, outcome="unauthorized").inc()
            raise
        except Exception as exc:  # a bug in a source must not lose the delivery
            log.exception("webhooks.authenticate_failed", provider=provider)
            error = f"authentication failed: {type(exc).__name__}: {exc}"

    payload, parse_error = _parse(raw)
    error = error or parse_error
    event_type: str | None = None
    event_key: str | None = None
    if error is None and source is None:
        error = "no processor"
    if error is None and source is not None:
        try:
            event_type = source.event_type(payload) or None
        except Exception as exc:
            error = f"unknown shape: {exc}"
        if error is None:
            try:
                event_key = source.event_key(payload, {k.lower(): v for k, v in request.headers.items()})
            except Exception as exc:
                error = f"unknown shape: {_short(exc)}"
    event_type = event_type or _guess_type(payload)
    if not event_key:
        event_key = "sha256:" + hashlib.sha256(raw).hexdigest()
    status = WebhookStatus.QUARANTINED if error else WebhookStatus.RECEIVED
    try:
        async with transaction() as session:
            event_id = await repository.insert_event(
                session,
                provider=provider,
                event_key=event_key[:500],
                event_type=event_type,
                tenant_id=tenant_id,
                payload=payload,
                headers=safe_headers(request.headers, source),
                status=status,
                error=error[:2000] if error else None,
            )
    except (OperationalError, DBAPIError, OSError) as exc:
        # Not stored: answer 503 so the vendor retries later (it keeps the event meanwhile).
        WEBHOOKS_RECEIVED.labels(provider=provider, outcome="unavailable").inc()
        log.error("webhooks.store_failed", provider=provider, error=str(exc)[:300])
        raise ServiceUnavailable("the webhook could not be stored; retry later") from exc
    duplicate = event_id is None
    outcome = "duplicate" if duplicate else ("quarantined" if error else "accepted")
    WEBHOOKS_RECEIVED.labels(provider=provider, outcome=outcome).inc()
    if error and not duplicate:
        log.warning("webhooks.quarantined", provider=provider, event_id=str(event_id), error=error[:200])
    if event_id is not None and status == WebhookStatus.RECEIVED:
        await _enqueue_quietly(provider, event_id)
    return IngestResult(event_id=event_id, duplicate=duplicate, status=status)


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:500]


async def _enqueue_quietly(provider: str, event_id: uuid.UUID) -> None:
    """Queue the processing job; if Redis is down the row stays RECEIVED and the sweeper queues
    it later, so the vendor still gets its 200."""
    try:
        await enqueue(
            ingest_queue(provider),
            "process",
            {"eventId": str(event_id), "provider": provider},
            job_id=job_id("wh", event_id),
            attempts=PROCESS_ATTEMPTS,
            backoff=PROCESS_BACKOFF,
        )
    except Exception as exc:
        log.warning(
            "webhooks.enqueue_failed", provider=provider, event_id=str(event_id), error=str(exc)[:300]
        )


# --- processing ---------------------------------------------------------------------------------


def _mark(session: AsyncSession) -> tuple[int, list[Any] | None, int]:
    callbacks = session.info.get("cerniq_after_commit", [])
    pending = session.info.get("cerniq_pending_jobs")
    return len(callbacks), pending, len(pending) if pending is not None else 0


def _rewind(session: AsyncSession, mark: tuple[int, list[Any] | None, int]) -> None:
    """Drop the after-commit work registered since ``mark`` (its savepoint was rolled back)."""
    callbacks, pending, count = mark
    if "cerniq_after_commit" in session.info:
        del session.info["cerniq_after_commit"][callbacks:]
    if pending is None:
        session.info.pop("cerniq_pending_jobs", None)
    else:
        del pending[count:]


async def process_event(event_id: uuid.UUID, *, final_attempt: bool = True) -> str:
    """Process one stored event with its source; returns the outcome (``processed``,
    ``ignored``, ``quarantined``, ``already-<status>``, ``missing``).

    An unexpected error rolls everything back and is raised (the job retries); on the final
    attempt the event is quarantined with the error first, so it is never silently lost.
    """
    try:
        async with transaction() as session:
            row = await repository.lock_event(session, event_id)
            if row is None:
                return "missing"
            if row.status != WebhookStatus.RECEIVED:
                return f"already-{row.status.value.lower()}"
            row.attempts += 1
            source = registry.get_source(row.provider)
            if source is None:
                _finish(row, WebhookStatus.QUARANTINED, "no processor")
                return "quarantined"
            if row.payload == repository.PRUNED:
                _finish(row, WebhookStatus.QUARANTINED, "payload pruned")
                return "quarantined"
            mark = _mark(session)
            try:
                async with session.begin_nested():
                    await source.process(session, row)
            except Quarantine as exc:
                _rewind(session, mark)
                await session.refresh(row)
                _finish(row, WebhookStatus.QUARANTINED, str(exc) or "quarantined")
                log.warning(
                    "webhooks.quarantined", provider=row.provider, event_id=str(row.id), error=str(exc)
                )
                return "quarantined"
            except Ignore as exc:
                _rewind(session, mark)
                await session.refresh(row)
                _finish(row, WebhookStatus.IGNORED, str(exc) or None)
                return "ignored"
            _finish(row, WebhookStatus.PROCESSED, None)
            return "processed"
    except Exception as exc:
        status = WebhookStatus.QUARANTINED if final_attempt else WebhookStatus.RECEIVED
        async with transaction() as session:
            await repository.set_outcome(
                session, event_id, status, error=f"{type(exc).__name__}: {_short(exc)}", attempts_increment=1
            )
        raise


def _finish(row: WebhookEvent, status: WebhookStatus, error: str | None) -> None:
    row.status = status
    row.error = error[:2000] if error else None
    row.processed_at = utcnow()


async def apply_event(session: AsyncSession, row: WebhookEvent, event: InboundEvent) -> None:
    """Act on a normalised WhatsApp event (the TimelinesAI source's ``process``)."""
    if row.tenant_id is None:
        raise Quarantine("the tenant of this event is unknown")
    if event.kind == EventKind.MESSAGE_RECEIVED:
        await _message_received(session, row, event)
    elif event.kind == EventKind.MESSAGE_SENT:
        await _message_sent(session, row, event)
    elif event.kind in (EventKind.ACCOUNT_CONNECTED, EventKind.ACCOUNT_DISCONNECTED):
        await _account_event(session, row, event)
    else:
        raise Ignore(f"{event.kind.value} events need no action here")


async def _find_lead(
    session: AsyncSession, tenant_id: uuid.UUID, event: InboundEvent, phone_id: str | None
) -> Any:
    journey = None
    if event.chat_id:
        journey = await repository.journey_by_chat(session, tenant_id, event.chat_id)
    if journey is None and event.contact_phone:
        journey = await repository.journey_by_mobile(session, tenant_id, event.contact_phone, phone_id)
    return journey


async def _message_received(session: AsyncSession, row: WebhookEvent, event: InboundEvent) -> None:
    assert row.tenant_id is not None
    if event.is_group:
        raise Ignore("group chat message")
    if not event.external_message_id:
        raise Quarantine("the message has no message_uid")
    phone = (
        await repository.phone_by_number(session, row.tenant_id, event.account_phone)
        if event.account_phone
        else None
    )
    journey = await _find_lead(session, row.tenant_id, event, phone.id if phone else None)
    if journey is None:
        raise Quarantine(f"no matching lead (chat {event.chat_id}, from {mask_phone(event.sender_phone)})")
    row.lead_journey_id = journey.id
    message_part = row.payload.get("message")
    await replies.record_inbound(
        session,
        journey,
        channel=Channel.WHATSAPP,
        external_message_id=event.external_message_id,
        text=event.text or "",
        received_at=event.timestamp,
        thread_id=event.chat_id,
        phone=phone,
        phone_number=event.sender_phone,
        payload=message_part if isinstance(message_part, dict) else None,
    )


async def _message_sent(session: AsyncSession, row: WebhookEvent, event: InboundEvent) -> None:
    assert row.tenant_id is not None
    uid = event.external_message_id
    if not uid:
        raise Quarantine("the message has no message_uid")
    ours = await repository.message_by_external_id(session, row.tenant_id, uid, Direction.OUTBOUND)
    if ours is not None:
        row.lead_journey_id = ours.lead_journey_id
        if event.chat_id:
            await repository.fill_thread(session, ours.id, event.chat_id)
            await repository.fill_journey_chat(session, ours.lead_journey_id, ours.phone_id, event.chat_id)
        return
    if event.sent_through_api:
        # Our own send, not yet recorded (this event usually arrives before the send call
        # returns): the send path records its uid, the delivery poll its chat.
        raise Ignore("sent through the API; recorded by the send path")
    if event.is_group:
        raise Ignore("group chat message")
    phone = (
        await repository.phone_by_number(session, row.tenant_id, event.account_phone)
        if event.account_phone
        else None
    )
    journey = await _find_lead(session, row.tenant_id, event, phone.id if phone else None)
    if journey is None:
        raise Ignore("written from the phone to a number that is not a lead")
    row.lead_journey_id = journey.id
    await replies.record_operator_message(
        session,
        journey,
        external_message_id=uid,
        text=event.text or "",
        sent_at=event.timestamp,
        thread_id=event.chat_id,
        phone=phone,
        phone_number=event.recipient_phone,
    )


async def _account_event(session: AsyncSession, row: WebhookEvent, event: InboundEvent) -> None:
    assert row.tenant_id is not None
    if not event.account_phone:
        raise Quarantine("the account event has no phone")
    handler = _health_handler()
    if handler is not None:
        kwargs: dict[str, Any] = {
            "account_phone": event.account_phone,
            "event_type": event.vendor_event_type,
            "payload": row.payload,
        }
        if "tenant_id" in inspect.signature(handler).parameters:
            kwargs["tenant_id"] = row.tenant_id
        note = await handler(session, **kwargs)
        if note in ("unknown_phone", "ignored"):
            raise Ignore(f"account event: {note}")
        return
    phone = await repository.phone_by_number(session, row.tenant_id, event.account_phone)
    if phone is None:
        raise Ignore(f"no phone registered with number {mask_phone(event.account_phone)}")
    if event.kind == EventKind.ACCOUNT_DISCONNECTED:
        await phones.mark_offline(
            session, phone, reason=f"TimelinesAI {event.vendor_event_type}", actor="timelinesai-webhook"
        )
    else:
        await phones.mark_reconnected(session, phone, actor="timelinesai-webhook")


def _health_handler() -> Any:
    """``cerniq.phones.health.handle_account_event`` when that module exists."""
    try:
        module = importlib.import_module("cerniq.phones.health")
    except ModuleNotFoundError as exc:
        if exc.name == "cerniq.phones.health":
            return None
        raise
    return getattr(module, "handle_account_event", None)


# --- sweeper, retention, replay -----------------------------------------------------------------


async def ensure_job(provider: str, event_id: uuid.UUID) -> bool:
    """Make sure a RECEIVED event has a live processing job; True when one had to be added."""
    queue = get_queue(ingest_queue(provider))
    jid = job_id("wh", event_id)
    state = await queue.getJobState(jid)
    if state in LIVE_JOB_STATES:
        return False
    if state != "unknown" or await queue.getJob(jid) is not None:
        await queue.remove(jid)  # finished while the row is still RECEIVED, or an orphan hash
    await enqueue(
        ingest_queue(provider),
        "process",
        {"eventId": str(event_id), "provider": provider},
        job_id=jid,
        attempts=PROCESS_ATTEMPTS,
        backoff=PROCESS_BACKOFF,
    )
    return True


async def sweep(*, older_than: timedelta = SWEEP_AFTER, limit: int = 500) -> dict[str, int]:
    """Re-enqueue RECEIVED events older than ``older_than`` whose job is gone (a crash between
    commit and enqueue, Redis data loss); quarantine those that failed too often."""
    async with transaction() as session:
        rows = await repository.stale_received(session, older_than=utcnow() - older_than, limit=limit)
        poisoned = [r.id for r in rows if r.attempts >= SWEEP_MAX_ATTEMPTS]
        for event_id in poisoned:
            await repository.set_outcome(
                session,
                event_id,
                WebhookStatus.QUARANTINED,
                error=f"gave up after {SWEEP_MAX_ATTEMPTS} attempts",
            )
        pending = [(r.provider, r.id) for r in rows if r.attempts < SWEEP_MAX_ATTEMPTS]
    requeued = 0
    for provider, event_id in pending:
        if await ensure_job(provider, event_id):
            requeued += 1
    if requeued or poisoned:
        log.info("webhooks.swept", requeued=requeued, quarantined=len(poisoned))
    return {"checked": len(pending) + len(poisoned), "requeued": requeued, "quarantined": len(poisoned)}


async def prune_payloads(retention: timedelta, *, batch: int = 1000, max_batches: int = 100) -> int:
    """Replace payloads older than ``retention`` with ``{"pruned": true}`` (rows kept)."""
    cutoff = utcnow() - retention
    total = 0
    for _ in range(max_batches):
        async with transaction() as session:
            count = await repository.prune_payloads(session, older_than=cutoff, limit=batch)
        total += count
        if count < batch:
            break
    if total:
        log.info("webhooks.pruned", events=total)
    return total


async def find_event(session: AsyncSession, ref: str, tenant_id: uuid.UUID | None) -> WebhookEvent:
    """An event by id or unique id prefix (at least 6 characters), tenant-scoped."""
    ref = ref.strip()
    try:
        event = await repository.get_event(session, uuid.UUID(ref), tenant_id)
    except ValueError:
        if len(ref) < 6 or any(c not in "0123456789abcdefABCDEF-" for c in ref):
            raise ValidationFailed("give an event id (or its first 6+ characters)") from None
        matches = await repository.events_by_prefix(session, ref, tenant_id)
        if len(matches) > 1:
            raise ValidationFailed(f"several events start with {ref!r}; give more characters") from None
        event = matches[0] if matches else None
    if event is None:
        raise NotFound(f"webhook event {ref!r} not found")
    return event


async def replay(ref: str, principal: Principal, *, force: bool = False) -> tuple[WebhookEvent, str]:
    """Process a quarantined (or ignored) event again, now, after a fix; audited.

    A PROCESSED event is only replayed with ``force`` (processing is idempotent, but an operator
    should mean it). Returns the event after processing and the outcome.
    """
    async with transaction() as session:
        found = await find_event(session, ref, principal.tenant_id)
        event = await repository.lock_event(session, found.id)
        assert event is not None
        if event.payload == repository.PRUNED:
            raise Conflict(
                "the payload of this event was pruned; it cannot be replayed", code="PAYLOAD_PRUNED"
            )
        if event.status == WebhookStatus.PROCESSED and not force:
            raise Conflict(
                "the event was processed already; use --force to process it again", code="ALREADY_PROCESSED"
            )
        before = {"status": event.status.value, "error": event.error}
        event.status = WebhookStatus.RECEIVED
        event.error = None
        event.processed_at = None
        await record_audit(
            session,
            principal,
            "webhook.replay",
            entity_type="webhook_event",
            entity_id=event.id,
            tenant_id=event.tenant_id or principal.tenant_id,
            before=before,
            after={"status": WebhookStatus.RECEIVED.value},
        )
        event_id, provider = event.id, event.provider
    # The job id must be free for a later sweep, and no stale job may run concurrently.
    try:
        await get_queue(ingest_queue(provider)).remove(job_id("wh", event_id))
    except Exception as exc:
        log.warning("webhooks.replay_job_remove_failed", event_id=str(event_id), error=str(exc)[:200])
    try:
        outcome = await process_event(event_id, final_attempt=True)
    except Exception as exc:
        outcome = f"failed: {type(exc).__name__}"
    async with transaction() as session:
        refreshed = await repository.get_event(session, event_id)
    assert refreshed is not None
    return refreshed, outcome


# --- subscription -------------------------------------------------------------------------------


def timelinesai_url(public_url: str, token: str) -> str:
    """Our TimelinesAI endpoint for a tenant: the secret token is the last path segment."""
    return f"{public_url.rstrip('/')}/api/v1/webhooks/timelinesai/{token}"


async def register_timelinesai(client: Any, url: str) -> list[dict[str, Any]]:
    """Subscribe ``url`` to :data:`TIMELINESAI_EVENTS` in the TimelinesAI workspace; idempotent
    (an enabled subscription is kept, a disabled one is recreated). Returns one row per event
    type: ``{eventType, id, action}`` with action ``kept``, ``created`` or ``recreated``."""
    existing = await client.list_webhooks()
    rows: list[dict[str, Any]] = []
    for event_type in TIMELINESAI_EVENTS:
        mine = [w for w in existing if w.event_type == event_type and w.url == url]
        enabled = next((w for w in mine if w.enabled), None)
        if enabled is not None:
            rows.append({"eventType": event_type, "id": enabled.id, "action": "kept"})
            continue
        for stale in mine:
            await client.delete_webhook(stale.id)
        created = await client.create_webhook(event_type, url)
        rows.append({"eventType": event_type, "id": created.id, "action": "recreated" if mine else "created"})
    return rows
