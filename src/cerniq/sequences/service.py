"""Sequences as a product: CRUD with validated steps, enrollment with reasons for every lead
left out, pause / resume, statistics, and the default content a new tenant starts with.

Scheduling and the step-by-step progress live in :mod:`cerniq.sequences.engine` (used by
dispatch and the send path); this module manages sequences around it. Services flush, never
commit: the request, task or CLI owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.analytics import snapshots
from cerniq.auth.principal import Principal, system_principal
from cerniq.auth.service import record_audit
from cerniq.config import get_settings
from cerniq.errors import Conflict, EmergencyStopActive, NotFound, ValidationFailed
from cerniq.kit.pagination import PageParams
from cerniq.models import GoldLeadJourney, OutreachSequence, OutreachSequenceStep, OutreachTemplate
from cerniq.models.enums import Channel, LeadState, SequenceStatus
from cerniq.ops.system_state import emergency_stop
from cerniq.sequences import engine, repository
from cerniq.sequences.schemas import StepIn
from cerniq.templates import repository as templates_repository
from cerniq.templates import service as templates
from cerniq.templates.service import EMAIL_CHANNELS, channels_compatible, lint_texts

MAX_STEPS = 10

# Lead states automation may not (or need not) write to: a person handles warm leads.
_STATE_SKIPS = {
    LeadState.DEAD: "LEAD_DEAD",
    LeadState.CONVERTED: "LEAD_CONVERTED",
    LeadState.PAUSED: "LEAD_PAUSED",
    LeadState.WARM_REPLY: "LEAD_IN_CONVERSATION",
    LeadState.NEGOTIATION: "LEAD_IN_CONVERSATION",
}


def sequence_channel(raw: str | None) -> Channel | None:
    if raw is None:
        return None
    return Channel.EMAIL_COLD if raw.upper() == "EMAIL" else Channel(raw.upper())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        return None


# ------------------------------------------------------------------------------------ views


def delay_label(step: OutreachSequenceStep) -> str:
    """``0h`` for an immediate first step, ``+72h``, ``+1h30m`` for the others."""
    text = f"{step.delay_hours}h" + (f"{step.delay_minutes}m" if step.delay_minutes else "")
    return text if step.step_number == 1 else f"+{text}"


def step_view(step: OutreachSequenceStep, template: OutreachTemplate | None) -> dict[str, Any]:
    return {
        "id": str(step.id),
        "stepNumber": step.step_number,
        "delayHours": step.delay_hours,
        "delayMinutes": step.delay_minutes,
        "delayLabel": delay_label(step),
        "channel": step.channel.value,
        "templateId": str(step.template_id) if step.template_id else None,
        "templateName": template.name if template else None,
        "templateActive": template.is_active if template else None,
        "skipIfReplied": step.skip_if_replied,
        "skipIfOpened": step.skip_if_opened,
        "subjectOverride": step.subject_override,
        "contentOverride": step.content_override,
        "isActive": step.is_active,
    }


def _empty_counts() -> dict[str, Any]:
    return {
        "enrollments": 0,
        "active": 0,
        "paused": 0,
        "completed": 0,
        "stopped": 0,
        "contacted": 0,
        "replied": 0,
        "conversions": 0,
        "avgStepsCompleted": 0.0,
    }


def sequence_view(
    sequence: OutreachSequence,
    steps: Sequence[OutreachSequenceStep],
    templates_by_id: Mapping[uuid.UUID, OutreachTemplate],
    counts: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    counts = counts or _empty_counts()
    return {
        "id": str(sequence.id),
        "name": sequence.name,
        "code": sequence.code,
        "description": sequence.description,
        "status": sequence.status.value,
        "isActive": sequence.is_active,
        "isDefault": sequence.is_default,
        "primaryChannel": sequence.primary_channel.value,
        "fallbackChannel": sequence.fallback_channel.value if sequence.fallback_channel else None,
        "respectBusinessHours": sequence.respect_business_hours,
        "timezone": sequence.timezone,
        "stopOnReply": sequence.stop_on_reply,
        "stopOnBounce": sequence.stop_on_bounce,
        "stepCount": len(steps),
        "steps": [step_view(s, templates_by_id.get(s.template_id) if s.template_id else None) for s in steps],
        "counts": {
            "enrolled": counts["enrollments"],
            "active": counts["active"],
            "completed": counts["completed"],
            "stopped": counts["stopped"],
            "replied": counts["replied"],
        },
        "responseRate": _rate(counts["replied"], counts["contacted"]),
        "conversions": counts["conversions"],
        "createdAt": _iso(sequence.created_at),
        "updatedAt": _iso(sequence.updated_at),
    }


async def get_sequence(
    session: AsyncSession, tenant_id: uuid.UUID, sequence_id: uuid.UUID | str, *, for_update: bool = False
) -> OutreachSequence:
    """The tenant's sequence, or NotFound (also for another tenant's id or a malformed one)."""
    key = _as_uuid(sequence_id)
    sequence = (
        None if key is None else await repository.get_sequence(session, tenant_id, key, for_update=for_update)
    )
    if sequence is None:
        raise NotFound(f"sequence {sequence_id} not found", details={"id": str(sequence_id)})
    return sequence


async def resolve_sequence(session: AsyncSession, tenant_id: uuid.UUID, id_or_code: str) -> OutreachSequence:
    """A sequence by id or by code (for the CLI), or NotFound."""
    if _as_uuid(id_or_code) is None:
        sequence = await repository.get_sequence_by_code(session, tenant_id, id_or_code)
        if sequence is None:
            raise NotFound(f"sequence {id_or_code} not found", details={"id": id_or_code})
        return sequence
    return await get_sequence(session, tenant_id, id_or_code)


async def _templates_of(
    session: AsyncSession, tenant_id: uuid.UUID, steps: Sequence[OutreachSequenceStep]
) -> dict[uuid.UUID, OutreachTemplate]:
    ids = sorted({s.template_id for s in steps if s.template_id}, key=str)
    return await templates_repository.templates_by_ids(session, tenant_id, ids)


async def list_view(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    page: PageParams,
    *,
    is_active: bool | None = None,
    channel: str | None = None,
    include_archived: bool = False,
) -> dict[str, Any]:
    """``GET /sequences``: ``{"data": [...], "meta": {..., statsAsOf}}`` with enrolled / active /
    completed / replied counts per sequence (archived ones only with ``includeArchived``), as
    counted at ``statsAsOf`` (``null``: now; see ``analytics.snapshots``)."""
    channels = templates.parse_channel_filter(channel)
    rows, total = await repository.list_sequences(
        session,
        tenant_id,
        is_active=is_active,
        channels=channels,
        include_archived=include_archived,
        offset=page.offset,
        limit=page.limit,
    )
    steps = await repository.steps_of_many(session, [s.id for s in rows])
    all_steps = [step for group in steps.values() for step in group]
    templates_by_id = await _templates_of(session, tenant_id, all_steps)
    # every sequence's figures as the minute job counted them (they join every enrollment to
    # its journey); a sequence enrolled since has none until the next count
    stats, stats_at = await snapshots.read(session, tenant_id, "sequences")
    meta = page.meta(total, isActive=is_active, channel=channel)
    meta["statsAsOf"] = stats_at.isoformat() if stats_at else None
    return {
        "data": [sequence_view(s, steps[s.id], templates_by_id, stats.get(str(s.id))) for s in rows],
        "meta": meta,
    }


async def detail_view(
    session: AsyncSession, tenant_id: uuid.UUID, sequence_id: uuid.UUID | str
) -> dict[str, Any]:
    """``GET /sequences/{id}``: the sequence, its steps and ``stats`` (enrollments by status,
    stopped by reason, messages per step, replies, reply rate, conversions, steps done)."""
    sequence = await get_sequence(session, tenant_id, sequence_id)
    steps = await repository.steps_of(session, sequence.id)
    templates_by_id = await _templates_of(session, tenant_id, steps)
    counts = (await repository.enrollment_stats(session, tenant_id, [sequence.id])).get(
        sequence.id
    ) or _empty_counts()
    view = sequence_view(sequence, steps, templates_by_id, counts)
    per_step = await repository.messages_per_step(session, tenant_id, sequence.id)
    numbers = sorted({s.step_number for s in steps} | set(per_step))
    view["stats"] = {
        "enrollments": counts["enrollments"],
        "active": counts["active"],
        "paused": counts["paused"],
        "completed": counts["completed"],
        "stopped": counts["stopped"],
        "stoppedByReason": await repository.stopped_by_reason(session, sequence.id),
        "messagesPerStep": [
            {"step": n, **per_step.get(n, {"sent": 0, "queued": 0, "failed": 0, "skipped": 0})}
            for n in numbers
        ],
        "messagesSent": sum(v["sent"] for v in per_step.values()),
        "contacted": counts["contacted"],
        "replies": counts["replied"],
        "replyRate": _rate(counts["replied"], counts["contacted"]),
        "conversions": counts["conversions"],
        "conversionRate": _rate(counts["conversions"], counts["enrollments"]),
        "avgStepsCompleted": counts["avgStepsCompleted"],
    }
    return view


async def analytics_view(session: AsyncSession, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """``GET /sequences/stats``: enrollment results per sequence (archived included, for
    history), as the minute job last counted them (at most ``snapshots.FRESH`` old)."""
    sequences = await repository.all_sequences(session, tenant_id)
    stats, _at = await snapshots.read(session, tenant_id, "sequences")
    out = []
    for sequence in sequences:
        counts = stats.get(str(sequence.id)) or _empty_counts()
        out.append(
            {
                "sequenceId": str(sequence.id),
                "name": sequence.name,
                "status": sequence.status.value,
                "isActive": sequence.is_active,
                "enrollments": counts["enrollments"],
                "active": counts["active"],
                "completions": counts["completed"],
                "stopped": counts["stopped"],
                "replied": counts["replied"],
                "conversions": counts["conversions"],
                "avgStepsCompleted": counts["avgStepsCompleted"],
                "responseRate": _rate(counts["replied"], counts["contacted"]),
            }
        )
    return out


# ------------------------------------------------------------------------------------ steps


async def _build_steps(
    session: AsyncSession, tenant_id: uuid.UUID, steps_in: Sequence[StepIn]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Validate the steps (templates exist in the tenant, are active and fit the channel;
    overrides parse) and return the step rows' values plus lint warnings."""
    if not 1 <= len(steps_in) <= MAX_STEPS:
        raise ValidationFailed(f"a sequence has 1 to {MAX_STEPS} steps", details={"field": "steps"})
    found = await templates_repository.templates_by_ids(
        session, tenant_id, sorted({s.templateId for s in steps_in}, key=str)
    )
    rows: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    for index, step in enumerate(steps_in):
        number = index + 1
        where = {"field": f"steps[{index}].templateId", "step": number}
        channel = Channel(step.channel)
        template = found.get(step.templateId)
        if template is None:
            raise ValidationFailed(
                f"step {number}: template {step.templateId} not found",
                code="TEMPLATE_NOT_FOUND",
                details=where | {"templateId": str(step.templateId)},
            )
        if not template.is_active:
            raise ValidationFailed(
                f"step {number}: template {template.name!r} is deactivated",
                code="TEMPLATE_INACTIVE",
                details=where,
            )
        if not channels_compatible(template.channel, channel):
            raise ValidationFailed(
                f"step {number}: a {template.channel.value} template cannot be sent on {channel.value}",
                code="TEMPLATE_CHANNEL_MISMATCH",
                details=where | {"templateChannel": template.channel.value, "stepChannel": channel.value},
            )
        subject = step.subjectOverride or template.subject
        if channel in EMAIL_CHANNELS and not subject:
            raise ValidationFailed(
                f"step {number}: an email step needs a subject",
                details={"field": f"steps[{index}].subjectOverride"},
            )
        content = step.contentOverride or template.content
        report = lint_texts(
            content,
            subject=step.subjectOverride,
            channel=channel,
            first_message=number == 1 and channel == Channel.WHATSAPP,
            declared=list(template.variables or []),
        )
        if step.contentOverride or step.subjectOverride:
            try:
                report.raise_if_invalid()
            except templates.TemplateInvalid as exc:
                exc.message = f"step {number}: {exc.message}"
                raise
        warnings.extend(issue | {"step": number} for issue in report.issues if issue["severity"] == "warning")
        delay_hours = step.delayHours if step.delayHours is not None else (0 if number == 1 else 24)
        rows.append(
            {
                "step_number": number,
                "delay_hours": delay_hours,
                "delay_minutes": step.delayMinutes,
                "channel": channel,
                "template_id": template.id,
                "skip_if_replied": step.skipIfReplied,
                "skip_if_opened": step.skipIfOpened,
                "subject_override": step.subjectOverride or None,
                "content_override": step.contentOverride or None,
            }
        )
    return rows, warnings


def _add_steps(
    session: AsyncSession, sequence: OutreachSequence, rows: Sequence[Mapping[str, Any]]
) -> list[OutreachSequenceStep]:
    steps = [
        OutreachSequenceStep(id=uuid.uuid4(), tenant_id=sequence.tenant_id, sequence_id=sequence.id, **row)
        for row in rows
    ]
    session.add_all(steps)
    return steps


def _steps_summary(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "step": r["step_number"],
            "delayHours": r["delay_hours"],
            "delayMinutes": r["delay_minutes"],
            "channel": Channel(r["channel"]).value,
            "templateId": str(r["template_id"]),
        }
        for r in rows
    ]


# ------------------------------------------------------------------------------------ CRUD


async def _make_default(session: AsyncSession, sequence: OutreachSequence) -> list[uuid.UUID]:
    await repository.lock_tenant(session, sequence.tenant_id, "default-sequence")
    cleared = await repository.clear_defaults(session, sequence.tenant_id, keep=sequence.id)
    sequence.is_default = True
    return cleared


async def create_sequence(
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    steps: Sequence[StepIn],
    code: str | None = None,
    description: str | None = None,
    primary_channel: str = "WHATSAPP",
    fallback_channel: str | None = None,
    respect_business_hours: bool = True,
    stop_on_reply: bool = True,
    stop_on_bounce: bool = True,
    is_default: bool = False,
    is_active: bool = True,
) -> tuple[OutreachSequence, list[dict[str, Any]]]:
    """Create a sequence and its steps. Returns it and the lint warnings of its texts (e.g. a
    link in the first WhatsApp message). ``is_default`` takes the default from any other."""
    rows, warnings = await _build_steps(session, principal.tenant_id, steps)
    if code and await repository.get_sequence_by_code(session, principal.tenant_id, code) is not None:
        raise Conflict(f"a sequence with code {code!r} exists", code="SEQUENCE_CODE_TAKEN")
    sequence = OutreachSequence(
        id=uuid.uuid4(),
        tenant_id=principal.tenant_id,
        name=name,
        code=code,
        description=description,
        status=SequenceStatus.ACTIVE if is_active else SequenceStatus.PAUSED,
        is_active=is_active,
        is_default=False,
        primary_channel=sequence_channel(primary_channel) or Channel.WHATSAPP,
        fallback_channel=sequence_channel(fallback_channel),
        respect_business_hours=respect_business_hours,
        stop_on_reply=stop_on_reply,
        stop_on_bounce=stop_on_bounce,
        max_steps=len(rows),
    )
    session.add(sequence)
    await session.flush([sequence])
    _add_steps(session, sequence, rows)
    cleared: list[uuid.UUID] = []
    if is_default:
        cleared = await _make_default(session, sequence)
    await session.flush()
    await record_audit(
        session,
        principal,
        "sequence.create",
        entity_type="sequence",
        entity_id=sequence.id,
        after={
            "name": name,
            "isDefault": is_default,
            "steps": _steps_summary(rows),
            "defaultTakenFrom": [str(c) for c in cleared],
        },
    )
    return sequence, warnings


async def update_sequence(
    session: AsyncSession, principal: Principal, sequence_id: uuid.UUID | str, changes: Mapping[str, Any]
) -> OutreachSequence:
    """PATCH: name, description, channels, flags, ``isActive`` (pause / resume) and
    ``isDefault`` (one default per tenant: setting it clears the others)."""
    sequence = await get_sequence(session, principal.tenant_id, sequence_id)
    if sequence.status == SequenceStatus.ARCHIVED:
        raise Conflict("the sequence is deleted", code="SEQUENCE_ARCHIVED")
    # Pause / resume first: resuming touches the leads before the sequence row (lock order).
    if changes.get("isActive") is True and not sequence.is_active:
        await resume_sequence(session, principal, sequence.id)
    elif changes.get("isActive") is False and sequence.is_active:
        await pause_sequence(session, principal, sequence.id)
    sequence = await get_sequence(session, principal.tenant_id, sequence.id, for_update=True)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}

    def change(attr: str, key: str, value: Any) -> None:
        current = getattr(sequence, attr)
        if current != value:
            before[key] = current.value if isinstance(current, Channel) else current
            after[key] = value.value if isinstance(value, Channel) else value
            setattr(sequence, attr, value)

    flags = {
        "name": "name",
        "description": "description",
        "respectBusinessHours": "respect_business_hours",
        "stopOnReply": "stop_on_reply",
        "stopOnBounce": "stop_on_bounce",
    }
    for key, attr in flags.items():
        if key in changes and (changes[key] is not None or key == "description"):
            change(attr, key, changes[key])
    if changes.get("primaryChannel") is not None:
        change("primary_channel", "primaryChannel", sequence_channel(changes["primaryChannel"]))
    if "fallbackChannel" in changes:
        change("fallback_channel", "fallbackChannel", sequence_channel(changes["fallbackChannel"]))
    if changes.get("isDefault") is True and not sequence.is_default:
        cleared = await _make_default(session, sequence)
        before["isDefault"], after["isDefault"] = False, True
        after["defaultTakenFrom"] = [str(c) for c in cleared]
    elif changes.get("isDefault") is False:
        change("is_default", "isDefault", False)
    if before:
        await session.flush()
        await record_audit(
            session,
            principal,
            "sequence.update",
            entity_type="sequence",
            entity_id=sequence.id,
            before=before,
            after=after,
        )
    return sequence


async def replace_steps(
    session: AsyncSession, principal: Principal, sequence_id: uuid.UUID | str, steps: Sequence[StepIn]
) -> tuple[OutreachSequence, list[dict[str, Any]]]:
    """Replace every step. Enrolled leads keep their position: ``current_step`` is a step
    number, so a lead that has done step 2 goes on with the new step 3 (or completes)."""
    sequence = await get_sequence(session, principal.tenant_id, sequence_id)
    if sequence.status == SequenceStatus.ARCHIVED:
        raise Conflict("the sequence is deleted", code="SEQUENCE_ARCHIVED")
    rows, warnings = await _build_steps(session, principal.tenant_id, steps)
    # Enrollments before the sequence row: the order dispatch and the send path lock them in.
    await repository.set_total_steps(session, sequence.id, len(rows))
    sequence = await get_sequence(session, principal.tenant_id, sequence.id, for_update=True)
    if sequence.status == SequenceStatus.ARCHIVED:
        raise Conflict("the sequence is deleted", code="SEQUENCE_ARCHIVED")
    old = await repository.steps_of(session, sequence.id)
    before = [
        {
            "step": s.step_number,
            "delayHours": s.delay_hours,
            "channel": s.channel.value,
            "templateId": str(s.template_id),
        }
        for s in old
    ]
    await repository.delete_steps(session, sequence.id)
    await session.flush()
    _add_steps(session, sequence, rows)
    sequence.max_steps = len(rows)
    await session.flush()
    await record_audit(
        session,
        principal,
        "sequence.steps.replace",
        entity_type="sequence",
        entity_id=sequence.id,
        before={"steps": before},
        after={"steps": _steps_summary(rows)},
    )
    return sequence, warnings


def _has_enrollments(count: int) -> Conflict:
    return Conflict(
        f"{count} leads are enrolled in this sequence;"
        " pause it, or delete with ?force=true to stop their enrollments",
        code="SEQUENCE_HAS_ENROLLMENTS",
        details={"activeEnrollments": count},
    )


async def delete_sequence(
    session: AsyncSession, principal: Principal, sequence_id: uuid.UUID | str, *, force: bool = False
) -> int:
    """Soft delete (archived, inactive, not default). 409 while leads are enrolled unless
    ``force``, which stops their enrollments (reason ``SEQUENCE_DELETED``). Returns how many
    enrollments were stopped."""
    sequence = await get_sequence(session, principal.tenant_id, sequence_id)
    if sequence.status == SequenceStatus.ARCHIVED:
        return 0
    enrolled = await repository.count_open_enrollments(session, sequence.id)
    if enrolled and not force:
        raise _has_enrollments(enrolled)
    # Leads and enrollments before the sequence row (the lock order of dispatch and sends).
    stopped = await engine.stop_sequence(session, sequence.id, "SEQUENCE_DELETED") if enrolled else 0
    sequence = await get_sequence(session, principal.tenant_id, sequence.id, for_update=True)
    if sequence.status == SequenceStatus.ARCHIVED:
        return stopped
    late = await repository.count_open_enrollments(session, sequence.id)
    if late:  # enrolled meanwhile: let the caller look again rather than strand them
        raise _has_enrollments(late)
    before = {
        "status": sequence.status.value,
        "isActive": sequence.is_active,
        "isDefault": sequence.is_default,
    }
    sequence.status = SequenceStatus.ARCHIVED
    sequence.is_active = False
    sequence.is_default = False
    await session.flush()
    await record_audit(
        session,
        principal,
        "sequence.delete",
        entity_type="sequence",
        entity_id=sequence.id,
        reason="forced" if force else None,
        before=before,
        after={"status": "ARCHIVED", "isActive": False, "enrollmentsStopped": stopped},
    )
    return stopped


async def pause_sequence(
    session: AsyncSession, principal: Principal, sequence_id: uuid.UUID | str, *, reason: str | None = None
) -> OutreachSequence:
    """Stop sending for this sequence (``is_active = false``); enrollments keep their place."""
    sequence = await get_sequence(session, principal.tenant_id, sequence_id, for_update=True)
    if sequence.status == SequenceStatus.ARCHIVED:
        raise Conflict("the sequence is deleted", code="SEQUENCE_ARCHIVED")
    if sequence.is_active or sequence.status != SequenceStatus.PAUSED:
        before = {"isActive": sequence.is_active, "status": sequence.status.value}
        sequence.is_active = False
        sequence.status = SequenceStatus.PAUSED
        await session.flush()
        await record_audit(
            session,
            principal,
            "sequence.pause",
            entity_type="sequence",
            entity_id=sequence.id,
            reason=reason,
            before=before,
            after={"isActive": False, "status": "PAUSED"},
        )
    return sequence


async def resume_sequence(
    session: AsyncSession, principal: Principal, sequence_id: uuid.UUID | str, *, reason: str | None = None
) -> tuple[OutreachSequence, int]:
    """Reactivate a sequence (the runbook's manual reactivation after an emergency resume):
    its enrolled leads become due again. Refused while the emergency stop is active."""
    sequence = await get_sequence(session, principal.tenant_id, sequence_id)
    if sequence.status == SequenceStatus.ARCHIVED:
        raise Conflict("the sequence is deleted", code="SEQUENCE_ARCHIVED")
    if await emergency_stop(session) is not None:
        raise EmergencyStopActive(
            "the emergency stop is active; resume operations first (cerniq emergency resume)"
        )
    rescheduled = 0
    if not sequence.is_active or sequence.status != SequenceStatus.ACTIVE:
        # The leads first, then the sequence row: the lock order of dispatch and the send path.
        rescheduled = await engine.resume_sequence(session, sequence.id)
        sequence = await get_sequence(session, principal.tenant_id, sequence.id, for_update=True)
        if sequence.status == SequenceStatus.ARCHIVED:
            raise Conflict("the sequence is deleted", code="SEQUENCE_ARCHIVED")
        before = {"isActive": sequence.is_active, "status": sequence.status.value}
        sequence.is_active = True
        sequence.status = SequenceStatus.ACTIVE
        await session.flush()
        await record_audit(
            session,
            principal,
            "sequence.resume",
            entity_type="sequence",
            entity_id=sequence.id,
            reason=reason,
            before=before,
            after={"isActive": True, "status": "ACTIVE", "leadsDueAgain": rescheduled},
        )
    return sequence, rescheduled


# ------------------------------------------------------------------------------------ enrollment


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=ZoneInfo(get_settings().timezone))


def _skip_reason(journey: GoldLeadJourney, channel: Channel, suppressed: set[tuple[str, str]]) -> str | None:
    if journey.is_human_controlled:
        return "HUMAN_CONTROLLED"
    state_reason = _STATE_SKIPS.get(journey.current_state)
    if state_reason is not None:
        return state_reason
    if channel == Channel.WHATSAPP:
        number = journey.mobile_e164 or ""
        if journey.whatsapp_opted_out or ("WHATSAPP", number) in suppressed or ("ALL", number) in suppressed:
            return "OPTED_OUT_WHATSAPP"
    else:
        email = (journey.email or "").lower()
        if journey.email_opted_out or ("EMAIL", email) in suppressed or ("ALL", email) in suppressed:
            return "OPTED_OUT_EMAIL"
    return None


async def enroll_leads(
    session: AsyncSession,
    principal: Principal,
    sequence_id: uuid.UUID | str,
    lead_ids: Sequence[str],
    *,
    start_step: int = 1,
    scheduled_start: datetime | None = None,
) -> dict[str, Any]:
    """Enroll leads (journey or company ids) with :func:`cerniq.sequences.engine.enroll`.

    Returns ``{"enrolled": n, "skipped": [{leadId, reason}], "errors": [{leadId, reason}],
    "enrollments": [...]}``. Skip reasons: ``NOT_FOUND``, ``DUPLICATE``, ``ALREADY_ENROLLED``
    (an active or paused enrollment in any sequence), ``HUMAN_CONTROLLED``, ``LEAD_DEAD``,
    ``LEAD_CONVERTED``, ``LEAD_PAUSED``, ``LEAD_IN_CONVERSATION`` (a person handles warm
    leads), ``OPTED_OUT_WHATSAPP`` / ``OPTED_OUT_EMAIL`` (for the start step's channel).
    The first step is due on the business clock (its delay after ``scheduled_start``)."""
    sequence = await get_sequence(session, principal.tenant_id, sequence_id)
    if sequence.status == SequenceStatus.ARCHIVED:
        raise Conflict("the sequence is deleted", code="SEQUENCE_ARCHIVED")
    steps = await engine.active_steps(session, sequence.id)
    if not steps:
        raise Conflict("the sequence has no active steps", code="SEQUENCE_HAS_NO_STEPS")
    first = next((s for s in steps if s.step_number >= start_step), None)
    if first is None:
        raise ValidationFailed(
            f"startStep {start_step} is past the last step ({steps[-1].step_number})",
            code="START_STEP_OUT_OF_RANGE",
            details={"field": "startStep", "lastStep": steps[-1].step_number},
        )
    start_at = _aware(scheduled_start)
    parsed = [(raw, _as_uuid(raw)) for raw in lead_ids]
    keys = sorted({key for _, key in parsed if key is not None}, key=str)
    journeys = await repository.journeys_by_keys(session, principal.tenant_id, keys)
    # The leads are locked; now the sequence row (the lock order of dispatch and the send path),
    # and look again: it may have been deleted meanwhile.
    sequence = await get_sequence(session, principal.tenant_id, sequence.id, for_update=True)
    if sequence.status == SequenceStatus.ARCHIVED:
        raise Conflict("the sequence is deleted", code="SEQUENCE_ARCHIVED")
    by_key: dict[uuid.UUID, GoldLeadJourney] = {}
    for row in journeys:
        by_key[row.id] = row
        by_key.setdefault(row.lead_id, row)
    open_by_journey = await repository.open_enrollments(session, [j.id for j in journeys])
    values = [v for j in journeys for v in (j.mobile_e164, (j.email or "").lower()) if v]
    suppressed = await repository.suppressed_values(session, principal.tenant_id, values)
    errors: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    enrollments: list[dict[str, Any]] = []
    seen: set[uuid.UUID] = set()
    for raw, key in parsed:
        if key is None:
            errors.append({"leadId": raw, "reason": "INVALID_ID", "message": "not a UUID"})
            continue
        found = by_key.get(key)
        if found is None:
            skipped.append({"leadId": raw, "reason": "NOT_FOUND"})
            continue
        journey = found
        if journey.id in seen:
            skipped.append({"leadId": raw, "reason": "DUPLICATE"})
            continue
        seen.add(journey.id)
        current = open_by_journey.get(journey.id)
        if current is not None:
            skipped.append(
                {"leadId": raw, "reason": "ALREADY_ENROLLED", "sequenceId": str(current.sequence_id)}
            )
            continue
        reason = _skip_reason(journey, first.channel, suppressed)
        if reason is not None:
            skipped.append({"leadId": raw, "reason": reason})
            continue
        try:
            async with session.begin_nested():
                enrollment = await engine.enroll(
                    session, journey, sequence, start_at=start_at, start_step=start_step, steps=steps
                )
        except Exception as exc:  # one bad lead must not lose the others' enrollments
            errors.append({"leadId": raw, "reason": "ENROLL_FAILED", "message": type(exc).__name__})
            continue
        enrollments.append(
            {
                "leadId": raw,
                "journeyId": str(journey.id),
                "enrollmentId": str(enrollment.id),
                "nextStepAt": _iso(enrollment.next_step_at),
            }
        )
    await record_audit(
        session,
        principal,
        "sequence.enroll",
        entity_type="sequence",
        entity_id=sequence.id,
        after={
            "enrolled": len(enrollments),
            "skipped": len(skipped),
            "errors": len(errors),
            "startStep": start_step,
            "scheduledStart": _iso(start_at),
            "journeyIds": [e["journeyId"] for e in enrollments],
        },
    )
    return {
        "sequenceId": str(sequence.id),
        "enrolled": len(enrollments),
        "skipped": skipped,
        "errors": errors,
        "enrollments": enrollments,
    }


async def enroll_lead(
    session: AsyncSession,
    principal: Principal,
    lead_id: str,
    sequence_id: uuid.UUID | str,
    *,
    start_step: int = 1,
    scheduled_start: datetime | None = None,
) -> dict[str, Any]:
    """Enroll one lead (``POST /leads/{leadId}/enroll``): 404 for an unknown lead, 409 with
    the skip reason as code when it cannot be enrolled."""
    result = await enroll_leads(
        session, principal, sequence_id, [lead_id], start_step=start_step, scheduled_start=scheduled_start
    )
    if result["enrollments"]:
        enrolled: dict[str, Any] = result["enrollments"][0]
        return enrolled | {"sequenceId": result["sequenceId"]}
    problem = (result["skipped"] or result["errors"])[0]
    if problem["reason"] in ("NOT_FOUND", "INVALID_ID"):
        raise NotFound(f"lead {lead_id} not found", details={"leadId": lead_id})
    raise Conflict(
        f"the lead cannot be enrolled: {problem['reason']}", code=problem["reason"], details=problem
    )


# ------------------------------------------------------------------------------------ defaults

WA_SEQUENCE_CODE = "CERNIQ_WA_STD"
EMAIL_SEQUENCE_CODE = "CERNIQ_EMAIL_COLD_STD"

_GREETING = "{Bună ziua|Bună ziua, {{contactName|stimate partener}}}!"

DEFAULT_TEMPLATES: tuple[dict[str, Any], ...] = (
    {
        "code": "CERNIQ_WA_INIT",
        "name": "WhatsApp: primul contact",
        "channel": "WHATSAPP",
        "description": "Primul mesaj: politicos, fără linkuri.",
        "content": (
            _GREETING + " {Vă scriu|Vă contactez} din partea Cerniq, o platformă "
            "{dedicată|gândită pentru} companiile agricole din România. "
            "{Am văzut|Am observat} că {{companyName}} activează în {{judet|zona dvs.}} și "
            "{cred|m-am gândit} că v-ar putea fi de folos: {vă ajutăm să găsiți|vă punem în legătură cu} "
            "{cumpărători pentru recoltă|parteneri de încredere} și "
            "{furnizori de inputuri|servicii agricole} "
            "{din zonă|din toată țara}. {Ați fi interesat să aflați mai multe?|V-ar interesa câteva detalii?}"
        ),
    },
    {
        "code": "CERNIQ_WA_FU1",
        "name": "WhatsApp: revenire",
        "channel": "WHATSAPP",
        "description": "Prima revenire, la 3 zile.",
        "content": (
            _GREETING + " Revin {cu un scurt mesaj|pe scurt} despre Cerniq. "
            "{Tot mai mulți|Mulți} producători agricoli din {{judet|zona dvs.}} folosesc platforma "
            "{pentru a vinde recolta mai bine|ca să găsească cumpărători pentru recoltă} și "
            "{pentru a cumpăra inputuri la prețuri mai bune|ca să își planifice achizițiile}. "
            "{Dacă vă interesează|Dacă doriți}, vă pot trimite {o scurtă prezentare|câteva detalii} "
            "{pentru|adaptate pentru} {{companyName}}."
        ),
    },
    {
        "code": "CERNIQ_WA_FU2",
        "name": "WhatsApp: ultimul mesaj",
        "channel": "WHATSAPP",
        "description": "Ultima revenire, la încă 5 zile; spune cum se oprește conversația.",
        "content": (
            _GREETING + " {Acesta este ultimul meu mesaj|Vă mai scriu o singură dată} din partea Cerniq. "
            "Dacă {acum nu este momentul potrivit|subiectul nu vă interesează acum}, "
            "{nicio problemă|înțeleg perfect}: "
            "{răspundeți cu STOP|scrieți STOP} și nu vă mai contactăm. "
            "{Vă doresc|Vă urez} {un sezon bun|mult succes} {pentru|echipei} {{companyName}}!"
        ),
    },
    {
        "code": "CERNIQ_EMAIL_COLD_INIT",
        "name": "Email rece: primul contact",
        "channel": "EMAIL_COLD",
        "description": "Pentru lead-urile fără WhatsApp.",
        "subject": "{Parteneri|Oportunități} pentru {{companyName}}",
        "content": (
            _GREETING + "\n\n"
            "{Vă scriu|Vă contactez} din partea Cerniq, o platformă pentru companiile agricole din România. "
            "{Am observat|Am văzut} că {{companyName}} activează în {{judet|zona dvs.}}.\n\n"
            "Cerniq {vă ajută să găsiți|vă pune în legătură cu} cumpărători pentru recoltă, furnizori de "
            "inputuri și servicii agricole, {din zonă|din toată țara}, într-un singur loc.\n\n"
            "{Ați avea 10 minute săptămâna aceasta pentru o scurtă discuție?|"
            "V-ar interesa o scurtă prezentare?}\n\n"
            "Cu stimă,\nEchipa Cerniq"
        ),
    },
    {
        "code": "CERNIQ_EMAIL_COLD_FU1",
        "name": "Email rece: revenire",
        "channel": "EMAIL_COLD",
        "description": "Revenire la 4 zile.",
        "subject": "Re: {Parteneri|Oportunități} pentru {{companyName}}",
        "content": (
            _GREETING + "\n\n"
            "Revin {pe scurt|cu un scurt mesaj} la emailul de mai sus. {Dacă subiectul vă interesează|"
            "Dacă doriți detalii}, răspundeți la acest mesaj și vă {trimit|pregătesc} o prezentare "
            "{pentru|adaptată pentru} {{companyName}}.\n\n"
            "Dacă nu doriți să mai primiți mesaje de la noi, răspundeți cu „dezabonare”.\n\n"
            "Cu stimă,\nEchipa Cerniq"
        ),
    },
)

DEFAULT_SEQUENCES: tuple[dict[str, Any], ...] = (
    {
        "code": WA_SEQUENCE_CODE,
        "name": "Cerniq WhatsApp standard",
        "description": "Primul contact pe WhatsApp, revenire la 3 zile și ultimul mesaj la încă 5 zile.",
        "primary_channel": "WHATSAPP",
        "fallback_channel": "EMAIL_COLD",
        "steps": (
            ("CERNIQ_WA_INIT", 0, "WHATSAPP"),
            ("CERNIQ_WA_FU1", 72, "WHATSAPP"),
            ("CERNIQ_WA_FU2", 120, "WHATSAPP"),
        ),
        "default": True,
    },
    {
        "code": EMAIL_SEQUENCE_CODE,
        "name": "Cerniq email rece standard",
        "description": "Pentru lead-urile fără WhatsApp: primul email și o revenire la 4 zile.",
        "primary_channel": "EMAIL_COLD",
        "fallback_channel": None,
        "steps": (("CERNIQ_EMAIL_COLD_INIT", 0, "EMAIL_COLD"), ("CERNIQ_EMAIL_COLD_FU1", 96, "EMAIL_COLD")),
        "default": False,
    },
)


async def ensure_default_content(
    session: AsyncSession, tenant_id: uuid.UUID
) -> tuple[OutreachSequence, list[OutreachTemplate]]:
    """Create what is missing of the default content: Romanian templates (spintax, lead
    variables, no link in the first contact), the WhatsApp sequence "Cerniq WhatsApp standard"
    (0 h, +72 h, +120 h; the tenant's default unless it has one) and a cold-email sequence for
    leads without WhatsApp. Idempotent (matched by code). Returns the WhatsApp sequence and
    the default templates."""
    await repository.lock_tenant(session, tenant_id, "default-content")
    principal = system_principal(tenant_id, "seed")
    by_code: dict[str, OutreachTemplate] = {}
    for spec in DEFAULT_TEMPLATES:
        template = await templates_repository.get_template_by_code(session, tenant_id, spec["code"])
        if template is None:
            template, _ = await templates.create_template(
                session,
                principal,
                name=spec["name"],
                code=spec["code"],
                channel=spec["channel"],
                description=spec["description"],
                subject=spec.get("subject"),
                content=spec["content"],
                is_approved=True,
                change_notes="default content",
            )
        by_code[spec["code"]] = template
    has_default = bool(await repository.default_of(session, tenant_id))
    wa_sequence: OutreachSequence | None = None
    for seq_spec in DEFAULT_SEQUENCES:
        sequence = await repository.get_sequence_by_code(session, tenant_id, seq_spec["code"])
        if sequence is None:
            steps = [
                StepIn(
                    templateId=by_code[code].id,
                    delayHours=hours,
                    channel=channel,
                    skipIfReplied=True,
                )
                for code, hours, channel in seq_spec["steps"]
            ]
            sequence, _ = await create_sequence(
                session,
                principal,
                name=seq_spec["name"],
                code=seq_spec["code"],
                description=seq_spec["description"],
                primary_channel=seq_spec["primary_channel"],
                fallback_channel=seq_spec["fallback_channel"],
                steps=steps,
                is_default=bool(seq_spec["default"]) and not has_default,
            )
        if seq_spec["code"] == WA_SEQUENCE_CODE:
            wa_sequence = sequence
    assert wa_sequence is not None
    return wa_sequence, [by_code[spec["code"]] for spec in DEFAULT_TEMPLATES]


# Re-exported for callers that only import the service.
__all__ = [
    "DEFAULT_SEQUENCES",
    "DEFAULT_TEMPLATES",
    "EMAIL_SEQUENCE_CODE",
    "WA_SEQUENCE_CODE",
    "analytics_view",
    "create_sequence",
    "delete_sequence",
    "detail_view",
    "enroll_lead",
    "enroll_leads",
    "ensure_default_content",
    "list_view",
    "pause_sequence",
    "replace_steps",
    "resume_sequence",
    "update_sequence",
]
