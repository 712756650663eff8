"""SQL for sequences, their steps, enrollments and statistics."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from cerniq.models import (
    GoldCommunicationLog,
    GoldLeadJourney,
    OutreachSequence,
    OutreachSequenceStep,
    SequenceEnrollment,
    SuppressionEntry,
)
from cerniq.models.enums import Channel, Direction, EnrollmentStatus, LeadState, MessageStatus, SequenceStatus

OPEN_ENROLLMENT = (EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED)
SENT_STATUSES = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.READ,
    MessageStatus.REPLIED,
    MessageStatus.OPENED,
    MessageStatus.CLICKED,
)
FAILED_STATUSES = (MessageStatus.FAILED, MessageStatus.BOUNCED, MessageStatus.AMBIGUOUS)
IN_FLIGHT_STATUSES = (MessageStatus.QUEUED, MessageStatus.SENDING)


async def lock_tenant(session: AsyncSession, tenant_id: uuid.UUID, purpose: str) -> None:
    """A transaction-scoped advisory lock per tenant and purpose (one default sequence; seeding)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"cerniq:{purpose}:{tenant_id}"}
    )


# ------------------------------------------------------------------------------------ sequences


async def list_sequences(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    is_active: bool | None = None,
    channels: Sequence[Channel] = (),
    include_archived: bool = False,
    offset: int = 0,
    limit: int = 20,
) -> tuple[list[OutreachSequence], int]:
    conditions: list[Any] = [OutreachSequence.tenant_id == tenant_id]
    if is_active is not None:
        conditions.append(OutreachSequence.is_active.is_(is_active))
    if channels:
        conditions.append(OutreachSequence.primary_channel.in_(channels))
    if not include_archived:
        conditions.append(OutreachSequence.status != SequenceStatus.ARCHIVED)
    total = int(
        (
            await session.execute(select(func.count()).select_from(OutreachSequence).where(*conditions))
        ).scalar_one()
    )
    query = (
        select(OutreachSequence)
        .where(*conditions)
        .order_by(OutreachSequence.is_default.desc(), OutreachSequence.created_at.desc(), OutreachSequence.id)
        .offset(offset)
        .limit(limit)
    )
    return list((await session.execute(query)).scalars()), total


async def all_sequences(session: AsyncSession, tenant_id: uuid.UUID) -> list[OutreachSequence]:
    query = (
        select(OutreachSequence)
        .where(OutreachSequence.tenant_id == tenant_id)
        .order_by(OutreachSequence.created_at, OutreachSequence.id)
    )
    return list((await session.execute(query)).scalars())


async def get_sequence(
    session: AsyncSession, tenant_id: uuid.UUID, sequence_id: uuid.UUID, *, for_update: bool = False
) -> OutreachSequence | None:
    query = select(OutreachSequence).where(
        OutreachSequence.tenant_id == tenant_id, OutreachSequence.id == sequence_id
    )
    if for_update:
        # Refresh what another transaction committed while we waited for the lock.
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one_or_none()


async def get_sequence_by_code(
    session: AsyncSession, tenant_id: uuid.UUID, code: str
) -> OutreachSequence | None:
    query = select(OutreachSequence).where(
        OutreachSequence.tenant_id == tenant_id, OutreachSequence.code == code
    )
    return (await session.execute(query)).scalar_one_or_none()


async def default_of(session: AsyncSession, tenant_id: uuid.UUID) -> list[OutreachSequence]:
    query = select(OutreachSequence).where(
        OutreachSequence.tenant_id == tenant_id, OutreachSequence.is_default.is_(True)
    )
    return list((await session.execute(query)).scalars())


async def clear_defaults(
    session: AsyncSession, tenant_id: uuid.UUID, *, keep: uuid.UUID | None
) -> list[uuid.UUID]:
    """Unset ``is_default`` on every other sequence of the tenant; returns their ids."""
    query = (
        update(OutreachSequence)
        .where(OutreachSequence.tenant_id == tenant_id, OutreachSequence.is_default.is_(True))
        .values(is_default=False)
        .returning(OutreachSequence.id)
        .execution_options(synchronize_session="fetch")
    )
    if keep is not None:
        query = query.where(OutreachSequence.id != keep)
    return [row[0] for row in await session.execute(query)]


async def steps_of(session: AsyncSession, sequence_id: uuid.UUID) -> list[OutreachSequenceStep]:
    query = (
        select(OutreachSequenceStep)
        .where(OutreachSequenceStep.sequence_id == sequence_id)
        .order_by(OutreachSequenceStep.step_number)
    )
    return list((await session.execute(query)).scalars())


async def steps_of_many(
    session: AsyncSession, sequence_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[OutreachSequenceStep]]:
    out: dict[uuid.UUID, list[OutreachSequenceStep]] = {sid: [] for sid in sequence_ids}
    if not sequence_ids:
        return out
    query = (
        select(OutreachSequenceStep)
        .where(OutreachSequenceStep.sequence_id.in_(sequence_ids))
        .order_by(OutreachSequenceStep.sequence_id, OutreachSequenceStep.step_number)
    )
    for step in (await session.execute(query)).scalars():
        out[step.sequence_id].append(step)
    return out


async def delete_steps(session: AsyncSession, sequence_id: uuid.UUID) -> None:
    await session.execute(
        delete(OutreachSequenceStep)
        .where(OutreachSequenceStep.sequence_id == sequence_id)
        .execution_options(synchronize_session="fetch")
    )


# ------------------------------------------------------------------------------------ enrollments


async def journeys_by_keys(
    session: AsyncSession, tenant_id: uuid.UUID, keys: Sequence[uuid.UUID]
) -> list[GoldLeadJourney]:
    """The tenant's journeys whose id or company id is among ``keys``, locked in id order
    (two concurrent enrolments of the same leads serialize instead of deadlocking)."""
    if not keys:
        return []
    query = (
        select(GoldLeadJourney)
        .where(
            GoldLeadJourney.tenant_id == tenant_id,
            or_(GoldLeadJourney.id.in_(keys), GoldLeadJourney.lead_id.in_(keys)),
        )
        .order_by(GoldLeadJourney.id)
        .with_for_update(of=GoldLeadJourney)
    )
    return list((await session.execute(query)).scalars())


async def open_enrollments(
    session: AsyncSession, journey_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, SequenceEnrollment]:
    """The ACTIVE or PAUSED enrollment of each journey (at most one is expected)."""
    if not journey_ids:
        return {}
    query = select(SequenceEnrollment).where(
        SequenceEnrollment.lead_journey_id.in_(journey_ids), SequenceEnrollment.status.in_(OPEN_ENROLLMENT)
    )
    return {e.lead_journey_id: e for e in (await session.execute(query)).scalars()}


async def enrollment_of(
    session: AsyncSession, journey_id: uuid.UUID, sequence_id: uuid.UUID
) -> SequenceEnrollment | None:
    query = select(SequenceEnrollment).where(
        SequenceEnrollment.lead_journey_id == journey_id, SequenceEnrollment.sequence_id == sequence_id
    )
    return (await session.execute(query)).scalar_one_or_none()


async def suppressed_values(
    session: AsyncSession, tenant_id: uuid.UUID, values: Sequence[str]
) -> set[tuple[str, str]]:
    if not values:
        return set()
    query = select(SuppressionEntry.channel, SuppressionEntry.value).where(
        SuppressionEntry.tenant_id == tenant_id, SuppressionEntry.value.in_(values)
    )
    return {(str(row[0]), str(row[1])) for row in await session.execute(query)}


async def set_total_steps(session: AsyncSession, sequence_id: uuid.UUID, total: int) -> None:
    """The open enrollments of a sequence now have ``total`` steps (after its steps changed)."""
    await session.execute(
        update(SequenceEnrollment)
        .where(SequenceEnrollment.sequence_id == sequence_id, SequenceEnrollment.status.in_(OPEN_ENROLLMENT))
        .values(total_steps=total)
        .execution_options(synchronize_session="fetch")
    )


async def count_open_enrollments(session: AsyncSession, sequence_id: uuid.UUID) -> int:
    query = (
        select(func.count())
        .select_from(SequenceEnrollment)
        .where(SequenceEnrollment.sequence_id == sequence_id, SequenceEnrollment.status.in_(OPEN_ENROLLMENT))
    )
    return int((await session.execute(query)).scalar_one())


async def open_enrollment_journeys(session: AsyncSession, sequence_id: uuid.UUID) -> list[uuid.UUID]:
    query = (
        select(SequenceEnrollment.lead_journey_id)
        .where(SequenceEnrollment.sequence_id == sequence_id, SequenceEnrollment.status.in_(OPEN_ENROLLMENT))
        .order_by(SequenceEnrollment.lead_journey_id)
    )
    return [row[0] for row in await session.execute(query)]


async def lock_journeys(session: AsyncSession, journey_ids: Sequence[uuid.UUID]) -> None:
    """Lock journeys in id order (so two such transactions never deadlock each other)."""
    if journey_ids:
        await session.execute(
            select(GoldLeadJourney.id)
            .where(GoldLeadJourney.id.in_(journey_ids))
            .order_by(GoldLeadJourney.id)
            .with_for_update()
        )


async def stop_enrollments_of_sequence(
    session: AsyncSession, sequence_id: uuid.UUID, reason: str, at: datetime
) -> list[uuid.UUID]:
    """Stop every open enrollment of a sequence; returns the journeys'."""
    query = (
        update(SequenceEnrollment)
        .where(SequenceEnrollment.sequence_id == sequence_id, SequenceEnrollment.status.in_(OPEN_ENROLLMENT))
        .values(status=EnrollmentStatus.STOPPED, stopped_at=at, stop_reason=reason, next_step_at=None)
        .returning(SequenceEnrollment.lead_journey_id)
        .execution_options(synchronize_session="fetch")
    )
    return [row[0] for row in await session.execute(query)]


async def clear_next_actions(
    session: AsyncSession, journey_ids: Sequence[uuid.UUID], sequence_id: uuid.UUID
) -> None:
    """Nothing is due any more for these journeys (their enrollment in ``sequence_id`` stopped)."""
    if not journey_ids:
        return
    await session.execute(
        update(GoldLeadJourney)
        .where(GoldLeadJourney.id.in_(journey_ids), GoldLeadJourney.current_sequence_id == sequence_id)
        .values(next_action_at=None)
        .execution_options(synchronize_session="fetch")
    )


async def restore_next_actions(session: AsyncSession, sequence_id: uuid.UUID, now: datetime) -> int:
    """After a pause, make the open enrollments of a sequence due again: a journey whose next
    action was cleared while the sequence was inactive gets its enrollment's due time (or now)."""
    in_flight = exists().where(
        and_(
            GoldCommunicationLog.lead_journey_id == GoldLeadJourney.id,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.status.in_(IN_FLIGHT_STATUSES),
        )
    )
    due = func.coalesce(SequenceEnrollment.next_step_at, now)
    query = (
        update(GoldLeadJourney)
        .where(
            SequenceEnrollment.lead_journey_id == GoldLeadJourney.id,
            SequenceEnrollment.sequence_id == sequence_id,
            SequenceEnrollment.status == EnrollmentStatus.ACTIVE,
            GoldLeadJourney.next_action_at.is_(None),
            ~in_flight,
        )
        .values(next_action_at=due)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(query)
    return int(getattr(result, "rowcount", 0) or 0)


# ------------------------------------------------------------------------------------ step conditions


async def replied_since(session: AsyncSession, journey_id: uuid.UUID, since: datetime) -> bool:
    """Whether the lead sent us anything since ``since``."""
    query = (
        select(GoldCommunicationLog.id)
        .where(
            GoldCommunicationLog.lead_journey_id == journey_id,
            GoldCommunicationLog.direction == Direction.INBOUND,
            GoldCommunicationLog.created_at >= since,
        )
        .limit(1)
    )
    return (await session.execute(query)).first() is not None


async def last_inbound_many(
    session: AsyncSession, journey_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, datetime]:
    """For a batch of leads: when each last sent us anything (leads that never did are absent).
    One query for the batch instead of :func:`replied_since` per lead."""
    if not journey_ids:
        return {}
    m = GoldCommunicationLog
    query = (
        select(m.lead_journey_id, func.max(m.created_at))
        .where(m.lead_journey_id.in_(journey_ids), m.direction == Direction.INBOUND)
        .group_by(m.lead_journey_id)
    )
    return {row[0]: row[1] for row in await session.execute(query)}


async def enrollment_opened(session: AsyncSession, enrollment_id: uuid.UUID) -> bool:
    """Whether an email sent for this enrollment was opened (or clicked)."""
    query = (
        select(GoldCommunicationLog.id)
        .where(
            GoldCommunicationLog.enrollment_id == enrollment_id,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            or_(
                GoldCommunicationLog.opened_at.is_not(None),
                GoldCommunicationLog.clicked_at.is_not(None),
                GoldCommunicationLog.status.in_((MessageStatus.OPENED, MessageStatus.CLICKED)),
            ),
        )
        .limit(1)
    )
    return (await session.execute(query)).first() is not None


# ------------------------------------------------------------------------------------ statistics


def _replied_condition() -> Any:
    # The enrollment's reply counter (the reply pipeline bumps it) or the lead's last reply after
    # the enrollment: both on the rows already joined, no per-enrollment look into the message
    # log, so the figure stays cheap with millions of enrollments and messages.
    return or_(
        SequenceEnrollment.replies > 0,
        GoldLeadJourney.last_reply_at >= SequenceEnrollment.enrolled_at,
    )


def _contacted_condition() -> Any:
    # after_send counts every message sent for the enrollment, on every channel
    return SequenceEnrollment.messages_sent > 0


def _converted_condition() -> Any:
    return or_(
        GoldLeadJourney.current_state == LeadState.CONVERTED,
        GoldLeadJourney.converted_at >= SequenceEnrollment.enrolled_at,
    )


async def enrollment_stats(
    session: AsyncSession, tenant_id: uuid.UUID, sequence_ids: Sequence[uuid.UUID] | None = None
) -> dict[uuid.UUID, dict[str, Any]]:
    """Per sequence: enrollments, active, paused, completed, stopped, contacted, replied,
    conversions and the average number of steps done."""

    def count_where(condition: Any) -> Any:
        return func.count().filter(condition)

    query = (
        select(
            SequenceEnrollment.sequence_id,
            func.count().label("enrollments"),
            count_where(SequenceEnrollment.status == EnrollmentStatus.ACTIVE).label("active"),
            count_where(SequenceEnrollment.status == EnrollmentStatus.PAUSED).label("paused"),
            count_where(SequenceEnrollment.status == EnrollmentStatus.COMPLETED).label("completed"),
            count_where(SequenceEnrollment.status == EnrollmentStatus.STOPPED).label("stopped"),
            count_where(_contacted_condition()).label("contacted"),
            count_where(_replied_condition()).label("replied"),
            count_where(_converted_condition()).label("conversions"),
            func.coalesce(func.avg(SequenceEnrollment.current_step), 0).label("avg_steps"),
        )
        .join(GoldLeadJourney, GoldLeadJourney.id == SequenceEnrollment.lead_journey_id)
        .where(SequenceEnrollment.tenant_id == tenant_id)
        .group_by(SequenceEnrollment.sequence_id)
    )
    if sequence_ids is not None:
        if not sequence_ids:
            return {}
        query = query.where(SequenceEnrollment.sequence_id.in_(sequence_ids))
    out: dict[uuid.UUID, dict[str, Any]] = {}
    for row in await session.execute(query):
        out[row.sequence_id] = {
            "enrollments": int(row.enrollments),
            "active": int(row.active),
            "paused": int(row.paused),
            "completed": int(row.completed),
            "stopped": int(row.stopped),
            "contacted": int(row.contacted),
            "replied": int(row.replied),
            "conversions": int(row.conversions),
            "avgStepsCompleted": round(float(row.avg_steps), 2),
        }
    return out


async def stopped_by_reason(session: AsyncSession, sequence_id: uuid.UUID) -> dict[str, int]:
    reason = func.coalesce(SequenceEnrollment.stop_reason, literal_column("'UNKNOWN'"))
    query = (
        select(reason, func.count())
        .where(
            SequenceEnrollment.sequence_id == sequence_id,
            SequenceEnrollment.status == EnrollmentStatus.STOPPED,
        )
        .group_by(reason)
    )
    return {str(row[0]): int(row[1]) for row in await session.execute(query)}


async def messages_per_step(
    session: AsyncSession, tenant_id: uuid.UUID, sequence_id: uuid.UUID
) -> dict[int, dict[str, int]]:
    """Outbound messages of a sequence per step: sent, queued (in flight), failed, skipped."""
    bucket = case(
        (GoldCommunicationLog.status.in_(SENT_STATUSES), literal_column("'sent'")),
        (GoldCommunicationLog.status.in_(IN_FLIGHT_STATUSES), literal_column("'queued'")),
        (GoldCommunicationLog.status.in_(FAILED_STATUSES), literal_column("'failed'")),
        else_=literal_column("'skipped'"),
    )
    query = (
        select(GoldCommunicationLog.sequence_step, bucket, func.count())
        .where(
            GoldCommunicationLog.tenant_id == tenant_id,
            GoldCommunicationLog.sequence_id == sequence_id,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
        )
        .group_by(GoldCommunicationLog.sequence_step, bucket)
    )
    out: dict[int, dict[str, int]] = {}
    for step, kind, count in await session.execute(query):
        entry = out.setdefault(int(step or 0), {"sent": 0, "queued": 0, "failed": 0, "skipped": 0})
        entry[str(kind)] += int(count)
    return out


# ------------------------------------------------------------------------------- the send path


def following_step(sequence_id: Any, step_number: Any) -> Any:
    """A LATERAL subquery ``following(delay_hours, delay_minutes)``: the first active step of
    ``sequence_id`` after ``step_number`` (SQL expressions of the enclosing query), for the
    send path to read with its lock instead of loading the sequence's steps."""
    step = OutreachSequenceStep.__table__.alias("following_step")
    return (
        select(step.c.delay_hours, step.c.delay_minutes)
        .where(
            step.c.sequence_id == sequence_id,
            step.c.is_active.is_(True),
            step.c.step_number > step_number,
        )
        .order_by(step.c.step_number)
        .limit(1)
        .lateral("following")
    )


_ADVANCE_MANY = text(
    """
    UPDATE sequence_enrollments AS e
       SET current_step = greatest(e.current_step, v.step),
           messages_sent = e.messages_sent + v.sent,
           next_step_at = v.due
      FROM unnest(CAST(:ids AS uuid[]), CAST(:steps AS integer[]), CAST(:sent AS integer[]),
                  CAST(:dues AS timestamptz[])) AS v(id, step, sent, due)
     WHERE e.id = v.id
    RETURNING e.id, e.current_step
    """
)


async def advance_enrollments(
    session: AsyncSession, advances: Sequence[tuple[uuid.UUID, int, datetime]]
) -> dict[uuid.UUID, int]:
    """Steps went out (``(enrollment_id, step_number, due)``: the step sent, when the next is
    due): each enrollment's current step, sent count and next due, in one UPDATE, enrollments
    in id order (the lock order). Two sends of one enrollment count twice, and the later step's
    due wins. Returns each enrollment's current step; enrollments that are gone are missing."""
    merged: dict[uuid.UUID, tuple[int, int, datetime]] = {}
    for enrollment_id, step_number, due in advances:
        seen = merged.get(enrollment_id)
        if seen is None:
            merged[enrollment_id] = (step_number, 1, due)
        else:
            later = step_number >= seen[0]
            merged[enrollment_id] = (max(seen[0], step_number), seen[1] + 1, due if later else seen[2])
    if not merged:
        return {}
    ids = sorted(merged)
    rows = await session.execute(
        _ADVANCE_MANY,
        {
            "ids": ids,
            "steps": [merged[i][0] for i in ids],
            "sent": [merged[i][1] for i in ids],
            "dues": [merged[i][2] for i in ids],
        },
    )
    return {row[0]: int(row[1]) for row in rows}


_SEQUENCE = cast(Table, OutreachSequence.__table__)
_COUNT_SEQUENCE = (
    update(_SEQUENCE)
    .where(_SEQUENCE.c.id == bindparam("sequence_id"))
    .values(
        total_enrolled=_SEQUENCE.c.total_enrolled + bindparam("enrolled"),
        total_completed=_SEQUENCE.c.total_completed + bindparam("completed"),
    )
    .returning(_SEQUENCE.c.total_enrolled, _SEQUENCE.c.total_completed)
)


async def count_sequence(
    session: AsyncSession, sequence_id: uuid.UUID, *, enrolled: int = 0, completed: int = 0
) -> None:
    """Add to a sequence's enrolled and completed counters with an UPDATE that adds to the
    stored values, so two dispatches or an enrollment beside a dispatch never lose a count (an
    ORM ``+= 1`` writes back the total its session read). The sequence's object in this session,
    if loaded, takes the stored totals."""
    if not enrolled and not completed:
        return
    row = (
        await session.execute(
            _COUNT_SEQUENCE, {"sequence_id": sequence_id, "enrolled": enrolled, "completed": completed}
        )
    ).one_or_none()
    loaded = session.identity_map.get(identity_key(OutreachSequence, sequence_id))
    if row is not None and loaded is not None:
        set_committed_value(loaded, "total_enrolled", row[0])
        set_committed_value(loaded, "total_completed", row[1])
