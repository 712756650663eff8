"""Where a lead is in its sequence and when its next step is due.

The dispatcher asks :func:`next_step` what to send; the send path calls :func:`after_send` once a
step went out, which schedules the following step on the business clock (``next_action_at``) or
completes the enrollment. :func:`stop` ends a lead's sequences (reply, takeover, opt-out, bounce).

:func:`resolve_step` applies the steps' skip conditions (``skip_if_replied``: the lead replied
since enrollment; ``skip_if_opened``: an email of the enrollment was opened): a skipped step
counts as done and the following one is scheduled its delay after the skip. :func:`with_variant`
picks the A/B text of a step for one message. :func:`on_reply`, :func:`on_open` and
:func:`on_bounce` are what the inbound side calls so that ``stop_on_reply`` / ``stop_on_bounce``
hold.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.config import get_settings
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.models import (
    GoldLeadJourney,
    OutreachSequence,
    OutreachSequenceStep,
    OutreachTemplate,
    SequenceEnrollment,
)
from cerniq.models.enums import Channel, EnrollmentStatus
from cerniq.sequences import repository


@dataclass(frozen=True, kw_only=True)
class StepText:
    """A planned step and its text: the channel, text and subject are the step's override, else
    the A/B variant picked for the message (:func:`with_variant`), else the template's. The base
    of :class:`StepPlan` and of dispatch's own plan of a batch, which differ in how they hold
    the enrollment."""

    sequence: OutreachSequence
    step: OutreachSequenceStep
    template: OutreachTemplate | None
    # Set by with_variant(): the A/B text picked for one message and its template_versions row.
    variant_content: str | None = None
    variant_subject: str | None = None
    version_id: uuid.UUID | None = None

    @property
    def channel(self) -> Channel:
        return self.step.channel

    @property
    def content(self) -> str:
        if self.step.content_override:
            return self.step.content_override
        if self.variant_content is not None:
            return self.variant_content
        return self.template.content if self.template is not None else ""

    @property
    def subject(self) -> str | None:
        if self.step.subject_override:
            return self.step.subject_override
        if self.variant_content is not None:
            return self.variant_subject
        return self.template.subject if self.template else None


@dataclass(frozen=True, kw_only=True)
class StepPlan(StepText):
    """The step to send now, with its template."""

    enrollment: SequenceEnrollment


Plan = TypeVar("Plan", bound=StepText)


async def with_variant(source: Any, plan: Plan, seed: object) -> Plan:
    """``plan`` with the text of one message picked among the template's current text and its
    live A/B variants (deterministic for ``seed``, the message id), and ``version_id`` set for
    the log row's ``template_version_id``. A step with a content override keeps it (no variant).
    ``source`` is an AsyncSession, a :class:`cerniq.templates.service.VariantCache` or an
    object with a ``session`` attribute."""
    if plan.template is None or plan.step.content_override:
        return plan
    from cerniq.templates.service import pick_variant

    picked = await pick_variant(source, plan.template, seed)
    return replace(
        plan, variant_content=picked.content, variant_subject=picked.subject, version_id=picked.version_id
    )


@dataclass(frozen=True)
class StepDecision:
    """What an enrollment does now: send ``step``, or nothing (``completed``, or rescheduled to
    ``next_at`` after skipping ``skipped`` steps)."""

    step: OutreachSequenceStep | None
    skipped: tuple[int, ...] = ()
    completed: bool = False
    next_at: datetime | None = None


async def skip_reason(
    session: AsyncSession,
    journey: GoldLeadJourney,
    enrollment: SequenceEnrollment,
    step: OutreachSequenceStep,
    *,
    last_inbound: Mapping[uuid.UUID, datetime] | None = None,
) -> str | None:
    """``REPLIED`` or ``OPENED`` when the step's skip condition holds, else None.

    ``last_inbound`` (from :func:`repository.last_inbound_many`, for a batch) saves the
    per-lead query for inbound messages: a lead absent from it never wrote to us."""
    if step.skip_if_replied:
        since = enrollment.enrolled_at
        if enrollment.replies > 0 or (
            journey.last_reply_at is not None and since is not None and journey.last_reply_at >= since
        ):
            return "REPLIED"
        if since is not None:
            if last_inbound is not None:
                last = last_inbound.get(journey.id)
                if last is not None and last >= since:
                    return "REPLIED"
            elif await repository.replied_since(session, journey.id, since):
                return "REPLIED"
    if step.skip_if_opened and (
        enrollment.opens > 0 or await repository.enrollment_opened(session, enrollment.id)
    ):
        return "OPENED"
    return None


async def resolve_step(
    session: AsyncSession,
    journey: GoldLeadJourney,
    enrollment: SequenceEnrollment,
    sequence: OutreachSequence,
    steps: Sequence[OutreachSequenceStep],
    *,
    now: datetime | None = None,
    last_inbound: Mapping[uuid.UUID, datetime] | None = None,
) -> StepDecision:
    """The step of ``enrollment`` due now, after applying skip conditions.

    A skipped step counts as done (``current_step`` moves past it). The following step is then
    due its own delay after the skip, on the business clock when the sequence respects business
    hours; when that is later than ``now`` the enrollment and ``journey.next_action_at`` are
    rescheduled and nothing is sent now (callers must not clear ``next_action_at`` then). With no
    step left the enrollment completes.
    """
    now = now or utcnow()
    skipped: list[int] = []
    while True:
        step = next((s for s in steps if s.step_number > enrollment.current_step), None)
        if step is None:
            await complete(session, journey, enrollment)
            return StepDecision(None, tuple(skipped), completed=True)
        if await skip_reason(session, journey, enrollment, step, last_inbound=last_inbound) is None:
            return StepDecision(step, tuple(skipped))
        skipped.append(step.step_number)
        enrollment.current_step = step.step_number
        journey.sequence_step = step.step_number
        following = next((s for s in steps if s.step_number > step.step_number), None)
        if following is None:
            await complete(session, journey, enrollment)
            return StepDecision(None, tuple(skipped), completed=True)
        due = now + step_delay(following)
        if sequence.respect_business_hours:
            due = BusinessClock.from_settings(get_settings()).next_opening(due)
        if due > now:
            enrollment.next_step_at = due
            journey.next_action_at = due
            return StepDecision(None, tuple(skipped), next_at=due)


def step_delay(step: OutreachSequenceStep) -> timedelta:
    return timedelta(hours=step.delay_hours, minutes=step.delay_minutes)


async def default_sequence(session: AsyncSession, tenant_id: uuid.UUID) -> OutreachSequence | None:
    query = (
        select(OutreachSequence)
        .where(
            OutreachSequence.tenant_id == tenant_id,
            OutreachSequence.is_default.is_(True),
            OutreachSequence.is_active.is_(True),
        )
        .order_by(OutreachSequence.created_at)
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def active_steps(session: AsyncSession, sequence_id: uuid.UUID) -> list[OutreachSequenceStep]:
    query = (
        select(OutreachSequenceStep)
        .where(OutreachSequenceStep.sequence_id == sequence_id, OutreachSequenceStep.is_active.is_(True))
        .order_by(OutreachSequenceStep.step_number)
    )
    return list((await session.execute(query)).scalars())


async def active_enrollment(session: AsyncSession, journey_id: uuid.UUID) -> SequenceEnrollment | None:
    query = (
        select(SequenceEnrollment)
        .where(
            SequenceEnrollment.lead_journey_id == journey_id,
            SequenceEnrollment.status == EnrollmentStatus.ACTIVE,
        )
        .order_by(SequenceEnrollment.enrolled_at.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def has_any_enrollment(session: AsyncSession, journey_id: uuid.UUID) -> bool:
    query = select(SequenceEnrollment.id).where(SequenceEnrollment.lead_journey_id == journey_id).limit(1)
    return (await session.execute(query)).first() is not None


async def enroll(
    session: AsyncSession,
    journey: GoldLeadJourney,
    sequence: OutreachSequence,
    *,
    start_at: datetime | None = None,
    start_step: int = 1,
    steps: Sequence[OutreachSequenceStep] | None = None,
) -> SequenceEnrollment:
    """Enroll ``journey`` in ``sequence``; its first step is due after the step's delay.

    A lead enrolled in this sequence before (completed or stopped) restarts on its existing
    row (one row per lead and sequence). ``steps`` saves a query when the caller has them.
    """
    steps = list(steps) if steps is not None else await active_steps(session, sequence.id)
    enrollment = await repository.enrollment_of(session, journey.id, sequence.id)
    if enrollment is None:
        enrollment = SequenceEnrollment(
            id=uuid.uuid4(), tenant_id=journey.tenant_id, lead_journey_id=journey.id
        )
        enrollment.sequence_id = sequence.id
        session.add(enrollment)
    enrollment.current_step = max(start_step - 1, 0)
    enrollment.total_steps = len(steps)
    enrollment.status = EnrollmentStatus.ACTIVE
    enrollment.enrolled_at = utcnow()
    enrollment.completed_at = None
    enrollment.stopped_at = None
    enrollment.stop_reason = None
    enrollment.messages_sent = 0
    enrollment.opens = 0
    enrollment.clicks = 0
    enrollment.replies = 0
    first = next((s for s in steps if s.step_number >= start_step), None)
    start = start_at or utcnow()
    due = (
        start + step_delay(first)
        if first is not None and first.step_number == 1 and start_step == 1
        else start
    )
    if sequence.respect_business_hours:
        due = BusinessClock.from_settings(get_settings()).next_opening(due)
    enrollment.next_step_at = due
    journey.current_sequence_id = sequence.id
    journey.sequence_step = max(start_step - 1, 0)
    journey.sequence_started_at = start
    journey.sequence_paused = False
    journey.next_action_at = due
    await session.flush()
    await repository.count_sequence(session, sequence.id, enrolled=1)
    return enrollment


async def next_step(
    session: AsyncSession, journey: GoldLeadJourney, *, auto_enroll: bool = True, seed: object = None
) -> StepPlan | None:
    """The step due for ``journey`` now, enrolling it in the tenant's default sequence if it has
    never been enrolled. None when there is nothing to send now: nothing left (the enrollment
    completes), or the due step was skipped and the next one rescheduled (see
    :func:`resolve_step`). With ``seed`` (the message id) the A/B text is picked too."""
    enrollment = await active_enrollment(session, journey.id)
    if enrollment is None:
        if not auto_enroll or await has_any_enrollment(session, journey.id):
            return None
        sequence = await default_sequence(session, journey.tenant_id)
        if sequence is None:
            return None
        enrollment = await enroll(session, journey, sequence, start_at=utcnow() - timedelta(days=1))
    sequence = await session.get(OutreachSequence, enrollment.sequence_id)
    if sequence is None or not sequence.is_active:
        return None
    steps = await active_steps(session, sequence.id)
    decision = await resolve_step(session, journey, enrollment, sequence, steps)
    if decision.step is None:
        return None
    step = decision.step
    template = await session.get(OutreachTemplate, step.template_id) if step.template_id else None
    plan = StepPlan(enrollment=enrollment, sequence=sequence, step=step, template=template)
    if seed is not None:
        plan = await with_variant(session, plan, seed)
    return plan


async def after_send(
    session: AsyncSession,
    journey: GoldLeadJourney,
    *,
    enrollment_id: uuid.UUID | None,
    step_number: int | None,
    sent_at: datetime,
) -> None:
    """Record that ``step_number`` went out and schedule the next step (or complete)."""
    if enrollment_id is None or step_number is None:
        journey.next_action_at = None
        return
    found = (
        await session.execute(
            select(SequenceEnrollment, OutreachSequence)
            .outerjoin(OutreachSequence, OutreachSequence.id == SequenceEnrollment.sequence_id)
            .where(SequenceEnrollment.id == enrollment_id)
        )
    ).one_or_none()
    enrollment, sequence = (found[0], found[1]) if found is not None else (None, None)
    if enrollment is None or enrollment.status != EnrollmentStatus.ACTIVE:
        journey.next_action_at = None
        return
    enrollment.current_step = max(enrollment.current_step, step_number)
    enrollment.messages_sent += 1
    journey.sequence_step = enrollment.current_step
    steps = await active_steps(session, enrollment.sequence_id)
    following = next((s for s in steps if s.step_number > step_number), None)
    if following is None:
        await complete(session, journey, enrollment)
        return
    due = sent_at + step_delay(following)
    if sequence is None or sequence.respect_business_hours:
        due = BusinessClock.from_settings(get_settings()).next_opening(due)
    enrollment.next_step_at = due
    journey.next_action_at = due


@dataclass(frozen=True, slots=True)
class SentStep:
    """What :func:`after_send` reads about the enrollment of a sent message, fetched by the send
    path with its row lock (:func:`cerniq.sequences.repository.following_step`)."""

    enrollment_status: EnrollmentStatus | None
    """The enrollment's status; None when there is no such enrollment."""
    sequence_found: bool
    respect_business_hours: bool
    next_delay: timedelta | None
    """The delay of the first active step after the sent one; None when it was the last."""


@dataclass(frozen=True, slots=True)
class KnownSend:
    """One sent message for :func:`after_send_known_many`: its lead (locked by the caller), its
    enrollment and step, when it went, and what the caller read about the enrollment."""

    journey: GoldLeadJourney
    enrollment_id: uuid.UUID | None
    step_number: int | None
    sent_at: datetime
    known: SentStep


async def after_send_known_many(session: AsyncSession, sends: Sequence[KnownSend]) -> None:
    """:func:`after_send` for sent messages, from what the caller already read (``known``):
    the same result, with one UPDATE of the enrollments instead of loading each one and its
    sequence's steps. A last step (the enrollment completes) takes :func:`after_send` itself."""
    advancing: list[tuple[KnownSend, int, datetime]] = []
    clock: BusinessClock | None = None
    for send in sends:
        known, journey = send.known, send.journey
        if (
            send.enrollment_id is None
            or send.step_number is None
            or known.enrollment_status != EnrollmentStatus.ACTIVE
        ):
            journey.next_action_at = None
            continue
        if known.next_delay is None:
            await after_send(
                session,
                journey,
                enrollment_id=send.enrollment_id,
                step_number=send.step_number,
                sent_at=send.sent_at,
            )
            continue
        due = send.sent_at + known.next_delay
        if not known.sequence_found or known.respect_business_hours:
            clock = clock or BusinessClock.from_settings(get_settings())
            due = clock.next_opening(due)
        advancing.append((send, send.step_number, due))
    current = await repository.advance_enrollments(
        session, [(send.enrollment_id, step, due) for send, step, due in advancing if send.enrollment_id]
    )
    for send, _step, due in advancing:
        step = current.get(send.enrollment_id) if send.enrollment_id else None
        if step is None:  # deleted since it was read (under the caller's lock of the lead)
            send.journey.next_action_at = None
            continue
        send.journey.sequence_step = step
        send.journey.next_action_at = due


async def complete(session: AsyncSession, journey: GoldLeadJourney, enrollment: SequenceEnrollment) -> None:
    """No step is left: the enrollment is COMPLETED and nothing more is due."""
    if enrollment.status == EnrollmentStatus.COMPLETED:
        journey.next_action_at = None
        return
    enrollment.status = EnrollmentStatus.COMPLETED
    enrollment.completed_at = utcnow()
    enrollment.next_step_at = None
    journey.next_action_at = None
    await repository.count_sequence(session, enrollment.sequence_id, completed=1)


async def stop(session: AsyncSession, journey: GoldLeadJourney, reason: str) -> int:
    """Stop every active sequence of ``journey`` (reply, takeover, opt-out, bounce, ...)."""
    result = await session.execute(
        update(SequenceEnrollment)
        .where(
            SequenceEnrollment.lead_journey_id == journey.id,
            SequenceEnrollment.status.in_((EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED)),
        )
        .values(status=EnrollmentStatus.STOPPED, stopped_at=utcnow(), stop_reason=reason, next_step_at=None)
    )
    journey.next_action_at = None
    journey.sequence_paused = True
    return int(getattr(result, "rowcount", 0) or 0)


async def _latest_enrollment(session: AsyncSession, journey: GoldLeadJourney) -> SequenceEnrollment | None:
    enrollment = await active_enrollment(session, journey.id)
    if enrollment is not None:
        return enrollment
    query = (
        select(SequenceEnrollment)
        .where(SequenceEnrollment.lead_journey_id == journey.id)
        .order_by(SequenceEnrollment.enrolled_at.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def on_reply(session: AsyncSession, journey: GoldLeadJourney) -> bool:
    """The lead replied: count it on its enrollment and, when the sequence stops on reply, stop
    the lead's sequences (reason ``LEAD_REPLIED``, as the reply pipeline writes). Returns True
    when sequences were stopped.
    Call once per inbound reply, in the transaction that records it."""
    enrollment = await _latest_enrollment(session, journey)
    if enrollment is None:
        return False
    enrollment.replies += 1
    if enrollment.status != EnrollmentStatus.ACTIVE:
        return False
    sequence = await session.get(OutreachSequence, enrollment.sequence_id)
    if sequence is None or sequence.stop_on_reply:
        return await stop(session, journey, "LEAD_REPLIED") > 0
    return False


async def on_bounce(session: AsyncSession, journey: GoldLeadJourney) -> bool:
    """An email to the lead bounced: stop its sequences when the sequence stops on bounce."""
    enrollment = await active_enrollment(session, journey.id)
    if enrollment is None:
        return False
    sequence = await session.get(OutreachSequence, enrollment.sequence_id)
    if sequence is None or sequence.stop_on_bounce:
        return await stop(session, journey, "BOUNCED") > 0
    return False


async def on_open(session: AsyncSession, enrollment_id: uuid.UUID | None) -> None:
    """An email of the enrollment was opened (feeds ``skip_if_opened`` and the stats)."""
    if enrollment_id is None:
        return
    enrollment = await session.get(SequenceEnrollment, enrollment_id)
    if enrollment is not None:
        enrollment.opens += 1


async def stop_sequence(session: AsyncSession, sequence_id: uuid.UUID, reason: str) -> int:
    """Stop every open enrollment of one sequence (e.g. it is being deleted); nothing more is
    due for those leads. Returns how many were stopped."""
    # Leads, then enrollments: the order dispatch and the send path take these locks in.
    journeys = await repository.open_enrollment_journeys(session, sequence_id)
    await repository.lock_journeys(session, journeys)
    await repository.clear_next_actions(session, journeys, sequence_id)
    stopped = await repository.stop_enrollments_of_sequence(session, sequence_id, reason, utcnow())
    return len(stopped)


async def resume_sequence(session: AsyncSession, sequence_id: uuid.UUID) -> int:
    """A paused sequence is active again: its open enrollments become due again (dispatch
    cleared their leads' next action while the sequence was inactive). Returns how many."""
    await repository.lock_journeys(session, await repository.open_enrollment_journeys(session, sequence_id))
    return await repository.restore_next_actions(session, sequence_id, utcnow())
