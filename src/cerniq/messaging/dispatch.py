"""Dispatch (``outreach:orchestrator:dispatch``, every 5 minutes and on demand).

Claims due leads with ``FOR UPDATE SKIP LOCKED`` (so several dispatchers never take the same
lead), picks the channel, allocates the sticky phone within today's quota, renders the step's
template and writes one QUEUED row per lead; the jobs go to the phone queues after commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from cerniq.config import Settings, get_settings
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.logging import get_logger
from cerniq.messaging import repository
from cerniq.messaging.service import AUTOMATION, queue_message
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
from cerniq.models.enums import Channel, Direction, EnrollmentStatus, LeadState, MessageStatus, PhoneStatus
from cerniq.ops import alerts
from cerniq.ops.system_state import emergency_stop
from cerniq.quota.guardian import QuotaGuardian
from cerniq.sequences import engine as sequences
from cerniq.sequences import repository as sequences_repository
from cerniq.templates.render import TemplateNotSendable, ensure_sendable, lead_variables, render
from cerniq.templates.service import VariantCache
from cerniq.templates.spintax import SpintaxError

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
    """The tenant's phones and what each may still take today."""

    phones: dict[str, WaPhoneNumber]
    remaining: dict[str, int]

    def usable(self, phone_id: str | None) -> bool:
        phone = self.phones.get(phone_id or "")
        return phone is not None and phone.is_enabled and phone.status == PhoneStatus.ACTIVE

    def best(self, tenant_id: uuid.UUID, *, needs_quota: bool) -> str | None:
        candidates = [
            p
            for p in self.phones.values()
            if p.tenant_id == tenant_id
            and p.is_enabled
            and p.status == PhoneStatus.ACTIVE
            and (not needs_quota or self.remaining.get(p.id, 0) > 0)
        ]
        if not candidates:
            return None
        candidates.sort(key=lambda p: (-self.remaining.get(p.id, 0), p.priority, len(p.id), p.id))
        return candidates[0].id


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
    for _ in range(max_batches):
        claimed = await _dispatch_batch(settings, report, size, tenant_id)
        if claimed < size or report.stopped:
            break
    if report.claimed:
        log.info("dispatch.done", **report.as_dict())
    return report


async def _dispatch_batch(
    settings: Settings, report: DispatchReport, size: int, tenant_id: uuid.UUID | None = None
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
        pool = await _phone_pool(session, clock, {j.tenant_id for j in journeys})
        contacted = await repository.contacted_journeys(session, [j.id for j in journeys])
        companies, contacts = await _lead_data(session, journeys)
        suppressed = await _suppressed(session, journeys)
        cache = _SequenceCache(session)
        cache.active, cache.enrolled = await repository.enrollments_of(session, [j.id for j in journeys])
        cache.last_inbound = await sequences_repository.last_inbound_many(session, [j.id for j in journeys])
        exhausted_tenants: set[uuid.UUID] = set()
        for journey in journeys:
            try:
                await _dispatch_one(
                    session,
                    settings,
                    clock,
                    report,
                    pool,
                    cache,
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
                journey.next_action_at = None
                journey.requires_human_review = True
                journey.human_review_reason = f"TEMPLATE_UNRESOLVED: {exc.message}"[:500]
        # every row of the batch in two flushes: the new enrollments first (the messages point at
        # them and the unit of work does not order tables without relationships), then the rest
        if cache.new_enrollments:
            await session.flush(cache.new_enrollments)
        await session.flush()
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
    remaining = await remaining_quota(session, {p.id: p.daily_quota_limit for p in phones}, clock)
    return PhonePool({p.id: p for p in phones}, remaining)


async def remaining_quota(
    session: AsyncSession, limits: dict[str, int], clock: BusinessClock
) -> dict[str, int]:
    """New contacts each phone (id -> daily limit) may still be promised today: its limit, less
    what Redis counts as spent, less the QUEUED new contacts not yet reserved.

    A send job reserves in Redis first and commits its row as SENDING after, so a row can be
    QUEUED in PostgreSQL and already counted in Redis: those rows are counted once. PostgreSQL is
    read before Redis: a row no longer QUEUED there was reserved before that read began, so the
    later Redis read holds it (nothing falls between the two reads)."""
    promised_rows = await _queued_new_contacts(session, list(limits))
    used, reserved = await QuotaGuardian(get_redis()).usage_and_reserved(
        list(limits), clock.business_day(utcnow()), promised_rows
    )
    return {
        phone: limit
        - used.get(phone, 0)
        - sum(1 for rid in promised_rows.get(phone, ()) if rid not in reserved)
        for phone, limit in limits.items()
    }


async def _queued_new_contacts(session: AsyncSession, phone_ids: list[str]) -> dict[str, list[str]]:
    """The ids of the QUEUED WhatsApp rows per phone whose lead was never contacted."""
    if not phone_ids:
        return {}
    row = GoldCommunicationLog
    earlier = aliased(GoldCommunicationLog)
    contacted = (
        select(earlier.id)
        .where(
            earlier.lead_journey_id == row.lead_journey_id,
            earlier.channel == Channel.WHATSAPP,
            earlier.direction == Direction.OUTBOUND,
            earlier.status.in_(repository.CONTACTED),
        )
        .exists()
    )
    rows = await session.execute(
        select(row.phone_id, row.id).where(
            row.phone_id.in_(phone_ids),
            row.status == MessageStatus.QUEUED,
            row.channel == Channel.WHATSAPP,
            ~contacted,
        )
    )
    promised: dict[str, list[str]] = {}
    for phone, row_id in rows:
        promised.setdefault(str(phone), []).append(str(row_id))
    return promised


async def _lead_data(
    session: AsyncSession, journeys: list[GoldLeadJourney]
) -> tuple[dict[uuid.UUID, GoldCompany], dict[uuid.UUID, GoldContact]]:
    company_ids = {j.lead_id for j in journeys}
    contact_ids = {j.primary_contact_id for j in journeys if j.primary_contact_id}
    companies = {
        c.id: c
        for c in (await session.execute(select(GoldCompany).where(GoldCompany.id.in_(company_ids)))).scalars()
    }
    contacts: dict[uuid.UUID, GoldContact] = {}
    if contact_ids:
        contacts = {
            c.id: c
            for c in (
                await session.execute(select(GoldContact).where(GoldContact.id.in_(contact_ids)))
            ).scalars()
        }
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
    """Sequences, steps and templates loaded once per batch."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.steps: dict[uuid.UUID, list[OutreachSequenceStep]] = {}
        self.templates: dict[uuid.UUID, OutreachTemplate | None] = {}
        self.sequences: dict[uuid.UUID, OutreachSequence | None] = {}
        self.defaults: dict[uuid.UUID, OutreachSequence | None] = {}
        self.active: dict[uuid.UUID, SequenceEnrollment] = {}
        self.enrolled: set[uuid.UUID] = set()
        self.new_enrollments: list[SequenceEnrollment] = []
        self.last_inbound: dict[uuid.UUID, datetime] = {}
        self.variants = VariantCache(session)

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


async def _plan(
    session: AsyncSession, cache: _SequenceCache, journey: GoldLeadJourney, report: DispatchReport
) -> sequences.StepPlan | None:
    enrollment = cache.active.get(journey.id)
    if enrollment is None:
        if journey.id in cache.enrolled:
            return None
        default = await cache.default(journey.tenant_id)
        if default is None:
            return None
        enrollment = SequenceEnrollment(
            id=uuid.uuid4(),
            tenant_id=journey.tenant_id,
            lead_journey_id=journey.id,
            sequence_id=default.id,
            current_step=0,
            total_steps=len(await cache.steps_of(default.id)),
            status=EnrollmentStatus.ACTIVE,
            enrolled_at=utcnow(),
            messages_sent=0,
            opens=0,
            clicks=0,
            replies=0,
        )
        session.add(enrollment)
        cache.new_enrollments.append(enrollment)
        journey.current_sequence_id = default.id
        journey.sequence_started_at = utcnow()
        default.total_enrolled += 1
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
    return sequences.StepPlan(enrollment, sequence, step, await cache.template(step.template_id))


async def _dispatch_one(
    session: AsyncSession,
    settings: Settings,
    clock: BusinessClock,
    report: DispatchReport,
    pool: PhonePool,
    cache: _SequenceCache,
    journey: GoldLeadJourney,
    now: datetime,
    *,
    new_contact: bool,
    company: GoldCompany | None,
    contact: GoldContact | None,
    suppressed: set[tuple[str, str]],
    exhausted: set[uuid.UUID],
) -> None:
    plan = await _plan(session, cache, journey, report)
    if plan is None:
        # a skipped step (skip-if-replied/opened) already scheduled the next one for later
        if journey.next_action_at is None or journey.next_action_at <= now:
            journey.next_action_at = None
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
            journey.next_action_at = None
            return
    if channel == Channel.EMAIL_COLD and journey.current_state not in (
        LeadState.COLD,
        LeadState.CONTACTED_EMAIL,
        LeadState.CONTACTED_WA,
    ):
        report.no_route += 1
        journey.next_action_at = None
        return

    message_id = uuid.uuid4()
    plan = await sequences.with_variant(cache.variants, plan, message_id)
    variables = lead_variables(_company_fields(company), _contact_fields(contact))
    try:
        rendered = render(plan.content, variables, seed=str(message_id))
    except SpintaxError as exc:
        raise TemplateNotSendable(f"template does not parse: {exc.message}") from exc
    ensure_sendable(rendered)
    subject = None
    if plan.subject:
        subject_rendered = render(plan.subject, variables, seed=str(message_id))
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
            journey.next_action_at = clock.next_opening(clock.local_midnight_after(now))
            return
        if new_contact:
            pool.remaining[phone_id] = pool.remaining.get(phone_id, 0) - 1
        if journey.assigned_phone_id != phone_id:
            journey.assigned_phone_id = phone_id
            journey.assigned_at = now

    await queue_message(
        session,
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
        enrollment_id=plan.enrollment.id,
        new_contact=new_contact,
        message_id=message_id,
        created_by="dispatch",
        extra={"raw_request": {"variant": rendered.variant}},
        flush=False,
    )
    journey.next_action_at = None  # in flight; the send schedules the next step
    if channel == Channel.WHATSAPP:
        report.whatsapp += 1
    else:
        report.email += 1


def _company_fields(company: GoldCompany | None) -> dict[str, object]:
    if company is None:
        return {}
    return {
        "denumire": company.denumire,
        "judet": company.judet,
        "localitate": company.localitate,
        "sector": company.sector,
        "is_agricultural": company.is_agricultural,
        "cui": company.cui,
    }


def _contact_fields(contact: GoldContact | None) -> dict[str, object] | None:
    if contact is None:
        return None
    return {"full_name": contact.full_name, "prenume": contact.prenume, "nume": contact.nume}
