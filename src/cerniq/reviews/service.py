"""The human review queue (DESIGN §9, digest §7, runbook §5).

A review is opened by the reply pipeline (:func:`open_review`, one per inbound message) or for a
situation without a message (bounce, manual flag). Its SLA deadline follows its priority
(URGENT 1 h, HIGH 4 h, MEDIUM 24 h, LOW 72 h). Humans assign, start, escalate and resolve it;
resolving may answer the lead through the send path (``queue_message(origin="REVIEW")``), mark
it dead, pause it or take it over.

Only a human action counts for the SLA: ``first_human_action_at`` is set by an assignment,
start, escalation or resolution made by a person (token, console user, local operator, CLI),
never by the SLA monitor's own assignments and never by an AI answer to the lead. The monitor
(:func:`check_slas`, every minute) flags waiting reviews past their deadline, raises one
``sla:breach`` alert per review and escalates by the runbook's rules (5.1): URGENT to the
manager, HIGH to a team lead, MEDIUM/LOW to the least-loaded available operator, and an URGENT
review nobody touched within 2 h once more (level 3).

Services never commit; the request, task or CLI owns the transaction. Every mutation writes
``hitl_audit_log`` and ``audit_log``.
"""

from __future__ import annotations

import uuid
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import Principal
from cerniq.auth.service import record_audit
from cerniq.errors import Conflict, EmergencyStopActive, NotFound, ValidationFailed
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.kit.metrics import REVIEWS_PENDING
from cerniq.kit.pagination import PageParams
from cerniq.leads.state import transition
from cerniq.logging import get_logger
from cerniq.messaging import repository as messaging_repository
from cerniq.messaging.service import REVIEW, queue_message
from cerniq.models import (
    GoldCommunicationLog,
    GoldLeadJourney,
    HitlAuditEntry,
    HumanReview,
    User,
)
from cerniq.models.enums import (
    Channel,
    LeadState,
    ReviewAction,
    ReviewPriority,
    ReviewReason,
    ReviewStatus,
)
from cerniq.ops import alerts
from cerniq.ops.system_state import emergency_stop
from cerniq.reviews import notify, repository
from cerniq.reviews.repository import CLOSED_STATUSES, OPEN_STATUSES, ReviewFilters
from cerniq.reviews.schemas import ResolveAction, ResolveBody
from cerniq.sequences import engine as sequences

log = get_logger("cerniq.reviews")

SLA: Final[dict[ReviewPriority, timedelta]] = {
    ReviewPriority.URGENT: timedelta(hours=1),
    ReviewPriority.HIGH: timedelta(hours=4),
    ReviewPriority.MEDIUM: timedelta(hours=24),
    ReviewPriority.LOW: timedelta(hours=72),
}
#: An URGENT review no human touched this long after it was opened is escalated again (5.1 step 4).
URGENT_UNANSWERED_AFTER: Final = timedelta(hours=2)
UNANSWERED_REASON: Final = "SLA_BREACH_UNRESPONDED"
NOTIFY_PRIORITIES: Final = (ReviewPriority.URGENT, ReviewPriority.HIGH)
ESCALATION_TARGETS: Final = ("manager", "team_lead", "on_call")
MONITOR_ACTOR: Final = "system:sla-monitor"

ACTION_RESULT: Final[dict[ResolveAction, ReviewAction]] = {
    ResolveAction.APPROVE: ReviewAction.APPROVED,
    ResolveAction.EDIT: ReviewAction.EDITED,
    ResolveAction.CUSTOM: ReviewAction.EDITED,
    ResolveAction.REJECT: ReviewAction.REJECTED,
    ResolveAction.MARK_DEAD: ReviewAction.MARKED_DEAD,
    ResolveAction.PAUSE_LEAD: ReviewAction.LEAD_PAUSED,
    ResolveAction.TAKEOVER: ReviewAction.TAKEOVER,
    ResolveAction.IGNORE: ReviewAction.IGNORED,
}
SENDING_ACTIONS: Final = (ResolveAction.APPROVE, ResolveAction.EDIT, ResolveAction.CUSTOM)
WARM_STATES: Final = (LeadState.WARM_REPLY, LeadState.NEGOTIATION)

SLA_BREACHES = Counter("cerniq_sla_breach_total", "Reviews that breached their SLA", ["priority"])
RESOLUTION_SECONDS = Histogram(
    "cerniq_review_resolution_seconds",
    "From a review's creation to its resolution",
    ["priority", "action"],
    buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200),
)


# ---------------------------------------------------------------------------------------------
# Helpers


def iso_z(value: datetime | None) -> str | None:
    """``2026-01-18T09:30:00Z``: whole seconds, UTC, ``Z``, the one format jq's ``fromdate``
    parses (the runbook filters ``(.slaDueAt | fromdate) < now``)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sla_for(priority: ReviewPriority) -> timedelta:
    return SLA[ReviewPriority(priority)]


def is_human(principal: Principal) -> bool:
    """Scheduled jobs act as ``system``; tokens, console users, the CLI and the local operator
    are people."""
    return principal.actor_type != "system"


def _snapshot(review: HumanReview) -> dict[str, Any]:
    return {
        "status": review.status.value,
        "priority": review.priority.value,
        "assignedTo": str(review.assigned_to) if review.assigned_to else None,
        "escalatedTo": review.escalated_to,
        "escalationLevel": review.escalation_level,
        "slaBreached": review.sla_breached,
        "resolutionAction": review.resolution_action.value if review.resolution_action else None,
    }


async def _hitl(
    session: AsyncSession,
    review: HumanReview,
    action: str,
    *,
    performed_by: str,
    before: dict[str, Any] | None = None,
    notes: str | None = None,
    principal: Principal | None = None,
    user_agent: str | None = None,
) -> None:
    values: dict[str, Any] = {
        "tenant_id": review.tenant_id,
        "review_id": review.id,
        "action": action,
        "performed_by": performed_by,
        "previous_state": before,
        "new_state": _snapshot(review),
        "notes": notes,
        "ip_address": principal.ip_address if principal else None,
        "user_agent": user_agent,
    }
    # The actual instant (not the monitor's logical ``now``): entries of one transaction keep
    # their order, which the database's now() (one value per transaction) would not.
    values["performed_at"] = utcnow()
    await repository.add_hitl_entry(session, **values)


def _mark_human(review: HumanReview, principal: Principal, now: datetime) -> None:
    if is_human(principal) and review.first_human_action_at is None:
        review.first_human_action_at = now


async def sync_journey_flags(session: AsyncSession, journey: GoldLeadJourney) -> None:
    """Mirror the journey's open reviews on its flags: ``requires_human_review`` and the reason
    and priority of the most urgent open review (cleared when none is left)."""
    await session.flush()
    remaining = await repository.open_reviews_of_journey(session, journey.id)
    if remaining:
        top = remaining[0]
        journey.requires_human_review = True
        journey.human_review_reason = top.reason.value
        journey.human_review_priority = top.priority
    else:
        journey.requires_human_review = False
        journey.human_review_reason = None
        journey.human_review_priority = None


async def _get(
    session: AsyncSession, tenant_id: uuid.UUID, review_id: uuid.UUID, *, for_update: bool = True
) -> HumanReview:
    review = await repository.get_review(session, tenant_id, review_id, for_update=for_update)
    if review is None:
        raise NotFound(f"review {review_id} not found", details={"id": str(review_id)})
    return review


def _require_open(review: HumanReview, verb: str) -> None:
    if review.status in CLOSED_STATUSES:
        raise Conflict(
            f"the review is already {review.status.value}; it cannot be {verb}",
            code="REVIEW_CLOSED",
            details={
                "status": review.status.value,
                "resolutionAction": review.resolution_action.value if review.resolution_action else None,
                "resolvedBy": review.resolved_by,
                "resolvedAt": iso_z(review.resolved_at),
            },
        )


async def _company_name(session: AsyncSession, journey: GoldLeadJourney | None) -> str:
    if journey is None:
        return "?"
    company = await repository.get_company(session, journey.lead_id)
    return company.denumire if company is not None else "?"


# ---------------------------------------------------------------------------------------------
# Opening a review


async def open_review(
    session: AsyncSession,
    *,
    journey: GoldLeadJourney,
    communication: GoldCommunicationLog | None,
    reason: ReviewReason,
    priority: ReviewPriority,
    trigger_content: str,
    ai_analysis: dict[str, Any] | None = None,
    suggested_response: str | None = None,
    created_by: str = "system",
) -> HumanReview:
    """Open a review of ``journey`` (PENDING, SLA deadline from ``priority``).

    Idempotent per inbound message: a second call for the same ``communication`` returns the
    review already opened for it and changes nothing. ``communication=None`` (a bounce, a manual
    flag) always opens a new review. Sets the journey's review flags, writes a CREATED audit row
    and, for URGENT and HIGH, posts a Slack notice once the transaction commits.
    """
    priority = ReviewPriority(priority)
    if communication is not None:
        existing = await repository.review_for_communication(session, communication.id)
        if existing is not None:
            return existing
    now = utcnow()
    analysis = dict(ai_analysis) if ai_analysis else None
    score = (analysis or {}).get("sentimentScore")
    if not isinstance(score, int | float) and communication is not None:
        score = communication.sentiment_score
    confidence = (analysis or {}).get("confidence")
    review = HumanReview(
        id=uuid.uuid4(),
        tenant_id=journey.tenant_id,
        lead_journey_id=journey.id,
        communication_id=communication.id if communication is not None else None,
        reason=ReviewReason(reason),
        priority=priority,
        status=ReviewStatus.PENDING,
        trigger_content=trigger_content,
        trigger_sentiment_score=int(score) if isinstance(score, int | float) else None,
        ai_analysis=analysis,
        suggested_response=suggested_response,
        confidence_score=float(confidence) if isinstance(confidence, int | float) else None,
        sla_due_at=now + sla_for(priority),
        sla_breached=False,
        escalation_level=0,
    )
    inserted = await repository.insert_review(session, review)
    if inserted is None:  # a concurrent call opened it first
        assert communication is not None
        existing = await repository.review_for_communication(session, communication.id)
        if existing is None:
            raise RuntimeError("review insert conflicted but no review holds the message")
        return existing
    await sync_journey_flags(session, journey)
    await _hitl(
        session,
        review,
        "CREATED",
        performed_by=created_by,
        notes=f"{review.reason.value}, SLA {iso_z(review.sla_due_at)}",
    )
    log.info(
        "review.opened",
        review=str(review.id),
        lead=str(journey.id),
        priority=priority.value,
        reason=review.reason.value,
    )
    if priority in NOTIFY_PRIORITIES:
        text = notify.review_text(
            headline="New review",
            review_id=review.id,
            priority=priority.value,
            company=await _company_name(session, journey),
            reason=review.reason.value,
            sla_due_at=review.sla_due_at,
            excerpt=trigger_content,
        )
        notify.notify_after_commit(session, text, key=f"{review.id}-created")
    return review


# ---------------------------------------------------------------------------------------------
# Views


def review_view(
    review: HumanReview,
    *,
    lead_id: uuid.UUID | None,
    denumire: str | None,
    judet: str | None,
    now: datetime,
) -> dict[str, Any]:
    """A review as the API shows it; every timestamp is ``YYYY-MM-DDTHH:MM:SSZ``."""
    breached = review.sla_breached or (
        review.status in repository.WAITING_STATUSES and review.sla_due_at < now
    )
    return {
        "id": str(review.id),
        "leadJourneyId": str(review.lead_journey_id),
        "leadId": str(lead_id) if lead_id else None,
        "communicationId": str(review.communication_id) if review.communication_id else None,
        "company": {"denumire": denumire, "judet": judet},
        "reason": review.reason.value,
        "priority": review.priority.value,
        "status": review.status.value,
        "triggerContent": review.trigger_content,
        "triggerSentimentScore": review.trigger_sentiment_score,
        "aiAnalysis": review.ai_analysis,
        "suggestedResponse": review.suggested_response,
        "confidenceScore": review.confidence_score,
        "assignedTo": str(review.assigned_to) if review.assigned_to else None,
        "assignedAt": iso_z(review.assigned_at),
        "slaDueAt": iso_z(review.sla_due_at),
        "slaMinutesLeft": int((review.sla_due_at - now).total_seconds() // 60),
        "slaBreached": breached,
        "slaBreachedAt": iso_z(review.sla_breached_at),
        "firstHumanActionAt": iso_z(review.first_human_action_at),
        "escalatedTo": review.escalated_to,
        "escalatedAt": iso_z(review.escalated_at),
        "escalationLevel": review.escalation_level,
        "resolutionAction": review.resolution_action.value if review.resolution_action else None,
        "resolutionNotes": review.resolution_notes,
        "responseMessageId": str(review.response_message_id) if review.response_message_id else None,
        "resolvedBy": review.resolved_by,
        "resolvedAt": iso_z(review.resolved_at),
        "createdAt": iso_z(review.created_at),
        "updatedAt": iso_z(review.updated_at),
    }


async def view_of(session: AsyncSession, review: HumanReview) -> dict[str, Any]:
    await session.flush()
    await session.refresh(review)
    journey = await session.get(GoldLeadJourney, review.lead_journey_id)
    company = await repository.get_company(session, journey.lead_id) if journey else None
    return review_view(
        review,
        lead_id=journey.lead_id if journey else None,
        denumire=company.denumire if company else None,
        judet=company.judet if company else None,
        now=utcnow(),
    )


def _parse_enum_list(raw: str | None, enum_cls: Any, field_name: str) -> tuple[Any, ...]:
    if not raw:
        return ()
    values = []
    for part in raw.split(","):
        name = part.strip().upper()
        if not name:
            continue
        try:
            values.append(enum_cls(name))
        except ValueError:
            raise ValidationFailed(
                f"unknown {field_name} {part.strip()!r}",
                details={"field": field_name, "allowed": [m.value for m in enum_cls]},
            ) from None
    return tuple(dict.fromkeys(values))


def parse_statuses(raw: str | None) -> tuple[ReviewStatus, ...]:
    """``PENDING,ASSIGNED`` -> those; ``OPEN`` or nothing -> the open statuses; ``ALL`` -> every
    status."""
    name = (raw or "").strip().upper()
    if name in ("", "OPEN"):
        return OPEN_STATUSES
    if name == "ALL":
        return tuple(ReviewStatus)
    return tuple(_parse_enum_list(raw, ReviewStatus, "status"))


def parse_priorities(raw: str | None) -> tuple[ReviewPriority, ...]:
    return tuple(_parse_enum_list(raw, ReviewPriority, "priority"))


def parse_reasons(raw: str | None) -> tuple[ReviewReason, ...]:
    return tuple(_parse_enum_list(raw, ReviewReason, "reason"))


async def list_view(
    session: AsyncSession,
    principal: Principal,
    *,
    status: str | None = None,
    priority: str | None = None,
    reason: str | None = None,
    sla_breached: bool | None = None,
    assigned_to: str | None = None,
    lead_id: str | None = None,
    page: PageParams,
) -> dict[str, Any]:
    """``{"reviews": [...], "counts": {...}, "meta": {"total", "page", "limit", "pages"}}``.

    ``reviews`` are filtered and paged, URGENT first then by SLA deadline; without a ``status``
    filter only open reviews (PENDING, ASSIGNED, IN_PROGRESS, ESCALATED) are listed. ``counts``
    are the tenant's open reviews by status and by priority, with ``total`` and ``slaBreached``,
    whatever the filters (the runbook's morning check reads them).
    """
    now = utcnow()
    tenant_id = principal.tenant_id
    assigned_user: uuid.UUID | None = None
    unassigned = False
    if assigned_to:
        key = assigned_to.strip().lower()
        if key == "unassigned":
            unassigned = True
        elif key == "me":
            if principal.user_id is None:
                raise ValidationFailed("assignedTo=me needs a user's token", details={"field": "assignedTo"})
            assigned_user = principal.user_id
        else:
            try:
                assigned_user = uuid.UUID(key)
            except ValueError:
                raise ValidationFailed(
                    "assignedTo is a user id, 'me' or 'unassigned'", details={"field": "assignedTo"}
                ) from None
    journey_ids: tuple[uuid.UUID, ...] | None = None
    if lead_id:
        try:
            key_id = uuid.UUID(lead_id.strip())
        except ValueError:
            raise ValidationFailed("leadId is not a valid id", details={"field": "leadId"}) from None
        journey_ids = tuple(await repository.journeys_for_lead(session, tenant_id, key_id))
    filters = ReviewFilters(
        statuses=parse_statuses(status),
        priorities=parse_priorities(priority),
        reasons=parse_reasons(reason),
        sla_breached=sla_breached,
        assigned_to=assigned_user,
        unassigned=unassigned,
        journey_ids=journey_ids,
    )
    rows, total = await repository.list_reviews(
        session, tenant_id, filters, now=now, limit=page.limit, offset=page.offset
    )
    reviews = [
        review_view(review, lead_id=lead, denumire=denumire, judet=judet, now=now)
        for review, lead, denumire, judet in rows
    ]
    meta = page.meta(
        total,
        status=",".join(s.value for s in filters.statuses),
        priority=",".join(p.value for p in filters.priorities) or None,
        reason=",".join(r.value for r in filters.reasons) or None,
        slaBreached=sla_breached,
        assignedTo=assigned_to,
        leadId=lead_id,
    )
    return {
        "reviews": reviews,
        "counts": await repository.open_counts(session, tenant_id, now=now),
        "meta": meta,
    }


def _message_view(message: GoldCommunicationLog) -> dict[str, Any]:
    return {
        "id": str(message.id),
        "channel": message.channel.value,
        "direction": message.direction.value,
        "status": message.status.value,
        "origin": message.origin,
        "subject": message.subject,
        "content": message.content_rendered or message.content,
        "isAiGenerated": message.is_ai_generated,
        "sentimentScore": message.sentiment_score,
        "intent": message.intent_classification,
        "phoneId": message.phone_id,
        "errorCode": message.error_code,
        "createdAt": iso_z(message.created_at),
        "sentAt": iso_z(message.sent_at),
        "deliveredAt": iso_z(message.delivered_at),
        "readAt": iso_z(message.read_at),
    }


def _audit_view(entry: HitlAuditEntry) -> dict[str, Any]:
    return {
        "action": entry.action,
        "performedBy": entry.performed_by,
        "performedAt": iso_z(entry.performed_at),
        "previousState": entry.previous_state,
        "newState": entry.new_state,
        "notes": entry.notes,
    }


async def detail_view(session: AsyncSession, tenant_id: uuid.UUID, review_id: uuid.UUID) -> dict[str, Any]:
    """One review with the lead, the last 10 messages of the conversation (oldest first), the
    suggested answer(s) and the review's audit trail."""
    review = await _get(session, tenant_id, review_id, for_update=False)
    journey = await repository.get_journey(session, tenant_id, review.lead_journey_id)
    if journey is None:
        raise NotFound(f"review {review_id} not found")
    company = await repository.get_company(session, journey.lead_id)
    item = review_view(
        review,
        lead_id=journey.lead_id,
        denumire=company.denumire if company else None,
        judet=company.judet if company else None,
        now=utcnow(),
    )
    item["company"] = (
        {
            "id": str(company.id),
            "denumire": company.denumire,
            "cui": company.cui,
            "judet": company.judet,
            "localitate": company.localitate,
            "emailPrincipal": company.email_principal,
            "telefonPrincipal": company.telefon_principal,
        }
        if company
        else item["company"]
    )
    item["lead"] = {
        "id": str(journey.id),
        "leadId": str(journey.lead_id),
        "currentState": journey.current_state.value,
        "mobileE164": journey.mobile_e164,
        "email": journey.email,
        "assignedPhoneId": journey.assigned_phone_id,
        "sentimentScore": journey.sentiment_score,
        "replyCount": journey.reply_count,
        "lastReplyAt": iso_z(journey.last_reply_at),
        "lastContactAt": iso_z(journey.last_contact_at),
        "isHumanControlled": journey.is_human_controlled,
        "requiresHumanReview": journey.requires_human_review,
        "whatsappOptedOut": journey.whatsapp_opted_out,
        "emailOptedOut": journey.email_opted_out,
    }
    item["messages"] = [
        _message_view(m) for m in await repository.recent_messages(session, tenant_id, journey.id, 10)
    ]
    item["suggestedResponses"] = (
        [{"content": review.suggested_response, "confidence": review.confidence_score}]
        if review.suggested_response
        else []
    )
    item["auditTrail"] = [_audit_view(e) for e in await repository.audit_trail(session, review.id)]
    return item


# ---------------------------------------------------------------------------------------------
# Human actions


async def assign(
    session: AsyncSession,
    principal: Principal,
    review_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    notes: str | None = None,
    user_agent: str | None = None,
) -> HumanReview:
    """Give the review to ``user_id`` (a user of the tenant): ASSIGNED."""
    review = await _get(session, principal.tenant_id, review_id)
    _require_open(review, "assigned")
    user = await repository.get_user(session, principal.tenant_id, user_id)
    if user is None or not user.is_active:
        raise ValidationFailed("no such active user in this tenant", details={"field": "userId"})
    now = utcnow()
    before = _snapshot(review)
    review.assigned_to = user.id
    review.assigned_at = now
    review.status = ReviewStatus.ASSIGNED
    _mark_human(review, principal, now)
    await session.flush()
    await _hitl(
        session,
        review,
        "ASSIGNED",
        performed_by=principal.actor,
        before=before,
        notes=notes or f"assigned to {user.email}",
        principal=principal,
        user_agent=user_agent,
    )
    await record_audit(
        session,
        principal,
        "review.assign",
        entity_type="review",
        entity_id=review.id,
        reason=notes,
        before=before,
        after=_snapshot(review),
    )
    return review


async def start(
    session: AsyncSession, principal: Principal, review_id: uuid.UUID, *, user_agent: str | None = None
) -> HumanReview:
    """A person starts working on the review: IN_PROGRESS (and theirs, if it had no owner)."""
    review = await _get(session, principal.tenant_id, review_id)
    _require_open(review, "started")
    now = utcnow()
    before = _snapshot(review)
    if review.assigned_to is None and principal.user_id is not None:
        review.assigned_to = principal.user_id
        review.assigned_at = now
    review.status = ReviewStatus.IN_PROGRESS
    _mark_human(review, principal, now)
    await session.flush()
    await _hitl(
        session,
        review,
        "IN_PROGRESS",
        performed_by=principal.actor,
        before=before,
        principal=principal,
        user_agent=user_agent,
    )
    await record_audit(
        session,
        principal,
        "review.start",
        entity_type="review",
        entity_id=review.id,
        before=before,
        after=_snapshot(review),
    )
    return review


async def _conversation_channel(
    session: AsyncSession, review: HumanReview, journey: GoldLeadJourney
) -> Channel:
    """WHATSAPP for a WhatsApp conversation, EMAIL_WARM for an email one."""
    if review.communication_id is not None:
        message = await repository.get_communication(session, review.communication_id)
        if message is not None:
            return Channel.WHATSAPP if message.channel == Channel.WHATSAPP else Channel.EMAIL_WARM
    last = journey.last_channel_used
    if last in (Channel.EMAIL_COLD, Channel.EMAIL_WARM):
        return Channel.EMAIL_WARM
    if journey.mobile_e164 and journey.assigned_phone_id:
        return Channel.WHATSAPP
    return Channel.EMAIL_WARM if journey.email else Channel.WHATSAPP


async def email_subject(session: AsyncSession, journey: GoldLeadJourney, given: str | None) -> str:
    """The subject of a warm email: the one given, else ``Re:`` the conversation's last subject,
    else the company's name."""
    if given and given.strip():
        return given.strip()
    last = await repository.last_inbound_email_subject(session, journey.id)
    if last:
        return last if last.lower().startswith("re:") else f"Re: {last}"
    return f"Cerniq - {await _company_name(session, journey)}"


async def _send_answer(
    session: AsyncSession,
    principal: Principal,
    review: HumanReview,
    journey: GoldLeadJourney,
    *,
    content: str,
    body: ResolveBody,
    ai_written: bool,
) -> GoldCommunicationLog:
    channel = body.channel or await _conversation_channel(session, review, journey)
    if channel not in (Channel.WHATSAPP, Channel.EMAIL_WARM):
        raise ValidationFailed("a review answer goes by WHATSAPP or EMAIL_WARM", details={"field": "channel"})
    if await emergency_stop(session) is not None:
        raise EmergencyStopActive("the emergency stop is active: nothing is sent until it is lifted")
    subject = await email_subject(session, journey, body.subject) if channel == Channel.EMAIL_WARM else None
    new_contact = channel == Channel.WHATSAPP and not await messaging_repository.had_whatsapp_contact(
        session, journey.id, None
    )
    return await queue_message(
        session,
        journey,
        channel=channel,
        content=content,
        origin=REVIEW,
        subject=subject,
        is_ai_generated=ai_written,
        created_by=principal.actor,
        new_contact=new_contact,
    )


def _answer_content(review: HumanReview, body: ResolveBody) -> tuple[str, bool]:
    """The text to send for a sending action, and whether the AI wrote it."""
    if body.action == ResolveAction.APPROVE:
        if not (review.suggested_response or "").strip():
            raise ValidationFailed(
                "this review has no suggested answer to approve; use EDIT or CUSTOM with your text",
                code="NO_SUGGESTED_RESPONSE",
            )
        return str(review.suggested_response), True
    text = body.editedContent if body.action == ResolveAction.EDIT else body.customResponse
    text = text or body.editedContent or body.customResponse
    if not (text or "").strip():
        field_name = "editedContent" if body.action == ResolveAction.EDIT else "customResponse"
        raise ValidationFailed(
            f"{body.action.value} needs the text to send in {field_name}", details={"field": field_name}
        )
    return str(text).strip(), False


async def resolve(
    session: AsyncSession,
    principal: Principal,
    review_id: uuid.UUID,
    body: ResolveBody,
    *,
    user_agent: str | None = None,
) -> dict[str, Any]:
    """Resolve the review with the reviewer's decision.

    APPROVE / EDIT / CUSTOM queue the answer through the send path (origin REVIEW, WhatsApp or
    warm email following the conversation); MARK_DEAD moves the lead to DEAD, PAUSE_LEAD to
    PAUSED, TAKEOVER hands the lead to a human; REJECT and IGNORE send nothing. A closed
    review is a 409 REVIEW_CLOSED. Returns ``{review, newLeadState, messageSent, messageId}``.
    """
    from cerniq.leads import takeover

    review = await _get(session, principal.tenant_id, review_id)
    _require_open(review, "resolved again")
    journey = await repository.get_journey(
        session, principal.tenant_id, review.lead_journey_id, for_update=True
    )
    if journey is None:
        raise NotFound(f"review {review_id} not found")
    now = utcnow()
    before = _snapshot(review)
    action = body.action
    notes = (body.notes or "").strip() or None
    message: GoldCommunicationLog | None = None

    if action in SENDING_ACTIONS:
        content, ai_written = _answer_content(review, body)
        message = await _send_answer(
            session, principal, review, journey, content=content, body=body, ai_written=ai_written
        )
        review.response_content = content
        review.response_message_id = message.id
    elif action == ResolveAction.MARK_DEAD:
        await transition(
            session,
            journey,
            LeadState.DEAD,
            trigger="REVIEW",
            reason=notes or f"review {review.id}: marked dead",
            actor=principal.actor,
        )
        await sequences.stop(session, journey, "MARKED_DEAD")
    elif action == ResolveAction.PAUSE_LEAD:
        await transition(
            session,
            journey,
            LeadState.PAUSED,
            trigger="REVIEW",
            reason=notes or f"review {review.id}: paused",
            actor=principal.actor,
        )
        journey.sequence_paused = True
        journey.next_action_at = None
    elif action == ResolveAction.TAKEOVER and not journey.is_human_controlled:
        reason = notes if notes and len(notes) >= 10 else f"takeover from review {review.id}"
        await takeover.take_over(
            session, principal, journey, reason=reason[:500], user_agent=user_agent, via_review=review.id
        )

    review.status = ReviewStatus.RESOLVED
    review.resolution_action = ACTION_RESULT[action]
    review.resolution_notes = notes
    review.resolved_by = principal.actor
    review.resolved_at = now
    _mark_human(review, principal, now)
    await session.flush()
    await sync_journey_flags(session, journey)
    await alerts.resolve_condition(
        session, "sla:breach", subject=str(review.id), tenant_id=review.tenant_id, resolved_by=principal.actor
    )
    await _hitl(
        session,
        review,
        "RESOLVED",
        performed_by=principal.actor,
        before=before,
        notes=notes or action.value,
        principal=principal,
        user_agent=user_agent,
    )
    if message is not None:
        await _hitl(
            session,
            review,
            "MESSAGE_QUEUED",
            performed_by=principal.actor,
            notes=f"{message.channel.value} {message.id}",
            principal=principal,
            user_agent=user_agent,
        )
    await record_audit(
        session,
        principal,
        "review.resolve",
        entity_type="review",
        entity_id=review.id,
        reason=notes,
        before=before,
        after={
            **_snapshot(review),
            "action": action.value,
            "messageId": str(message.id) if message else None,
            "leadState": journey.current_state.value,
        },
    )
    RESOLUTION_SECONDS.labels(review.priority.value, review.resolution_action.value).observe(
        max((now - review.created_at).total_seconds(), 0.0)
    )
    return {
        "review": await view_of(session, review),
        "newLeadState": journey.current_state.value,
        "messageSent": message is not None,
        "messageId": str(message.id) if message is not None else None,
    }


async def escalate(
    session: AsyncSession,
    principal: Principal,
    review_id: uuid.UUID,
    *,
    escalate_to: str,
    reason: str,
    user_agent: str | None = None,
) -> HumanReview:
    """Escalate to ``manager``, ``team_lead``, ``on_call`` or a user of the tenant: ESCALATED,
    one level up, Slack and email notices."""
    review = await _get(session, principal.tenant_id, review_id)
    _require_open(review, "escalated")
    target = escalate_to.strip()
    user: User | None = None
    if target.lower() in ESCALATION_TARGETS:
        target = target.lower()
    else:
        try:
            user_id = uuid.UUID(target)
        except ValueError:
            raise ValidationFailed(
                "escalateTo is 'manager', 'team_lead', 'on_call' or a user id",
                details={"field": "escalateTo", "allowed": list(ESCALATION_TARGETS)},
            ) from None
        user = await repository.get_user(session, principal.tenant_id, user_id)
        if user is None or not user.is_active:
            raise ValidationFailed("no such active user in this tenant", details={"field": "escalateTo"})
        target = str(user.id)
    now = utcnow()
    _mark_human(review, principal, now)
    await apply_escalation(
        session,
        review,
        target=target,
        user=user,
        level=review.escalation_level + 1,
        reason=reason,
        performed_by=principal.actor,
        principal=principal,
        user_agent=user_agent,
        now=now,
    )
    return review


async def apply_escalation(
    session: AsyncSession,
    review: HumanReview,
    *,
    target: str,
    user: User | None,
    level: int,
    reason: str,
    performed_by: str,
    now: datetime,
    principal: Principal | None = None,
    user_agent: str | None = None,
    status: ReviewStatus = ReviewStatus.ESCALATED,
) -> None:
    """Move ``review`` to ``target`` at ``level`` and notify (Slack now, email stub logged)."""
    before = _snapshot(review)
    review.status = status
    review.escalated_to = target
    review.escalated_at = now
    review.escalation_level = max(level, review.escalation_level + 1)
    if user is not None:
        review.assigned_to = user.id
        review.assigned_at = now
    await session.flush()
    await _hitl(
        session,
        review,
        "ESCALATED",
        performed_by=performed_by,
        before=before,
        notes=f"to {target} (level {review.escalation_level}): {reason}",
        principal=principal,
        user_agent=user_agent,
    )
    await record_audit(
        session,
        principal,
        "review.escalate",
        entity_type="review",
        entity_id=review.id,
        reason=reason,
        before=before,
        after=_snapshot(review),
        tenant_id=review.tenant_id,
    )
    journey = await session.get(GoldLeadJourney, review.lead_journey_id)
    company = await _company_name(session, journey)
    if user is not None:
        recipients = [user.email]
    else:
        recipients = [
            u.email for u in await repository.users_with_team_role(session, review.tenant_id, target)
        ]
    who = user.email if user is not None else target
    text = notify.review_text(
        headline=f"Review escalated to {who} (level {review.escalation_level})",
        review_id=review.id,
        priority=review.priority.value,
        company=company,
        reason=f"{review.reason.value}; escalation: {reason}",
        sla_due_at=review.sla_due_at,
        excerpt=review.trigger_content,
    )
    notify.notify_after_commit(session, text, key=f"{review.id}-escalated-{review.escalation_level}")
    notify.email_stub(
        recipients=recipients,
        subject=f"[{review.priority.value}] Escalated Review - {reason}",
        body=text,
        key=f"{review.id}-escalated-{review.escalation_level}",
    )


# ---------------------------------------------------------------------------------------------
# The SLA monitor


@dataclass
class SlaReport:
    """What one monitor run did."""

    breached: int = 0
    escalated_to_manager: int = 0
    assigned_to_team_lead: int = 0
    escalated_to_team_lead: int = 0
    assigned_to_operator: int = 0
    unassigned: int = 0
    escalated_unanswered: int = 0
    queue_size: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def _monitor_assign(
    session: AsyncSession, review: HumanReview, user: User, *, now: datetime, notes: str
) -> None:
    """The monitor's own assignment: it is no human action, so the SLA stays unanswered."""
    before = _snapshot(review)
    review.assigned_to = user.id
    review.assigned_at = now
    review.status = ReviewStatus.ASSIGNED
    await session.flush()
    await _hitl(session, review, "ASSIGNED", performed_by=MONITOR_ACTOR, before=before, notes=notes)
    await record_audit(
        session,
        None,
        "review.auto_assign",
        entity_type="review",
        entity_id=review.id,
        reason=notes,
        before=before,
        after=_snapshot(review),
        tenant_id=review.tenant_id,
    )


async def _breach(session: AsyncSession, review: HumanReview, now: datetime, report: SlaReport) -> None:
    before = _snapshot(review)
    review.sla_breached = True
    review.sla_breached_at = now
    await session.flush()
    late = int((now - review.sla_due_at).total_seconds() // 60)
    await _hitl(
        session,
        review,
        "SLA_BREACH",
        performed_by=MONITOR_ACTOR,
        before=before,
        notes=f"{review.priority.value} SLA of {sla_for(review.priority)} passed {late} min ago",
    )
    await alerts.trigger(
        session,
        "sla:breach",
        subject=str(review.id),
        tenant_id=review.tenant_id,
        message=f"{review.priority.value} review {review.id} passed its SLA ({iso_z(review.sla_due_at)})",
        details={
            "reviewId": str(review.id),
            "leadJourneyId": str(review.lead_journey_id),
            "priority": review.priority.value,
            "slaDueAt": iso_z(review.sla_due_at),
        },
    )
    SLA_BREACHES.labels(review.priority.value).inc()
    report.breached += 1
    log.warning("review.sla_breach", review=str(review.id), priority=review.priority.value)

    if review.priority == ReviewPriority.URGENT:
        await apply_escalation(
            session,
            review,
            target="manager",
            user=None,
            level=max(review.escalation_level + 1, 2),
            reason="SLA_BREACH",
            performed_by=MONITOR_ACTOR,
            now=now,
        )
        report.escalated_to_manager += 1
    elif review.priority == ReviewPriority.HIGH:
        # to the least loaded team lead (ASSIGNED to them), or escalated to the role
        lead = await repository.least_loaded_user(session, review.tenant_id, "team_lead")
        await apply_escalation(
            session,
            review,
            target="team_lead",
            user=lead,
            level=max(review.escalation_level + 1, 1),
            reason="SLA_BREACH" if lead is not None else "SLA_BREACH (no team lead available)",
            performed_by=MONITOR_ACTOR,
            now=now,
            status=ReviewStatus.ASSIGNED if lead is not None else ReviewStatus.ESCALATED,
        )
        if lead is not None:
            report.assigned_to_team_lead += 1
        else:
            report.escalated_to_team_lead += 1
    else:
        holder = (
            await repository.get_user(session, review.tenant_id, review.assigned_to)
            if review.assigned_to
            else None
        )
        if holder is not None and holder.is_available and holder.is_active:
            return  # its owner is around; the alert reminds them
        operator = await repository.least_loaded_user(
            session, review.tenant_id, "operator", exclude=[holder.id] if holder else []
        )
        if operator is None:
            report.unassigned += 1
            return
        await _monitor_assign(
            session, review, operator, now=now, notes=f"SLA breach: auto-assigned to {operator.email}"
        )
        report.assigned_to_operator += 1


async def _isolated(session: AsyncSession, review: HumanReview, work: Coroutine[Any, Any, None]) -> bool:
    """Run one review's monitor work in a savepoint: a review that fails is logged and left for
    the next run, and never holds back the others (nor leaves a notice of undone work)."""
    pending: list[Any] = session.info.setdefault("cerniq_after_commit", [])
    mark = len(pending)
    try:
        async with session.begin_nested():
            await work
    except Exception:
        del pending[mark:]
        log.exception("review.sla_check_failed", review=str(review.id))
        return False
    return True


async def check_slas(
    *, now: datetime | None = None, batch_size: int = 200, max_batches: int = 50
) -> SlaReport:
    """One run of the SLA monitor (``human:sla:check``, every minute; ``cerniq reviews
    sla-check``). ``now`` may be injected (tests, replays). Each batch is its own transaction
    and locks its rows with SKIP LOCKED, so concurrent runs never handle a review twice."""
    now = now or utcnow()
    report = SlaReport()
    for _ in range(max_batches):
        async with transaction() as session:
            due = await repository.claim_due_for_breach(session, now=now, limit=batch_size)
            for review in due:
                await _isolated(session, review, _breach(session, review, now, report))
        if len(due) < batch_size:
            break
    for _ in range(max_batches):
        async with transaction() as session:
            unanswered = await repository.claim_unanswered_urgent(
                session, created_before=now - URGENT_UNANSWERED_AFTER, below_level=3, limit=batch_size
            )
            for review in unanswered:
                escalated = await _isolated(
                    session,
                    review,
                    apply_escalation(
                        session,
                        review,
                        target="manager",
                        user=None,
                        level=3,
                        reason=UNANSWERED_REASON,
                        performed_by=MONITOR_ACTOR,
                        now=now,
                    ),
                )
                report.escalated_unanswered += int(escalated)
        if len(unanswered) < batch_size:
            break
    async with transaction() as session:
        report.queue_size = await repository.open_counts_by_priority(session)
    for priority, size in report.queue_size.items():
        REVIEWS_PENDING.labels(priority).set(size)
    if report.breached or report.escalated_unanswered:
        log.info("review.sla_check", **{k: v for k, v in report.as_dict().items() if k != "queue_size"})
    return report


# ---------------------------------------------------------------------------------------------
# SLA figures


async def sla_performance(session: AsyncSession, tenant_id: uuid.UUID, *, days: int) -> dict[str, Any]:
    """Per priority over the reviews opened in the last ``days`` days: total, resolved,
    breached, breachRate (0..1), avg and p90 minutes to resolution, and withinSlaPercent (the
    share of resolved reviews resolved before their deadline)."""
    now = utcnow()
    since = now - timedelta(days=days)
    rows = {
        ReviewPriority(r.priority): r for r in await repository.sla_figures(session, tenant_id, since=since)
    }

    def figures(total: int, resolved: int, breached: int, within: int, avg: Any, p90: Any) -> dict[str, Any]:
        return {
            "total": total,
            "resolved": resolved,
            "breached": breached,
            "breachRate": round(breached / total, 4) if total else 0.0,
            "avgResolutionMinutes": round(float(avg), 1) if avg is not None else None,
            "p90ResolutionMinutes": round(float(p90), 1) if p90 is not None else None,
            "withinSlaPercent": round(100.0 * within / resolved, 1) if resolved else None,
        }

    by_priority: dict[str, Any] = {}
    for priority in repository.PRIORITY_RANK:
        row = rows.get(priority)
        item = figures(
            int(row.total) if row else 0,
            int(row.resolved) if row else 0,
            int(row.breached) if row else 0,
            int(row.within) if row else 0,
            row.avg_minutes if row else None,
            row.p90_minutes if row else None,
        )
        by_priority[priority.value] = {"slaMinutes": int(sla_for(priority).total_seconds() // 60), **item}
    totals = {k: sum(v[k] for v in by_priority.values()) for k in ("total", "resolved", "breached")}
    within_all = sum(int(r.within) for r in rows.values())
    overall = {
        **totals,
        "breachRate": round(totals["breached"] / totals["total"], 4) if totals["total"] else 0.0,
        "withinSlaPercent": round(100.0 * within_all / totals["resolved"], 1) if totals["resolved"] else None,
    }
    return {
        "days": days,
        "since": iso_z(since),
        "until": iso_z(now),
        "byPriority": by_priority,
        "overall": overall,
    }


async def resolve_user(session: AsyncSession, tenant_id: uuid.UUID, who: str) -> User:
    """A user of the tenant by id or email (the CLI takes either)."""
    user: User | None
    try:
        user = await repository.get_user(session, tenant_id, uuid.UUID(who))
    except ValueError:
        user = await repository.user_by_email(session, tenant_id, who)
    if user is None:
        raise NotFound(f"no user {who!r} in this tenant")
    return user
