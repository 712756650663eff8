"""Leads: import, the list and detail views of the API, and operator edits.

State changes go through :func:`cerniq.leads.state.transition`; this module never writes
``current_state`` itself. Services never commit: the request, task or CLI owns the transaction.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import Principal
from cerniq.auth.service import record_audit
from cerniq.errors import NotFound, ValidationFailed
from cerniq.kit.pagination import PageParams
from cerniq.leads import repository
from cerniq.leads.importer import DEFAULT_BATCH_SIZE, CsvReader, ImportReport, ProgressCallback, import_rows
from cerniq.leads.repository import LeadFilters, SortBy, SortOrder
from cerniq.leads.schemas import LeadPatch
from cerniq.leads.state import allowed_transitions, transition
from cerniq.models import (
    GoldCompany,
    GoldContact,
    GoldLeadJourney,
    HumanReview,
    LeadStateHistory,
    OutreachSequence,
    SequenceEnrollment,
    WaPhoneNumber,
)
from cerniq.models.enums import LeadState

# ---------------------------------------------------------------------------------------------
# Import


async def import_leads(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    reader: CsvReader,
    *,
    principal: Principal | None,
    source: str | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: ProgressCallback | None = None,
) -> ImportReport:
    """Import the rows of ``reader`` into ``tenant_id``'s companies, contacts and journeys.

    Good rows are written even when others fail; the report lists every failed row with its
    line number and reason. With ``dry_run`` everything is validated and written inside a
    savepoint that is then rolled back, so the counts are exact and nothing stays. The import
    is audited (``leads.import``, with the counts) either way.
    """
    actor = principal.actor if principal else "system"
    savepoint = await session.begin_nested() if dry_run else None
    try:
        report = await import_rows(
            session,
            tenant_id,
            reader,
            source=source,
            actor=actor,
            batch_size=batch_size,
            on_progress=on_progress,
        )
    finally:
        if savepoint is not None:
            await savepoint.rollback()
    report.dry_run = dry_run
    await record_audit(
        session,
        principal,
        "leads.import.dry_run" if dry_run else "leads.import",
        entity_type="lead_import",
        entity_id=source,
        tenant_id=tenant_id,
        after=report.summary(),
    )
    return report


# ---------------------------------------------------------------------------------------------
# Views


def camel(name: str) -> str:
    """``next_action_at`` -> ``nextActionAt``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _columns_view(row: Any, exclude: tuple[str, ...] = ("tenant_id",)) -> dict[str, Any]:
    """Every column of an ORM row, camelCase, ``id`` first."""
    mapper = inspect(type(row))
    view: dict[str, Any] = {"id": jsonable(row.id)}
    for attr in mapper.column_attrs:
        if attr.key not in exclude:
            view[camel(attr.key)] = jsonable(getattr(row, attr.key))
    return view


def journey_view(journey: GoldLeadJourney) -> dict[str, Any]:
    """Every journey column, camelCase (``id`` is the journey, ``leadId`` the company)."""
    return _columns_view(journey)


def company_summary(company: GoldCompany) -> dict[str, Any]:
    return {
        "id": str(company.id),
        "denumire": company.denumire,
        "cui": company.cui,
        "judet": company.judet,
        "localitate": company.localitate,
        "emailPrincipal": company.email_principal,
        "telefonPrincipal": company.telefon_principal,
    }


def company_detail(company: GoldCompany) -> dict[str, Any]:
    return _columns_view(company, exclude=("tenant_id", "raw")) | {"raw": company.raw}


def contact_view(contact: GoldContact) -> dict[str, Any]:
    return _columns_view(contact)


def phone_view(phone: WaPhoneNumber | None) -> dict[str, Any] | None:
    if phone is None:
        return None
    return {
        "id": phone.id,
        "label": phone.phone_label,
        "phoneNumber": phone.phone_number,
        "status": phone.status.value,
    }


def review_view(review: HumanReview | None) -> dict[str, Any] | None:
    if review is None:
        return None
    return {
        "id": str(review.id),
        "priority": review.priority.value,
        "status": review.status.value,
        "reason": review.reason.value,
        "slaDueAt": review.sla_due_at.isoformat(),
        "slaBreached": review.sla_breached,
        "assignedTo": str(review.assigned_to) if review.assigned_to else None,
        "createdAt": review.created_at.isoformat(),
    }


def sequence_view(
    journey: GoldLeadJourney, sequence: OutreachSequence, enrollment: SequenceEnrollment | None
) -> dict[str, Any]:
    return {
        "id": str(sequence.id),
        "name": sequence.name,
        "step": journey.sequence_step,
        "totalSteps": enrollment.total_steps if enrollment else None,
        "isActive": sequence.is_active,
        "paused": journey.sequence_paused,
        "startedAt": jsonable(journey.sequence_started_at),
        "enrollment": None
        if enrollment is None
        else {
            "id": str(enrollment.id),
            "status": enrollment.status.value,
            "currentStep": enrollment.current_step,
            "nextStepAt": jsonable(enrollment.next_step_at),
            "enrolledAt": jsonable(enrollment.enrolled_at),
            "stopReason": enrollment.stop_reason,
        },
    }


def history_view(entry: LeadStateHistory) -> dict[str, Any]:
    return {
        "fromState": jsonable(entry.from_state),
        "toState": entry.to_state.value,
        "trigger": entry.trigger,
        "reason": entry.reason,
        "actor": entry.actor,
        "at": entry.created_at.isoformat(),
    }


def _list_item(row: Any) -> dict[str, Any]:
    journey: GoldLeadJourney = row[0]
    company: GoldCompany = row[1]
    phone = (
        {
            "id": row.phone_id,
            "label": row.phone_label,
            "phoneNumber": row.phone_number,
            "status": jsonable(row.phone_status),
        }
        if row.phone_id
        else None
    )
    sequence = (
        {
            "id": str(journey.current_sequence_id),
            "name": row.sequence_name,
            "step": journey.sequence_step,
            "totalSteps": row.sequence_total_steps,
        }
        if journey.current_sequence_id
        else None
    )
    return {
        "id": str(journey.id),
        "leadId": str(journey.lead_id),
        "currentState": journey.current_state.value,
        "company": company_summary(company),
        "email": journey.email,
        "mobileE164": journey.mobile_e164,
        "assignedPhone": phone,
        "lastChannelUsed": jsonable(journey.last_channel_used),
        "sentimentScore": journey.sentiment_score,
        "replyCount": journey.reply_count,
        "lastContactAt": jsonable(journey.last_contact_at),
        "lastReplyAt": jsonable(journey.last_reply_at),
        "nextActionAt": jsonable(journey.next_action_at),
        "requiresHumanReview": journey.requires_human_review,
        "isHumanControlled": journey.is_human_controlled,
        "currentSequence": sequence,
        "createdAt": journey.created_at.isoformat(),
    }


# ---------------------------------------------------------------------------------------------
# Reads


def parse_states(raw: str | None) -> tuple[LeadState, ...]:
    """``"COLD,DEAD"`` -> the states; ValidationFailed names the allowed values."""
    if not raw:
        return ()
    states: list[LeadState] = []
    for part in raw.split(","):
        name = part.strip().upper()
        if not name:
            continue
        try:
            states.append(LeadState(name))
        except ValueError:
            raise ValidationFailed(
                f"unknown state {part.strip()!r}",
                details={"field": "state", "allowed": [s.value for s in LeadState]},
            ) from None
    return tuple(states)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _normalised(filters: LeadFilters) -> LeadFilters:
    if (
        filters.min_sentiment is not None
        and filters.max_sentiment is not None
        and filters.min_sentiment > filters.max_sentiment
    ):
        raise ValidationFailed("minSentiment is greater than maxSentiment")
    return LeadFilters(
        **{
            **filters.__dict__,
            "created_after": _aware(filters.created_after),
            "created_before": _aware(filters.created_before),
            "search": (filters.search or "").strip() or None,
        }
    )


async def iter_leads(
    session: AsyncSession, tenant_id: uuid.UUID, filters: LeadFilters, *, batch: int = 1000
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every lead under ``filters`` (list item shape), ``batch`` at a time in id order: one
    keyset-paged query per batch, never the whole result in memory (exports)."""
    filters = _normalised(filters)
    after: uuid.UUID | None = None
    while True:
        rows = await repository.leads_after(session, tenant_id, filters, after=after, limit=batch)
        if not rows:
            return
        yield [_list_item(r) for r in rows]
        if len(rows) < batch:
            return
        after = rows[-1][0].id


async def list_leads(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    filters: LeadFilters,
    page: PageParams,
    *,
    sort_by: SortBy = "nextActionAt",
    order: SortOrder = "asc",
) -> dict[str, Any]:
    """One page of the tenant's leads: ``{"data": [...], "meta": {page, limit, total, pages,
    totalExact, filters}}`` with the digest §6 item shape. ``total`` counts at most
    ``repository.COUNT_AHEAD`` leads past the page (``totalExact`` false beyond)."""
    filters = _normalised(filters)
    rows, count = await repository.list_leads(
        session, tenant_id, filters, sort_by=sort_by, order=order, limit=page.limit, offset=page.offset
    )
    meta = page.meta(
        count.n,
        state=",".join(s.value for s in filters.states) or None,
        channel=jsonable(filters.channel),
        assignedPhone=filters.assigned_phone,
        assignedTo=jsonable(filters.assigned_to),
        hasReply=filters.has_reply,
        needsReview=filters.needs_review,
        search=filters.search,
        minSentiment=filters.min_sentiment,
        maxSentiment=filters.max_sentiment,
        createdAfter=jsonable(filters.created_after),
        createdBefore=jsonable(filters.created_before),
        isHumanControlled=filters.is_human_controlled,
        hasOpenReview=filters.has_open_review,
    )
    meta["filters"] = meta.get("filters", {})
    meta["sortBy"] = sort_by
    meta["sortOrder"] = order
    # false: more leads match than were counted; ``total`` and ``pages`` are lower bounds
    meta["totalExact"] = count.exact
    return {"data": [_list_item(r) for r in rows], "meta": meta}


async def get_journey(
    session: AsyncSession, tenant_id: uuid.UUID, lead_id: str | uuid.UUID, *, for_update: bool = False
) -> GoldLeadJourney:
    """The tenant's journey by its id or its company's id, or NotFound (also for another
    tenant's id: never reveal that it exists)."""
    journey = await repository.get_journey(session, tenant_id, lead_id, for_update=for_update)
    if journey is None:
        raise NotFound(f"lead {lead_id} not found", details={"id": str(lead_id)})
    return journey


async def lead_detail(
    session: AsyncSession, tenant_id: uuid.UUID, lead_id: str | uuid.UUID
) -> dict[str, Any]:
    """A lead for ``GET /leads/{id}``: every journey field (camelCase) at the top level, with
    ``assignedPhone`` {id, label, phoneNumber, status}, ``company``, ``contacts``, the last 50
    ``communications``, ``sequence``, ``pendingReview``, ``stateHistory`` and
    ``allowedTransitions``."""
    journey = await get_journey(session, tenant_id, lead_id)
    return await detail_of(session, journey)


async def detail_of(session: AsyncSession, journey: GoldLeadJourney) -> dict[str, Any]:
    tenant_id = journey.tenant_id
    company = await repository.get_company(session, tenant_id, journey.lead_id)
    phone = (
        await repository.get_phone(session, tenant_id, journey.assigned_phone_id)
        if journey.assigned_phone_id
        else None
    )
    sequence: dict[str, Any] | None = None
    if journey.current_sequence_id is not None:
        found = await repository.sequence_with_enrollment(
            session, tenant_id, journey.id, journey.current_sequence_id
        )
        if found is not None:
            sequence = sequence_view(journey, *found)
    communications = [
        {
            "id": str(m.id),
            "channel": m.channel.value,
            "direction": m.direction.value,
            "status": m.status.value,
            "contentPreview": m.preview,
            "subject": m.subject,
            "sentAt": jsonable(m.sent_at),
            "deliveredAt": jsonable(m.delivered_at),
            "readAt": jsonable(m.read_at),
            "repliedAt": jsonable(m.replied_at),
            "createdAt": jsonable(m.created_at),
            "isAiGenerated": m.is_ai_generated,
            "origin": m.origin,
            "phoneId": m.phone_id,
            "templateId": jsonable(m.template_id),
            "sentimentScore": m.sentiment_score,
            "archived": m.archived,
        }
        for m in await repository.recent_communications(session, tenant_id, journey.id)
    ]
    return {
        **journey_view(journey),
        "assignedPhone": phone_view(phone),
        "company": company_detail(company) if company is not None else None,
        "contacts": [contact_view(c) for c in await repository.contacts(session, tenant_id, journey.lead_id)],
        "communications": communications,
        "sequence": sequence,
        "pendingReview": review_view(await repository.open_review(session, tenant_id, journey.id)),
        "stateHistory": [
            history_view(h) for h in await repository.state_history(session, tenant_id, journey.id)
        ],
        "allowedTransitions": sorted(s.value for s in allowed_transitions(journey.current_state)),
    }


# ---------------------------------------------------------------------------------------------
# Edits


async def update_lead(
    session: AsyncSession, principal: Principal, lead_id: str | uuid.UUID, patch: LeadPatch
) -> GoldLeadJourney:
    """Apply an operator's edit: state (through :func:`transition`, trigger MANUAL, reason
    required), preferred channel, tags, custom fields, internal notes, assigned user.

    Writes one ``lead.update`` audit row with the changed fields before and after. An invalid
    state move raises InvalidTransition (409) and changes nothing.
    """
    given = patch.model_fields_set
    journey = await get_journey(session, principal.tenant_id, lead_id, for_update=True)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}

    def change(field: str, column: str, value: Any) -> None:
        old = getattr(journey, column)
        if old != value:
            before[field] = jsonable(old)
            after[field] = jsonable(value)
            setattr(journey, column, value)

    if "currentState" in given:
        if patch.currentState is None:
            raise ValidationFailed("currentState cannot be null", details={"field": "currentState"})
        if patch.currentState != journey.current_state:
            reason = (patch.reason or "").strip()
            if not reason:
                raise ValidationFailed(
                    "a reason is required to change a lead's state", details={"field": "reason"}
                )
            old_state = journey.current_state
            await transition(
                session, journey, patch.currentState, trigger="MANUAL", reason=reason, actor=principal.actor
            )
            before["currentState"] = old_state.value
            after["currentState"] = patch.currentState.value
    if "preferredChannel" in given:
        change("preferredChannel", "preferred_channel", patch.preferredChannel)
    if "tags" in given:
        if patch.tags is None:
            raise ValidationFailed("tags cannot be null; send [] to clear", details={"field": "tags"})
        change("tags", "tags", list(dict.fromkeys(patch.tags)))
    if "customFields" in given:
        if patch.customFields is None:
            raise ValidationFailed(
                "customFields cannot be null; send {} to clear", details={"field": "customFields"}
            )
        change("customFields", "custom_fields", patch.customFields)
    if "notes" in given:
        change("notes", "internal_notes", patch.notes)
    if "assignedToUser" in given:
        user_id = patch.assignedToUser
        if user_id is not None and not await repository.user_in_tenant(session, principal.tenant_id, user_id):
            raise ValidationFailed("no such user in this tenant", details={"field": "assignedToUser"})
        change("assignedToUser", "assigned_to_user", user_id)
    if after:
        await session.flush()
        await record_audit(
            session,
            principal,
            "lead.update",
            entity_type="lead",
            entity_id=journey.id,
            reason=patch.reason,
            before=before,
            after=after,
        )
    return journey


async def company_names(
    session: AsyncSession, tenant_id: uuid.UUID, journey_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The company name of each of the tenant's journeys among ``journey_ids``."""
    return await repository.company_names(session, tenant_id, journey_ids)
