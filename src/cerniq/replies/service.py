"""The reply pipeline: an inbound message becomes a log row, moves its lead, and is triaged.

1. :func:`record_inbound` (in the webhook job's transaction): the INBOUND row, idempotent on
   the vendor's message id; the lead's answered message becomes REPLIED, its counters move, it
   enters WARM_REPLY (a second reply is a no-op, NEGOTIATION stays), its sequences stop and its
   queued automated messages are skipped; then the triage job ``ai:sentiment:analyze`` is
   queued (job id ``ai-<row id>``).

   An out-of-office answer is not a reply: the offline analyzer runs first, synchronously, and
   when it sees an auto-responder the lead keeps its state and sequence, and only its next
   follow-up is pushed back (the business clock's next opening after seven days).

2. :func:`triage` (the job): the analyzer (LLM or offline) and :func:`~cerniq.replies.analyzer.route`
   decide, then DESIGN §9 is applied: opt-out (flags, suppression list, sequences stopped, queued
   automation skipped), reschedule, close (DEAD), a review (at most one per inbound message),
   or an automatic answer through :func:`cerniq.messaging.service.queue_message`.

3. :func:`record_operator_message`: a message typed on the physical phone (TimelinesAI reports
   it as sent, not through the API) is logged and puts the lead under human control.
"""

from __future__ import annotations

import importlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import system_principal
from cerniq.auth.service import record_audit
from cerniq.config import Settings
from cerniq.errors import Conflict, InvalidTransition, ValidationFailed
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import after_commit, transaction
from cerniq.kit.ids import job_id
from cerniq.kit.metrics import REPLIES
from cerniq.kit.redis import get_redis
from cerniq.leads.state import transition
from cerniq.logging import get_logger
from cerniq.messaging.service import AI, OPERATOR, queue_message
from cerniq.models import GoldCommunicationLog, GoldLeadJourney, WaPhoneNumber
from cerniq.models.enums import (
    Channel,
    Direction,
    LeadState,
    MessageStatus,
    ReviewPriority,
    ReviewReason,
    SuppressionReason,
)
from cerniq.providers.llm.client import build_analyzer, build_drafter
from cerniq.quota.guardian import QuotaGuardian
from cerniq.replies import repository
from cerniq.replies.analyzer import Analysis, AnalysisContext, Intent, Route, Routing, route, to_api
from cerniq.replies.bands import POSITIVE_REPLY_SCORE
from cerniq.replies.offline import OfflineAnalyzer, analyze_text
from cerniq.replies.responder import NoDraftForOptOutError
from cerniq.sequences import engine as sequences
from cerniq.templates.service import Outcome, record_message_outcome, record_reply
from cerniq.worker import names
from cerniq.worker.enqueue import enqueue_after_commit

__all__ = [
    "OUT_OF_OFFICE_PUSH",
    "InboundResult",
    "analyze",
    "count_reply",
    "opt_out",
    "push_back_followup",
    "record_inbound",
    "record_operator_message",
    "triage",
]

log = get_logger("cerniq.replies")

#: How far an out-of-office answer pushes the next follow-up (then the next business opening).
OUT_OF_OFFICE_PUSH = timedelta(days=7)
#: States a reply moves to WARM_REPLY. WARM_REPLY stays (not an error), NEGOTIATION and later
#: stay, PAUSED and DEAD keep the operator's decision (the triage still surfaces the reply).
REPLY_MOVES_FROM = (LeadState.COLD, LeadState.CONTACTED_WA, LeadState.CONTACTED_EMAIL)
#: Lead states whose follow-ups an out-of-office answer pushes back.
DISPATCHABLE = REPLY_MOVES_FROM
TRIAGE_ATTEMPTS = 4
TRIAGE_BACKOFF = {"type": "exponential", "delay": 10000}
MAX_TEXT = 10_000
EMAIL_CHANNELS = (Channel.EMAIL_COLD, Channel.EMAIL_WARM)
_AI_NAMESPACE = uuid.UUID("6f1d2c3e-8a1b-4c5d-9e0f-a1b2c3d4e5f6")


@dataclass(frozen=True)
class InboundResult:
    """What :func:`record_inbound` did: the row, whether it is new, whether it counted as a reply."""

    message: GoldCommunicationLog
    created: bool
    counted_as_reply: bool


def _lead_email(channel: Channel, email: str | None, journey: GoldLeadJourney) -> str | None:
    if channel not in EMAIL_CHANNELS:
        return None
    return (email or journey.email or "").lower() or None


def _analyzer_channel(channel: Channel) -> str:
    return "EMAIL" if channel in EMAIL_CHANNELS else "WHATSAPP"


# --- 1. recording -----------------------------------------------------------------------------


async def record_inbound(
    session: AsyncSession,
    journey: GoldLeadJourney,
    *,
    channel: Channel,
    external_message_id: str,
    text: str,
    received_at: datetime | None = None,
    thread_id: str | None = None,
    phone: WaPhoneNumber | None = None,
    phone_number: str | None = None,
    email: str | None = None,
    subject: str | None = None,
    payload: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> InboundResult:
    """Log an inbound message of ``journey`` and move the lead (see the module docstring).

    Idempotent: when a row with this ``external_message_id`` exists nothing changes and the
    existing row is returned with ``created=False``. Flushes, never commits.
    """
    locked = await repository.lock_journey(session, journey.id)
    if locked is None:
        raise ValidationFailed("the lead no longer exists")
    journey = locked
    existing = await repository.message_by_external_id(
        session, journey.tenant_id, external_message_id, Direction.INBOUND
    )
    if existing is not None:
        return InboundResult(existing, created=False, counted_as_reply=False)
    at = received_at or utcnow()
    message = GoldCommunicationLog(
        id=uuid.uuid4(),
        tenant_id=journey.tenant_id,
        lead_journey_id=journey.id,
        channel=channel,
        direction=Direction.INBOUND,
        status=MessageStatus.RECEIVED,
        origin="WEBHOOK",
        content=text or "",
        subject=subject,
        external_message_id=external_message_id,
        thread_id=thread_id,
        phone_id=phone.id if phone is not None else journey.assigned_phone_id,
        phone_number=phone_number or (journey.mobile_e164 if channel == Channel.WHATSAPP else None),
        email=_lead_email(channel, email, journey),
        webhook_payload=payload,
        status_updated_at=utcnow(),
        created_at=at,
        created_by="webhook",
    )
    session.add(message)
    await session.flush()
    if phone is not None:
        phone.last_message_received_at = at

    first_look = analyze_text(text or "", channel=_analyzer_channel(channel))
    counted = False
    if first_look.intent is Intent.OUT_OF_OFFICE and not first_look.opt_out:
        # An auto-responder: not a reply. The triage confirms (or corrects) this classification.
        message.intent_classification = Intent.OUT_OF_OFFICE.value
        if journey.current_state in DISPATCHABLE:
            await push_back_followup(session, journey, settings)
    else:
        await count_reply(session, journey, message, at=at)
        counted = True
    enqueue_after_commit(
        session,
        names.AI_SENTIMENT,
        "analyze",
        {"messageId": str(message.id), "tenantId": str(journey.tenant_id)},
        job_id=job_id("ai", message.id),
        attempts=TRIAGE_ATTEMPTS,
        backoff=TRIAGE_BACKOFF,
    )
    return InboundResult(message, created=True, counted_as_reply=counted)


async def count_reply(
    session: AsyncSession, journey: GoldLeadJourney, message: GoldCommunicationLog, *, at: datetime
) -> None:
    """The bookkeeping of a real reply: answered message REPLIED, counters, WARM_REPLY, sequences
    stopped, queued automated messages skipped."""
    answered = await repository.last_answerable(session, journey.id, message.channel)
    now = utcnow()
    if answered is not None and answered.status != MessageStatus.REPLIED:
        await record_reply(session, answered, sentiment_score=None)
        answered.status = MessageStatus.REPLIED
        answered.status_updated_at = now
        answered.replied_at = at
        answered.delivered_at = answered.delivered_at or at
        if answered.channel == Channel.WHATSAPP:
            answered.read_at = answered.read_at or at  # it was read before it was answered
            # a reply before the delivery poll's first check: the reply tells the chat
            answered.thread_id = answered.thread_id or message.thread_id
    journey.reply_count += 1
    journey.last_reply_at = at
    if message.channel == Channel.WHATSAPP and not journey.wa_chat_id and message.thread_id:
        journey.wa_chat_id = message.thread_id
    if journey.current_state in REPLY_MOVES_FROM:
        await transition(
            session,
            journey,
            LeadState.WARM_REPLY,
            trigger="WEBHOOK_REPLY",
            reason=f"reply on {message.channel.value}",
            actor="webhook",
        )
    on_reply = getattr(sequences, "on_reply", None)
    if on_reply is not None:
        await on_reply(session, journey)  # counts the reply on the enrollment (sequence stats)
    await sequences.stop(session, journey, "LEAD_REPLIED")
    await _skip_queued(session, journey, "LEAD_REPLIED")


async def push_back_followup(
    session: AsyncSession, journey: GoldLeadJourney, settings: Settings | None = None
) -> datetime:
    """Move the lead's next follow-up to the next business opening after seven days (never earlier
    than it already was). Sequences keep running."""
    from cerniq.config import get_settings

    clock = BusinessClock.from_settings(settings or get_settings())
    target = clock.next_opening(utcnow() + OUT_OF_OFFICE_PUSH)
    if journey.next_action_at is not None and journey.next_action_at < target:
        journey.next_action_at = target
    for enrollment in await repository.active_enrollments(session, journey.id):
        if enrollment.next_step_at is not None and enrollment.next_step_at < target:
            enrollment.next_step_at = target
    return target


async def record_operator_message(
    session: AsyncSession,
    journey: GoldLeadJourney,
    *,
    external_message_id: str,
    text: str,
    sent_at: datetime | None,
    thread_id: str | None,
    phone: WaPhoneNumber | None,
    phone_number: str | None,
) -> GoldCommunicationLog:
    """Log a message an operator typed on the phone (OUTBOUND, origin OPERATOR, SENT) and put
    the lead under human control: automation stops, the operator owns the conversation."""
    locked = await repository.lock_journey(session, journey.id)
    if locked is None:
        raise ValidationFailed("the lead no longer exists")
    journey = locked
    existing = await repository.message_by_external_id(
        session, journey.tenant_id, external_message_id, Direction.OUTBOUND
    )
    if existing is not None:
        return existing
    at = sent_at or utcnow()
    now = utcnow()
    message = GoldCommunicationLog(
        id=uuid.uuid4(),
        tenant_id=journey.tenant_id,
        lead_journey_id=journey.id,
        channel=Channel.WHATSAPP,
        direction=Direction.OUTBOUND,
        status=MessageStatus.SENT,
        origin=OPERATOR,
        content=text or "",
        content_rendered=text or "",
        external_message_id=external_message_id,
        thread_id=thread_id,
        phone_id=phone.id if phone is not None else journey.assigned_phone_id,
        phone_number=phone_number or journey.mobile_e164,
        sent_at=at,
        status_updated_at=now,
        created_at=at,
        created_by=f"phone:{phone.phone_number}" if phone is not None else "phone",
        quota_cost=0,
    )
    session.add(message)
    await session.flush()
    if phone is not None:
        phone.total_messages_sent += 1
        phone.last_message_sent_at = at
        if journey.assigned_phone_id is None:
            journey.assigned_phone_id = phone.id
            journey.assigned_at = at
    if thread_id and not journey.wa_chat_id:
        journey.wa_chat_id = thread_id
    journey.first_contact_at = journey.first_contact_at or at
    journey.first_contact_channel = journey.first_contact_channel or Channel.WHATSAPP
    journey.last_contact_at = at
    journey.last_channel_used = Channel.WHATSAPP
    journey.messages_sent += 1
    journey.is_new_contact = False
    if journey.current_state == LeadState.COLD:
        await transition(
            session,
            journey,
            LeadState.CONTACTED_WA,
            trigger="MANUAL",
            reason="operator wrote from the phone",
            actor="phone",
        )
    if not journey.is_human_controlled:
        journey.is_human_controlled = True
        journey.human_controlled_at = now
        journey.human_control_reason = "operator wrote from the phone"
        await record_audit(
            session,
            system_principal(journey.tenant_id, "timelinesai-webhook"),
            "lead.takeover",
            entity_type="lead_journey",
            entity_id=journey.id,
            reason="operator wrote from the phone",
            before={"isHumanControlled": False},
            after={"isHumanControlled": True, "messageId": str(message.id)},
        )
    await sequences.stop(session, journey, "HUMAN_TAKEOVER")
    await _skip_queued(session, journey, "HUMAN_TAKEOVER")
    return message


async def _skip_queued(session: AsyncSession, journey: GoldLeadJourney, reason: str) -> int:
    """Skip the lead's queued automated messages; their quota reservations are given back after
    commit (a QUEUED row never reached the vendor)."""
    skipped = await repository.skip_queued_automated(session, journey.id, reason)
    reserved = [s for s in skipped if s.phone_id and s.quota_date]
    if reserved:

        async def release() -> None:
            guardian = QuotaGuardian(get_redis())
            for item in reserved:
                assert item.phone_id is not None and item.quota_date is not None
                await guardian.release(
                    phone_id=item.phone_id, day=item.quota_date, reservation_id=str(item.id)
                )

        after_commit(session, release)
    return len(skipped)


# --- 2. triage --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Facts:
    text: str
    channel: Channel
    subject: str | None
    auto_reply_enabled: bool
    company: str
    contact: str | None
    last_outbound: str | None


async def analyze(
    text: str, *, channel: str, settings: Settings, context: AnalysisContext | None = None
) -> Analysis:
    """Run the configured analyzer (LLM, or offline); never raises: falls back to offline."""
    analyzer = build_analyzer(settings)
    try:
        return await analyzer.analyze(text, channel=channel, context=context)
    except Exception:
        log.exception("replies.analyzer_failed")
        return await OfflineAnalyzer().analyze(text, channel=channel, context=context)
    finally:
        close = getattr(analyzer, "aclose", None)
        if close is not None:
            await close()


async def _draft(settings: Settings, facts: _Facts, analysis: Analysis) -> str | None:
    drafter = build_drafter(settings)
    try:
        language = analysis.language if analysis.language in ("ro", "en") else "ro"
        text = await drafter.draft_reply(
            facts.text, analysis, company_name=facts.company, contact_name=facts.contact, language=language
        )
        return text.strip() or None
    except NoDraftForOptOutError:
        return None
    except Exception:
        log.exception("replies.draft_failed")
        return None
    finally:
        close = getattr(drafter, "aclose", None)
        if close is not None:
            await close()


async def triage(message_id: uuid.UUID, settings: Settings) -> dict[str, Any]:
    """The ``ai:sentiment:analyze`` job: analyse an inbound row and act on it (DESIGN §9).

    Runs once per row: a row already analysed is left alone, so a retried job changes nothing.
    The analyzer and the drafter (network calls with an LLM) run outside any transaction.
    """
    async with transaction() as session:
        message = await repository.get_message(session, message_id)
        if message is None or message.direction != Direction.INBOUND:
            return {"outcome": "missing"}
        if message.sentiment_analyzed_at is not None:
            return {"outcome": "already-analyzed"}
        journey = await session.get(GoldLeadJourney, message.lead_journey_id)
        tenant = await repository.get_tenant(session, message.tenant_id)
        if journey is None or tenant is None:
            return {"outcome": "missing"}
        company, contact = await repository.lead_names(session, journey)
        facts = _Facts(
            text=message.content,
            channel=message.channel,
            subject=message.subject,
            auto_reply_enabled=bool((tenant.settings or {}).get("auto_reply_enabled", False)),
            company=company,
            contact=contact,
            last_outbound=await repository.last_outbound_text(session, journey.id),
        )

    context = AnalysisContext(
        company_name=facts.company, contact_name=facts.contact, last_outbound=facts.last_outbound
    )
    analysis = await analyze(
        facts.text, channel=_analyzer_channel(facts.channel), settings=settings, context=context
    )
    routing = route(analysis, auto_reply_enabled=facts.auto_reply_enabled)
    draft = await _draft(settings, facts, analysis) if routing.draft_wanted and not analysis.opt_out else None

    async with transaction() as session:
        message = await repository.lock_message(session, message_id)
        if message is None:
            return {"outcome": "missing"}
        if message.sentiment_analyzed_at is not None:
            return {"outcome": "already-analyzed"}
        journey = await repository.lock_journey(session, message.lead_journey_id)
        if journey is None:
            return {"outcome": "missing"}
        preliminary = message.intent_classification
        message.sentiment_score = analysis.score
        message.intent_classification = analysis.intent.value
        message.sentiment_analyzed_at = utcnow()
        journey.sentiment_score = analysis.score
        if preliminary == Intent.OUT_OF_OFFICE.value and routing.route is not Route.RESCHEDULE:
            # record_inbound took it for an auto-responder; the analyzer says it is a reply.
            await count_reply(session, journey, message, at=message.created_at)
        if analysis.score >= POSITIVE_REPLY_SCORE:
            answered = await repository.last_replied(session, journey.id, message.channel)
            if answered is not None:
                await record_message_outcome(session, answered, Outcome.POSITIVE_REPLY)
        result = await _act(session, settings, journey, message, analysis, routing, draft, facts)
    REPLIES.labels(channel=facts.channel.value, intent=analysis.intent.value).inc()
    return {
        "outcome": "analyzed",
        "score": analysis.score,
        "intent": analysis.intent.value,
        "route": routing.route.value,
        **result,
    }


async def _act(
    session: AsyncSession,
    settings: Settings,
    journey: GoldLeadJourney,
    message: GoldCommunicationLog,
    analysis: Analysis,
    routing: Routing,
    draft: str | None,
    facts: _Facts,
) -> dict[str, Any]:
    done: dict[str, Any] = {}
    if routing.route is Route.OPT_OUT:
        done["optedOut"] = await opt_out(
            session,
            journey,
            channel=message.channel,
            scope="ALL" if analysis.opt_out_scope == "ALL" else "CHANNEL",
            source="reply",
            details={"messageId": str(message.id), "reasons": list(analysis.reasons)[:5]},
        )
    elif routing.route is Route.RESCHEDULE:
        if journey.current_state in DISPATCHABLE:
            done["nextActionAt"] = (await push_back_followup(session, journey, settings)).isoformat()
    elif routing.route is Route.CLOSE:
        await sequences.stop(session, journey, "NOT_INTERESTED")
        await _skip_queued(session, journey, "NOT_INTERESTED")
        done["closed"] = await _move(session, journey, LeadState.DEAD, "not interested")
    elif routing.route is Route.AUTO_REPLY:
        answer = await _auto_reply(session, journey, message, draft, facts)
        if answer is not None:
            done["autoReplyId"] = str(answer.id)
        else:
            # Not sendable now (takeover, opt-out, no route, no draft): a human answers instead.
            routing = Routing(
                route=Route.REVIEW,
                priority=ReviewPriority.MEDIUM,
                needs_review=True,
                review_reason=ReviewReason.AI_DRAFT if draft else ReviewReason.AI_UNCERTAIN,
                draft_wanted=True,
            )
    if routing.needs_review and routing.priority is not None and routing.review_reason is not None:
        done["review"] = await _open_review(session, journey, message, analysis, routing, draft)
    return done


async def _move(session: AsyncSession, journey: GoldLeadJourney, state: LeadState, reason: str) -> bool:
    try:
        return await transition(session, journey, state, trigger="SYSTEM", reason=reason, actor="triage")
    except InvalidTransition:
        return False


async def _auto_reply(
    session: AsyncSession,
    journey: GoldLeadJourney,
    message: GoldCommunicationLog,
    draft: str | None,
    facts: _Facts,
) -> GoldCommunicationLog | None:
    if not draft:
        return None
    email = message.channel in EMAIL_CHANNELS
    subject = None
    if email:
        base = (facts.subject or "").strip()
        subject = base if base.lower().startswith("re:") else f"Re: {base}" if base else "Re: Cerniq"
    try:
        return await queue_message(
            session,
            journey,
            channel=Channel.EMAIL_WARM if email else Channel.WHATSAPP,
            content=draft,
            origin=AI,
            subject=subject,
            phone_id=None if email else (journey.assigned_phone_id or message.phone_id),
            is_ai_generated=True,
            created_by="ai",
            # One answer per inbound message, even if this ever ran twice.
            message_id=uuid.uuid5(_AI_NAMESPACE, f"auto-reply:{message.id}"),
        )
    except (Conflict, ValidationFailed) as exc:
        log.info("replies.auto_reply_refused", lead=str(journey.id), reason=exc.error_code)
        return None


async def _open_review(
    session: AsyncSession,
    journey: GoldLeadJourney,
    message: GoldCommunicationLog,
    analysis: Analysis,
    routing: Routing,
    draft: str | None,
) -> str | None:
    """Open the review of this inbound message through the HITL service (one per message)."""
    assert routing.priority is not None and routing.review_reason is not None
    open_review = _review_opener()
    if open_review is None:
        # The review queue is not installed: flag the lead so it is not lost (dispatch skips it).
        log.warning("replies.review_service_missing", lead=str(journey.id))
        journey.requires_human_review = True
        journey.human_review_reason = routing.review_reason.value
        journey.human_review_priority = routing.priority
        return None
    review = await open_review(
        session,
        journey=journey,
        communication=message,
        reason=routing.review_reason,
        priority=routing.priority,
        trigger_content=message.content,
        ai_analysis=to_api(analysis, routing),
        suggested_response=draft,
    )
    review_id = getattr(review, "id", None)
    return str(review_id) if review_id is not None else None


def _review_opener() -> Any:
    try:
        module = importlib.import_module("cerniq.reviews.service")
    except ModuleNotFoundError as exc:
        if exc.name in ("cerniq.reviews", "cerniq.reviews.service"):
            return None
        raise
    return getattr(module, "open_review", None)


# --- opt-out ------------------------------------------------------------------------------------


async def opt_out(
    session: AsyncSession,
    journey: GoldLeadJourney,
    *,
    channel: Channel,
    scope: Literal["CHANNEL", "ALL"],
    source: str,
    details: dict[str, Any] | None = None,
) -> list[str]:
    """Opt the lead out of ``channel``'s medium (WhatsApp or email), or of everything for scope
    ALL: journey flags, suppression rows, sequences stopped, queued automated messages skipped.
    A lead with no channel left is moved to DEAD. Returns the suppressed channel names."""
    whatsapp = scope == "ALL" or channel == Channel.WHATSAPP
    email = scope == "ALL" or channel in EMAIL_CHANNELS
    now = utcnow()
    if whatsapp:
        journey.whatsapp_opted_out = True
    if email:
        journey.email_opted_out = True
    journey.opted_out_at = journey.opted_out_at or now
    suppressed: list[str] = []
    entries: list[tuple[str, str | None]] = []
    if scope == "ALL":
        entries = [("ALL", journey.mobile_e164), ("ALL", (journey.email or "").lower() or None)]
    elif whatsapp:
        entries = [("WHATSAPP", journey.mobile_e164)]
    else:
        entries = [("EMAIL", (journey.email or "").lower() or None)]
    for suppression_channel, value in entries:
        if not value:
            continue
        await repository.add_suppression(
            session,
            tenant_id=journey.tenant_id,
            channel=suppression_channel,
            value=value.lower(),
            reason=SuppressionReason.OPT_OUT,
            source=source,
            journey_id=journey.id,
            details=details or {},
        )
        if suppression_channel not in suppressed:
            suppressed.append(suppression_channel)
    await sequences.stop(session, journey, "OPTED_OUT")
    await _skip_queued(session, journey, "OPTED_OUT")
    whatsapp_left = bool(journey.mobile_e164) and not journey.whatsapp_opted_out
    email_left = bool(journey.email) and not journey.email_opted_out
    if not whatsapp_left and not email_left:
        await _move(session, journey, LeadState.DEAD, "opted out of every channel")
    return suppressed or (["WHATSAPP"] if whatsapp else ["EMAIL"])


# --- the analyze endpoint -----------------------------------------------------------------------


async def analyze_for_api(
    session: AsyncSession, tenant_id: uuid.UUID, text: str, channel: str | None, settings: Settings
) -> dict[str, Any]:
    """``POST /api/v1/outreach/ai/analyze``: the triage of ``text`` without touching any lead."""
    if not text or not text.strip():
        raise ValidationFailed("text is empty", details={"field": "text"})
    if len(text) > MAX_TEXT:
        raise ValidationFailed(
            f"text is longer than {MAX_TEXT} characters", details={"field": "text", "maxLength": MAX_TEXT}
        )
    tenant = await repository.get_tenant(session, tenant_id)
    auto = bool((tenant.settings or {}).get("auto_reply_enabled", False)) if tenant is not None else False
    kind = "EMAIL" if (channel or "").upper().startswith("EMAIL") else "WHATSAPP"
    analysis = await analyze(text, channel=kind, settings=settings)
    return to_api(analysis, route(analysis, auto_reply_enabled=auto))
