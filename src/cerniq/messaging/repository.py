"""SQL for the communication log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, Text, any_, bindparam, exists, func, select, true, update
from sqlalchemy import cast as cast_
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from cerniq.kit.clock import utcnow
from cerniq.models import (
    GoldCommunicationLog,
    GoldLeadJourney,
    OutreachSequence,
    SequenceEnrollment,
    SystemState,
    WaPhoneNumber,
)
from cerniq.models.enums import Channel, Direction, EnrollmentStatus, MessageStatus
from cerniq.sequences.engine import SentStep
from cerniq.sequences.repository import following_step

EMERGENCY_STOP = "emergency_stop"  # the system_state key (cerniq.ops.system_state.EMERGENCY_STOP)
IN_FLIGHT = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.AMBIGUOUS)
# Outbound WhatsApp rows that prove an earlier message reached (or may have reached) the lead.
CONTACTED = (
    MessageStatus.SENDING,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.READ,
    MessageStatus.REPLIED,
    MessageStatus.AMBIGUOUS,
)


async def lock_message(session: AsyncSession, message_id: uuid.UUID) -> GoldCommunicationLog | None:
    query = select(GoldCommunicationLog).where(GoldCommunicationLog.id == message_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_message(session: AsyncSession, message_id: uuid.UUID) -> GoldCommunicationLog | None:
    return await session.get(GoldCommunicationLog, message_id)


async def lock_journey(session: AsyncSession, journey_id: uuid.UUID) -> GoldLeadJourney | None:
    query = select(GoldLeadJourney).where(GoldLeadJourney.id == journey_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def had_whatsapp_contact(
    session: AsyncSession, journey_id: uuid.UUID, exclude: uuid.UUID | None
) -> bool:
    """True when an earlier outbound WhatsApp message went (or may have gone) to this lead."""
    condition = [
        GoldCommunicationLog.lead_journey_id == journey_id,
        GoldCommunicationLog.channel == Channel.WHATSAPP,
        GoldCommunicationLog.direction == Direction.OUTBOUND,
        GoldCommunicationLog.status.in_(CONTACTED),
    ]
    if exclude is not None:
        condition.append(GoldCommunicationLog.id != exclude)
    return bool((await session.execute(select(exists().where(*condition)))).scalar())


async def contacted_journeys(session: AsyncSession, journey_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """The journeys among ``journey_ids`` that already had an outbound WhatsApp message."""
    if not journey_ids:
        return set()
    rows = await session.execute(
        select(GoldCommunicationLog.lead_journey_id)
        .where(
            GoldCommunicationLog.lead_journey_id.in_(journey_ids),
            GoldCommunicationLog.channel == Channel.WHATSAPP,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.status.in_(CONTACTED),
        )
        .distinct()
    )
    return {r[0] for r in rows}


def _build_queued_new_contacts() -> Any:
    row = GoldCommunicationLog
    earlier = aliased(GoldCommunicationLog)
    contacted = (
        select(earlier.id)
        .where(
            earlier.lead_journey_id == row.lead_journey_id,
            earlier.channel == Channel.WHATSAPP,
            earlier.direction == Direction.OUTBOUND,
            earlier.status.in_(CONTACTED),
        )
        .exists()
    )
    return select(row.phone_id, cast_(row.id, Text)).where(
        row.phone_id.in_(bindparam("phones", expanding=True)),
        row.status == MessageStatus.QUEUED,
        row.channel == Channel.WHATSAPP,
        ~contacted,
    )


_QUEUED_NEW_CONTACTS: Any = None


async def queued_new_contacts(session: AsyncSession, phone_ids: Sequence[str]) -> dict[str, list[str]]:
    """The ids (as text) of the QUEUED WhatsApp rows per phone whose lead was never contacted:
    quota already promised (see :func:`cerniq.messaging.service.remaining_quota`)."""
    global _QUEUED_NEW_CONTACTS
    if not phone_ids:
        return {}
    if _QUEUED_NEW_CONTACTS is None:
        _QUEUED_NEW_CONTACTS = _build_queued_new_contacts()
    promised: dict[str, list[str]] = {}
    for phone, row_id in await session.execute(_QUEUED_NEW_CONTACTS, {"phones": list(phone_ids)}):
        promised.setdefault(str(phone), []).append(row_id)
    return promised


async def set_status(
    session: AsyncSession, message_id: uuid.UUID, status: MessageStatus, **values: Any
) -> None:
    await session.execute(
        update(GoldCommunicationLog)
        .where(GoldCommunicationLog.id == message_id)
        .values(status=status, status_updated_at=utcnow(), **values)
    )


_LOG = cast(Table, GoldCommunicationLog.__table__)
_MARK_SENDING = (
    update(_LOG)
    .where(_LOG.c.id == bindparam("message_id"))
    .values(
        status=MessageStatus.SENDING,
        status_updated_at=bindparam("at"),
        quota_cost=bindparam("quota_cost"),
        quota_date=bindparam("quota_date"),
    )
)


async def mark_sending(
    session: AsyncSession, message: GoldCommunicationLog, *, quota_cost: int, quota_date: date
) -> None:
    """The row (locked by :func:`load_for_send`) turns SENDING with its reservation."""
    await mark_sending_many(session, [(message, quota_cost, quota_date)])


async def mark_sending_many(
    session: AsyncSession, rows: Sequence[tuple[GoldCommunicationLog, int, date]]
) -> None:
    """Rows (locked by :func:`load_for_send_many`) turn SENDING, each with its reservation
    (``(message, quota_cost, quota_date)``).

    One Core UPDATE run for every row (no unit-of-work flush); the loaded objects take the same
    values as committed state, so the session has nothing left to flush for them.
    """
    if not rows:
        return
    at = utcnow()
    await session.execute(
        _MARK_SENDING,
        [
            {"message_id": message.id, "at": at, "quota_cost": cost, "quota_date": day}
            for message, cost, day in rows
        ],
    )
    for message, cost, day in rows:
        set_committed_value(message, "status", MessageStatus.SENDING)
        set_committed_value(message, "status_updated_at", at)
        set_committed_value(message, "quota_cost", cost)
        set_committed_value(message, "quota_date", day)


async def stale_in_flight(
    session: AsyncSession, *, older_than: datetime, limit: int = 1000
) -> list[GoldCommunicationLog]:
    """Outbound rows still QUEUED / SENDING / AMBIGUOUS since before ``older_than``."""
    query = (
        select(GoldCommunicationLog)
        .where(
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.status.in_(IN_FLIGHT),
            func.coalesce(GoldCommunicationLog.status_updated_at, GoldCommunicationLog.created_at)
            < older_than,
        )
        .order_by(GoldCommunicationLog.created_at)
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def all_in_flight(
    session: AsyncSession, *, after_id: uuid.UUID | None, limit: int
) -> list[GoldCommunicationLog]:
    query = select(GoldCommunicationLog).where(
        GoldCommunicationLog.direction == Direction.OUTBOUND,
        GoldCommunicationLog.status.in_(IN_FLIGHT),
    )
    if after_id is not None:
        query = query.where(GoldCommunicationLog.id > after_id)
    return list((await session.execute(query.order_by(GoldCommunicationLog.id).limit(limit))).scalars())


async def ledger_counts(session: AsyncSession, day: date) -> dict[str, int]:
    """New contacts spent per phone on business day ``day``: rows holding a quota_cost of 1."""
    rows = await session.execute(
        select(GoldCommunicationLog.phone_id, func.count())
        .where(
            GoldCommunicationLog.quota_cost == 1,
            GoldCommunicationLog.quota_date == day,
            GoldCommunicationLog.channel == Channel.WHATSAPP,
        )
        .group_by(GoldCommunicationLog.phone_id)
    )
    return {str(r[0]): int(r[1]) for r in rows if r[0] is not None}


async def followup_counts(session: AsyncSession, day: date) -> dict[str, int]:
    rows = await session.execute(
        select(GoldCommunicationLog.phone_id, func.count())
        .where(
            GoldCommunicationLog.quota_cost == 0,
            GoldCommunicationLog.quota_date == day,
            GoldCommunicationLog.channel == Channel.WHATSAPP,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
        )
        .group_by(GoldCommunicationLog.phone_id)
    )
    return {str(r[0]): int(r[1]) for r in rows if r[0] is not None}


async def reserved_ids(session: AsyncSession, day: date) -> dict[str, list[uuid.UUID]]:
    """Rows holding a reservation on ``day`` per phone (to rebuild the reservation hashes)."""
    rows = await session.execute(
        select(GoldCommunicationLog.phone_id, GoldCommunicationLog.id, GoldCommunicationLog.quota_cost).where(
            GoldCommunicationLog.quota_date == day,
            GoldCommunicationLog.channel == Channel.WHATSAPP,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
        )
    )
    out: dict[str, list[uuid.UUID]] = {}
    for phone_id, row_id, _cost in rows:
        if phone_id is not None:
            out.setdefault(str(phone_id), []).append(row_id)
    return out


async def ledger_count(session: AsyncSession, phone_id: str, day: date, *, exclude: uuid.UUID | None) -> int:
    """New contacts the ledger holds for one phone and business day (``quota_cost`` 1)."""
    query = select(func.count()).where(
        GoldCommunicationLog.phone_id == phone_id,
        GoldCommunicationLog.quota_cost == 1,
        GoldCommunicationLog.quota_date == day,
        GoldCommunicationLog.channel == Channel.WHATSAPP,
    )
    if exclude is not None:
        query = query.where(GoldCommunicationLog.id != exclude)
    return int((await session.execute(query)).scalar_one())


async def failed_step_rows(
    session: AsyncSession, journey_id: uuid.UUID, *, enrollment_id: uuid.UUID | None, step: int | None
) -> int:
    """Outbound WhatsApp rows of this lead's sequence step that failed on vendor errors."""
    query = select(func.count()).where(
        GoldCommunicationLog.lead_journey_id == journey_id,
        GoldCommunicationLog.channel == Channel.WHATSAPP,
        GoldCommunicationLog.direction == Direction.OUTBOUND,
        GoldCommunicationLog.status == MessageStatus.FAILED,
        GoldCommunicationLog.error_code == "VENDOR_TRANSIENT",
    )
    if enrollment_id is not None:
        query = query.where(GoldCommunicationLog.enrollment_id == enrollment_id)
    if step is not None:
        query = query.where(GoldCommunicationLog.sequence_step == step)
    return int((await session.execute(query)).scalar_one())


_PHONE = cast(Table, WaPhoneNumber.__table__)
_SENT_AT = bindparam("sent_at", type_=_PHONE.c.last_message_sent_at.type)
_COUNT_PHONE_SENDS = (
    update(_PHONE)
    .where(_PHONE.c.id == bindparam("phone_id"))
    .values(
        total_messages_sent=_PHONE.c.total_messages_sent + bindparam("sent"),
        last_message_sent_at=func.greatest(func.coalesce(_PHONE.c.last_message_sent_at, _SENT_AT), _SENT_AT),
    )
)


async def count_phone_sends(session: AsyncSession, sends: dict[str, tuple[int, datetime]]) -> None:
    """Messages sent per phone (``{phone_id: (count, last sent_at)}``): UPDATEs that add to the
    counters, so concurrent sends never lose a count. A Core statement built once: the send
    path holds no phone object to keep in step. Phones in id order (the lock order)."""
    if sends:
        await session.execute(
            _COUNT_PHONE_SENDS,
            [{"phone_id": p, "sent": n, "sent_at": at} for p, (n, at) in sorted(sends.items())],
        )


@dataclass
class SendContext:
    """Everything the send job checks, read (and the message row locked) in one round trip."""

    message: GoldCommunicationLog
    journey: GoldLeadJourney | None
    phone: WaPhoneNumber | None
    contacted_before: bool
    """An earlier outbound WhatsApp message went (or may have gone) to this lead."""
    emergency_stop: dict[str, Any] | None
    """The active emergency stop (``system_state`` key ``emergency_stop``), or None."""


_IDS = bindparam("ids", type_=ARRAY(UUID(as_uuid=True)))


def _build_load_for_send() -> Any:
    other = aliased(GoldCommunicationLog)
    contacted = (
        select(other.id)
        .where(
            other.lead_journey_id == GoldCommunicationLog.lead_journey_id,
            other.channel == Channel.WHATSAPP,
            other.direction == Direction.OUTBOUND,
            other.status.in_(CONTACTED),
            other.id != GoldCommunicationLog.id,
        )
        .exists()
    )
    stop = select(SystemState.value).where(SystemState.key == EMERGENCY_STOP).scalar_subquery()
    return (
        select(GoldCommunicationLog, GoldLeadJourney, WaPhoneNumber, contacted.label("c"), stop.label("s"))
        .select_from(GoldCommunicationLog)
        .outerjoin(GoldLeadJourney, GoldLeadJourney.id == GoldCommunicationLog.lead_journey_id)
        .outerjoin(WaPhoneNumber, WaPhoneNumber.id == GoldCommunicationLog.phone_id)
        .where(GoldCommunicationLog.id == any_(_IDS))
        .order_by(GoldCommunicationLog.id)  # the lock order of a batch
        .with_for_update(of=GoldCommunicationLog)
    )


_LOAD_FOR_SEND: Any = None  # built once: an aliased table is costly to construct per call


async def load_for_send(session: AsyncSession, message_id: uuid.UUID) -> SendContext | None:
    """Lock the message row and read its lead, its phone, whether the lead was contacted before
    and the emergency stop, all in one statement."""
    return (await load_for_send_many(session, [message_id])).get(message_id)


async def load_for_send_many(
    session: AsyncSession, message_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, SendContext]:
    """:func:`load_for_send` for several rows in one statement (locked in id order); rows that
    do not exist are missing from the result."""
    global _LOAD_FOR_SEND
    if _LOAD_FOR_SEND is None:
        _LOAD_FOR_SEND = _build_load_for_send()
    found: dict[uuid.UUID, SendContext] = {}
    for message, journey, phone, contacted_before, stop_value in await session.execute(
        _LOAD_FOR_SEND, {"ids": list(message_ids)}
    ):
        active = stop_value if isinstance(stop_value, dict) and stop_value.get("active") else None
        found[message.id] = SendContext(message, journey, phone, bool(contacted_before), active)
    return found


@dataclass(frozen=True, slots=True)
class SentContext:
    """What recording a sent message needs, read with the locks of the message and its lead."""

    journey: GoldLeadJourney
    status: MessageStatus
    template_id: uuid.UUID | None
    template_version_id: uuid.UUID | None
    phone_id: str | None
    quota_cost: int
    quota_date: date | None
    enrollment_id: uuid.UUID | None
    sequence_step: int | None
    step: SentStep


def _build_lock_for_sent() -> Any:
    log = GoldCommunicationLog
    following = following_step(SequenceEnrollment.sequence_id, log.sequence_step)
    return (
        select(
            log.id,
            GoldLeadJourney,
            log.status,
            log.template_id,
            log.template_version_id,
            log.phone_id,
            log.quota_cost,
            log.quota_date,
            log.enrollment_id,
            log.sequence_step,
            SequenceEnrollment.status,
            OutreachSequence.id,
            OutreachSequence.respect_business_hours,
            following.c.delay_hours,
            following.c.delay_minutes,
        )
        .select_from(log)
        .join(GoldLeadJourney, GoldLeadJourney.id == log.lead_journey_id)
        .outerjoin(SequenceEnrollment, SequenceEnrollment.id == log.enrollment_id)
        .outerjoin(OutreachSequence, OutreachSequence.id == SequenceEnrollment.sequence_id)
        .outerjoin(following, true())
        .where(log.id == any_(_IDS))
        .order_by(log.id)  # the lock order of a batch
        .with_for_update(of=(log, GoldLeadJourney))
    )


_LOCK_FOR_SENT: Any = None


async def lock_for_sent_many(
    session: AsyncSession, message_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, SentContext]:
    """Lock the message rows and their leads' rows (each message, then its lead, in message id
    order) and read, in the same statement, the message fields the send path records and each
    one's enrollment, sequence and following step (see
    :func:`cerniq.sequences.engine.after_send_known_many`)."""
    global _LOCK_FOR_SENT
    if _LOCK_FOR_SENT is None:
        _LOCK_FOR_SENT = _build_lock_for_sent()
    found: dict[uuid.UUID, SentContext] = {}
    for row in await session.execute(_LOCK_FOR_SENT, {"ids": list(message_ids)}):
        (
            message_id,
            journey,
            status,
            template_id,
            template_version_id,
            phone_id,
            quota_cost,
            quota_date,
            enrollment_id,
            sequence_step,
            enrollment_status,
            sequence_id,
            respect_business_hours,
            delay_hours,
            delay_minutes,
        ) = row
        next_delay = None if delay_hours is None else timedelta(hours=delay_hours, minutes=delay_minutes)
        step = SentStep(
            enrollment_status=enrollment_status,
            sequence_found=sequence_id is not None,
            respect_business_hours=bool(respect_business_hours),
            next_delay=next_delay,
        )
        found[message_id] = SentContext(
            journey,
            status,
            template_id,
            template_version_id,
            phone_id,
            int(quota_cost or 0),
            quota_date,
            enrollment_id,
            sequence_step,
            step,
        )
    return found


_MARK_SENT = (
    update(_LOG)
    .where(_LOG.c.id == bindparam("message_id"))
    .values(
        status=MessageStatus.SENT,
        status_updated_at=bindparam("at"),
        sent_at=bindparam("sent_at"),
        external_message_id=bindparam("uid"),
        error_code=bindparam("error_code"),
        error_message=None,
    )
)
_MARK_SENT_IN_CHAT = _MARK_SENT.values(thread_id=bindparam("thread_id"))


@dataclass(frozen=True, slots=True)
class Sent:
    """A message the vendor took: its uid, its chat when known, when it went."""

    message_id: uuid.UUID
    uid: str
    sent_at: datetime
    thread_id: str | None = None
    error_code: str | None = None


async def mark_sent_many(session: AsyncSession, sent: Sequence[Sent]) -> None:
    """The vendor took the messages: SENT with their uid (and chat, when known); one UPDATE run
    per shape (with and without a chat)."""
    at = utcnow()
    # A key named after a column would add it to the SET clause: thread_id only goes with the
    # statement that sets it.
    no_chat = [
        {"message_id": s.message_id, "at": at, "sent_at": s.sent_at, "uid": s.uid, "error_code": s.error_code}
        for s in sent
        if s.thread_id is None
    ]
    in_chat = [
        {
            "message_id": s.message_id,
            "at": at,
            "sent_at": s.sent_at,
            "uid": s.uid,
            "error_code": s.error_code,
            "thread_id": s.thread_id,
        }
        for s in sent
        if s.thread_id is not None
    ]
    if no_chat:
        await session.execute(_MARK_SENT, no_chat)
    if in_chat:
        await session.execute(_MARK_SENT_IN_CHAT, in_chat)


async def enrollments_of(
    session: AsyncSession, journey_ids: Sequence[uuid.UUID]
) -> tuple[dict[uuid.UUID, SequenceEnrollment], set[uuid.UUID]]:
    """For a dispatch batch: each lead's newest ACTIVE enrollment, and the leads with any
    enrollment at all (two queries for the whole batch instead of two per lead)."""
    if not journey_ids:
        return {}, set()
    active_query = (
        select(SequenceEnrollment)
        .where(
            SequenceEnrollment.lead_journey_id.in_(journey_ids),
            SequenceEnrollment.status == EnrollmentStatus.ACTIVE,
        )
        .order_by(SequenceEnrollment.lead_journey_id, SequenceEnrollment.enrolled_at.desc())
        .distinct(SequenceEnrollment.lead_journey_id)
    )
    active = {e.lead_journey_id: e for e in (await session.execute(active_query)).scalars()}
    any_query = (
        select(SequenceEnrollment.lead_journey_id)
        .where(SequenceEnrollment.lead_journey_id.in_(journey_ids))
        .distinct()
    )
    enrolled = {r[0] for r in await session.execute(any_query)}
    return active, enrolled
