"""Console: message templates (list, create), the editor (save a new version, A/B variants)
and its live spintax preview.

The preview is ``POST /console/templates/preview``: with htmx (``HX-Request``) it answers the
preview fragment, which the editor asks for while typing; without JavaScript the Preview
button posts the same form and gets the whole page back with the preview filled in. It lints
with :func:`cerniq.templates.service.lint_view` (what saving would say) and renders with
:func:`cerniq.templates.render` for a few seeds and the sample values given.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import Principal
from cerniq.console import i18n, web
from cerniq.console.content_forms import int_field, page_of, validation_text
from cerniq.errors import CerniqError
from cerniq.kit.db import transaction
from cerniq.kit.pagination import PageParams
from cerniq.models.enums import Role
from cerniq.templates import STANDARD_VARIABLES, render
from cerniq.templates import service as templates_service
from cerniq.templates.schemas import TemplateCreate, TemplatePatch, VariantCreate

router = APIRouter(prefix="/console", include_in_schema=False)

CHANNELS = ("WHATSAPP", "EMAIL_COLD", "EMAIL_WARM")
SEEDS = ("1", "2", "3", "4", "5")
MAX_CONTENT = 4096
SAMPLE_VALUES = (
    "companyName=Agro Ferma Exemplu SRL\n"
    "contactName=Ion Popescu\n"
    "firstName=Ion\n"
    "judet=Timiș\n"
    "localitate=Lugoj\n"
    "sector=agricol"
)

i18n.add_strings(
    {
        "tpl_new": {"ro": "Șablon nou", "en": "New template"},
        "tpl_subject": {"ro": "Subiect (e-mail)", "en": "Subject (email)"},
        "tpl_content": {
            "ro": "Text (spintax: {a|b}, variabile: {{nume}})",
            "en": "Text (spintax: {a|b}, variables: {{name}})",
        },
        "tpl_create": {"ro": "Creează șablonul", "en": "Create the template"},
        "tpl_none": {"ro": "Niciun șablon.", "en": "No templates."},
        "tpl_version": {"ro": "Versiune", "en": "Version"},
        "tpl_active": {"ro": "Activ", "en": "Active"},
        "tpl_approved": {"ro": "Aprobat", "en": "Approved"},
        "tpl_used": {"ro": "Folosit", "en": "Used"},
        "tpl_variants": {"ro": "Variante A/B", "en": "A/B variants"},
        "tpl_change_notes": {"ro": "Note despre modificare", "en": "Change notes"},
        "tpl_save_version": {"ro": "Salvează o versiune nouă", "en": "Save a new version"},
        "tpl_preview": {"ro": "Previzualizare", "en": "Preview"},
        "tpl_samples": {
            "ro": "Valori de probă (nume=valoare, una pe rând)",
            "en": "Sample values (name=value, one a line)",
        },
        "tpl_variables": {"ro": "Variabile disponibile", "en": "Available variables"},
        "tpl_in_text": {"ro": "în text", "en": "in the text"},
        "tpl_variant_count": {"ro": "Combinații spintax", "en": "Spintax combinations"},
        "tpl_missing": {"ro": "Variabile fără valoare", "en": "Variables without a value"},
        "tpl_lint_ok": {"ro": "Textul este valid.", "en": "The text is valid."},
        "tpl_versions": {"ro": "Versiuni", "en": "Versions"},
        "tpl_label": {"ro": "Etichetă", "en": "Label"},
        "tpl_weight": {"ro": "Pondere (%)", "en": "Weight (%)"},
        "tpl_control": {"ro": "textul curent", "en": "current text"},
        "tpl_add_variant": {"ro": "Adaugă o variantă", "en": "Add a variant"},
        "tpl_retire": {"ro": "Retrage", "en": "Retire"},
        "tpl_used_by": {"ro": "Folosit de secvențele", "en": "Used by the sequences"},
        "tpl_back": {"ro": "Înapoi la șabloane", "en": "Back to templates"},
        "tpl_warnings": {"ro": "Avertismente la salvare", "en": "Warnings when saving"},
    }
)


# ---------------------------------------------------------------------------------------------
# The preview


def parse_samples(raw: str) -> dict[str, str]:
    """``name=value`` lines (blank lines and lines without ``=`` are ignored)."""
    values: dict[str, str] = {}
    for line in raw.splitlines()[:100]:
        name, sep, value = line.partition("=")
        if sep and name.strip():
            values[name.strip()] = value.strip()[:500]
    return values


def preview_of(content: str, *, channel: str, subject: str | None, samples: dict[str, str]) -> dict[str, Any]:
    """The lint report of the text and, when it parses, its renderings for a few seeds."""
    if channel not in CHANNELS:
        channel = "WHATSAPP"
    if len(content) > MAX_CONTENT:
        issue = {
            "code": "TOO_LONG",
            "message": f"at most {MAX_CONTENT} characters",
            "line": None,
            "column": None,
            "severity": "error",
            "field": "content",
        }
        return {"lint": {"valid": False, "issues": [issue], "variablesDetected": []}, "renders": []}
    report = templates_service.lint_view(content, channel=channel, subject=subject or None)
    renders: list[dict[str, Any]] = []
    if report["valid"]:
        seen: set[str] = set()
        for seed in SEEDS:
            body = render(content, samples, seed=seed)
            if body.text in seen:
                continue
            seen.add(body.text)
            title = render(subject, samples, seed=seed).text if subject else None
            renders.append(
                {"seed": seed, "text": body.text, "subject": title, "missing": body.missing_variables}
            )
            if len(renders) == 3:
                break
    return {"lint": report, "renders": renders}


def _draft_of(form: dict[str, str]) -> dict[str, Any]:
    return {
        "content": form.get("content", ""),
        "subject": form.get("subject", ""),
        "channel": form.get("channel", "WHATSAPP"),
        "samples": form.get("samples", SAMPLE_VALUES),
        "changeNotes": form.get("changeNotes", ""),
        "name": form.get("name", ""),
    }


@router.post("/templates/preview")
async def template_preview(request: Request) -> Response:
    principal, form = await web.guard(request, Role.VIEWER)
    found = await web.signed_in(request)
    csrf = found[1] if found else ""
    draft = _draft_of(form)
    preview = preview_of(
        draft["content"],
        channel=draft["channel"],
        subject=draft["subject"] or None,
        samples=parse_samples(draft["samples"]),
    )
    if request.headers.get("hx-request"):
        return await web.render(request, "_template_preview.html", principal, csrf, preview=preview)
    template_id = form.get("templateId", "")
    if template_id:
        return await _editor(request, principal, csrf, template_id, draft=draft, preview=preview)
    return await _listing(request, principal, csrf, draft=draft, preview=preview)


# ---------------------------------------------------------------------------------------------
# Pages


async def _listing(
    request: Request,
    principal: Principal,
    csrf: str,
    *,
    draft: dict[str, Any] | None = None,
    preview: dict[str, Any] | None = None,
) -> Response:
    q = request.query_params
    channel = q.get("channel") if q.get("channel") in CHANNELS else None
    search = (q.get("search") or "").strip()[:200] or None
    async with transaction() as session:
        listing = await templates_service.list_view(
            session,
            principal.tenant_id,
            PageParams(page=page_of(q.get("page")), limit=25),
            channel=channel,
            search=search,
        )
    draft = draft or _draft_of({})
    return await web.render(
        request,
        "templates_list.html",
        principal,
        csrf,
        templates=listing["data"],
        meta=listing["meta"],
        channels=CHANNELS,
        params={"channel": channel or "", "search": search or ""},
        draft=draft,
        preview=preview,
    )


async def _editor(
    request: Request,
    principal: Principal,
    csrf: str,
    template_id: str,
    *,
    draft: dict[str, Any] | None = None,
    preview: dict[str, Any] | None = None,
) -> Response:
    try:
        async with transaction() as session:
            template = await templates_service.detail_view(session, principal.tenant_id, template_id)
    except CerniqError as exc:
        return web.redirect("/console/templates", error=web.error_text(exc))
    draft = draft or {
        "content": template["content"],
        "subject": template["subject"] or "",
        "channel": template["channel"],
        "samples": SAMPLE_VALUES,
        "changeNotes": "",
    }
    draft["channel"] = template["channel"]
    if preview is None:
        preview = preview_of(
            draft["content"],
            channel=template["channel"],
            subject=draft["subject"] or None,
            samples=parse_samples(draft["samples"]),
        )
    return await web.render(
        request,
        "template_edit.html",
        principal,
        csrf,
        template=template,
        draft=draft,
        preview=preview,
        standard_variables=sorted(STANDARD_VARIABLES),
        warnings=[w for w in (request.query_params.get("warn") or "").split("|") if w],
    )


@router.get("/templates")
async def templates_page(request: Request) -> Response:
    found = await web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    try:
        return await _listing(request, principal, csrf)
    except CerniqError as exc:
        return web.redirect("/console/templates", error=web.error_text(exc))


@router.get("/templates/{template_id}")
async def template_page(template_id: str, request: Request) -> Response:
    found = await web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    return await _editor(request, principal, csrf, template_id)


# ---------------------------------------------------------------------------------------------
# Actions


def _warn_param(warnings: list[dict[str, Any]]) -> str:
    return "|".join(f"{w.get('code')}: {w.get('message')}" for w in warnings)[:1500]


def _saved(path: str, warnings: list[dict[str, Any]]) -> Response:
    """The answer to a saved template: back to ``path`` with its lint warnings."""
    return web.redirect(path, flash="done", warn=_warn_param(warnings))


@router.post("/templates")
async def template_create(request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    back = "/console/templates"
    try:
        body = TemplateCreate.model_validate(
            {
                "name": form.get("name", ""),
                "channel": form.get("channel", "WHATSAPP"),
                "subject": form.get("subject", "").strip() or None,
                "content": form.get("content", ""),
            }
        )
    except ValidationError as exc:
        return web.redirect(back, error=validation_text(exc))

    async def work(session: AsyncSession) -> tuple[str, list[dict[str, Any]]]:
        template, warnings = await templates_service.create_template(
            session,
            principal,
            name=body.name,
            channel=body.channel,
            content=body.content,
            subject=body.subject,
        )
        return f"/console/templates/{template.id}", warnings

    return await web.act(back, work, then=lambda made: _saved(*made))


@router.post("/templates/{template_id}")
async def template_save(template_id: str, request: Request) -> Response:
    """Save the editor's text: a new version (the service lints it and records the audit)."""
    principal, form = await web.guard(request, Role.OPERATOR)
    back = f"/console/templates/{template_id}"
    changes: dict[str, Any] = {"content": form.get("content", "")}
    if "subject" in form:
        changes["subject"] = form["subject"].strip() or None
    if form.get("changeNotes", "").strip():
        changes["changeNotes"] = form["changeNotes"].strip()
    try:
        body = TemplatePatch.model_validate(changes)
    except ValidationError as exc:
        return web.redirect(back, error=validation_text(exc))

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        _, warnings = await templates_service.update_template(
            session, principal, template_id, body.model_dump(exclude_unset=True)
        )
        return warnings

    return await web.act(back, work, then=lambda warnings: _saved(back, warnings))


@router.post("/templates/{template_id}/variants")
async def variant_add(template_id: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    back = f"/console/templates/{template_id}"
    try:
        weight = int_field(form, "weight")
        body = VariantCreate.model_validate(
            {
                "label": form.get("label", ""),
                "weight": weight,
                "content": form.get("content", ""),
                "subject": form.get("subject", "").strip() or None,
            }
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError too
        text = validation_text(exc) if isinstance(exc, ValidationError) else f"VALIDATION_ERROR: {exc}"
        return web.redirect(back, error=text)

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        _, warnings = await templates_service.add_variant(
            session,
            principal,
            template_id,
            content=body.content,
            label=body.label,
            weight=body.weight,
            subject=body.subject,
        )
        return warnings

    return await web.act(back, work, then=lambda warnings: _saved(back, warnings))


@router.post("/templates/{template_id}/variants/{version_id}/retire")
async def variant_retire(template_id: str, version_id: str, request: Request) -> Response:
    principal, _ = await web.guard(request, Role.OPERATOR)
    return await web.act(
        f"/console/templates/{template_id}",
        lambda session: templates_service.update_variant(
            session, principal, template_id, version_id, weight=0
        ),
    )
