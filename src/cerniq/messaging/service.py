"""Creating outbound messages. Every feature that sends (dispatch, sequences, AI answers, review
approvals, operators) goes through :func:`queue_message`: it writes the QUEUED row and, once the
transaction commits, puts one job on the channel's queue under an id derived from the row."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Required, TypedDict, Unpack

from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.errors import Conflict, ValidationFailed
from cerniq.kit.ids import idempotency_key, job_id
from cerniq.kit.redis import get_redis
from cerniq.messaging import repository
from cerniq.models import GoldCommunicationLog, GoldLeadJourney
from cerniq.models.enums import Channel, Direction, LeadState, MessageStatus
from cerniq.quota.guardian import QuotaGuardian
from cerniq.worker import names
from cerniq.worker.enqueue import JobRequest, enqueue_after_commit

# Origins: who wants the message sent. Automation and AI answers stop under takeover; operators don't.
AUTOMATION = "AUTOMATION"
AI = "AI"
OPERATOR = "OPERATOR"
REVIEW = "REVIEW"
TEST = "TEST"
AUTOMATED_ORIGINS = (AUTOMATION, AI)

SEND_ATTEMPTS = 6
SEND_BACKOFF = {"type": "exponential", "delay": 10000}
NEW_CONTACT_PRIORITY = 5  # BullMQ serves un-prioritized jobs (follow-ups) before prioritized ones


def whatsapp_job(message: GoldCommunicationLog, *, new_contact: bool) -> JobRequest:
    """The job of a WhatsApp row: queue of its phone, id ``wa-<row id>``."""
    if message.phone_id is None:
        raise ValueError("a WhatsApp message needs a phone")
    return _whatsapp_request(
        message.id, message.tenant_id, message.phone_id, message.scheduled_at, new_contact=new_contact
    )


def email_job(message: GoldCommunicationLog) -> JobRequest:
    """The job of an email row: ``q:email:warm|cold``, id ``warm-<row id>`` / ``cold-<row id>``."""
    return _email_request(message.id, message.tenant_id, message.channel, message.scheduled_at)


def job_for_values(values: Mapping[str, Any], *, new_contact: bool = False) -> JobRequest:
    """:func:`job_for` of a row not loaded as an object: the values :func:`outbound_values` made."""
    if values["channel"] == Channel.WHATSAPP:
        if values.get("phone_id") is None:
            raise ValueError("a WhatsApp message needs a phone")
        return _whatsapp_request(
            values["id"],
            values["tenant_id"],
            values["phone_id"],
            values.get("scheduled_at"),
            new_contact=new_contact,
        )
    return _email_request(values["id"], values["tenant_id"], values["channel"], values.get("scheduled_at"))


def _whatsapp_request(
    row_id: uuid.UUID, tenant_id: uuid.UUID, phone_id: str, run_at: datetime | None, *, new_contact: bool
) -> JobRequest:
    return JobRequest(
        queue=names.phone_queue(phone_id),
        name="send",
        data={"messageId": str(row_id), "tenantId": str(tenant_id)},
        job_id=job_id("wa", row_id),
        priority=NEW_CONTACT_PRIORITY if new_contact else None,
        attempts=SEND_ATTEMPTS,
        backoff=SEND_BACKOFF,
        run_at=run_at,
    )


def _email_request(
    row_id: uuid.UUID, tenant_id: uuid.UUID, channel: Channel, run_at: datetime | None
) -> JobRequest:
    warm = channel == Channel.EMAIL_WARM
    return JobRequest(
        queue=names.EMAIL_WARM if warm else names.EMAIL_COLD,
        name="send",
        data={"messageId": str(row_id), "tenantId": str(tenant_id)},
        job_id=job_id("warm" if warm else "cold", row_id),
        attempts=SEND_ATTEMPTS,
        backoff=SEND_BACKOFF,
        run_at=run_at,
    )


def job_for(message: GoldCommunicationLog, *, new_contact: bool = False) -> JobRequest:
    if message.channel == Channel.WHATSAPP:
        return whatsapp_job(message, new_contact=new_contact)
    return email_job(message)


def enqueue_message_after_commit(
    session: AsyncSession, message: GoldCommunicationLog, *, new_contact: bool = False
) -> None:
    request = job_for(message, new_contact=new_contact)
    enqueue_after_commit(
        session,
        request.queue,
        request.name,
        request.data,
        job_id=request.job_id,
        priority=request.priority,
        attempts=request.attempts,
        backoff=request.backoff,
        run_at=request.run_at,
    )


def automation_block_reason(journey: GoldLeadJourney, channel: Channel, origin: str) -> str | None:
    """Why this lead may not get this message now, or None. Opt-outs bind everyone; takeover
    binds automation and AI answers, not the operator who took over."""
    if channel == Channel.WHATSAPP and journey.whatsapp_opted_out:
        return "OPTED_OUT"
    if channel in (Channel.EMAIL_COLD, Channel.EMAIL_WARM) and journey.email_opted_out:
        return "OPTED_OUT"
    if origin in AUTOMATED_ORIGINS:
        if journey.is_human_controlled:
            return "HUMAN_TAKEOVER"
        if journey.current_state in (LeadState.DEAD, LeadState.CONVERTED, LeadState.PAUSED):
            return f"LEAD_{journey.current_state.value}"
    return None


class OutboundMessage(TypedDict, total=False):
    """What a caller gives for one outbound message (:func:`queue_message`)."""

    channel: Required[Channel]
    content: Required[str]
    origin: Required[str]
    subject: str | None
    content_rendered: str | None
    phone_id: str | None
    template_id: uuid.UUID | None
    template_version_id: uuid.UUID | None
    sequence_id: uuid.UUID | None
    sequence_step: int | None
    enrollment_id: uuid.UUID | None
    email_campaign_id: uuid.UUID | None
    is_ai_generated: bool
    scheduled_at: datetime | None
    created_by: str | None
    message_id: uuid.UUID | None
    extra: dict[str, Any] | None


# Columns taken as given (None when not given).
_AS_GIVEN = (
    "subject",
    "template_id",
    "template_version_id",
    "sequence_id",
    "sequence_step",
    "enrollment_id",
    "email_campaign_id",
    "scheduled_at",
    "created_by",
)


def outbound_values(journey: GoldLeadJourney, **message: Unpack[OutboundMessage]) -> dict[str, Any]:
    """The column values of the QUEUED outbound row :func:`queue_message` writes, after its
    checks (same exceptions); for callers that insert many rows in one statement."""
    channel, content, origin = message["channel"], message["content"], message["origin"]
    content_rendered = message.get("content_rendered")
    reason = automation_block_reason(journey, channel, origin)
    if reason is not None:
        raise Conflict(f"the lead cannot receive this message: {reason}", code=reason)
    if not (content_rendered or content).strip():
        raise ValidationFailed("the message is empty")
    row_id = message.get("message_id") or uuid.uuid4()
    values: dict[str, Any] = {
        "id": row_id,
        "tenant_id": journey.tenant_id,
        "lead_journey_id": journey.id,
        "channel": channel,
        "direction": Direction.OUTBOUND,
        "status": MessageStatus.QUEUED,
        "origin": origin,
        "content": content,
        "content_rendered": content_rendered or content,
        **{name: message.get(name) for name in _AS_GIVEN},
        "is_ai_generated": message.get("is_ai_generated", False),
        "quota_cost": 0,
    }
    if channel == Channel.WHATSAPP:
        if not journey.mobile_e164 or journey.whatsapp_invalid:
            raise ValidationFailed("the lead has no usable WhatsApp number", code="NO_WHATSAPP_ROUTE")
        phone = message.get("phone_id") or journey.assigned_phone_id
        if phone is None:
            raise ValidationFailed("the lead has no phone assigned", code="NO_PHONE_ASSIGNED")
        values.update(
            phone_id=phone, phone_number=journey.mobile_e164, idempotency_key=idempotency_key("wa", row_id)
        )
        if journey.wa_chat_id:
            values["thread_id"] = journey.wa_chat_id
    else:
        if not journey.email:
            raise ValidationFailed("the lead has no email address", code="NO_EMAIL_ROUTE")
        values.update(email=journey.email, idempotency_key=idempotency_key(channel.value.lower(), row_id))
    extra = message.get("extra")
    if extra:
        values.update(extra)
    return values


async def queue_message(
    session: AsyncSession,
    journey: GoldLeadJourney,
    *,
    new_contact: bool = False,
    flush: bool = True,
    **message: Unpack[OutboundMessage],
) -> GoldCommunicationLog:
    """Write a QUEUED outbound row and enqueue its send job after commit.

    Raises Conflict when the lead may not receive it (opt-out, takeover for automated origins) and
    ValidationFailed when the channel has no route (no mobile number, no phone, no email).
    ``flush=False`` leaves the INSERT to the caller's next flush (dispatch writes a batch at once).
    """
    row = GoldCommunicationLog(**outbound_values(journey, **message))
    session.add(row)
    if flush:
        await session.flush()
    enqueue_message_after_commit(session, row, new_contact=new_contact)
    return row


async def remaining_quota(session: AsyncSession, limits: dict[str, int], day: date) -> dict[str, int]:
    """New contacts each phone (id -> daily limit) may still be promised on business day
    ``day``: its limit, less what Redis counts as spent, less the QUEUED new contacts not yet
    reserved.

    A send job reserves in Redis first and commits its row as SENDING after, so a row can be
    QUEUED in PostgreSQL and already counted in Redis: those rows are counted once. PostgreSQL is
    read before Redis: a row no longer QUEUED there was reserved before that read began, so the
    later Redis read holds it (nothing falls between the two reads)."""
    promised = await repository.queued_new_contacts(session, list(limits))
    used, reserved = await QuotaGuardian(get_redis()).usage_and_reserved(list(limits), day, promised)
    return {
        phone: limit - used.get(phone, 0) - sum(1 for rid in promised.get(phone, ()) if rid not in reserved)
        for phone, limit in limits.items()
    }
