"""The send job of a phone queue (``q:wa:phone_NN``), DESIGN §7.

1. Re-check the row is QUEUED, the emergency stop, the lead (takeover, opt-out, state), the
   phone, business hours and the phone's jitter gap.
2. Reserve quota under the row's id (a retry or a recovered job never spends twice), mark
   SENDING, commit.
3. Call TimelinesAI outside any transaction.
4. Mark SENT, move the lead (COLD -> CONTACTED_WA), schedule its next step.

The jobs a worker process runs at the same time (one per phone) share the transactions of steps
2 and 4 (:data:`PREPARE_BATCHES`, :data:`SENT_BATCHES`); a row that is not the plain case
(:func:`_plain`) takes step 1 and 2 alone, in :func:`_prepare`.

A lost response leaves the row AMBIGUOUS (or SENDING, if the worker died): the next run looks
the message up in the chat history and only sends again once a grace period has shown that
the vendor never took it (the grace is never shorter than the vendor call's own timeout, so a
call still in flight cannot be overtaken). A definite failure releases the quota; an ambiguous
one keeps it, and a row that still holds its reservation in the ledger (``quota_cost`` 1) is
never charged again, even when Redis lost the reservation hash.

Transient vendor failures (429, 502/503/504, refused connections) are retried by this job
itself: the attempt count lives in the row (``retry_count``), the wait is the vendor's
``Retry-After`` when it sent one, else exponential backoff with jitter, and the quota is given
back in between. After ``send_max_attempts`` the row is FAILED and the lead is due again later
(or flagged for review after repeated failures), so no lead is left without a next action.

Every time decision (business hours, the quota day, delays) reads :func:`now`, which tests
can move with :func:`set_clock`; delays are applied to the queue relative to the real clock.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NoReturn

from bullmq import UnrecoverableError
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.kit.batching import GroupCommit
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import commit, transaction
from cerniq.kit.metrics import MESSAGES_SENT, QUOTA_CHECKS, SEND_FAILURES
from cerniq.kit.redis import get_redis
from cerniq.leads.state import transition_locked_many
from cerniq.messaging import repository
from cerniq.messaging.service import AUTOMATED_ORIGINS, TEST, automation_block_reason
from cerniq.messaging.vendors import whatsapp
from cerniq.models import GoldCommunicationLog, GoldLeadJourney, WaPhoneNumber
from cerniq.models.enums import Channel, LeadState, MessageStatus, PhoneStatus
from cerniq.ops import alerts
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
from cerniq.quota.guardian import QuotaGuardian, ReservationRequest
from cerniq.quota.jitter import jitter_delay
from cerniq.sequences import engine as sequences
from cerniq.templates.service import Outcome, record_variant_outcome
from cerniq.worker.registry import JobContext

NEXT_SEND_KEY = "phone:next_send_at:{}"
PHONE_WAIT = timedelta(minutes=5)
AMBIGUITY_GRACE = timedelta(seconds=90)
TRANSIENT_BACKOFF = timedelta(seconds=10)
TRANSIENT_BACKOFF_MAX = timedelta(minutes=15)
RETRY_AFTER_MAX = timedelta(hours=1)
FAILED_RESCHEDULE = timedelta(hours=1)
FAILED_STEP_LIMIT = 3  # rows of one sequence step failed on transient errors before a human looks
DISPATCHABLE = (LeadState.COLD, LeadState.CONTACTED_WA, LeadState.CONTACTED_EMAIL)
DONE = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.READ,
    MessageStatus.REPLIED,
    MessageStatus.FAILED,
    MessageStatus.SKIPPED,
    MessageStatus.BOUNCED,
)

_clock: Callable[[], datetime] = utcnow
_rng = random.Random()


def set_clock(clock: Callable[[], datetime] | None) -> None:
    """Make the send path read ``clock`` for "now" (tests); ``None`` restores the real clock."""
    global _clock
    _clock = clock or utcnow


def now() -> datetime:
    """The send path's current instant (the real clock unless a test moved it)."""
    return _clock()


async def _delay(ctx: JobContext, until: datetime) -> NoReturn:
    """Put the job back as delayed until ``until`` on the send-path clock; never returns.

    The queue runs on the real clock, so the delay (``until - now()``) is applied from it.
    """
    wait = max(timedelta(0), until - now())
    await ctx.delay_until(utcnow() + wait)
    raise AssertionError("unreachable")  # delay_until raises DelayedError


def ambiguity_grace(ctx: JobContext) -> timedelta:
    """How long an unanswered send waits before a lookup that finds nothing allows a resend.

    Never shorter than the vendor call's timeout: until then the first call may still land.
    """
    return max(ctx.settings.ambiguity_grace, ctx.settings.timelinesai_timeout)


def retry_delay(attempt: int, retry_after: float | None) -> timedelta:
    """The wait before transient retry ``attempt`` (1 = the first retry).

    The vendor's ``Retry-After`` wins when it sent one (capped at an hour); otherwise
    exponential backoff from 10 s, capped at 15 minutes, with +-20 % jitter.
    """
    if retry_after is not None:
        return min(timedelta(seconds=max(retry_after, 0.1)), RETRY_AFTER_MAX)
    base = min(TRANSIENT_BACKOFF * (1 << min(max(attempt - 1, 0), 16)), TRANSIENT_BACKOFF_MAX)
    return base * _rng.uniform(0.8, 1.2)


async def send_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Handler of ``send`` jobs on every phone queue."""
    message_id = uuid.UUID(str(data["messageId"]))
    clock = BusinessClock.from_settings(ctx.settings)
    guardian = QuotaGuardian(get_redis())
    prepared: PrepResult | dict[str, Any] | None = await PREPARE_BATCHES.submit(
        PrepareRequest(message_id, clock, _jitter_on(ctx))
    )
    if prepared is None:  # anything but the plain case: the whole procedure, for this row alone
        prepared = await _prepare(ctx, clock, guardian, message_id)
    if isinstance(prepared, dict):
        return prepared
    message, journey_mobile, account_phone, chat_id, day = prepared
    text = message.content_rendered or message.content
    provider = whatsapp(lane=message.phone_id)
    started = now()
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
        await _delay(ctx, started + ambiguity_grace(ctx))
    except TransientProviderError as exc:
        SEND_FAILURES.labels(channel="WHATSAPP", kind="transient").inc()
        attempts = (message.retry_count or 0) + 1
        final = attempts >= ctx.settings.send_max_attempts
        await _definite_failure(
            message,
            guardian,
            day,
            status=MessageStatus.FAILED if final else MessageStatus.QUEUED,
            code="VENDOR_TRANSIENT",
            error=str(exc),
            retry_count=attempts,
        )
        if final:
            await _after_final_failure(clock, message.id)
            return {"outcome": "failed", "reason": "VENDOR_TRANSIENT", "attempts": attempts}
        await _delay(ctx, now() + retry_delay(attempts, exc.retry_after))
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
        await _delay(ctx, now() + PHONE_WAIT)
    except InvalidRecipientError as exc:
        SEND_FAILURES.labels(channel="WHATSAPP", kind="invalid_recipient").inc()
        await _invalid_recipient(message, guardian, day, str(exc))
        return {"outcome": "invalid-recipient"}
    except PermanentProviderError as exc:
        SEND_FAILURES.labels(channel="WHATSAPP", kind="permanent").inc()
        await _definite_failure(
            message, guardian, day, status=MessageStatus.FAILED, code="VENDOR_REJECTED", error=str(exc)
        )
        raise UnrecoverableError(f"TimelinesAI refused the message: {exc}") from exc
    await _set_gap(ctx, message.phone_id)
    # The send answers with the uid only. The chat of a new contact comes with the first
    # delivery poll (or a message:sent:new webhook arriving after this record), which also
    # catches a number the vendor took and then failed as not on WhatsApp
    # (cerniq.webhooks.delivery).
    await SENT_BATCHES.submit(SentRecord(message.id, uid=uid, chat_id=chat_id, sent_at=now()))
    MESSAGES_SENT.labels(channel="WHATSAPP", type="new" if message.quota_cost else "followup").inc()
    return {"outcome": "sent", "uid": uid}


PrepResult = tuple[GoldCommunicationLog, str, str, int | None, Any]


async def _prepare(
    ctx: JobContext, clock: BusinessClock, guardian: QuotaGuardian, message_id: uuid.UUID
) -> PrepResult | dict[str, Any]:
    at = now()
    async with transaction() as session:
        loaded = await repository.load_for_send(session, message_id)
        if loaded is None:
            return {"outcome": "missing"}
        message, journey, phone = loaded.message, loaded.journey, loaded.phone
        if message.status in DONE:
            return {"outcome": f"already-{message.status.value.lower()}"}
        if journey is None or phone is None:
            await _skip(session, message, "LEAD_OR_PHONE_GONE")
            return {"outcome": "skipped"}
        if loaded.emergency_stop is not None:
            await _release_and_skip(session, guardian, message, "EMERGENCY_STOP")
            _due_again(message, journey, at)  # dispatch takes it up again after the resume
            return {"outcome": "skipped", "reason": "EMERGENCY_STOP"}
        block = automation_block_reason(journey, Channel.WHATSAPP, message.origin)
        if block is not None:
            await _release_and_skip(session, guardian, message, block)
            return {"outcome": "skipped", "reason": block}
        if phone.status == PhoneStatus.BANNED:
            await _release_and_skip(session, guardian, message, "PHONE_BANNED")
            if journey.assigned_phone_id == phone.id:
                journey.assigned_phone_id = None
                journey.assigned_at = None
                journey.wa_chat_id = None
            _due_again(message, journey, at)
            return {"outcome": "skipped", "reason": "PHONE_BANNED"}

        if message.status in (MessageStatus.SENDING, MessageStatus.AMBIGUOUS):
            resolved = await _resolve_ambiguous(ctx, session, message, phone, journey, at)
            if resolved is not None:
                return resolved

        if phone.status != PhoneStatus.ACTIVE or not phone.is_enabled:
            await _delay(ctx, at + PHONE_WAIT)
        if message.origin != TEST and not clock.is_open(at):
            await _delay(ctx, clock.next_opening(at))
        if _jitter_on(ctx):
            gap = await get_redis().get(NEXT_SEND_KEY.format(phone.id))
            real = utcnow()
            if gap and float(gap) > real.timestamp() + 0.05:
                await ctx.delay_until(datetime.fromtimestamp(float(gap), tz=real.tzinfo))

        day = message.quota_date or clock.business_day(at)
        if message.quota_cost == 1 and message.quota_date is not None:
            # Resent after an ambiguity: the ledger already holds this row's reservation.
            cost = 1
        else:
            cost = 0 if loaded.contacted_before else 1
            reservation = await guardian.reserve(
                phone_id=phone.id,
                day=day,
                reservation_id=str(message.id),
                cost=cost,
                limit=phone.daily_quota_limit,
                followup_cap=phone.followup_limit,
            )
            QUOTA_CHECKS.labels(result=reservation.reason).inc()
            if reservation.allowed and reservation.cost_applied == 1 and reservation.used == 1:
                reservation_ok = await _counter_matches_ledger(session, guardian, phone, day, message.id)
                if not reservation_ok:
                    return await _over_quota(ctx, session, clock, message, journey, phone, cost, at)
            if not reservation.allowed:
                return await _over_quota(ctx, session, clock, message, journey, phone, cost, at)
        await repository.mark_sending(session, message, quota_cost=cost, quota_date=day)
        assert journey.mobile_e164 is not None
        return message, journey.mobile_e164, phone.phone_number, _chat_of(message, journey, cost), day


def _chat_of(message: GoldCommunicationLog, journey: GoldLeadJourney, cost: int) -> int | None:
    """The chat a follow-up goes into (the lead's chat with the phone), or None: to the number."""
    if message.thread_id and journey.wa_chat_id == message.thread_id and cost == 0:
        try:
            return int(message.thread_id)
        except ValueError:
            return None
    return None


@dataclass(frozen=True, slots=True)
class PrepareRequest:
    """A send job's row, to check and mark SENDING with the other jobs running at that time."""

    message_id: uuid.UUID
    clock: BusinessClock
    jitter_on: bool


def _plain(loaded: repository.SendContext, clock: BusinessClock, at: datetime) -> bool:
    """The row can go now with nothing to decide: QUEUED, its lead and its ACTIVE phone there,
    no emergency stop, nothing blocking automation, inside business hours (or a test message),
    and no reservation left from an earlier attempt. Everything else takes :func:`_prepare`."""
    message, journey, phone = loaded.message, loaded.journey, loaded.phone
    return (
        message.status == MessageStatus.QUEUED
        and journey is not None
        and phone is not None
        and loaded.emergency_stop is None
        and automation_block_reason(journey, Channel.WHATSAPP, message.origin) is None
        and phone.status == PhoneStatus.ACTIVE
        and phone.is_enabled
        and (message.origin == TEST or clock.is_open(at))
        and not (message.quota_cost == 1 and message.quota_date is not None)
        and journey.mobile_e164 is not None
    )


async def _prepare_many(requests: Sequence[PrepareRequest]) -> list[PrepResult | None]:
    """Step 2 of the send job for every job that asks at the same time, in one transaction:
    lock and read the rows (one statement), reserve their quota (one script call), mark them
    SENDING (one UPDATE run). A row that is not :func:`_plain`, was asked for twice, waits for
    its phone's jitter gap or is refused quota gets None: its job runs :func:`_prepare` itself
    (after this transaction, so it sees what it wrote)."""
    at = now()
    out: list[PrepResult | None] = [None] * len(requests)
    clock, jitter = requests[0].clock, requests[0].jitter_on
    guardian = QuotaGuardian(get_redis())
    async with transaction() as session:
        loaded = await repository.load_for_send_many(session, [r.message_id for r in requests])
        ready: list[tuple[int, repository.SendContext]] = []
        seen: set[uuid.UUID] = set()
        for index, request in enumerate(requests):
            found = loaded.get(request.message_id)
            if found is not None and request.message_id not in seen and _plain(found, clock, at):
                ready.append((index, found))
            seen.add(request.message_id)
        if jitter and ready:
            gaps = await get_redis().mget([NEXT_SEND_KEY.format(f.message.phone_id) for _, f in ready])
            real = utcnow().timestamp()
            ready = [
                item for item, gap in zip(ready, gaps, strict=True) if not (gap and float(gap) > real + 0.05)
            ]
        if not ready:
            return out
        day = clock.business_day(at)
        requested = [
            ReservationRequest(
                phone_id=phone.id,
                day=found.message.quota_date or day,
                reservation_id=str(found.message.id),
                cost=0 if found.contacted_before else 1,
                limit=phone.daily_quota_limit,
                followup_cap=phone.followup_limit,
            )
            for _, found in ready
            if (phone := found.phone) is not None
        ]
        reservations = await guardian.reserve_many(requested)
        sending: list[tuple[GoldCommunicationLog, int, date]] = []
        for (index, found), asked, reservation in zip(ready, requested, reservations, strict=True):
            QUOTA_CHECKS.labels(result=reservation.reason).inc()
            message, journey, phone = found.message, found.journey, found.phone
            assert journey is not None and phone is not None and journey.mobile_e164 is not None
            if not reservation.allowed:
                continue  # _prepare moves it to another phone or waits for tomorrow
            if (
                reservation.cost_applied == 1
                and reservation.used == 1
                and not await _counter_matches_ledger(session, guardian, phone, asked.day, message.id)
            ):
                continue
            sending.append((message, asked.cost, asked.day))
            chat = _chat_of(message, journey, asked.cost)
            out[index] = (message, journey.mobile_e164, phone.phone_number, chat, asked.day)
        await repository.mark_sending_many(session, sending)
    return out


async def _prepare_alone(request: PrepareRequest) -> PrepResult | None:
    return None  # its batch failed: the job runs _prepare itself


PREPARE_BATCHES: GroupCommit[PrepareRequest, PrepResult | None] = GroupCommit(_prepare_many, _prepare_alone)
"""Checks and marks SENDING the rows of the jobs a worker process runs at the same time."""


async def _counter_matches_ledger(
    session: AsyncSession,
    guardian: QuotaGuardian,
    phone: WaPhoneNumber,
    day: Any,
    message_id: uuid.UUID,
) -> bool:
    """The day's counter was just created by this reservation: if PostgreSQL's ledger already
    holds new contacts for the phone and day, Redis lost the counter (a flush, a restart
    without persistence). Rebuild it from the ledger before trusting it; False when the phone
    is in fact out of quota (the reservation is given back)."""
    spent = await repository.ledger_count(session, phone.id, day, exclude=message_id)
    if spent == 0:
        return True
    if spent + 1 > phone.daily_quota_limit:
        await guardian.release(phone_id=phone.id, day=day, reservation_id=str(message_id))
        await guardian.set_usage(phone.id, day, spent)
        return False
    await guardian.set_usage(phone.id, day, spent + 1)
    return True


def _due_again(message: GoldCommunicationLog, journey: GoldLeadJourney, at: datetime) -> None:
    """An automated message that could not go: the lead is due again so dispatch re-plans it."""
    if (
        message.origin in AUTOMATED_ORIGINS
        and journey.current_state in DISPATCHABLE
        and not journey.is_human_controlled
        and journey.next_action_at is None
    ):
        journey.next_action_at = at


async def _resolve_ambiguous(
    ctx: JobContext,
    session: AsyncSession,
    message: GoldCommunicationLog,
    phone: WaPhoneNumber,
    journey: GoldLeadJourney,
    at: datetime,
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
        chat_id = int(found_chat) if found_chat else None
        await _record_sent_one(SentRecord(message.id, found_uid, chat_id, since, resolved=True))
        return {"outcome": "sent", "uid": found_uid, "resolvedAmbiguous": True}
    grace = ambiguity_grace(ctx)  # real elapsed time: ``since`` is the database's clock
    if utcnow() - since < grace:
        if message.status == MessageStatus.SENDING:
            message.status = MessageStatus.AMBIGUOUS
            message.error_code = "AMBIGUOUS"
        await commit(session)
        await ctx.delay_until(since + grace)
    # The vendor has no such message after the grace period: it never took it. The quota
    # reservation stays (the row keeps its quota_cost) and the send proceeds.
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
    at: datetime,
) -> dict[str, Any]:
    """The phone is out of quota: a new contact moves to another phone with quota left (it has
    no conversation yet), otherwise the message waits for tomorrow's opening. The old job ends
    here ("moved"), it never sends."""
    from cerniq.messaging.service import enqueue_message_after_commit

    if cost == 1 and message.origin in AUTOMATED_ORIGINS:
        guardian = QuotaGuardian(get_redis())
        day = clock.business_day(at)
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
            message.status_updated_at = utcnow()
            journey.assigned_phone_id = target.id
            journey.assigned_at = at
            enqueue_message_after_commit(session, message, new_contact=True)
            return {"outcome": "moved", "phone": target.id}
        await alerts.trigger(
            session,
            "quota:exhausted",
            tenant_id=phone.tenant_id,
            message="every active phone has used its new-contact quota; messages wait for tomorrow",
        )
    await commit(session)
    await _delay(ctx, clock.next_opening(clock.local_midnight_after(at)))


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
    **values: Any,
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
            **values,
        )


async def _invalid_recipient(
    message: GoldCommunicationLog, guardian: QuotaGuardian, day: Any, error: str
) -> None:
    """Not a WhatsApp number: FAILED, quota back, the lead flagged so it goes the email route."""
    # The lead is flagged before the row turns FAILED: nobody sees the failure without the flag.
    async with transaction() as session:
        journey = await repository.lock_journey(session, message.lead_journey_id)
        if journey is not None:
            journey.whatsapp_invalid = True
            if journey.current_state in (LeadState.COLD, LeadState.CONTACTED_EMAIL) and (
                message.origin in AUTOMATED_ORIGINS
            ):
                journey.next_action_at = now()  # the next dispatch takes the email route
    await _definite_failure(
        message, guardian, day, status=MessageStatus.FAILED, code="INVALID_RECIPIENT", error=error
    )


async def _after_final_failure(clock: BusinessClock, message_id: uuid.UUID) -> None:
    """Transient failures used up every attempt: the lead is due again in an hour (dispatch
    writes a new row for the same step), or, after repeated failures of that step, goes to a
    human. It is never left without a next action."""
    async with transaction() as session:
        message = await repository.get_message(session, message_id)
        if message is None or message.origin not in AUTOMATED_ORIGINS:
            return
        journey = await repository.lock_journey(session, message.lead_journey_id)
        if journey is None or journey.current_state not in DISPATCHABLE or journey.is_human_controlled:
            return
        if journey.next_action_at is not None:
            return
        failed = await repository.failed_step_rows(
            session, journey.id, enrollment_id=message.enrollment_id, step=message.sequence_step
        )
        if failed >= FAILED_STEP_LIMIT:
            journey.requires_human_review = True
            journey.human_review_reason = (
                f"WHATSAPP_SEND_FAILING: step {message.sequence_step} failed {failed} times on vendor errors"
            )
            return
        journey.next_action_at = clock.next_opening(now() + FAILED_RESCHEDULE)


def _jitter_on(ctx: JobContext) -> bool:
    return ctx.settings.jitter_base.total_seconds() > 0 or ctx.settings.jitter_spread.total_seconds() > 0


async def _set_gap(ctx: JobContext, phone_id: str | None) -> None:
    """The jitter: the phone's next send may not start before now + 30 s + random(0, 120 s)."""
    delay = jitter_delay(ctx.settings)
    if phone_id and delay.total_seconds() > 0:
        await get_redis().set(
            NEXT_SEND_KEY.format(phone_id),
            f"{(utcnow() + delay).timestamp():.3f}",
            ex=int(delay.total_seconds()) + 60,
        )


@dataclass(frozen=True, slots=True)
class SentRecord:
    """A message the vendor took, to record as SENT."""

    message_id: uuid.UUID
    uid: str
    chat_id: int | None
    sent_at: datetime
    resolved: bool = False


async def _record_sent_many(records: Sequence[SentRecord]) -> list[None]:
    """Mark the rows SENT, move their leads (COLD -> CONTACTED_WA), schedule their next steps
    and count the sends, in one transaction: the rows and their leads locked in one statement,
    then one statement per kind of change for the whole batch. A row already done (a resolved
    ambiguity recorded it, or a retried job) is left alone."""
    async with transaction() as session:
        found = await repository.lock_for_sent_many(session, [r.message_id for r in records])
        todo: dict[uuid.UUID, tuple[SentRecord, repository.SentContext]] = {}
        for record in records:
            context = found.get(record.message_id)
            if context is not None and context.status not in DONE and record.message_id not in todo:
                todo[record.message_id] = (record, context)
        if not todo:
            return [None] * len(records)
        await repository.mark_sent_many(
            session,
            [
                repository.Sent(
                    record.message_id,
                    record.uid,
                    record.sent_at,
                    thread_id=str(record.chat_id) if record.chat_id is not None else None,
                    error_code="RESOLVED_AFTER_AMBIGUITY" if record.resolved else None,
                )
                for record, _ in todo.values()
            ],
        )
        templates = Counter(c.template_id for _, c in todo.values() if c.template_id is not None)
        versions = Counter(
            c.template_version_id for _, c in todo.values() if c.template_version_id is not None
        )
        for template_id, count in sorted(templates.items()):
            await record_variant_outcome(
                session, template_id=template_id, template_version_id=None, outcome=Outcome.SENT, count=count
            )
        for version_id, count in sorted(versions.items()):
            await record_variant_outcome(
                session, template_id=None, template_version_id=version_id, outcome=Outcome.SENT, count=count
            )
        first_contacts: list[GoldLeadJourney] = []
        phone_sends: dict[str, tuple[int, datetime]] = {}
        steps: list[sequences.KnownSend] = []
        for record, found_row in todo.values():
            journey, sent_at = found_row.journey, record.sent_at
            journey.first_contact_at = journey.first_contact_at or sent_at
            journey.first_contact_channel = journey.first_contact_channel or Channel.WHATSAPP
            journey.last_contact_at = sent_at
            journey.last_channel_used = Channel.WHATSAPP
            journey.is_new_contact = False
            journey.messages_sent += 1
            if found_row.quota_cost:
                journey.quota_consumption_date = found_row.quota_date
            if journey.assigned_phone_id is None:
                journey.assigned_phone_id = found_row.phone_id
                journey.assigned_at = sent_at
            if record.chat_id is not None and journey.assigned_phone_id == found_row.phone_id:
                journey.wa_chat_id = str(record.chat_id)
            if found_row.enrollment_id is not None:
                steps.append(
                    sequences.KnownSend(
                        journey, found_row.enrollment_id, found_row.sequence_step, sent_at, found_row.step
                    )
                )
            if journey.current_state in (LeadState.COLD, LeadState.CONTACTED_EMAIL):
                first_contacts.append(journey)
            if found_row.phone_id:
                count, last = phone_sends.get(found_row.phone_id, (0, sent_at))
                phone_sends[found_row.phone_id] = (count + 1, max(last, sent_at))
        await sequences.after_send_known_many(session, steps)
        # The transition's flush writes every lead (one UPDATE with all the changes above) and
        # then their history rows; the leads are locked by lock_for_sent_many above.
        await transition_locked_many(
            session, first_contacts, LeadState.CONTACTED_WA, trigger="SEND", reason="first WhatsApp message"
        )
        await repository.count_phone_sends(session, phone_sends)
    return [None] * len(records)


async def _record_sent_one(record: SentRecord) -> None:
    await _record_sent_many([record])


SENT_BATCHES: GroupCommit[SentRecord, None] = GroupCommit(_record_sent_many, _record_sent_one)
"""Records the SENT rows of the jobs a worker process runs at the same time in one transaction."""
