"""Console: sequences (list with enrollment counts, create), one sequence's page (stats, the
steps editor, pause / resume, enrollment by lead ids or by a lead filter).

Everything goes through :mod:`cerniq.sequences.service`, as the JSON API does; edits need the
operator role there, so they do here.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.console import i18n, web
from cerniq.console.content_forms import int_field, page_of, validation_message, validation_text
from cerniq.errors import CerniqError, ValidationFailed
from cerniq.kit.db import transaction
from cerniq.kit.pagination import PageParams
from cerniq.leads import service as leads_service
from cerniq.leads.repository import LeadFilters
from cerniq.models.enums import Role
from cerniq.sequences import service as sequences_service
from cerniq.sequences.schemas import SequenceCreate, StepIn
from cerniq.templates import service as templates_service

router = APIRouter(prefix="/console", include_in_schema=False)

STEP_CHANNELS = ("WHATSAPP", "EMAIL_COLD", "EMAIL_WARM")
SEQUENCE_CHANNELS = ("WHATSAPP", "EMAIL_COLD", "EMAIL_WARM")
MAX_ENROLL = 1000  # the JSON API's limit per call
LEAD_STATES = ("COLD", "CONTACTED_WA", "CONTACTED_EMAIL", "PAUSED")
_STEP_KEY = re.compile(r"^s(\d{1,2})_template$")

i18n.add_strings(
    {
        "seq_new": {"ro": "Secvență nouă", "en": "New sequence"},
        "seq_primary_channel": {"ro": "Canal principal", "en": "Primary channel"},
        "seq_first_template": {"ro": "Șablonul primului pas", "en": "First step's template"},
        "seq_create": {"ro": "Creează secvența", "en": "Create the sequence"},
        "seq_none": {"ro": "Nicio secvență.", "en": "No sequences."},
        "seq_steps": {"ro": "Pași", "en": "Steps"},
        "seq_enrolled": {"ro": "Înscriși", "en": "Enrolled"},
        "seq_active": {"ro": "Activi", "en": "Active"},
        "seq_completed": {"ro": "Finalizați", "en": "Completed"},
        "seq_stopped": {"ro": "Opriți", "en": "Stopped"},
        "seq_conversions": {"ro": "Conversii", "en": "Conversions"},
        "seq_messages_sent": {"ro": "Mesaje trimise", "en": "Messages sent"},
        "seq_default": {"ro": "implicită", "en": "default"},
        "seq_step_no": {"ro": "Pasul", "en": "Step"},
        "seq_order": {"ro": "Ordine", "en": "Order"},
        "seq_delay_hours": {"ro": "Întârziere (ore)", "en": "Delay (hours)"},
        "seq_delay_minutes": {"ro": "Minute", "en": "Minutes"},
        "seq_skip_replied": {"ro": "Sari dacă a răspuns", "en": "Skip if replied"},
        "seq_skip_opened": {"ro": "Sari dacă a deschis", "en": "Skip if opened"},
        "seq_subject_override": {"ro": "Subiect (opțional)", "en": "Subject (optional)"},
        "seq_content_override": {"ro": "Text propriu (opțional)", "en": "Own text (optional)"},
        "seq_remove": {"ro": "Elimină pasul", "en": "Remove the step"},
        "seq_add_step": {
            "ro": "Pas nou (completați șablonul ca să-l adăugați)",
            "en": "Add a step (pick a template to add it)",
        },
        "seq_save_steps": {"ro": "Salvează pașii", "en": "Save the steps"},
        "seq_steps_hint": {
            "ro": "Întârzierea pasului 1 curge de la înscriere,"
            " a celorlalți de la trimiterea pasului anterior.",
            "en": "Step 1's delay counts from enrollment, the others' from the previous step's send.",
        },
        "seq_enroll": {"ro": "Înscrie lead-uri", "en": "Enroll leads"},
        "seq_lead_ids": {
            "ro": "ID-uri de lead (unul pe rând sau separate prin virgulă)",
            "en": "Lead ids (one a line or comma separated)",
        },
        "seq_or_filter": {"ro": "sau după filtru", "en": "or by filter"},
        "seq_filter_search": {"ro": "Căutare (companie, CUI...)", "en": "Search (company, CUI...)"},
        "seq_filter_limit": {"ro": "Cel mult", "en": "At most"},
        "seq_enroll_result": {"ro": "Înscriși: {n}; săriți: {s}.", "en": "Enrolled: {n}; skipped: {s}."},
        "seq_back": {"ro": "Înapoi la secvențe", "en": "Back to sequences"},
        "seq_no_templates": {
            "ro": "Creați mai întâi un șablon activ.",
            "en": "Create an active template first.",
        },
    }
)


# ---------------------------------------------------------------------------------------------
# Pages


async def _active_templates(tenant_id: Any) -> list[dict[str, Any]]:
    async with transaction() as session:
        listing = await templates_service.list_view(
            session, tenant_id, PageParams(page=1, limit=100), is_active=True
        )
    return list(listing["data"])


@router.get("/sequences")
async def sequences_page(request: Request) -> Response:
    found = await web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    page = page_of(request.query_params.get("page"))
    async with transaction() as session:
        listing = await sequences_service.list_view(
            session, principal.tenant_id, PageParams(page=page, limit=25)
        )
    return await web.render(
        request,
        "sequences.html",
        principal,
        csrf,
        sequences=listing["data"],
        meta=listing["meta"],
        stats_as_of=listing["meta"]["statsAsOf"],
        templates=await _active_templates(principal.tenant_id) if principal.has(Role.OPERATOR) else [],
        channels=SEQUENCE_CHANNELS,
    )


@router.get("/sequences/{sequence_id}")
async def sequence_page(sequence_id: str, request: Request) -> Response:
    found = await web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    try:
        async with transaction() as session:
            sequence = await sequences_service.detail_view(session, principal.tenant_id, sequence_id)
    except CerniqError as exc:
        return web.redirect("/console/sequences", error=web.error_text(exc))
    q = request.query_params
    enroll_result = None
    if q.get("enrolled") is not None:
        enroll_result = {"n": q.get("enrolled", "0"), "s": q.get("skipped", "0")}
    return await web.render(
        request,
        "sequence.html",
        principal,
        csrf,
        sequence=sequence,
        templates=await _active_templates(principal.tenant_id) if principal.has(Role.OPERATOR) else [],
        step_channels=STEP_CHANNELS,
        lead_states=LEAD_STATES,
        warnings=[w for w in (q.get("warn") or "").split("|") if w],
        enroll_result=enroll_result,
    )


# ---------------------------------------------------------------------------------------------
# Actions


def _steps_from_form(form: dict[str, str]) -> list[StepIn]:
    """The step rows of the editor, ordered by their order field (then their row): a row with
    no template (the blank "add step" row) or ticked "remove" is left out."""
    rows: list[tuple[int, int, StepIn]] = []
    for key in form:
        match = _STEP_KEY.match(key)
        if match is None:
            continue
        i = int(match.group(1))
        prefix = f"s{i}_"
        template_id = form.get(prefix + "template", "").strip()
        if not template_id or form.get(prefix + "remove"):
            continue
        try:
            order = int_field(form, prefix + "order", default=i + 1)
            delay_hours = int_field(form, prefix + "delayHours")
            delay_minutes = int_field(form, prefix + "delayMinutes", default=0)
        except ValueError as exc:
            raise ValidationFailed(f"row {i + 1}: {exc}") from None
        try:
            step = StepIn.model_validate(
                {
                    "templateId": template_id,
                    "channel": form.get(prefix + "channel", "WHATSAPP"),
                    "delayHours": delay_hours,
                    "delayMinutes": delay_minutes,
                    "skipIfReplied": bool(form.get(prefix + "skipIfReplied")),
                    "skipIfOpened": bool(form.get(prefix + "skipIfOpened")),
                    "subjectOverride": form.get(prefix + "subjectOverride", "").strip() or None,
                    "contentOverride": form.get(prefix + "contentOverride", "").strip() or None,
                }
            )
        except ValidationError as exc:
            raise ValidationFailed(validation_message(exc, f"row {i + 1}: ")) from None
        rows.append((order or 0, i, step))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [step for _, _, step in rows]


def _warn_param(warnings: list[dict[str, Any]]) -> str:
    return "|".join(f"step {w.get('step')}: {w.get('code')}: {w.get('message')}" for w in warnings)[:1500]


def _saved(path: str, warnings: list[dict[str, Any]]) -> Response:
    """The answer to a saved sequence: back to ``path`` with the steps' lint warnings."""
    return web.redirect(path, flash="done", warn=_warn_param(warnings))


@router.post("/sequences")
async def sequence_create(request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    back = "/console/sequences"
    try:
        body = SequenceCreate.model_validate(
            {
                "name": form.get("name", ""),
                "primaryChannel": form.get("primaryChannel", "WHATSAPP"),
                "steps": [
                    {
                        "templateId": form.get("templateId", ""),
                        "channel": form.get("primaryChannel", "WHATSAPP"),
                        "delayHours": 0,
                    }
                ],
            }
        )
    except ValidationError as exc:
        return web.redirect(back, error=validation_text(exc))

    async def work(session: AsyncSession) -> tuple[str, list[dict[str, Any]]]:
        sequence, warnings = await sequences_service.create_sequence(
            session, principal, name=body.name, steps=body.steps, primary_channel=body.primaryChannel
        )
        return f"/console/sequences/{sequence.id}", warnings

    return await web.act(back, work, then=lambda made: _saved(*made))


@router.post("/sequences/{sequence_id}/steps")
async def sequence_steps(sequence_id: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    back = f"/console/sequences/{sequence_id}"

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        steps = _steps_from_form(form)
        if not steps:
            raise ValidationFailed("a sequence needs at least one step")
        _, warnings = await sequences_service.replace_steps(session, principal, sequence_id, steps)
        return warnings

    return await web.act(back, work, then=lambda warnings: _saved(back, warnings))


@router.post("/sequences/{sequence_id}/pause")
async def sequence_pause(sequence_id: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    reason = form.get("reason", "").strip() or None
    return await web.act(
        web.safe_next(form.get("next"), f"/console/sequences/{sequence_id}"),
        lambda session: sequences_service.pause_sequence(session, principal, sequence_id, reason=reason),
    )


@router.post("/sequences/{sequence_id}/resume")
async def sequence_resume(sequence_id: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    reason = form.get("reason", "").strip() or None
    return await web.act(
        web.safe_next(form.get("next"), f"/console/sequences/{sequence_id}"),
        lambda session: sequences_service.resume_sequence(session, principal, sequence_id, reason=reason),
    )


async def _ids_by_filter(tenant_id: Any, state: str, search: str, limit: int) -> list[str]:
    """Up to ``limit`` lead ids matching the leads list's filter (paged, as the list is)."""
    filters = LeadFilters(states=leads_service.parse_states(state or None), search=search or None)
    ids: list[str] = []
    page = 1
    async with transaction() as session:
        while len(ids) < limit:
            listing = await leads_service.list_leads(
                session, tenant_id, filters, PageParams(page=page, limit=100)
            )
            ids.extend(str(item["id"]) for item in listing["data"])
            if page >= int(listing["meta"]["pages"] or 0):
                break
            page += 1
    return ids[:limit]


@router.post("/sequences/{sequence_id}/enroll")
async def sequence_enroll(sequence_id: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    back = f"/console/sequences/{sequence_id}"
    ids = [part for part in re.split(r"[\s,;]+", form.get("leadIds", "")) if part]
    state = form.get("state", "").strip()
    search = form.get("search", "").strip()
    try:
        if len(ids) > MAX_ENROLL:
            raise ValidationFailed(f"at most {MAX_ENROLL} lead ids at a time")
        if any(len(i) > 100 for i in ids):
            raise ValidationFailed("a lead id is too long")
        if not ids and (state or search):
            limit = int_field(form, "limit", default=100) or 100
            ids = await _ids_by_filter(principal.tenant_id, state, search, max(1, min(limit, MAX_ENROLL)))
            if not ids:
                raise ValidationFailed("no lead matches the filter")
        if not ids:
            raise ValidationFailed("give lead ids or a filter (state or search)")
        async with transaction() as session:
            result = await sequences_service.enroll_leads(session, principal, sequence_id, ids)
    except ValueError as exc:
        return web.redirect(back, error=f"VALIDATION_ERROR: {exc}")
    except CerniqError as exc:
        return web.redirect(back, error=web.error_text(exc))
    skipped = len(result.get("skipped", [])) + len(result.get("errors", []))
    return web.redirect(back, flash="done", enrolled=str(result["enrolled"]), skipped=str(skipped))
