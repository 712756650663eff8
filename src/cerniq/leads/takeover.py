"""Human takeover of a lead, operators' own messages, and moving a lead to another phone.

Takeover (ADR-0064, digest §7): the lead's sequences stop (``HUMAN_TAKEOVER``), every automated
message already queued for it (origin AUTOMATION or AI) is SKIPPED with ``HUMAN_TAKEOVER``, and
from then on :func:`cerniq.messaging.service.queue_message` refuses automated messages while the
send path re-checks the flag just before the vendor call. Operators (origin OPERATOR) and review
answers (REVIEW) still go out. Release clears the flags and, if asked, puts the lead back into a
sequence.

Manual sends (``POST /leads/{id}/send-message``) go through ``queue_message(origin="OPERATOR")``.
Decisions:

* A WhatsApp message to a lead never contacted on WhatsApp costs the phone's new-contact quota;
  when the phone has none left today the answer is 429 QUOTA_EXCEEDED with ``{phoneId,
  quotaUsed, quotaLimit, resetAt, alternativePhoneAvailable}`` before anything is queued.
* A lead whose sticky phone is not ACTIVE (offline, banned, paused) gets a 409
  PHONE_NOT_ACTIVE naming ``reassign-phone`` (runbook 5.3) instead of a message that would wait.
* ``scheduledAt`` must be in the future. For WhatsApp it must also fall within business hours,
  under takeover too: the send path holds every WhatsApp message outside business hours
  (DESIGN §7.4), so accepting such a time would promise a send that cannot happen then. Without
  ``scheduledAt`` the message goes at once, or at the next opening, which the answer states.
* EMAIL_WARM is for leads that replied (WARM_REPLY, NEGOTIATION; DESIGN §9): others get 409
  LEAD_NOT_WARM. Its subject is optional (runbook 3.1 step 6 sends none): by default ``Re:`` the
  conversation's last subject, else the company's name.

The few statements below that change many rows at once are kept here, next to the only
service that needs them.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import Principal
from cerniq.auth.service import record_audit
from cerniq.config import get_settings
from cerniq.errors import Conflict, EmergencyStopActive, NotFound, QuotaExceeded, ValidationFailed
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import after_commit
from cerniq.kit.ids import job_id
from cerniq.kit.redis import get_redis
from cerniq.messaging import repository as messaging_repository
from cerniq.messaging.service import (
    AUTOMATED_ORIGINS,
    OPERATOR,
    enqueue_message_after_commit,
    queue_message,
    remaining_quota,
)
from cerniq.models import (
    GoldCommunicationLog,
    GoldLeadJourney,
    OutreachSequence,
    OutreachTemplate,
    SequenceEnrollment,
    WaPhoneNumber,
)
from cerniq.models.enums import Channel, Direction, EnrollmentStatus, LeadState, MessageStatus, PhoneStatus
from cerniq.ops.system_state import emergency_stop
from cerniq.phones import repository as phones_repository
from cerniq.quota.guardian import QuotaGuardian
from cerniq.reviews import repository as reviews_repository
from cerniq.sequences import engine as sequences
from cerniq.worker.names import phone_queue
from cerniq.worker.queues import get_queue

TAKEOVER_CODE: Final = "HUMAN_TAKEOVER"
WARM_STATES: Final = (LeadState.WARM_REPLY, LeadState.NEGOTIATION)
NOT_AUTOMATABLE: Final = (LeadState.DEAD, LeadState.CONVERTED, LeadState.PAUSED)
SCHEDULE_SKEW: Final = timedelta(seconds=5)


def _clock() -> BusinessClock:
    return BusinessClock.from_settings(get_settings())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def control_view(journey: GoldLeadJourney) -> dict[str, Any]:
    return {
        "leadId": str(journey.id),
        "isHumanControlled": journey.is_human_controlled,
        "humanControlledBy": str(journey.human_controlled_by) if journey.human_controlled_by else None,
        "humanControlledAt": _iso(journey.human_controlled_at),
        "humanControlReason": journey.human_control_reason,
        "assignedToUser": str(journey.assigned_to_user) if journey.assigned_to_user else None,
        "currentState": journey.current_state.value,
        "nextActionAt": _iso(journey.next_action_at),
        "sequencePaused": journey.sequence_paused,
    }


# ---------------------------------------------------------------------------------------------
# Takeover and release


async def take_over(
    session: AsyncSession,
    principal: Principal,
    journey: GoldLeadJourney,
    *,
    reason: str,
    user_agent: str | None = None,
    via_review: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Hand ``journey`` to a human: flags set, sequences stopped, queued automated messages
    SKIPPED (HUMAN_TAKEOVER). 409 ALREADY_HUMAN_CONTROLLED when someone already has it."""
    if journey.is_human_controlled:
        raise Conflict(
            "the lead is already under human control",
            code="ALREADY_HUMAN_CONTROLLED",
            details={
                "humanControlledBy": str(journey.human_controlled_by)
                if journey.human_controlled_by
                else None,
                "humanControlledAt": _iso(journey.human_controlled_at),
            },
        )
    now = utcnow()
    before = control_view(journey)
    journey.is_human_controlled = True
    journey.human_controlled_by = principal.user_id
    journey.human_controlled_at = now
    journey.human_control_reason = reason
    if principal.user_id is not None:
        journey.assigned_to_user = principal.user_id
    stopped = await sequences.stop(session, journey, TAKEOVER_CODE)
    skipped = await _skip_automated(session, journey.id, now)
    await session.flush()
    for review in await reviews_repository.open_reviews_of_journey(session, journey.id):
        await reviews_repository.add_hitl_entry(
            session,
            tenant_id=review.tenant_id,
            review_id=review.id,
            action="TAKEOVER_INITIATED",
            performed_at=utcnow(),
            performed_by=principal.actor,
            notes=reason if via_review is None else f"{reason} (from review {via_review})",
            ip_address=principal.ip_address,
            user_agent=user_agent,
        )
    after = {**control_view(journey), "sequencesStopped": stopped, "messagesSkipped": len(skipped)}
    await record_audit(
        session,
        principal,
        "lead.takeover",
        entity_type="lead",
        entity_id=journey.id,
        reason=reason,
        before=before,
        after=after,
    )
    return after


async def _skip_automated(session: AsyncSession, journey_id: uuid.UUID, now: datetime) -> list[Any]:
    """SKIPPED for every QUEUED automated outbound message of the lead; quota held for them is
    given back once the transaction commits."""
    result = await session.execute(
        update(GoldCommunicationLog)
        .where(
            GoldCommunicationLog.lead_journey_id == journey_id,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.status == MessageStatus.QUEUED,
            GoldCommunicationLog.origin.in_(AUTOMATED_ORIGINS),
        )
        .values(
            status=MessageStatus.SKIPPED,
            error_code=TAKEOVER_CODE,
            error_message="a human took over the lead",
            status_updated_at=now,
            quota_cost=0,
        )
        .returning(GoldCommunicationLog.id, GoldCommunicationLog.phone_id, GoldCommunicationLog.quota_date)
    )
    rows = list(result.all())
    held = [(str(r.id), r.phone_id, r.quota_date) for r in rows if r.phone_id and r.quota_date]
    if held:

        async def release() -> None:
            guardian = QuotaGuardian(get_redis())
            for reservation_id, phone_id, day in held:
                await guardian.release(phone_id=phone_id, day=day, reservation_id=reservation_id)

        after_commit(session, release)
    return rows


async def release(
    session: AsyncSession,
    principal: Principal,
    journey: GoldLeadJourney,
    *,
    return_to_automation: bool,
    sequence_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """End the takeover; with ``return_to_automation`` the lead goes back into a sequence (the
    one given, else its last one, else the tenant's default), resuming where it stopped."""
    if not journey.is_human_controlled:
        raise Conflict("the lead is not under human control", code="NOT_HUMAN_CONTROLLED")
    if sequence_id is not None and not return_to_automation:
        raise ValidationFailed(
            "sequenceId only makes sense with returnToAutomation: true", details={"field": "sequenceId"}
        )
    before = control_view(journey)
    journey.is_human_controlled = False
    journey.human_controlled_by = None
    journey.human_controlled_at = None
    journey.human_control_reason = None
    sequence_info: dict[str, Any] | None = None
    if return_to_automation:
        if journey.current_state in NOT_AUTOMATABLE:
            raise Conflict(
                f"a {journey.current_state.value} lead cannot go back to automation",
                code="LEAD_NOT_AUTOMATABLE",
                details={"currentState": journey.current_state.value},
            )
        sequence = await _sequence_to_resume(session, journey, sequence_id)
        enrollment = await _resume_or_enroll(session, journey, sequence)
        sequence_info = {
            "id": str(sequence.id),
            "name": sequence.name,
            "enrollmentId": str(enrollment.id),
            "currentStep": enrollment.current_step,
            "nextStepAt": _iso(enrollment.next_step_at),
        }
    await session.flush()
    after = {**control_view(journey), "returnedToAutomation": return_to_automation, "sequence": sequence_info}
    await record_audit(
        session,
        principal,
        "lead.release",
        entity_type="lead",
        entity_id=journey.id,
        before=before,
        after=after,
    )
    return after


async def _sequence_to_resume(
    session: AsyncSession, journey: GoldLeadJourney, sequence_id: uuid.UUID | None
) -> OutreachSequence:
    if sequence_id is not None:
        sequence = (
            await session.execute(
                select(OutreachSequence).where(
                    OutreachSequence.tenant_id == journey.tenant_id, OutreachSequence.id == sequence_id
                )
            )
        ).scalar_one_or_none()
        if sequence is None:
            raise NotFound(f"sequence {sequence_id} not found", details={"field": "sequenceId"})
        if not sequence.is_active:
            raise Conflict("the sequence is not active", code="SEQUENCE_INACTIVE")
        return sequence
    if journey.current_sequence_id is not None:
        current = await session.get(OutreachSequence, journey.current_sequence_id)
        if current is not None and current.is_active:
            return current
    default = await sequences.default_sequence(session, journey.tenant_id)
    if default is None:
        raise Conflict(
            "no active sequence to return to: pass sequenceId or mark a sequence as default",
            code="NO_SEQUENCE",
        )
    return default


async def _resume_or_enroll(
    session: AsyncSession, journey: GoldLeadJourney, sequence: OutreachSequence
) -> SequenceEnrollment:
    """An enrollment of this sequence stopped by the takeover resumes at its next step (a lead in
    conversation never gets step 1 again); otherwise the lead is enrolled afresh."""
    existing = (
        await session.execute(
            select(SequenceEnrollment).where(
                SequenceEnrollment.lead_journey_id == journey.id,
                SequenceEnrollment.sequence_id == sequence.id,
            )
        )
    ).scalar_one_or_none()
    if existing is None:
        return await sequences.enroll(session, journey, sequence)
    now = utcnow()
    due = _clock().next_opening(now) if sequence.respect_business_hours else now
    existing.status = EnrollmentStatus.ACTIVE
    existing.stopped_at = None
    existing.stop_reason = None
    existing.completed_at = None
    existing.next_step_at = due
    existing.total_steps = len(await sequences.active_steps(session, sequence.id))
    journey.current_sequence_id = sequence.id
    journey.sequence_step = existing.current_step
    journey.sequence_paused = False
    journey.next_action_at = due
    await session.flush()
    return existing


# ---------------------------------------------------------------------------------------------
# Operators' messages


async def _phone_for_send(
    session: AsyncSession, journey: GoldLeadJourney, clock: BusinessClock, now: datetime
) -> tuple[WaPhoneNumber, bool]:
    """The phone a WhatsApp message of this lead goes from, and whether it is a new contact.
    A lead without a phone gets the active phone with the most quota left (sticky from now)."""
    new_contact = not await messaging_repository.had_whatsapp_contact(session, journey.id, None)
    if journey.assigned_phone_id is not None:
        phone = await phones_repository.get_phone(session, journey.tenant_id, journey.assigned_phone_id)
        if phone is None:
            raise Conflict("the lead's phone no longer exists", code="PHONE_NOT_ACTIVE")
        if phone.status != PhoneStatus.ACTIVE or not phone.is_enabled:
            raise Conflict(
                f"the lead's phone {phone.id} is {phone.status.value if phone.is_enabled else 'disabled'}; "
                "move the lead to an active phone first",
                code="PHONE_NOT_ACTIVE",
                details={
                    "phoneId": phone.id,
                    "status": phone.status.value,
                    "isEnabled": phone.is_enabled,
                    "fix": f"POST /api/v1/outreach/leads/{journey.id}/reassign-phone",
                },
            )
        if new_contact:
            await _check_quota(session, journey, phone, clock, now)
        return phone, new_contact
    candidates = await _active_phones(session, journey.tenant_id)
    if not candidates:
        raise Conflict("no ACTIVE phone to send from", code="NO_ACTIVE_PHONE")
    remaining = await _remaining(session, candidates, clock, now)
    best = max(candidates, key=lambda p: (remaining[p.id], -p.priority, -len(p.id)))
    if new_contact:
        await _check_quota(session, journey, best, clock, now, remaining=remaining)
    journey.assigned_phone_id = best.id
    journey.assigned_at = now
    return best, new_contact


async def _active_phones(session: AsyncSession, tenant_id: uuid.UUID) -> list[WaPhoneNumber]:
    return await phones_repository.list_phones(session, tenant_id, status=PhoneStatus.ACTIVE, is_enabled=True)


async def _remaining(
    session: AsyncSession, phones: list[WaPhoneNumber], clock: BusinessClock, now: datetime
) -> dict[str, int]:
    """New contacts each phone may still take today (spent in Redis, promised to queued rows)."""
    return await remaining_quota(
        session, {p.id: p.daily_quota_limit for p in phones}, clock.business_day(now)
    )


async def _check_quota(
    session: AsyncSession,
    journey: GoldLeadJourney,
    phone: WaPhoneNumber,
    clock: BusinessClock,
    now: datetime,
    *,
    remaining: dict[str, int] | None = None,
) -> None:
    active = await _active_phones(session, journey.tenant_id)
    if phone.id not in {p.id for p in active}:
        active.append(phone)
    left = remaining if remaining is not None else await _remaining(session, active, clock, now)
    if left.get(phone.id, 0) > 0:
        return
    alternative = [p.id for p in active if p.id != phone.id and left.get(p.id, 0) > 0]
    raise QuotaExceeded(
        f"phone {phone.id} has used its {phone.daily_quota_limit} new contacts for today",
        details={
            "phoneId": phone.id,
            "quotaUsed": phone.daily_quota_limit - left.get(phone.id, 0),
            "quotaLimit": phone.daily_quota_limit,
            "resetAt": clock.local_midnight_after(now).isoformat(),
            "alternativePhoneAvailable": bool(alternative),
            "alternativePhoneIds": alternative[:5],
        },
    )


async def send_message(
    session: AsyncSession,
    principal: Principal,
    journey: GoldLeadJourney,
    *,
    channel: Channel,
    content: str,
    subject: str | None = None,
    template_id: uuid.UUID | None = None,
    scheduled_at: datetime | None = None,
) -> dict[str, Any]:
    """An operator's own message to the lead, queued through the send path (origin OPERATOR).
    See the module docstring for the rules; returns ``{messageId, status, scheduledAt, ...}``."""
    from cerniq.reviews.service import email_subject

    if channel not in (Channel.WHATSAPP, Channel.EMAIL_WARM):
        raise ValidationFailed("channel is WHATSAPP or EMAIL_WARM", details={"field": "channel"})
    text = content.strip()
    if not text:
        raise ValidationFailed("the message is empty", details={"field": "content"})
    now = utcnow()
    clock = _clock()
    if scheduled_at is not None:
        if scheduled_at.tzinfo is None:
            raise ValidationFailed(
                "scheduledAt needs a timezone (e.g. 2026-01-19T09:30:00Z)", details={"field": "scheduledAt"}
            )
        if scheduled_at <= now + SCHEDULE_SKEW:
            raise ValidationFailed("scheduledAt must be in the future", details={"field": "scheduledAt"})
        if channel == Channel.WHATSAPP and not clock.is_open(scheduled_at):
            raise ValidationFailed(
                "scheduledAt is outside business hours (09:00-18:00 Europe/Bucharest, working days)",
                code="OUTSIDE_BUSINESS_HOURS",
                details={"field": "scheduledAt", "nextOpening": clock.next_opening(scheduled_at).isoformat()},
            )
    if template_id is not None:
        template = (
            await session.execute(
                select(OutreachTemplate).where(
                    OutreachTemplate.tenant_id == journey.tenant_id, OutreachTemplate.id == template_id
                )
            )
        ).scalar_one_or_none()
        if template is None:
            raise ValidationFailed("no such template in this tenant", details={"field": "templateId"})
    if await emergency_stop(session) is not None:
        raise EmergencyStopActive("the emergency stop is active: nothing is sent until it is lifted")

    phone_id: str | None = None
    new_contact = False
    if channel == Channel.EMAIL_WARM:
        if journey.current_state not in WARM_STATES:
            raise Conflict(
                "warm email is only for leads that replied (WARM_REPLY or NEGOTIATION)",
                code="LEAD_NOT_WARM",
                details={
                    "currentState": journey.current_state.value,
                    "allowed": [s.value for s in WARM_STATES],
                },
            )
        subject = await email_subject(session, journey, subject)
    else:
        subject = None
        if journey.whatsapp_opted_out:
            raise Conflict("the lead opted out of WhatsApp", code="OPTED_OUT")
        if not journey.mobile_e164 or journey.whatsapp_invalid:
            raise ValidationFailed("the lead has no usable WhatsApp number", code="NO_WHATSAPP_ROUTE")
        phone, new_contact = await _phone_for_send(session, journey, clock, now)
        phone_id = phone.id
    message = await queue_message(
        session,
        journey,
        channel=channel,
        content=text,
        origin=OPERATOR,
        subject=subject,
        phone_id=phone_id,
        template_id=template_id,
        scheduled_at=scheduled_at,
        created_by=principal.actor,
        new_contact=new_contact,
    )
    effective = scheduled_at
    if effective is None and channel == Channel.WHATSAPP and not clock.is_open(now):
        effective = clock.next_opening(now)
    result = {
        "messageId": str(message.id),
        "status": message.status.value,
        "scheduledAt": _iso(effective),
        "channel": channel.value,
        "phoneId": phone_id,
        "subject": subject,
        "newContact": new_contact,
        "isHumanControlled": journey.is_human_controlled,
    }
    await record_audit(
        session,
        principal,
        "lead.send_message",
        entity_type="lead",
        entity_id=journey.id,
        after={**result, "chars": len(text)},
    )
    return result


# ---------------------------------------------------------------------------------------------
# Phone reassignment (runbook 5.3 step 3)


async def reassign_phone(
    session: AsyncSession,
    principal: Principal,
    journey: GoldLeadJourney,
    *,
    phone_id: str | None = None,
) -> dict[str, Any]:
    """Move the lead to ``phone_id`` (an ACTIVE phone of the tenant) or to the ACTIVE phone with
    the most new-contact quota left. The WhatsApp chat id is cleared (the new number starts its
    own chat); the lead's queued WhatsApp messages move to the new phone's queue."""
    now = utcnow()
    old = journey.assigned_phone_id
    if phone_id is not None:
        target = await phones_repository.get_phone(session, journey.tenant_id, phone_id)
        if target is None:
            raise NotFound(f"phone {phone_id!r} not found", details={"field": "phoneId"})
        if target.status != PhoneStatus.ACTIVE or not target.is_enabled:
            raise Conflict(
                f"phone {target.id} is "
                f"{target.status.value if target.is_enabled else 'disabled'}, not ACTIVE",
                code="PHONE_NOT_ACTIVE",
                details={"phoneId": target.id, "status": target.status.value},
            )
    else:
        candidates = [p for p in await _active_phones(session, journey.tenant_id) if p.id != old]
        if not candidates:
            raise Conflict("no other ACTIVE phone to move the lead to", code="NO_ACTIVE_PHONE")
        remaining = await _remaining(session, candidates, _clock(), now)
        target = max(candidates, key=lambda p: (remaining[p.id], -p.priority, -len(p.id)))
    before = {"assignedPhoneId": old, "waChatId": journey.wa_chat_id}
    journey.assigned_phone_id = target.id
    journey.assigned_at = now
    journey.wa_chat_id = None
    moved = await _move_queued(session, journey.id, target.id, now)
    await session.flush()
    after = {"assignedPhoneId": target.id, "waChatId": None, "messagesMoved": len(moved)}
    await record_audit(
        session,
        principal,
        "lead.reassign_phone",
        entity_type="lead",
        entity_id=journey.id,
        before=before,
        after=after,
    )
    return {
        "leadId": str(journey.id),
        "assignedPhone": {"id": target.id, "label": target.phone_label, "status": target.status.value},
        "previousPhoneId": old,
        "messagesMoved": len(moved),
    }


async def _move_queued(
    session: AsyncSession, journey_id: uuid.UUID, phone_id: str, now: datetime
) -> list[GoldCommunicationLog]:
    """Re-point the lead's QUEUED WhatsApp messages at ``phone_id``; after commit their old jobs
    are removed, quota held on the old phone given back and new jobs queued on the new phone."""
    rows = list(
        (
            await session.execute(
                select(GoldCommunicationLog)
                .where(
                    GoldCommunicationLog.lead_journey_id == journey_id,
                    GoldCommunicationLog.direction == Direction.OUTBOUND,
                    GoldCommunicationLog.channel == Channel.WHATSAPP,
                    GoldCommunicationLog.status == MessageStatus.QUEUED,
                    GoldCommunicationLog.phone_id != phone_id,
                )
                .with_for_update()
            )
        ).scalars()
    )
    old_jobs: list[tuple[str, str, Any]] = []
    for message in rows:
        if message.phone_id:
            old_jobs.append((message.phone_id, str(message.id), message.quota_date))
        message.phone_id = phone_id
        message.thread_id = None
        message.quota_date = None
        message.quota_cost = 0
        message.status_updated_at = now
        enqueue_message_after_commit(session, message)
    if old_jobs:

        async def cleanup() -> None:
            guardian = QuotaGuardian(get_redis())
            for old_phone, message_id, day in old_jobs:
                try:
                    await get_queue(phone_queue(old_phone)).remove(job_id("wa", message_id))
                except Exception:  # noqa: S110 - an active job re-reads the row and follows it
                    pass
                if day is not None:
                    await guardian.release(phone_id=old_phone, day=day, reservation_id=message_id)

        after_commit(session, cleanup)
    return rows
