"""Dispatch (``outreach:orchestrator:dispatch``, every 5 minutes and on demand).

Claims due leads with ``FOR UPDATE SKIP LOCKED`` (so several dispatchers never take the same
lead), picks the channel, allocates the sticky phone within today's quota, renders the step's
template and writes one QUEUED row per lead; the jobs go to the phone queues after commit.

A batch is one transaction with a fixed number of statements whatever its size: the reads
(leads, phones and quota, lead data, enrollments) and then one INSERT of the new enrollments,
one of the QUEUED rows and one UPDATE of the leads (arrays through ``unnest``); the jobs go in
one ``addBulk`` per phone queue once it commits, so the first phones start sending while the
next batch is prepared. What the sequence engine changes in the rarer cases (a skipped or
completed step, a lead flagged for review) stays with the unit of work.
"""

from __future__ import annotations

import asyncio
import heapq
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import and_, exists, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from cerniq.config import Settings, get_settings
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import after_commit, transaction
from cerniq.kit.unnest import arrays, unnest_from
from cerniq.logging import get_logger
from cerniq.messaging import repository
from cerniq.messaging.service import AUTOMATION, job_for_values, outbound_values, remaining_quota
from cerniq.models import (
    GoldCommunicationLog,
    GoldCompany,
    GoldContact,
    GoldLeadJourney,
    OutreachSequence,
    OutreachSequenceStep,
    OutreachTemplate,
    SequenceEnrollment,
    SuppressionEntry,
    WaPhoneNumber,
)
from cerniq.models.enums import Channel, Direction, EnrollmentStatus, LeadState, PhoneStatus
from cerniq.ops import alerts
from cerniq.ops.system_state import emergency_stop
from cerniq.sequences import engine as sequences
from cerniq.sequences import repository as sequences_repository
from cerniq.templates.render import (
    PreparedTemplate,
    TemplateNotSendable,
    ensure_sendable,
    lead_variables,
    render,
)
from cerniq.templates.service import VariantCache
from cerniq.templates.spintax import SpintaxError
from cerniq.worker.enqueue import JobRequest, submit_many

log = get_logger("cerniq.dispatch")

DISPATCHABLE = (LeadState.COLD, LeadState.CONTACTED_WA, LeadState.CONTACTED_EMAIL)
WAITING_PHONE = (PhoneStatus.PAUSED, PhoneStatus.OFFLINE, PhoneStatus.RECONNECTING, PhoneStatus.QUARANTINE)


@dataclass
class DispatchReport:
    claimed: int = 0
    whatsapp: int = 0
    email: int = 0
    waiting_quota: int = 0
    no_route: int = 0
    blocked: int = 0
    completed: int = 0
    stopped: bool = False
    batches: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "queuedWhatsapp": self.whatsapp,
            "queuedEmail": self.email,
            "waitingForQuota": self.waiting_quota,
            "noRoute": self.no_route,
            "blocked": self.blocked,
            "sequencesCompleted": self.completed,
            "emergencyStop": self.stopped,
            "batches": self.batches,
        }


@dataclass
class PhonePool:
    """The tenant's phones and what each may still take today.

    ``best`` is asked once per lead: each tenant's usable phones sit in a heap ordered by
    (most quota left, priority, id), whose entries are refreshed as :meth:`spend` lowers a
    phone's count (an entry whose count is no longer the phone's is stale and dropped)."""

    phones: dict[str, WaPhoneNumber]
    remaining: dict[str, int]
    _heaps: dict[uuid.UUID, list[tuple[int, int, int, str]]] = field(default_factory=dict)

    def usable(self, phone_id: str | None) -> bool:
        phone = self.phones.get(phone_id or "")
        return phone is not None and phone.is_enabled and phone.status == PhoneStatus.ACTIVE

    def best(self, tenant_id: uuid.UUID, *, needs_quota: bool) -> str | None:
        heap = self._heaps.get(tenant_id)
        if heap is None:
            heap = self._heaps[tenant_id] = [
                self._entry(p) for p in self.phones.values() if p.tenant_id == tenant_id and self.usable(p.id)
            ]
            heapq.heapify(heap)
        while heap:
            left, _priority, _length, phone_id = heap[0]
            if -left != self.remaining.get(phone_id, 0):
                heapq.heapreplace(heap, self._entry(self.phones[phone_id]))
                continue
            if needs_quota and -left <= 0:
                return None
            return phone_id
        return None

    def spend(self, phone_id: str) -> None:
        """One new contact promised on ``phone_id``."""
        self.remaining[phone_id] = self.remaining.get(phone_id, 0) - 1

    def _entry(self, phone: WaPhoneNumber) -> tuple[int, int, int, str]:
        return (-self.remaining.get(phone.id, 0), phone.priority, len(phone.id), phone.id)


async def dispatch(
    settings: Settings | None = None,
    *,
    max_batches: int = 100,
    batch_size: int | None = None,
    tenant_id: uuid.UUID | None = None,
) -> DispatchReport:
    """Dispatch every due lead, batch after batch, until none is left (or ``max_batches``).

    ``tenant_id`` limits it to one tenant's leads (an operator's on-demand dispatch)."""
    settings = settings or get_settings()
    report = DispatchReport()
    size = batch_size or settings.dispatch_batch_size
    run = _Run()
    try:
        for _ in range(max_batches):
            run.raise_failed_enqueue()
            claimed = await _dispatch_batch(settings, report, size, tenant_id, run)
            if claimed < size or report.stopped:
                break
    except BaseException:
        await asyncio.gather(*run.enqueues, return_exceptions=True)  # committed batches' jobs
        raise
    await asyncio.gather(*run.enqueues)
    if report.claimed:
        log.info("dispatch.done", **report.as_dict())
    return report


@dataclass
class _Run:
    """What the batches of one dispatch share: the parsed template texts, and the enqueues of
    the committed batches, which run while the next batch is prepared (dispatch returns once
    they are all done; a failed one stops the dispatch before its next batch, as when the
    enqueue ran inline)."""

    templates: dict[str, PreparedTemplate] = field(default_factory=dict)
    enqueues: list[asyncio.Task[None]] = field(default_factory=list)

    def raise_failed_enqueue(self) -> None:
        for task in self.enqueues:
            if task.done() and task.exception() is not None:
                task.result()


@dataclass
class _Writes:
    """What a batch writes, one statement per table whatever its size (arrays through
    ``unnest``): the new enrollments, the QUEUED rows and the leads' scheduling and phone
    columns; and the jobs to add once the transaction commits."""

    enrollments: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    journeys: dict[uuid.UUID, GoldLeadJourney] = field(default_factory=dict)
    jobs: list[JobRequest] = field(default_factory=list)
    enrolled: Counter[uuid.UUID] = field(default_factory=Counter)
    """Leads enrolled per sequence (added to its counter by one UPDATE each)."""

    def set(self, journey: GoldLeadJourney, key: str, value: object) -> None:
        """Set one of :data:`JOURNEY_COLUMNS` on ``journey``; written by :meth:`flush`'s UPDATE
        rather than by the unit of work."""
        set_committed_value(journey, key, value)
        self.journeys[journey.id] = journey

    async def flush(self, session: AsyncSession, run: _Run) -> None:
        if self.enrollments:
            await session.execute(_INSERT_ENROLLMENTS, arrays(self.enrollments, _ENROLLMENT_COLUMNS))
        # what the unit of work holds (enrollments made by the engine, counters, flags) goes
        # before the messages, which point at the enrollments
        await session.flush()
        for sequence_id, count in sorted(self.enrolled.items()):
            await sequences_repository.count_sequence(session, sequence_id, enrolled=count)
        if self.messages:
            await session.execute(_INSERT_MESSAGES, arrays(self.messages, _MESSAGE_COLUMNS))
        if self.journeys:
            rows = [
                {key: getattr(j, key) for key in ("id", *JOURNEY_COLUMNS)} for j in self.journeys.values()
            ]
            await session.execute(_UPDATE_JOURNEYS, {"now": utcnow(), **arrays(rows, _JOURNEY_COLUMNS)})
        if self.jobs:
            jobs = self.jobs

            async def enqueue() -> None:
                run.enqueues.append(asyncio.create_task(submit_many(jobs)))

            after_commit(session, enqueue)


# A column named after its PostgreSQL enum type goes as text and is cast in the SELECT.
_ENROLLMENT_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("id", "uuid"),
    ("tenant_id", "uuid"),
    ("lead_journey_id", "uuid"),
    ("sequence_id", "uuid"),
    ("total_steps", "integer"),
    ("enrolled_at", "timestamptz"),
)
_INSERT_ENROLLMENTS: Final = text(
    f"""
    INSERT INTO sequence_enrollments (
        id, tenant_id, lead_journey_id, sequence_id, current_step, total_steps, status, enrolled_at,
        messages_sent, opens, clicks, replies, created_at, updated_at
    )
    SELECT v.id, v.tenant_id, v.lead_journey_id, v.sequence_id, 0, v.total_steps, 'ACTIVE', v.enrolled_at,
        0, 0, 0, 0, v.enrolled_at, v.enrolled_at
    FROM {unnest_from(_ENROLLMENT_COLUMNS)}
    """
)
_MESSAGE_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("id", "uuid"),
    ("tenant_id", "uuid"),
    ("lead_journey_id", "uuid"),
    ("channel", "text"),
    ("direction", "text"),
    ("status", "text"),
    ("origin", "text"),
    ("content", "text"),
    ("content_rendered", "text"),
    ("subject", "text"),
    ("template_id", "uuid"),
    ("template_version_id", "uuid"),
    ("sequence_id", "uuid"),
    ("sequence_step", "integer"),
    ("enrollment_id", "uuid"),
    ("email_campaign_id", "uuid"),
    ("is_ai_generated", "boolean"),
    ("scheduled_at", "timestamptz"),
    ("created_by", "text"),
    ("quota_cost", "smallint"),
    ("phone_id", "text"),
    ("phone_number", "text"),
    ("email", "text"),
    ("thread_id", "text"),
    ("idempotency_key", "text"),
    ("raw_request", "jsonb"),
    ("created_at", "timestamptz"),
)
_MESSAGE_ENUMS: Final = {
    "channel": "channel_enum",
    "direction": "message_direction_enum",
    "status": "message_status_enum",
}
_INSERT_MESSAGES: Final = text(
    f"""
    INSERT INTO gold_communication_log ({", ".join(name for name, _ in _MESSAGE_COLUMNS)}, updated_at)
    SELECT {
        ", ".join(
            f"CAST(v.{name} AS {_MESSAGE_ENUMS[name]})" if name in _MESSAGE_ENUMS else f"v.{name}"
            for name, _ in _MESSAGE_COLUMNS
        )
    }, v.created_at
    FROM {unnest_from(_MESSAGE_COLUMNS)}
    """
)
JOURNEY_COLUMNS: Final = (
    "next_action_at",
    "assigned_phone_id",
    "assigned_at",
    "current_sequence_id",
    "sequence_started_at",
)
_JOURNEY_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("id", "uuid"),
    ("next_action_at", "timestamptz"),
    ("assigned_phone_id", "text"),
    ("assigned_at", "timestamptz"),
    ("current_sequence_id", "uuid"),
    ("sequence_started_at", "timestamptz"),
)
_UPDATE_JOURNEYS: Final = text(
    f"""
    UPDATE gold_lead_journey AS j SET
        {", ".join(f"{name} = v.{name}" for name in JOURNEY_COLUMNS)},
        updated_at = CAST(:now AS timestamptz)
    FROM {unnest_from(_JOURNEY_COLUMNS)}
    WHERE j.id = v.id
    """
)
# the keys of a QUEUED row that outbound_values() sets only on one channel or another
_MESSAGE_KEYS = ("thread_id", "phone_id", "phone_number", "email", "raw_request")


async def _dispatch_batch(
    settings: Settings,
    report: DispatchReport,
    size: int,
    tenant_id: uuid.UUID | None,
    run: _Run,
) -> int:
    clock = BusinessClock.from_settings(settings)
    async with transaction(settings) as session:
        if await emergency_stop(session) is not None:
            report.stopped = True
            return 0
        now = utcnow()
        journeys = await _claim(session, now, size, tenant_id)
        report.batches += 1
        if not journeys:
            return 0
        report.claimed += len(journeys)
        ids = [j.id for j in journeys]
        pool = await _phone_pool(session, clock, {j.tenant_id for j in journeys})
        contacted = await repository.contacted_journeys(session, ids)
        companies, contacts = await _lead_data(session, journeys)
        suppressed = await _suppressed(session, journeys)
        cache = _SequenceCache(session, run.templates)
        cache.active, cache.enrolled = await repository.enrollments_of(session, ids)
        cache.last_inbound = await sequences_repository.last_inbound_many(session, ids)
        writes = _Writes()
        exhausted_tenants: set[uuid.UUID] = set()
        for journey in journeys:
            try:
                await _dispatch_one(
                    session,
                    clock,
                    report,
                    pool,
                    cache,
                    writes,
                    journey,
                    now,
                    new_contact=journey.id not in contacted,
                    company=companies.get(journey.lead_id),
                    contact=contacts.get(journey.primary_contact_id) if journey.primary_contact_id else None,
                    suppressed=suppressed,
                    exhausted=exhausted_tenants,
                )
            except TemplateNotSendable as exc:
                report.blocked += 1
                writes.set(journey, "next_action_at", None)
                journey.requires_human_review = True
                journey.human_review_reason = f"TEMPLATE_UNRESOLVED: {exc.message}"[:500]
        await writes.flush(session, run)
        for tenant_id in exhausted_tenants:
            await alerts.trigger(
                session,
                "quota:exhausted",
                tenant_id=tenant_id,
                message="every active phone has used its new-contact quota; leads wait for tomorrow",
            )
        return len(journeys)


async def _claim(
    session: AsyncSession, now: datetime, size: int, tenant_id: uuid.UUID | None = None
) -> list[GoldLeadJourney]:
    in_flight = exists().where(
        and_(
            GoldCommunicationLog.lead_journey_id == GoldLeadJourney.id,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.origin == AUTOMATION,
            GoldCommunicationLog.status.in_(repository.IN_FLIGHT),
        )
    )
    conditions = [] if tenant_id is None else [GoldLeadJourney.tenant_id == tenant_id]
    query = (
        select(GoldLeadJourney)
        .where(
            *conditions,
            GoldLeadJourney.next_action_at <= now,
            GoldLeadJourney.current_state.in_(DISPATCHABLE),
            GoldLeadJourney.is_human_controlled.is_(False),
            GoldLeadJourney.sequence_paused.is_(False),
            GoldLeadJourney.requires_human_review.is_(False),
            ~in_flight,
        )
        .order_by(GoldLeadJourney.next_action_at)
        .limit(size)
        .with_for_update(skip_locked=True, of=GoldLeadJourney)
    )
    return list((await session.execute(query)).scalars())


async def _phone_pool(session: AsyncSession, clock: BusinessClock, tenant_ids: set[uuid.UUID]) -> PhonePool:
    phones = list(
        (
            await session.execute(select(WaPhoneNumber).where(WaPhoneNumber.tenant_id.in_(tenant_ids)))
        ).scalars()
    )
    limits = {p.id: p.daily_quota_limit for p in phones}
    remaining = await remaining_quota(session, limits, clock.business_day(utcnow()))
    return PhonePool({p.id: p for p in phones}, remaining)


async def _lead_data(
    session: AsyncSession, journeys: list[GoldLeadJourney]
) -> tuple[dict[uuid.UUID, dict[str, object]], dict[uuid.UUID, dict[str, object]]]:
    """The template fields of each lead's company and primary contact (see :func:`lead_variables`)."""
    company_ids = {j.lead_id for j in journeys}
    contact_ids = {j.primary_contact_id for j in journeys if j.primary_contact_id}
    company = GoldCompany
    rows = await session.execute(
        select(
            company.id,
            company.denumire,
            company.judet,
            company.localitate,
            company.sector,
            company.is_agricultural,
            company.cui,
        ).where(company.id.in_(company_ids))
    )
    companies: dict[uuid.UUID, dict[str, object]] = {
        r[0]: {
            "denumire": r[1],
            "judet": r[2],
            "localitate": r[3],
            "sector": r[4],
            "is_agricultural": r[5],
            "cui": r[6],
        }
        for r in rows
    }
    contacts: dict[uuid.UUID, dict[str, object]] = {}
    if contact_ids:
        contact = GoldContact
        rows = await session.execute(
            select(contact.id, contact.full_name, contact.prenume, contact.nume).where(
                contact.id.in_(contact_ids)
            )
        )
        contacts = {r[0]: {"full_name": r[1], "prenume": r[2], "nume": r[3]} for r in rows}
    return companies, contacts


async def _suppressed(session: AsyncSession, journeys: list[GoldLeadJourney]) -> set[tuple[str, str]]:
    values = {v for j in journeys for v in (j.mobile_e164, (j.email or "").lower()) if v}
    if not values:
        return set()
    rows = await session.execute(
        select(SuppressionEntry.channel, SuppressionEntry.value).where(SuppressionEntry.value.in_(values))
    )
    return {(str(r[0]), str(r[1])) for r in rows}


def _is_suppressed(suppressed: set[tuple[str, str]], channel: str, value: str | None) -> bool:
    if not value:
        return False
    value = value.lower() if channel == "EMAIL" else value
    return (channel, value) in suppressed or ("ALL", value) in suppressed


class _SequenceCache:
    """Sequences, steps and templates loaded once per batch; parsed template texts once per run."""

    def __init__(self, session: AsyncSession, parsed: dict[str, PreparedTemplate]) -> None:
        self.session = session
        self.steps: dict[uuid.UUID, list[OutreachSequenceStep]] = {}
        self.templates: dict[uuid.UUID, OutreachTemplate | None] = {}
        self.sequences: dict[uuid.UUID, OutreachSequence | None] = {}
        self.defaults: dict[uuid.UUID, OutreachSequence | None] = {}
        self.active: dict[uuid.UUID, SequenceEnrollment] = {}
        self.enrolled: set[uuid.UUID] = set()
        self.last_inbound: dict[uuid.UUID, datetime] = {}
        self.variants = VariantCache(session)
        self.parsed = parsed

    async def default(self, tenant_id: uuid.UUID) -> OutreachSequence | None:
        if tenant_id not in self.defaults:
            self.defaults[tenant_id] = await sequences.default_sequence(self.session, tenant_id)
        return self.defaults[tenant_id]

    async def sequence(self, sequence_id: uuid.UUID) -> OutreachSequence | None:
        if sequence_id not in self.sequences:
            self.sequences[sequence_id] = await self.session.get(OutreachSequence, sequence_id)
        return self.sequences[sequence_id]

    async def steps_of(self, sequence_id: uuid.UUID) -> list[OutreachSequenceStep]:
        if sequence_id not in self.steps:
            self.steps[sequence_id] = await sequences.active_steps(self.session, sequence_id)
        return self.steps[sequence_id]

    async def template(self, template_id: uuid.UUID | None) -> OutreachTemplate | None:
        if template_id is None:
            return None
        if template_id not in self.templates:
            self.templates[template_id] = await self.session.get(OutreachTemplate, template_id)
        return self.templates[template_id]

    def prepared(self, text: str) -> PreparedTemplate:
        """``text`` parsed once per dispatch (raises :class:`SpintaxError`; a text that does
        not parse is parsed again for each message, which then raises again)."""
        template = self.parsed.get(text)
        if template is None:
            template = self.parsed[text] = PreparedTemplate(text)
        return template


@dataclass(frozen=True, kw_only=True)
class _Plan(sequences.StepText):
    """The step to send now (:class:`sequences.StepPlan`), by the enrollment's id: an
    enrollment made by this batch is a row to insert, not an object."""

    enrollment_id: uuid.UUID


async def _plan(
    session: AsyncSession,
    cache: _SequenceCache,
    writes: _Writes,
    journey: GoldLeadJourney,
    report: DispatchReport,
) -> _Plan | None:
    enrollment = cache.active.get(journey.id)
    if enrollment is None:
        if journey.id in cache.enrolled:
            return None
        default = await cache.default(journey.tenant_id)
        if default is None:
            return None
        steps = await cache.steps_of(default.id)
        first = next((s for s in steps if s.step_number > 0), None)
        at = utcnow()
        if first is not None and not (first.skip_if_replied and _replied_since(journey, cache, at)):
            # resolve_step would send this first step: nothing was sent for a new enrollment,
            # so it was not opened, and the lead wrote nothing since it (now). The enrollment
            # is then a row of the batch's INSERT rather than an object of the unit of work.
            return _Plan(
                enrollment_id=_enroll(writes, journey, default, len(steps), at),
                sequence=default,
                step=first,
                template=await cache.template(first.template_id),
            )
        enrollment = SequenceEnrollment(
            id=uuid.uuid4(),
            tenant_id=journey.tenant_id,
            lead_journey_id=journey.id,
            sequence_id=default.id,
            current_step=0,
            total_steps=len(steps),
            status=EnrollmentStatus.ACTIVE,
            enrolled_at=utcnow(),
            messages_sent=0,
            opens=0,
            clicks=0,
            replies=0,
        )
        session.add(enrollment)
        writes.set(journey, "current_sequence_id", default.id)
        writes.set(journey, "sequence_started_at", utcnow())
        writes.enrolled[default.id] += 1
    sequence = await cache.sequence(enrollment.sequence_id)
    if sequence is None or not sequence.is_active:
        return None
    decision = await sequences.resolve_step(
        session,
        journey,
        enrollment,
        sequence,
        await cache.steps_of(sequence.id),
        last_inbound=cache.last_inbound,
    )
    if decision.completed:
        report.completed += 1
    if decision.step is None:
        return None
    step = decision.step
    return _Plan(
        enrollment_id=enrollment.id,
        sequence=sequence,
        step=step,
        template=await cache.template(step.template_id),
    )


def _replied_since(journey: GoldLeadJourney, cache: _SequenceCache, since: datetime) -> bool:
    """:func:`sequences.skip_reason`'s reply test for an enrollment made at ``since``."""
    if journey.last_reply_at is not None and journey.last_reply_at >= since:
        return True
    last = cache.last_inbound.get(journey.id)
    return last is not None and last >= since


def _enroll(
    writes: _Writes, journey: GoldLeadJourney, sequence: OutreachSequence, total_steps: int, at: datetime
) -> uuid.UUID:
    """Enroll ``journey`` in ``sequence`` at ``at``: ACTIVE, step 0, counters 0 (a row of the
    batch's INSERT, see :data:`_INSERT_ENROLLMENTS`)."""
    enrollment_id = uuid.uuid4()
    writes.enrollments.append(
        {
            "id": enrollment_id,
            "tenant_id": journey.tenant_id,
            "lead_journey_id": journey.id,
            "sequence_id": sequence.id,
            "total_steps": total_steps,
            "enrolled_at": at,
        }
    )
    writes.set(journey, "current_sequence_id", sequence.id)
    writes.set(journey, "sequence_started_at", at)
    writes.enrolled[sequence.id] += 1
    return enrollment_id


async def _dispatch_one(
    session: AsyncSession,
    clock: BusinessClock,
    report: DispatchReport,
    pool: PhonePool,
    cache: _SequenceCache,
    writes: _Writes,
    journey: GoldLeadJourney,
    now: datetime,
    *,
    new_contact: bool,
    company: dict[str, object] | None,
    contact: dict[str, object] | None,
    suppressed: set[tuple[str, str]],
    exhausted: set[uuid.UUID],
) -> None:
    plan = await _plan(session, cache, writes, journey, report)
    if plan is None:
        # a skipped step (skip-if-replied/opened) already scheduled the next one for later
        if journey.next_action_at is None or journey.next_action_at <= now:
            writes.set(journey, "next_action_at", None)
        return
    wa_route = (
        bool(journey.mobile_e164)
        and not journey.whatsapp_opted_out
        and not journey.whatsapp_invalid
        and not _is_suppressed(suppressed, "WHATSAPP", journey.mobile_e164)
    )
    email_route = (
        bool(journey.email)
        and not journey.email_opted_out
        and not _is_suppressed(suppressed, "EMAIL", journey.email)
    )
    channel = plan.channel
    if channel == Channel.WHATSAPP and not wa_route:
        channel = Channel.EMAIL_COLD
    if channel == Channel.EMAIL_WARM:
        channel = Channel.EMAIL_COLD  # automation never sends warm mail: Resend is for leads who replied
    if channel == Channel.EMAIL_COLD and not email_route:
        if wa_route and plan.channel != Channel.EMAIL_COLD:
            channel = Channel.WHATSAPP
        else:
            report.no_route += 1
            writes.set(journey, "next_action_at", None)
            return
    if channel == Channel.EMAIL_COLD and journey.current_state not in (
        LeadState.COLD,
        LeadState.CONTACTED_EMAIL,
        LeadState.CONTACTED_WA,
    ):
        report.no_route += 1
        writes.set(journey, "next_action_at", None)
        return

    message_id = uuid.uuid4()
    plan = await sequences.with_variant(cache.variants, plan, message_id)
    variables = lead_variables(company or {}, contact)
    try:
        rendered = render(cache.prepared(plan.content), variables, seed=str(message_id))
    except SpintaxError as exc:
        raise TemplateNotSendable(f"template does not parse: {exc.message}") from exc
    ensure_sendable(rendered)
    subject = None
    if plan.subject:
        subject_rendered = render(cache.prepared(plan.subject), variables, seed=str(message_id))
        ensure_sendable(subject_rendered)
        subject = subject_rendered.text

    phone_id: str | None = None
    if channel == Channel.WHATSAPP:
        sticky = journey.assigned_phone_id
        if pool.usable(sticky) and (not new_contact or pool.remaining.get(sticky or "", 0) > 0):
            phone_id = sticky
        elif (
            sticky
            and not new_contact
            and pool.phones.get(sticky)
            and pool.phones[sticky].status in WAITING_PHONE
        ):
            phone_id = sticky  # the conversation stays on its number; the message waits for it
        else:
            phone_id = pool.best(journey.tenant_id, needs_quota=new_contact)
        if phone_id is None:
            report.waiting_quota += 1
            exhausted.add(journey.tenant_id)
            writes.set(journey, "next_action_at", clock.next_opening(clock.local_midnight_after(now)))
            return
        if new_contact:
            pool.spend(phone_id)
        if journey.assigned_phone_id != phone_id:
            writes.set(journey, "assigned_phone_id", phone_id)
            writes.set(journey, "assigned_at", now)

    values = outbound_values(
        journey,
        channel=channel,
        content=plan.content,
        content_rendered=rendered.text,
        subject=subject,
        origin=AUTOMATION,
        phone_id=phone_id,
        template_id=plan.template.id if plan.template else None,
        template_version_id=plan.version_id,
        sequence_id=plan.sequence.id,
        sequence_step=plan.step.step_number,
        enrollment_id=plan.enrollment_id,
        message_id=message_id,
        created_by="dispatch",
        extra={"raw_request": {"variant": rendered.variant}},
    )
    at = utcnow()
    values.update({key: values.get(key) for key in _MESSAGE_KEYS}, created_at=at, updated_at=at)
    writes.messages.append(values)
    writes.jobs.append(job_for_values(values, new_contact=new_contact))
    writes.set(journey, "next_action_at", None)  # in flight; the send schedules the next step
    if channel == Channel.WHATSAPP:
        report.whatsapp += 1
    else:
        report.email += 1
