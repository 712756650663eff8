"""The warm-email send job (``q:email:warm``, job ``send``, id ``warm-<row id>``): Resend.

Only for leads that replied (WARM_REPLY, NEGOTIATION); any other lead is refused with
``LEAD_NOT_WARM`` and nothing reaches Resend, so a cold lead is never mailed from our main
domain. The job re-checks the row (QUEUED), the emergency stop, opt-out and takeover and the
suppression list just before the call. The email has an html and a text body and the tags
``lead_id``, ``tenant_id`` and ``message_id``; the ``Idempotency-Key`` is
``send/email_warm/<row id>`` and the body is frozen in the row (``raw_request``) on the first
attempt, so a retry after a lost answer is the same request and Resend delivers it once.
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bullmq import UnrecoverableError
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.config import get_settings
from cerniq.email import repository, suppression, vendors
from cerniq.email.config import email_settings
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.kit.ids import idempotency_key
from cerniq.kit.metrics import MESSAGES_SENT, SEND_FAILURES
from cerniq.logging import get_logger
from cerniq.messaging.service import automation_block_reason
from cerniq.models import GoldCommunicationLog, GoldLeadJourney
from cerniq.models.enums import Channel, LeadState, MessageStatus
from cerniq.ops import alerts
from cerniq.ops.system_state import emergency_stop
from cerniq.providers.errors import (
    AmbiguousProviderError,
    AuthProviderError,
    PermanentProviderError,
    TransientProviderError,
)
from cerniq.sequences import engine as sequences
from cerniq.templates.service import Outcome, record_message_outcome
from cerniq.worker.registry import JobContext

__all__ = ["WARM_STATES", "build_email", "html_body", "mark_sent", "resend_key", "warm_send_job"]

log = get_logger("cerniq.email.warm")

WARM_STATES = (LeadState.WARM_REPLY, LeadState.NEGOTIATION)
DONE = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.READ,
    MessageStatus.OPENED,
    MessageStatus.CLICKED,
    MessageStatus.REPLIED,
    MessageStatus.FAILED,
    MessageStatus.SKIPPED,
    MessageStatus.BOUNCED,
)
AUTH_WAIT = timedelta(minutes=15)


def resend_key(message_id: uuid.UUID) -> str:
    """``send/email_warm/<row id>``: one logical send, reused by every retry."""
    return idempotency_key("send/email_warm", message_id)


def html_body(text: str) -> str:
    """The text as simple HTML: paragraphs on blank lines, line breaks kept, everything escaped."""
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    inner = "".join("<p>" + html.escape(p).replace("\n", "<br>\n") + "</p>\n" for p in paragraphs)
    return f'<!doctype html>\n<html lang="ro"><body>\n{inner}</body></html>\n'


def build_email(message: GoldCommunicationLog, journey: GoldLeadJourney, subject: str) -> dict[str, Any]:
    """The Resend request body of a warm row."""
    settings = get_settings()
    text = message.content_rendered or message.content
    email: dict[str, Any] = {
        "from": settings.resend_from,
        "to": [message.email or journey.email],
        "subject": subject,
        "html": html_body(text),
        "text": text,
        "tags": [
            {"name": "lead_id", "value": str(journey.id)},
            {"name": "tenant_id", "value": str(message.tenant_id)},
            {"name": "message_id", "value": str(message.id)},
        ],
        "headers": {"X-Entity-Ref-ID": str(message.id)},
    }
    if settings.resend_reply_to:
        email["reply_to"] = settings.resend_reply_to
    return email


async def warm_send_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Handler of ``send`` jobs on ``q:email:warm``."""
    message_id = uuid.UUID(str(data["messageId"]))
    prepared = await _prepare(ctx, message_id)
    if not isinstance(prepared, Ready):
        return prepared
    email = prepared.email
    try:
        email_id = await vendors.resend().send_email(email, idempotency_key=resend_key(message_id))
    except AmbiguousProviderError as exc:
        SEND_FAILURES.labels(channel="EMAIL_WARM", kind="ambiguous").inc()
        tries = await _status(message_id, MessageStatus.AMBIGUOUS, "AMBIGUOUS", str(exc))
        # The retry repeats the same key and body: Resend sends at most once.
        settings = email_settings()
        if tries <= settings.email_ambiguous_retries:
            await ctx.delay_until(utcnow() + settings.email_retry_delay * 2 ** min(tries - 1, 6))
        raise
    except TransientProviderError as exc:
        SEND_FAILURES.labels(channel="EMAIL_WARM", kind="transient").inc()
        final = ctx.is_last_attempt and not exc.retry_after
        await _status(
            message_id, MessageStatus.FAILED if final else MessageStatus.QUEUED, "VENDOR_TRANSIENT", str(exc)
        )
        if exc.retry_after and not ctx.is_last_attempt:
            await ctx.delay_until(utcnow() + timedelta(seconds=exc.retry_after))
        raise
    except AuthProviderError as exc:
        SEND_FAILURES.labels(channel="EMAIL_WARM", kind="auth").inc()
        await _status(message_id, MessageStatus.QUEUED, "VENDOR_AUTH", str(exc))
        async with transaction() as session:
            row = await session.get(GoldCommunicationLog, message_id)
            await alerts.trigger(
                session,
                "resend:auth",
                tenant_id=row.tenant_id if row else None,
                message=f"Resend refused the send (key or sender domain): {exc.message}",
            )
        await ctx.delay_until(utcnow() + AUTH_WAIT)
        raise AssertionError("unreachable") from None
    except PermanentProviderError as exc:
        SEND_FAILURES.labels(channel="EMAIL_WARM", kind="permanent").inc()
        await _status(message_id, MessageStatus.FAILED, "VENDOR_REJECTED", str(exc))
        raise UnrecoverableError(f"Resend refused the email: {exc}") from exc
    await _record_sent(message_id, email_id)
    MESSAGES_SENT.labels(channel="EMAIL_WARM", type="warm").inc()
    return {"outcome": "sent", "emailId": email_id}


@dataclass(frozen=True)
class Ready:
    """The frozen request body of a row that may be sent now."""

    email: dict[str, Any]


async def _prepare(ctx: JobContext, message_id: uuid.UUID) -> Ready | dict[str, Any]:
    """The frozen request body, or ``{"outcome": ...}`` when nothing is to be sent."""
    now = utcnow()
    async with transaction() as session:
        message = await repository.lock_message(session, message_id)
        if message is None:
            return {"outcome": "missing"}
        if message.status in DONE:
            return {"outcome": f"already-{message.status.value.lower()}"}
        if message.channel != Channel.EMAIL_WARM:
            return _end(message, MessageStatus.SKIPPED, "WRONG_CHANNEL")
        journey = await session.get(GoldLeadJourney, message.lead_journey_id)
        if journey is None:
            return _end(message, MessageStatus.SKIPPED, "LEAD_GONE")
        if await emergency_stop(session) is not None:
            return _end(message, MessageStatus.SKIPPED, "EMERGENCY_STOP")
        block = automation_block_reason(journey, Channel.EMAIL_WARM, message.origin)
        if block is not None:
            return _end(message, MessageStatus.SKIPPED, block)
        if journey.current_state not in WARM_STATES:
            return _end(
                message,
                MessageStatus.FAILED,
                "LEAD_NOT_WARM",
                f"warm email (Resend) is only for leads in WARM_REPLY or NEGOTIATION; this lead is "
                f"{journey.current_state.value}",
            )
        address = message.email or journey.email
        if not address:
            return _end(message, MessageStatus.FAILED, "NO_EMAIL_ROUTE")
        if await suppression.suppressed(session, message.tenant_id, address) is not None:
            return _end(message, MessageStatus.SKIPPED, "SUPPRESSED")
        frozen = message.raw_request if isinstance(message.raw_request, dict) else None
        if frozen and frozen.get("to"):
            email = dict(frozen)
        else:
            subject = await _subject(session, journey, message)
            message.email = address
            message.subject = subject
            email = build_email(message, journey, subject)
            message.raw_request = email
        message.status = MessageStatus.SENDING
        message.status_updated_at = now
        message.retry_count += 1  # vendor calls made for this row
        message.idempotency_key = message.idempotency_key or resend_key(message.id)
        return Ready(email)


def _end(
    message: GoldCommunicationLog, status: MessageStatus, code: str, text: str | None = None
) -> dict[str, Any]:
    message.status = status
    message.error_code = code
    message.error_message = text
    message.status_updated_at = utcnow()
    outcome = "failed" if status == MessageStatus.FAILED else "skipped"
    return {"outcome": outcome, "reason": code}


async def _subject(session: AsyncSession, journey: GoldLeadJourney, message: GoldCommunicationLog) -> str:
    if message.subject and message.subject.strip():
        return message.subject.strip()
    from cerniq.reviews.service import email_subject

    return await email_subject(session, journey, None)


async def _status(message_id: uuid.UUID, status: MessageStatus, code: str, error: str) -> int:
    """Set the row's status; returns how many vendor calls were made for it."""
    async with transaction() as session:
        row = await repository.lock_message(session, message_id)
        if row is None or row.status in DONE:
            return 0
        row.status = status
        row.status_updated_at = utcnow()
        row.error_code = code
        row.error_message = error[:500]
        return row.retry_count


async def _record_sent(message_id: uuid.UUID, email_id: str) -> None:
    async with transaction() as session:
        row = await repository.lock_message(session, message_id)
        if row is None or row.status in DONE:
            return
        await mark_sent(session, row, email_id)


async def mark_sent(session: AsyncSession, row: GoldCommunicationLog, email_id: str) -> None:
    """Resend accepted the row's email (the send job, or a webhook that overtook it)."""
    now = utcnow()
    if row.status != MessageStatus.SENT:
        await record_message_outcome(session, row, Outcome.SENT)
    row.status = MessageStatus.SENT
    row.status_updated_at = now
    row.sent_at = row.sent_at or now
    row.external_message_id = email_id
    row.error_code = None
    row.error_message = None
    row.raw_response = {"id": email_id}
    journey = await repository.lock_journey(session, row.lead_journey_id)
    if journey is None:
        return
    journey.last_contact_at = now
    journey.last_channel_used = Channel.EMAIL_WARM
    journey.messages_sent += 1
    if row.enrollment_id is not None:
        await sequences.after_send(
            session, journey, enrollment_id=row.enrollment_id, step_number=row.sequence_step, sent_at=now
        )
