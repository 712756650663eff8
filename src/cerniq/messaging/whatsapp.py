"""The send job of a phone queue (``q:wa:phone_NN``), DESIGN §7.

1. Re-check the row is QUEUED, the emergency stop, the lead (takeover, opt-out, state), the
   phone, business hours and the phone's jitter gap.
2. Reserve quota under the row's id (a retry or a recovered job never spends twice), mark
   SENDING, commit.
3. Call TimelinesAI outside any transaction.
4. Mark SENT, move the lead (COLD -> CONTACTED_WA), schedule its next step.

A lost response leaves the row AMBIGUOUS (or SENDING, if the worker died): the next run looks
the message up in the chat history and only sends again once a grace period has shown that
the vendor never took it. A definite failure releases the quota; an ambiguous one keeps it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from bullmq import UnrecoverableError
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import commit, transaction
from cerniq.kit.metrics import MESSAGES_SENT, QUOTA_CHECKS, SEND_FAILURES
from cerniq.kit.redis import get_redis
from cerniq.leads.state import transition
from cerniq.messaging import repository
from cerniq.messaging.service import AUTOMATED_ORIGINS, TEST, automation_block_reason
from cerniq.messaging.vendors import whatsapp
from cerniq.models import GoldCommunicationLog, GoldLeadJourney, WaPhoneNumber
from cerniq.models.enums import Channel, LeadState, MessageStatus, PhoneStatus
from cerniq.ops import alerts
from cerniq.ops.system_state import emergency_stop
from cerniq.phones import repository as phones_repository
from cerniq.phones import service as phones
from cerniq.providers.errors import (
    AccountUnavailableError,
    AmbiguousProviderError,
    AuthProviderError,
    BannedProviderError,
    InvalidRecipientError,
    PermanentProviderError,
    TransientProviderError,
)
from cerniq.quota.guardian import QuotaGuardian
from cerniq.quota.jitter import jitter_delay
from cerniq.sequences import engine as sequences
from cerniq.worker.registry import JobContext

NEXT_SEND_KEY = "phone:next_send_at:{}"
PHONE_WAIT = timedelta(minutes=5)
AMBIGUITY_GRACE = timedelta(seconds=90)
DONE = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.READ,
    MessageStatus.REPLIED,
    MessageStatus.FAILED,
    MessageStatus.SKIPPED,
    MessageStatus.BOUNCED,
)


def ambiguity_grace(ctx: JobContext) -> timedelta:
    raw = (ctx.settings.model_extra or {}).get("ambiguity_grace")
    return timedelta(seconds=float(raw)) if raw else AMBIGUITY_GRACE


async def send_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Handler of ``send`` jobs on every phone queue."""
    message_id = uuid.UUID(str(data["messageId"]))
    clock = BusinessClock.from_settings(ctx.settings)
    guardian = QuotaGuardian(get_redis())
    prepared = await _prepare(ctx, clock, guardian, message_id)
    if isinstance(prepared, dict):
        return prepared
    message, journey_mobile, account_phone, chat_id, day = prepared
    text = message.content_rendered or message.content
    provider = whatsapp()
    started = utcnow()
    try:
        if chat_id is not None:
            uid = await provider.send_in_chat(chat_id=chat_id, text=text)
        else:
            uid = await provider.send_to_phone(account_phone=account_phone, phone=journey_mobile, text=text)
    except AmbiguousProviderError as exc:
        SEND_FAILURES.labels(channel="WHATSAPP", kind="ambiguous").inc()
        async with transaction() as session:
            await repository.set_status(
                session,
                message.id,
                MessageStatus.AMBIGUOUS,
                error_code="AMBIGUOUS",
                error_message=str(exc)[:500],
            )
        await _set_gap(ctx, message.phone_id)
        await ctx.delay_until(started + ambiguity_grace(ctx))
        raise AssertionError("unreachable") from None
    except TransientProviderError as exc:
        SEND_FAILURES.labels(channel="WHATSAPP", kind="transient").inc()
        await _definite_failure(
            message,
            guardian,
            day,
            status=MessageStatus.FAILED if ctx.is_last_attempt else MessageStatus.QUEUED,
            code="VENDOR_TRANSIENT",
            error=str(exc),
        )
        raise
    except BannedProviderError as exc:
        SEND_FAILURES.labels(channel="WHATSAPP", kind="banned").inc()
        await _definite_failure(
            message, guardian, day, status=MessageStatus.SKIPPED, code="PHONE_BANNED", error=str(exc)
        )
        async with transaction() as session:
            phone = await phones_repository.get_phone_any_tenant(session, message.phone_id or "")
            if phone is not None:
                await phones.ban_phone(session, phone, reason=str(exc)[:300], actor="send-path")
        return {"outcome": "phone-banned"}
    except (AuthProviderError, AccountUnavailableError) as exc:
        SEND_FAILURES.labels(channel="WHATSAPP", kind="account").inc()
        await _definite_failure(
            message, guardian, day, status=MessageStatus.QUEUED, code="PHONE_OFFLINE", error=str(exc)
        )
        async with transaction() as session:
            phone = await phones_repository.get_phone_any_tenant(session, message.phone_id or "")
            if phone is not None:
                await phones.mark_offline(session, phone, reason=str(exc)[:300], actor="send-path")
        await ctx.delay_until(utcnow() + PHONE_WAIT)
        raise AssertionError("unreachable") from None
    except InvalidRecipientError as exc:
        SEND_FAILURES.labels(channel="WHATSAPP", kind="invalid_recipient").inc()
        await _definite_failure(
            message, guardian, day, status=MessageStatus.FAILED, code="INVALID_RECIPIENT", error=str(exc)
        )
        async with transaction() as session:
            journey = await repository.lock_journey(session, message.lead_journey_id)
            if journey is not None:
                journey.whatsapp_invalid = True
                if journey.current_state in (LeadState.COLD, LeadState.CONTACTED_EMAIL):
                    journey.next_action_at = utcnow()  # the next dispatch takes the email route
        return {"outcome": "invalid-recipient"}
    except PermanentProviderError as exc:
        SEND_FAILURES.labels(channel="WHATSAPP", kind="permanent").inc()
        await _definite_failure(
            message, guardian, day, status=MessageStatus.FAILED, code="VENDOR_REJECTED", error=str(exc)
        )
        raise UnrecoverableError(f"TimelinesAI refused the message: {exc}") from exc
    await _set_gap(ctx, message.phone_id)
    chat = chat_id
    if chat is None:
        try:
            chat = (await provider.get_message(uid)).chat_id
        except Exception:
            chat = None
    await _record_sent(message.id, uid=uid, chat_id=chat, sent_at=utcnow())
    MESSAGES_SENT.labels(channel="WHATSAPP", type="new" if message.quota_cost else "followup").inc()
    return {"outcome": "sent", "uid": uid}


PrepResult = tuple[GoldCommunicationLog, str, str, int | None, Any]


async def _prepare(
    ctx: JobContext, clock: BusinessClock, guardian: QuotaGuardian, message_id: uuid.UUID
) -> PrepResult | dict[str, Any]:
    now = utcnow()
    async with transaction() as session:
        message = await repository.lock_message(session, message_id)
        if message is None:
            return {"outcome": "missing"}
        if message.status in DONE:
            return {"outcome": f"already-{message.status.value.lower()}"}
        journey = await session.get(GoldLeadJourney, message.lead_journey_id)
        phone = await phones_repository.get_phone_any_tenant(session, message.phone_id or "")
        if journey is None or phone is None:
            await _skip(session, message, "LEAD_OR_PHONE_GONE")
            return {"outcome": "skipped"}
        if await emergency_stop(session) is not None:
            await _release_and_skip(session, guardian, message, "EMERGENCY_STOP")
            return {"outcome": "skipped", "reason": "EMERGENCY_STOP"}
        block = automation_block_reason(journey, Channel.WHATSAPP, message.origin)
        if block is not None:
            await _release_and_skip(session, guardian, message, block)
            return {"outcome": "skipped", "reason": block}
        if phone.status == PhoneStatus.BANNED:
            await _release_and_skip(session, guardian, message, "PHONE_BANNED")
            if message.origin in AUTOMATED_ORIGINS and journey.current_state in (
                LeadState.COLD,
                LeadState.CONTACTED_WA,
            ):
                journey.next_action_at = now
            return {"outcome": "skipped", "reason": "PHONE_BANNED"}

        if message.status in (MessageStatus.SENDING, MessageStatus.AMBIGUOUS):
            resolved = await _resolve_ambiguous(ctx, session, message, phone, journey, now)
            if resolved is not None:
                return resolved

        if phone.status != PhoneStatus.ACTIVE or not phone.is_enabled:
            await ctx.delay_until(now + PHONE_WAIT)
        if message.origin != TEST and not clock.is_open(now):
            await ctx.delay_until(clock.next_opening(now))
        gap = await get_redis().get(NEXT_SEND_KEY.format(phone.id))
        if gap and float(gap) > now.timestamp() + 0.05:
            await ctx.delay_until(datetime.fromtimestamp(float(gap), tz=now.tzinfo))

        day = message.quota_date or clock.business_day(now)
        cost = 0 if await repository.had_whatsapp_contact(session, journey.id, exclude=message.id) else 1
        reservation = await guardian.reserve(
            phone_id=phone.id,
            day=day,
            reservation_id=str(message.id),
            cost=cost,
            limit=phone.daily_quota_limit,
            followup_cap=phone.followup_limit,
        )
        QUOTA_CHECKS.labels(result=reservation.reason).inc()
        if not reservation.allowed:
            return await _over_quota(ctx, session, clock, message, journey, phone, cost, now)
        message.status = MessageStatus.SENDING
        message.status_updated_at = now
        message.quota_cost = reservation.cost_applied if reservation.reason != "ALREADY_RESERVED" else cost
        message.quota_date = day
        message.retry_count = ctx.attempt - 1
        chat_id = None
        if message.thread_id and journey.wa_chat_id == message.thread_id and cost == 0:
            try:
                chat_id = int(message.thread_id)
            except ValueError:
                chat_id = None
        assert journey.mobile_e164 is not None
        return message, journey.mobile_e164, phone.phone_number, chat_id, day


async def _resolve_ambiguous(
    ctx: JobContext,
    session: AsyncSession,
    message: GoldCommunicationLog,
    phone: WaPhoneNumber,
    journey: GoldLeadJourney,
    now: datetime,
) -> dict[str, Any] | None:
    """Look the message up; None means the vendor never took it and it may be sent now."""
    since = message.status_updated_at or message.created_at
    found_uid: str | None
    found_chat: str | None
    if message.external_message_id:
        found_uid, found_chat = message.external_message_id, message.thread_id
    else:
        found = await whatsapp().find_sent_message(
            account_phone=phone.phone_number,
            phone=journey.mobile_e164 or "",
            text=message.content_rendered or message.content,
            since=since,
        )
        found_uid = found.uid if found else None
        found_chat = str(found.chat_id) if found and found.chat_id is not None else None
    if found_uid:
        await commit(session)
        await _record_sent(
            message.id,
            uid=found_uid,
            chat_id=int(found_chat) if found_chat else None,
            sent_at=since,
            resolved=True,
        )
        return {"outcome": "sent", "uid": found_uid, "resolvedAmbiguous": True}
    if now - since < ambiguity_grace(ctx):
        if message.status == MessageStatus.SENDING:
            message.status = MessageStatus.AMBIGUOUS
            message.error_code = "AMBIGUOUS"
        await commit(session)
        await ctx.delay_until(since + ambiguity_grace(ctx))
    # The vendor has no such message after the grace period: it never took it. The quota
    # reservation stays (re-reserving the same id is free) and the send proceeds.
    message.status = MessageStatus.QUEUED
    return None


async def _over_quota(
    ctx: JobContext,
    session: AsyncSession,
    clock: BusinessClock,
    message: GoldCommunicationLog,
    journey: GoldLeadJourney,
    phone: WaPhoneNumber,
    cost: int,
    now: datetime,
) -> dict[str, Any]:
    """The phone is out of quota: a new contact moves to another phone with quota left (it has
    no conversation yet), otherwise the message waits for tomorrow's opening."""
    from cerniq.messaging.service import enqueue_message_after_commit

    if cost == 1 and message.origin in AUTOMATED_ORIGINS:
        guardian = QuotaGuardian(get_redis())
        day = clock.business_day(now)
        candidates = [
            p
            for p in await phones_repository.list_phones(
                session, phone.tenant_id, status=PhoneStatus.ACTIVE, is_enabled=True
            )
            if p.id != phone.id
        ]
        used = await guardian.usage_many([p.id for p in candidates], day)
        spare = sorted(
            (p for p in candidates if used.get(p.id, 0) < p.daily_quota_limit),
            key=lambda p: (used.get(p.id, 0) - p.daily_quota_limit, p.priority, p.id),
        )
        if spare:
            target = spare[0]
            message.phone_id = target.id
            journey.assigned_phone_id = target.id
            journey.assigned_at = now
            enqueue_message_after_commit(session, message, new_contact=True)
            return {"outcome": "moved", "phone": target.id}
        await alerts.trigger(
            session,
            "quota:exhausted",
            tenant_id=phone.tenant_id,
            message="every active phone has used its new-contact quota; messages wait for tomorrow",
        )
    await commit(session)
    await ctx.delay_until(clock.next_opening(clock.local_midnight_after(now)))
    raise AssertionError("unreachable")


async def _skip(session: AsyncSession, message: GoldCommunicationLog, reason: str) -> None:
    message.status = MessageStatus.SKIPPED
    message.error_code = reason
    message.status_updated_at = utcnow()


async def _release_and_skip(
    session: AsyncSession, guardian: QuotaGuardian, message: GoldCommunicationLog, reason: str
) -> None:
    if message.quota_date is not None and message.phone_id and message.status == MessageStatus.QUEUED:
        await guardian.release(
            phone_id=message.phone_id, day=message.quota_date, reservation_id=str(message.id)
        )
        message.quota_cost = 0
    await _skip(session, message, reason)


async def _definite_failure(
    message: GoldCommunicationLog,
    guardian: QuotaGuardian,
    day: Any,
    *,
    status: MessageStatus,
    code: str,
    error: str,
) -> None:
    """The vendor certainly did not take the message: release the reservation, record why."""
    if message.phone_id:
        await guardian.release(phone_id=message.phone_id, day=day, reservation_id=str(message.id))
    async with transaction() as session:
        await repository.set_status(
            session,
            message.id,
            status,
            quota_cost=0,
            quota_date=None,
            error_code=code,
            error_message=error[:500],
        )


async def _set_gap(ctx: JobContext, phone_id: str | None) -> None:
    """The jitter: the phone's next send may not start before now + 30 s + random(0, 120 s)."""
    delay = jitter_delay(ctx.settings)
    if phone_id and delay.total_seconds() > 0:
        await get_redis().set(
            NEXT_SEND_KEY.format(phone_id),
            f"{(utcnow() + delay).timestamp():.3f}",
            ex=int(delay.total_seconds()) + 60,
        )


async def _record_sent(
    message_id: uuid.UUID, *, uid: str, chat_id: int | None, sent_at: datetime, resolved: bool = False
) -> None:
    async with transaction() as session:
        message = await repository.lock_message(session, message_id)
        if message is None or message.status in DONE:
            return
        message.status = MessageStatus.SENT
        message.status_updated_at = utcnow()
        message.sent_at = sent_at
        message.external_message_id = uid
        message.error_code = "RESOLVED_AFTER_AMBIGUITY" if resolved else None
        message.error_message = None
        if chat_id is not None:
            message.thread_id = str(chat_id)
        journey = await repository.lock_journey(session, message.lead_journey_id)
        phone = await phones_repository.get_phone_any_tenant(session, message.phone_id or "")
        if phone is not None:
            phone.total_messages_sent += 1
            phone.last_message_sent_at = sent_at
        if journey is None:
            return
        if journey.current_state in (LeadState.COLD, LeadState.CONTACTED_EMAIL):
            await transition(
                session, journey, LeadState.CONTACTED_WA, trigger="SEND", reason="first WhatsApp message"
            )
        journey.first_contact_at = journey.first_contact_at or sent_at
        journey.first_contact_channel = journey.first_contact_channel or Channel.WHATSAPP
        journey.last_contact_at = sent_at
        journey.last_channel_used = Channel.WHATSAPP
        journey.is_new_contact = False
        journey.messages_sent += 1
        if message.quota_cost:
            journey.quota_consumption_date = message.quota_date
        if journey.assigned_phone_id is None:
            journey.assigned_phone_id = message.phone_id
            journey.assigned_at = sent_at
        if chat_id is not None and journey.assigned_phone_id == message.phone_id:
            journey.wa_chat_id = str(chat_id)
        if message.enrollment_id is not None:
            await sequences.after_send(
                session,
                journey,
                enrollment_id=message.enrollment_id,
                step_number=message.sequence_step,
                sent_at=sent_at,
            )
