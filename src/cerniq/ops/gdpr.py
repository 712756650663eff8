"""Personal data of a lead's people (GDPR: Romanian B2B contacts are natural persons).

* :func:`export` (art. 15): everything held about the lead's people: the company, its contacts,
  the journey, its state history, every message (live and archived), reviews, webhook events
  that belong to the lead or mention one of its addresses / numbers, suppression entries.
* :func:`erase` (art. 17): anonymizes the person everywhere (contacts, the journey's addresses,
  message contents and vendor payloads in the live log and the archive, review texts, webhook
  payloads, Redis keys naming them, and in the lead's and its reviews' audit trails the
  free-text reasons and notes and every contact value), cancels messages not yet sent, and
  keeps every row, so the counts analytics need (messages, replies, conversions per day) and
  the record of who did what and when do not change.
  It then adds permanent ``GDPR_ERASURE`` suppression entries (EMAIL and WHATSAPP) so the person
  is never contacted again, even when re-imported. The suppressed value (normalized email or
  E.164 number) is the only personal datum kept: it is needed to honour the objection, our
  legitimate interest (art. 6(1)(f), art. 17(3)(b)/(e)); nothing else links it to the person.
* Raw webhook payloads are pruned after ``webhook_payload_retention`` (30 days) by the webhooks
  service's own job (``maintenance:webhooks``); nothing is duplicated here.

Company name and CUI stay: they identify a legal person, not the contact.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import String, cast, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import Principal
from cerniq.auth.service import record_audit
from cerniq.errors import NotFound
from cerniq.kit.clock import utcnow
from cerniq.models import (
    AuditEntry,
    GoldCommunicationLog,
    GoldCommunicationLogArchive,
    GoldCompany,
    GoldContact,
    GoldLeadJourney,
    HitlAuditEntry,
    HumanReview,
    LeadStateHistory,
    SuppressionEntry,
    WebhookEvent,
)
from cerniq.models.enums import MessageStatus, SuppressionReason

ERASED = "[erased]"
LEGITIMATE_INTEREST = (
    "GDPR erasure: only the normalized address/number is kept, to honour the objection and never "
    "contact this person again (legitimate interest, art. 6(1)(f) and 17(3) GDPR)"
)
NOT_SENT = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.AMBIGUOUS)


def _json(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return float(value)
    return value


def row_dict(row: Any) -> dict[str, Any]:
    return {c.key: _json(getattr(row, c.key)) for c in row.__mapper__.column_attrs}


async def journey_of(session: AsyncSession, tenant_id: uuid.UUID, journey_id: uuid.UUID) -> GoldLeadJourney:
    """The journey ``journey_id`` of the tenant (or the journey of company ``journey_id``)."""
    row = await session.get(GoldLeadJourney, journey_id)
    if row is None:
        stmt = select(GoldLeadJourney).where(
            GoldLeadJourney.tenant_id == tenant_id, GoldLeadJourney.lead_id == journey_id
        )
        row = (await session.execute(stmt.limit(1))).scalar_one_or_none()
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("lead not found", code="LEAD_NOT_FOUND", details={"leadId": str(journey_id)})
    return row


async def _contacts(session: AsyncSession, journey: GoldLeadJourney) -> list[GoldContact]:
    stmt = select(GoldContact).where(
        GoldContact.tenant_id == journey.tenant_id, GoldContact.company_id == journey.lead_id
    )
    return list((await session.execute(stmt)).scalars().all())


def identifiers(journey: GoldLeadJourney, contacts: list[GoldContact]) -> tuple[set[str], set[str]]:
    """(emails lower-cased, E.164 numbers) of the lead's people."""
    emails = {e.strip().lower() for e in [journey.email, *(c.email for c in contacts)] if e}
    phones = {
        p.strip()
        for p in [journey.mobile_e164, *(c.phone for c in contacts), *(c.whatsapp_number for c in contacts)]
        if p
    }
    return emails, phones


def _mentions(values: set[str]) -> Any:
    text = cast(WebhookEvent.payload, String)
    conds = [text.ilike(f"%{v}%") for v in values]
    conds += [text.ilike(f"%{v.lstrip('+')}%") for v in values if v.startswith("+")]
    return or_(*conds) if conds else None


async def _webhooks(session: AsyncSession, journey: GoldLeadJourney, values: set[str]) -> list[WebhookEvent]:
    cond = WebhookEvent.lead_journey_id == journey.id
    mention = _mentions(values)
    if mention is not None:
        cond = or_(cond, mention)
    stmt = (
        select(WebhookEvent)
        .where(or_(WebhookEvent.tenant_id == journey.tenant_id, WebhookEvent.tenant_id.is_(None)), cond)
        .order_by(WebhookEvent.received_at)
    )
    return list((await session.execute(stmt)).scalars().all())


async def export(session: AsyncSession, tenant_id: uuid.UUID, journey_id: uuid.UUID) -> dict[str, Any]:
    """Everything held about the lead's people, as JSON-ready data."""
    journey = await journey_of(session, tenant_id, journey_id)
    journey_id = journey.id
    company = await session.get(GoldCompany, journey.lead_id)
    contacts = await _contacts(session, journey)
    emails, phones = identifiers(journey, contacts)
    messages: list[dict[str, Any]] = []
    for model, archived in ((GoldCommunicationLog, False), (GoldCommunicationLogArchive, True)):
        stmt = select(model).where(model.tenant_id == tenant_id, model.lead_journey_id == journey_id)
        for row in (await session.execute(stmt)).scalars().all():
            messages.append(row_dict(row) | {"archived": archived})
    messages.sort(key=lambda m: (m["created_at"] or "", m["id"]))
    reviews = (
        await session.execute(
            select(HumanReview).where(
                HumanReview.tenant_id == tenant_id, HumanReview.lead_journey_id == journey_id
            )
        )
    ).scalars()
    history = (
        await session.execute(
            select(LeadStateHistory)
            .where(LeadStateHistory.tenant_id == tenant_id, LeadStateHistory.lead_journey_id == journey_id)
            .order_by(LeadStateHistory.created_at)
        )
    ).scalars()
    values = emails | phones
    supp_cond = SuppressionEntry.lead_journey_id == journey_id
    if values:
        supp_cond = or_(supp_cond, SuppressionEntry.value.in_([v.lower() for v in values]))
    suppressions = (
        await session.execute(
            select(SuppressionEntry).where(SuppressionEntry.tenant_id == tenant_id, supp_cond)
        )
    ).scalars()
    return {
        "leadId": str(journey_id),
        "exportedAt": utcnow().isoformat(),
        "identifiers": {"emails": sorted(emails), "phones": sorted(phones)},
        "company": row_dict(company) if company is not None else None,
        "contacts": [row_dict(c) for c in contacts],
        "journey": row_dict(journey),
        "stateHistory": [row_dict(h) for h in history],
        "messages": messages,
        "reviews": [row_dict(r) for r in reviews],
        "webhookEvents": [row_dict(w) for w in await _webhooks(session, journey, values)],
        "suppressions": [row_dict(s) for s in suppressions],
    }


async def _erase_redis(values: set[str]) -> int:
    """Delete Redis keys naming one of ``values`` (state and queue databases)."""
    from cerniq.kit.redis import get_queue_redis, get_redis

    removed = 0
    for client in (get_redis(), get_queue_redis()):
        for value in values:
            if not value or any(ch in value for ch in "*?[]"):
                continue
            keys = [k async for k in client.scan_iter(match=f"*{value}*")]
            if keys:
                removed += int(await client.delete(*keys))
    return removed


async def erase(
    session: AsyncSession, principal: Principal, journey_id: uuid.UUID, *, reason: str | None = None
) -> dict[str, Any]:
    """Anonymize the lead's people everywhere, keep the rows, suppress them for good, audit."""
    from cerniq.kit.db import after_commit

    tenant_id = principal.tenant_id
    journey = await journey_of(session, tenant_id, journey_id)
    journey_id = journey.id
    contacts = await _contacts(session, journey)
    emails, phones = identifiers(journey, contacts)
    counts: dict[str, int] = {}

    for c in contacts:
        c.prenume = c.nume = c.full_name = ERASED if (c.prenume or c.nume or c.full_name) else None
        c.functie = None
        c.email = c.phone = c.whatsapp_number = None
        c.unsubscribed = True
        c.consent_email = c.consent_whatsapp = False
    counts["contacts"] = len(contacts)

    company = await session.get(GoldCompany, journey.lead_id)
    if company is not None:
        if company.email_principal and company.email_principal.strip().lower() in emails:
            company.email_principal = None
        if company.telefon_principal and company.telefon_principal.strip() in phones:
            company.telefon_principal = None
        company.raw = {}

    journey.email = None
    journey.mobile_e164 = None
    journey.wa_chat_id = None
    journey.internal_notes = None
    journey.custom_fields = {}
    journey.email_opted_out = True
    journey.whatsapp_opted_out = True
    journey.opted_out_at = journey.opted_out_at or utcnow()
    journey.next_action_at = None
    journey.sequence_paused = True

    for model in (GoldCommunicationLog, GoldCommunicationLogArchive):
        cancelled = await session.execute(
            update(model)
            .where(
                model.tenant_id == tenant_id, model.lead_journey_id == journey_id, model.status.in_(NOT_SENT)
            )
            .values(
                status=MessageStatus.SKIPPED, error_code="GDPR_ERASURE", error_message="erased before sending"
            )
        )
        counts["cancelled" if model is GoldCommunicationLog else "cancelled_archive"] = cancelled.rowcount  # type: ignore[attr-defined]
        result = await session.execute(
            update(model)
            .where(model.tenant_id == tenant_id, model.lead_journey_id == journey_id)
            .values(
                content=ERASED,
                content_rendered=None,
                subject=None,
                phone_number=None,
                email=None,
                thread_id=None,
                click_url=None,
                raw_request=None,
                raw_response=None,
                webhook_payload=None,
                bounce_reason=None,
                error_message=None,
            )
        )
        counts["messages" if model is GoldCommunicationLog else "archived_messages"] = result.rowcount  # type: ignore[attr-defined]

    reviews = await session.execute(
        update(HumanReview)
        .where(HumanReview.tenant_id == tenant_id, HumanReview.lead_journey_id == journey_id)
        .values(
            trigger_content=ERASED,
            suggested_response=None,
            response_content=None,
            resolution_notes=None,
            ai_analysis=None,
        )
    )
    counts["reviews"] = reviews.rowcount  # type: ignore[attr-defined]
    counts.update(await _erase_from_audit_trails(session, tenant_id, journey_id, emails | phones))

    events = await _webhooks(session, journey, emails | phones)
    for event in events:
        event.payload = {"erased": True}
        event.headers = {}
        event.error = None
    counts["webhook_events"] = len(events)

    entries = [("EMAIL", e) for e in sorted(emails)] + [("WHATSAPP", p.lower()) for p in sorted(phones)]
    for channel, value in entries:
        stmt = insert(SuppressionEntry).values(
            tenant_id=tenant_id,
            channel=channel,
            value=value,
            reason=SuppressionReason.GDPR_ERASURE,
            source="gdpr",
            is_permanent=True,
            lead_journey_id=journey_id,
            details={"basis": LEGITIMATE_INTEREST},
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "channel", "value"],
                set_={
                    "reason": SuppressionReason.GDPR_ERASURE,
                    "is_permanent": True,
                    "expires_at": None,
                    "details": {"basis": LEGITIMATE_INTEREST},
                },
            )
        )
    counts["suppressions"] = len(entries)
    await session.flush()

    await record_audit(
        session,
        principal,
        "gdpr.erase",
        entity_type="lead",
        entity_id=journey_id,
        reason=reason or "data subject erasure request",
        after=dict(counts),  # counts only: the audit log must not keep what was erased
    )
    values = emails | phones | {p.lstrip("+") for p in phones}

    async def redis_cleanup() -> None:
        await _erase_redis(values)

    after_commit(session, redis_cleanup)
    return {"leadId": str(journey_id), "erased": counts}


# Keys of audit before/after values erased whatever they hold: free text and contact data
# (an earlier address of the person is theirs too, though no longer on the lead).
ERASED_KEYS = frozenset(
    {
        *("notes", "internalNotes", "content", "text", "reason", "editedContent", "customFields"),
        *("email", "mobileE164", "phone", "phoneNumber", "whatsappNumber", "waChatId"),
        *("fullName", "prenume", "nume", "firstName", "lastName", "emailPrincipal", "telefonPrincipal"),
    }
)


def _scrub(value: Any, identifiers: set[str]) -> Any:
    """``value`` (an audit before/after) with free text and anything naming the person erased."""
    if isinstance(value, dict):
        return {k: ERASED if k in ERASED_KEYS and v else _scrub(v, identifiers) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, identifiers) for v in value]
    if isinstance(value, str) and any(i and i in value.lower() for i in identifiers):
        return ERASED
    return value


async def _erase_from_audit_trails(
    session: AsyncSession, tenant_id: uuid.UUID, journey_id: uuid.UUID, values: set[str]
) -> dict[str, int]:
    """The lead's and its reviews' audit rows stay (who did what, when), without the person:
    free-text reasons and notes, and any before/after value naming their email or number."""
    review_ids = [
        str(r)
        for r in (
            await session.execute(
                select(HumanReview.id).where(
                    HumanReview.tenant_id == tenant_id, HumanReview.lead_journey_id == journey_id
                )
            )
        ).scalars()
    ]
    identifiers = {v.lower() for v in values} | {v.lstrip("+") for v in values if v.startswith("+")}
    entries = (
        await session.execute(
            select(AuditEntry).where(
                AuditEntry.tenant_id == tenant_id,
                or_(
                    (AuditEntry.entity_type == "lead") & (AuditEntry.entity_id == str(journey_id)),
                    (AuditEntry.entity_type == "review") & AuditEntry.entity_id.in_(review_ids),
                ),
            )
        )
    ).scalars()
    scrubbed = 0
    for entry in entries:
        entry.reason = ERASED if entry.reason else None
        entry.before = _scrub(entry.before, identifiers)
        entry.after = _scrub(entry.after, identifiers)
        scrubbed += 1
    notes = await session.execute(
        update(HitlAuditEntry)
        .where(
            HitlAuditEntry.tenant_id == tenant_id,
            HitlAuditEntry.review_id.in_([uuid.UUID(r) for r in review_ids]),
            HitlAuditEntry.notes.is_not(None),
        )
        .values(notes=ERASED)
    )
    return {"audit_entries": scrubbed, "review_notes": int(notes.rowcount)}  # type: ignore[attr-defined]


async def record_export(session: AsyncSession, principal: Principal, journey_id: uuid.UUID) -> None:
    await record_audit(session, principal, "gdpr.export", entity_type="lead", entity_id=journey_id)
