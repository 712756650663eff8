"""Where a lead is in its sequence and when its next step is due.

The dispatcher asks :func:`next_step` what to send; the send path calls :func:`after_send` once a
step went out, which schedules the following step on the business clock (``next_action_at``) or
completes the enrollment. :func:`stop` ends a lead's sequences (reply, takeover, opt-out, bounce).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

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


@dataclass(frozen=True)
class StepPlan:
    """The step to send now, with its template."""

    enrollment: SequenceEnrollment
    sequence: OutreachSequence
    step: OutreachSequenceStep
    template: OutreachTemplate | None

    @property
    def channel(self) -> Channel:
        return self.step.channel

    @property
    def content(self) -> str:
        if self.step.content_override:
            return self.step.content_override
        return self.template.content if self.template is not None else ""

    @property
    def subject(self) -> str | None:
        return self.step.subject_override or (self.template.subject if self.template else None)


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
) -> SequenceEnrollment:
    """Enroll ``journey`` in ``sequence``; its first step is due after the step's delay."""
    steps = await active_steps(session, sequence.id)
    enrollment = SequenceEnrollment(
        id=uuid.uuid4(),
        tenant_id=journey.tenant_id,
        lead_journey_id=journey.id,
        sequence_id=sequence.id,
        current_step=max(start_step - 1, 0),
        total_steps=len(steps),
        status=EnrollmentStatus.ACTIVE,
    )
    session.add(enrollment)
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
    sequence.total_enrolled += 1
    await session.flush()
    return enrollment


async def next_step(
    session: AsyncSession, journey: GoldLeadJourney, *, auto_enroll: bool = True
) -> StepPlan | None:
    """The step due for ``journey`` now, enrolling it in the tenant's default sequence if it has
    never been enrolled. None when there is nothing left to send."""
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
    step = next((s for s in steps if s.step_number > enrollment.current_step), None)
    if step is None:
        await complete(session, journey, enrollment)
        return None
    template = await session.get(OutreachTemplate, step.template_id) if step.template_id else None
    return StepPlan(enrollment=enrollment, sequence=sequence, step=step, template=template)


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
    enrollment = await session.get(SequenceEnrollment, enrollment_id)
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
    sequence = await session.get(OutreachSequence, enrollment.sequence_id)
    due = sent_at + step_delay(following)
    if sequence is None or sequence.respect_business_hours:
        due = BusinessClock.from_settings(get_settings()).next_opening(due)
    enrollment.next_step_at = due
    journey.next_action_at = due


async def complete(session: AsyncSession, journey: GoldLeadJourney, enrollment: SequenceEnrollment) -> None:
    enrollment.status = EnrollmentStatus.COMPLETED
    enrollment.completed_at = utcnow()
    enrollment.next_step_at = None
    journey.next_action_at = None
    sequence = await session.get(OutreachSequence, enrollment.sequence_id)
    if sequence is not None:
        sequence.total_completed += 1


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
