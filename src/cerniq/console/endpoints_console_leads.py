"""Console: the leads list (filters, bulk actions, CSV import and export) and the lead detail
page (conversation, takeover, send, reassign phone, state change, enrollment, history).

Every action calls the service the JSON API uses (``cerniq.leads.service``,
``cerniq.leads.takeover``, ``cerniq.sequences.service``), so business rules and audit rows are
the same whichever door an operator comes through.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from cerniq.auth.principal import Principal
from cerniq.console import i18n, web
from cerniq.console import imports as console_imports
from cerniq.console.content_forms import page_of
from cerniq.errors import CerniqError, NotFound, ValidationFailed
from cerniq.kit.db import transaction
from cerniq.kit.pagination import PageParams
from cerniq.leads import service as leads_service
from cerniq.leads import takeover
from cerniq.leads.endpoints import MAX_UPLOAD_BYTES
from cerniq.leads.importer import CsvReader, decode_csv_bytes
from cerniq.leads.repository import LeadFilters
from cerniq.leads.schemas import LeadPatch
from cerniq.models.enums import Channel, LeadState, PhoneStatus, Role
from cerniq.phones import repository as phones_repository
from cerniq.sequences import repository as sequences_repository
from cerniq.sequences import service as sequences_service

router = APIRouter(prefix="/console", include_in_schema=False)

SORTS: Final = ("nextActionAt", "lastContactAt", "createdAt", "sentimentScore", "companyName")
FILTER_KEYS: Final = ("state", "channel", "hasReply", "needsReview", "phone", "search")
PAGE_SIZE: Final = 25
MAX_BULK: Final = 200  # leads one bulk action may name (a page holds 25)
MAX_REFUSED_SHOWN: Final = 50
EXPORT_BATCH: Final = 1000
MAX_ERRORS_SHOWN: Final = 1000

i18n.add_strings(
    {
        "leads_channel_any": {"ro": "Orice canal", "en": "Any channel"},
        "leads_has_reply": {"ro": "A răspuns", "en": "Has replied"},
        "leads_needs_review": {"ro": "Are revizuire deschisă", "en": "Has an open review"},
        "leads_any": {"ro": "Oricare", "en": "Any"},
        "leads_yes": {"ro": "Da", "en": "Yes"},
        "leads_no": {"ro": "Nu", "en": "No"},
        "leads_search_hint": {
            "ro": "Companie, CUI, telefon sau e-mail",
            "en": "Company, CUI, phone or email",
        },
        "leads_select": {"ro": "Selectează", "en": "Select"},
        "leads_select_all": {"ro": "Selectează toate de pe pagină", "en": "Select all on the page"},
        "leads_bulk": {"ro": "Acțiuni pe lead-urile bifate", "en": "Actions on the checked leads"},
        "leads_bulk_action": {"ro": "Acțiune", "en": "Action"},
        "leads_bulk_enroll": {"ro": "Înscrie în secvență", "en": "Enroll in a sequence"},
        "leads_bulk_pause": {"ro": "Pune pe pauză", "en": "Pause"},
        "leads_bulk_dead": {"ro": "Marchează ca pierdut (DEAD)", "en": "Mark dead"},
        "leads_apply": {"ro": "Aplică", "en": "Apply"},
        "leads_sequence": {"ro": "Secvență", "en": "Sequence"},
        "leads_no_sequence": {"ro": "Nicio secvență definită.", "en": "No sequences defined."},
        "leads_changed": {"ro": "Lead-uri modificate", "en": "Leads changed"},
        "leads_refused": {"ro": "Refuzate", "en": "Refused"},
        "leads_more_refused": {"ro": "și altele", "en": "and more"},
        "leads_export": {"ro": "Exportă CSV (filtrele curente)", "en": "Export CSV (current filters)"},
        "leads_import": {"ro": "Importă CSV", "en": "Import CSV"},
        "leads_import_file": {"ro": "Fișier CSV (UTF-8, max. 50 MB)", "en": "CSV file (UTF-8, max 50 MB)"},
        "leads_import_dry_run": {
            "ro": "Doar verifică (nu scrie nimic)",
            "en": "Only check (write nothing)",
        },
        "leads_import_help": {
            "ro": "Coloane obligatorii: denumire, cui. Opționale: email, telefon, whatsapp, judet, ...",
            "en": "Required columns: denumire, cui. Optional: email, telefon, whatsapp, judet, ...",
        },
        "leads_import_result": {"ro": "Rezultatul importului", "en": "Import result"},
        "leads_import_running": {"ro": "Import în curs", "en": "Import running"},
        "leads_import_refresh": {"ro": "Actualizează", "en": "Refresh"},
        "leads_import_dry_result": {
            "ro": "Rezultatul verificării (nimic nu a fost scris)",
            "en": "Check result (nothing was written)",
        },
        "leads_rows": {"ro": "Rânduri procesate", "en": "Rows processed"},
        "leads_created": {"ro": "Companii noi", "en": "New companies"},
        "leads_merged": {"ro": "Companii existente completate", "en": "Existing companies merged"},
        "leads_skipped": {"ro": "Rânduri sărite", "en": "Rows skipped"},
        "leads_journeys_created": {"ro": "Lead-uri noi", "en": "New leads"},
        "leads_errors": {"ro": "Erori pe rânduri", "en": "Row errors"},
        "leads_line": {"ro": "Linia", "en": "Line"},
        "leads_field": {"ro": "Câmp", "en": "Field"},
        "leads_value": {"ro": "Valoare", "en": "Value"},
        "leads_import_again": {"ro": "Importă alt fișier", "en": "Import another file"},
        "leads_back": {"ro": "Înapoi la lead-uri", "en": "Back to leads"},
        "leads_reassign_phone": {"ro": "Mută pe alt telefon", "en": "Move to another phone"},
        "leads_best_phone": {"ro": "Cel mai potrivit telefon activ", "en": "Best active phone"},
        "leads_change_state": {"ro": "Schimbă stadiul", "en": "Change state"},
        "leads_new_state": {"ro": "Stadiu nou", "en": "New state"},
        "leads_state_reason": {"ro": "Justificarea schimbării", "en": "Reason for the change"},
        "leads_history": {"ro": "Istoricul stadiilor", "en": "State history"},
        "leads_from_to": {"ro": "Din → în", "en": "From → to"},
        "leads_trigger": {"ro": "Declanșator", "en": "Trigger"},
        "leads_actor": {"ro": "Cine", "en": "Who"},
        "leads_no_history": {"ro": "Niciun istoric.", "en": "No history."},
        "leads_current_sequence": {"ro": "Secvența curentă", "en": "Current sequence"},
    }
)

STATES: Final = tuple(s.value for s in LeadState)
CHANNELS: Final = tuple(c.value for c in Channel)
BULK_STATES: Final = {"pause": LeadState.PAUSED, "dead": LeadState.DEAD}


# ---------------------------------------------------------------------------------------------
# Filters


def _flag(raw: str | None, name: str) -> bool | None:
    value = (raw or "").strip().lower()
    if value == "":
        return None
    if value in ("1", "yes", "true", "da"):
        return True
    if value in ("0", "no", "false", "nu"):
        return False
    raise ValidationFailed(f"{name} is 1 (yes) or 0 (no), not {raw!r}", details={"field": name})


def parse_filters(query: Mapping[str, str]) -> tuple[LeadFilters, dict[str, str]]:
    """The list filters of the console's query string, and the same values as strings (to
    put back into links and forms). Bad values raise ValidationFailed naming the field."""
    params = {key: (query.get(key) or "").strip() for key in FILTER_KEYS}
    if len(params["search"]) > 200:
        raise ValidationFailed("the search is longer than 200 characters", details={"field": "search"})
    channel: Channel | None = None
    if params["channel"]:
        try:
            channel = Channel(params["channel"].upper())
        except ValueError:
            raise ValidationFailed(
                f"unknown channel {params['channel']!r}", details={"field": "channel", "allowed": CHANNELS}
            ) from None
    filters = LeadFilters(
        states=leads_service.parse_states(params["state"] or None),
        channel=channel,
        assigned_phone=params["phone"] or None,
        has_reply=_flag(params["hasReply"], "hasReply"),
        has_open_review=_flag(params["needsReview"], "needsReview"),
        search=params["search"] or None,
    )
    return filters, params


def _query(params: Mapping[str, str], **extra: Any) -> str:
    return urlencode({k: v for k, v in {**params, **extra}.items() if v not in (None, "")})


async def _choices(principal: Principal) -> tuple[list[Any], list[Any]]:
    """The tenant's phones and (non-archived) sequences for the filter and action pickers."""
    async with transaction() as session:
        phones = await phones_repository.list_phones(session, principal.tenant_id)
        sequences, _ = await sequences_repository.list_sequences(session, principal.tenant_id, limit=100)
    return phones, sequences


# ---------------------------------------------------------------------------------------------
# The list


@router.get("/leads")
async def leads_page(request: Request) -> Response:
    found = await web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    q = request.query_params
    page = page_of(q.get("page"))
    sort_by = q.get("sortBy") or ""
    if sort_by not in SORTS:
        sort_by = "nextActionAt"
    order = "desc" if q.get("sortOrder") == "desc" else "asc"
    try:
        filters, params = parse_filters(q)
        async with transaction() as session:
            listing = await leads_service.list_leads(
                session,
                principal.tenant_id,
                filters,
                PageParams(page=page, limit=PAGE_SIZE),
                sort_by=sort_by,  # type: ignore[arg-type]
                order=order,  # type: ignore[arg-type]
            )
    except CerniqError as exc:
        if not any(q.get(k) for k in FILTER_KEYS):
            raise
        return web.redirect("/console/leads", error=web.error_text(exc))
    phones, sequences = await _choices(principal)
    sort = {"sortBy": sort_by, "sortOrder": order}
    here = f"/console/leads?{_query({**params, **sort}, page=str(page) if page > 1 else '')}"
    return await web.render(
        request,
        "leads.html",
        principal,
        csrf,
        leads=listing["data"],
        meta=listing["meta"],
        params={**params, **sort},
        query=lambda **kw: _query({**params, **sort}, **kw),
        export_query=_query(params),
        here=here,
        states=STATES,
        channels=CHANNELS,
        phones=phones,
        sequences=sequences,
        changed=q.get("changed"),
        refused=q.getlist("refused"),
        refused_more=q.get("refusedMore"),
    )


def _back(form: Mapping[str, str]) -> str:
    return web.safe_next(form.get("next"), "/console/leads")


def _redirect_with(path: str, pairs: list[tuple[str, str]]) -> RedirectResponse:
    if not pairs:
        return RedirectResponse(path, status_code=303)
    # Drop any earlier result from the page address before adding this one.
    base, _, old = path.partition("?")
    kept = [
        (k, v)
        for part in old.split("&")
        if part
        for k, _, v in [part.partition("=")]
        if k not in ("flash", "error", "changed", "refused", "refusedMore")
    ]
    query = "&".join(f"{k}={v}" for k, v in kept)
    new = urlencode(pairs)
    return RedirectResponse(f"{base}?{query + '&' if query else ''}{new}", status_code=303)


@router.post("/leads/bulk")
async def leads_bulk(request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    back = _back(form)
    action = form.get("action", "")
    raw_ids = [v for v in await web.form_list(request, "lead") if v]
    if not raw_ids:
        return _redirect_with(back, [("error", "VALIDATION_ERROR: tick at least one lead")])
    if len(raw_ids) > MAX_BULK:
        return _redirect_with(back, [("error", f"VALIDATION_ERROR: at most {MAX_BULK} leads at once")])
    refused: list[tuple[str, str]] = []
    changed = 0
    try:
        async with transaction() as session:
            if action == "enroll":
                sequence_id = form.get("sequenceId", "").strip()
                if not sequence_id:
                    raise ValidationFailed("pick a sequence to enroll the leads in")
                result = await sequences_service.enroll_leads(session, principal, sequence_id, raw_ids)
                changed = int(result["enrolled"])
                refused = [(p["leadId"], p["reason"]) for p in result["skipped"] + result["errors"]]
            elif action in BULK_STATES:
                reason = form.get("reason", "").strip()
                if not reason:
                    raise ValidationFailed("a reason is required to change the leads' state")
                target = BULK_STATES[action]
                for raw in raw_ids:
                    try:
                        async with session.begin_nested():
                            journey = await leads_service.get_journey(
                                session, principal.tenant_id, raw, for_update=True
                            )
                            if journey.current_state == target:
                                refused.append((raw, f"already {target.value}"))
                                continue
                            await leads_service.update_lead(
                                session, principal, journey.id, LeadPatch(currentState=target, reason=reason)
                            )
                            changed += 1
                    except CerniqError as exc:
                        refused.append((raw, web.error_text(exc)))
            else:
                raise ValidationFailed(f"unknown bulk action {action!r}")
            names = await leads_service.company_names(
                session, principal.tenant_id, [k for k in (_as_uuid(r) for r, _ in refused) if k]
            )
    except CerniqError as exc:
        return _redirect_with(back, [("error", web.error_text(exc))])
    pairs = [("flash", "done"), ("changed", str(changed))]
    for raw, why in refused[:MAX_REFUSED_SHOWN]:
        key = _as_uuid(raw)
        pairs.append(("refused", f"{names.get(key, raw) if key else raw}: {why}"))
    if len(refused) > MAX_REFUSED_SHOWN:
        pairs.append(("refusedMore", str(len(refused) - MAX_REFUSED_SHOWN)))
    return _redirect_with(back, pairs)


def _as_uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# CSV export and import

EXPORT_COLUMNS: Final[tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...]] = (
    ("id", lambda r: r["id"]),
    ("company", lambda r: r["company"]["denumire"]),
    ("cui", lambda r: r["company"]["cui"]),
    ("county", lambda r: r["company"]["judet"]),
    ("state", lambda r: r["currentState"]),
    ("lastChannel", lambda r: r["lastChannelUsed"]),
    ("phoneId", lambda r: r["assignedPhone"]["id"] if r["assignedPhone"] else None),
    ("mobile", lambda r: r["mobileE164"]),
    ("email", lambda r: r["email"]),
    ("replies", lambda r: r["replyCount"]),
    ("sentiment", lambda r: r["sentimentScore"]),
    ("requiresReview", lambda r: r["requiresHumanReview"]),
    ("humanControlled", lambda r: r["isHumanControlled"]),
    ("lastContactAt", lambda r: r["lastContactAt"]),
    ("nextActionAt", lambda r: r["nextActionAt"]),
    ("createdAt", lambda r: r["createdAt"]),
)


def _cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula gets a leading apostrophe (a phone
    number like +40722... stays as it is)."""
    if value is None:
        return ""
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not text.lstrip("+-").replace(" ", "").isdigit():
        return "'" + text
    return text


@router.get("/leads/export.csv")
async def leads_export(request: Request) -> Response:
    found = await web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, _ = found
    try:
        filters, _params = parse_filters(request.query_params)
    except CerniqError as exc:
        return web.redirect("/console/leads", error=web.error_text(exc))

    async def body() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([name for name, _ in EXPORT_COLUMNS])
        yield "\ufeff" + buffer.getvalue()  # a BOM: spreadsheets then read the diacritics right
        async with transaction() as session:
            async for batch in leads_service.iter_leads(
                session, principal.tenant_id, filters, batch=EXPORT_BATCH
            ):
                buffer.seek(0)
                buffer.truncate()
                for lead in batch:
                    writer.writerow([_cell(get(lead)) for _, get in EXPORT_COLUMNS])
                yield buffer.getvalue()

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="leads.csv"', "Cache-Control": "no-store"},
    )


@router.get("/leads/import")
async def leads_import_page(request: Request) -> Response:
    found = await web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    return await web.render(request, "lead_import.html", principal, csrf, report=None)


@router.post("/leads/import")
async def leads_import(request: Request) -> Response:
    """Check the upload (size, encoding, header) at once, then import it in the background and
    send the operator to a page that follows its progress."""
    back = "/console/leads/import"
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_UPLOAD_BYTES + 64 * 1024:
        return web.redirect(back, error="PAYLOAD_TOO_LARGE: the file is larger than 50 MB; split it")
    principal, form = await web.guard(request, Role.OPERATOR)
    upload = (await request.form()).get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return web.redirect(back, error="VALIDATION_ERROR: choose a CSV file to import")
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return web.redirect(back, error="PAYLOAD_TOO_LARGE: the file is larger than 50 MB; split it")
    try:
        text = decode_csv_bytes(data)
        del data
        reader = CsvReader(io.StringIO(text, newline=""))
    except CerniqError as exc:
        return web.redirect(back, error=web.error_text(exc))
    import_id = await console_imports.start(
        principal,
        reader,
        source=upload.filename,
        dry_run=form.get("dryRun") == "1",
        lines=max(text.count("\n") - 1, 1),
    )
    return web.redirect(f"/console/leads/import/{import_id}")


@router.get("/leads/import/{import_id}")
async def leads_import_status(import_id: str, request: Request) -> Response:
    """An import's progress (the page polls itself while it runs), then its report."""
    found = await web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    job = await console_imports.status(principal.tenant_id, import_id)
    if request.headers.get("hx-request") and (job is None or job["status"] != "running" or job["error"]):
        return Response(status_code=204, headers={"HX-Refresh": "true"})  # show the outcome in full
    if job is None:
        return web.redirect("/console/leads/import", error=f"NOT_FOUND: no import {import_id!r}")
    if job.get("error"):
        return web.redirect("/console/leads/import", error=str(job["error"]))
    result = job.get("report")
    return await web.render(
        request,
        "lead_import.html",
        principal,
        csrf,
        job=job,
        report=result,
        errors=result["errors"][:MAX_ERRORS_SHOWN] if result else [],
        warnings=result["warnings"][:MAX_ERRORS_SHOWN] if result else [],
    )


# ---------------------------------------------------------------------------------------------
# One lead


@router.get("/leads/{lead_id}")
async def lead_page(lead_id: str, request: Request) -> Response:
    found = await web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    try:
        async with transaction() as session:
            lead = await leads_service.lead_detail(session, principal.tenant_id, lead_id)
            active_phones = await phones_repository.list_phones(
                session, principal.tenant_id, status=PhoneStatus.ACTIVE, is_enabled=True
            )
            sequences, _ = await sequences_repository.list_sequences(session, principal.tenant_id, limit=100)
    except NotFound as exc:
        return web.redirect("/console/leads", error=web.error_text(exc))
    conversation = sorted(lead["communications"], key=lambda m: m["createdAt"] or "")
    return await web.render(
        request,
        "lead.html",
        principal,
        csrf,
        lead=lead,
        conversation=conversation,
        active_phones=[p for p in active_phones if p.id != (lead["assignedPhoneId"] or "")],
        sequences=sequences,
    )


@router.post("/leads/{lead_id}/takeover")
async def lead_takeover(lead_id: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)

    async def work(session: AsyncSession) -> None:
        journey = await leads_service.get_journey(session, principal.tenant_id, lead_id, for_update=True)
        reason = form.get("reason", "").strip() or "console takeover"
        await takeover.take_over(
            session, principal, journey, reason=reason, user_agent=request.headers.get("user-agent")
        )

    return await web.act(f"/console/leads/{lead_id}", work)


@router.post("/leads/{lead_id}/release")
async def lead_release(lead_id: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)

    async def work(session: AsyncSession) -> None:
        journey = await leads_service.get_journey(session, principal.tenant_id, lead_id, for_update=True)
        await takeover.release(
            session, principal, journey, return_to_automation=form.get("returnToAutomation") == "1"
        )

    return await web.act(f"/console/leads/{lead_id}", work)


@router.post("/leads/{lead_id}/send")
async def lead_send(lead_id: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    back = f"/console/leads/{lead_id}"
    content = form.get("content", "").strip()
    channel = form.get("channel", "WHATSAPP")
    if not content:
        return web.redirect(back, error="VALIDATION_ERROR: the message is empty")
    if channel not in (Channel.WHATSAPP.value, Channel.EMAIL_WARM.value):
        return web.redirect(back, error="VALIDATION_ERROR: channel is WHATSAPP or EMAIL_WARM")

    async def work(session: AsyncSession) -> None:
        journey = await leads_service.get_journey(session, principal.tenant_id, lead_id, for_update=True)
        await takeover.send_message(session, principal, journey, channel=Channel(channel), content=content)

    return await web.act(back, work)


@router.post("/leads/{lead_id}/reassign-phone")
async def lead_reassign_phone(lead_id: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)

    async def work(session: AsyncSession) -> None:
        journey = await leads_service.get_journey(session, principal.tenant_id, lead_id, for_update=True)
        await takeover.reassign_phone(
            session, principal, journey, phone_id=form.get("phoneId", "").strip() or None
        )

    return await web.act(f"/console/leads/{lead_id}", work)


@router.post("/leads/{lead_id}/state")
async def lead_change_state(lead_id: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    back = f"/console/leads/{lead_id}"
    raw = form.get("toState", "").strip().upper()
    reason = form.get("reason", "").strip()
    if raw not in STATES:
        return web.redirect(back, error=f"VALIDATION_ERROR: unknown state {raw!r}")
    if not reason:
        return web.redirect(back, error="VALIDATION_ERROR: a reason is required to change a lead's state")
    if len(reason) > 500:
        return web.redirect(back, error="VALIDATION_ERROR: the reason is longer than 500 characters")
    patch = LeadPatch(currentState=LeadState(raw), reason=reason)
    return await web.act(back, lambda session: leads_service.update_lead(session, principal, lead_id, patch))


@router.post("/leads/{lead_id}/enroll")
async def lead_enroll(lead_id: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    back = f"/console/leads/{lead_id}"
    sequence_id = form.get("sequenceId", "").strip()
    if not sequence_id:
        return web.redirect(back, error="VALIDATION_ERROR: pick a sequence")
    return await web.act(
        back, lambda session: sequences_service.enroll_lead(session, principal, lead_id, sequence_id)
    )
