"""``/api/v1/outreach/templates``: templates, versions, A/B variants, preview and lint."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from cerniq.auth.dependencies import Operator, Session, Viewer
from cerniq.kit.pagination import PageParams, page_params
from cerniq.templates import service
from cerniq.templates.schemas import (
    LintRequest,
    PreviewRequest,
    TemplateCreate,
    TemplatePatch,
    VariantCreate,
    VariantPatch,
)

router = APIRouter(prefix="/api/v1/outreach/templates", tags=["templates"])

Page = Annotated[PageParams, Depends(page_params)]


@router.get("")
async def list_templates(
    principal: Viewer,
    session: Session,
    page: Page,
    channel: str | None = Query(
        None, description="WHATSAPP, EMAIL_COLD, EMAIL_WARM or EMAIL (both email channels)"
    ),
    isActive: bool | None = Query(None),
    search: str | None = Query(None, max_length=200, description="name, code, description or text"),
) -> dict[str, Any]:
    """Templates of the tenant, newest first: `{"data": [...], "meta": {page, limit, total, pages}}`."""
    return await service.list_view(
        session, principal.tenant_id, page, channel=channel, is_active=isActive, search=search
    )


@router.post("", status_code=201)
async def create_template(body: TemplateCreate, principal: Operator, session: Session) -> dict[str, Any]:
    """Create a template (version 1). A text that does not parse is a 400 listing the lint
    issues with their positions; warnings come back in `lint`."""
    template, warnings = await service.create_template(
        session,
        principal,
        name=body.name,
        channel=body.channel,
        content=body.content,
        subject=body.subject,
        code=body.code,
        description=body.description,
        variables=body.variables,
        language=body.language,
        has_media=body.hasMedia,
        media_type=body.mediaType,
        media_url=body.mediaUrl,
        is_active=body.isActive,
        is_approved=body.isApproved,
        change_notes=body.changeNotes,
    )
    view = await service.detail_view(session, principal.tenant_id, template.id)
    view["lint"] = warnings
    return view


@router.post("/lint")
async def lint_template(body: LintRequest, principal: Viewer) -> dict[str, Any]:
    """Lint a text as saving would (for the console's live editor): `{valid, issues: [{code,
    message, position, line, column, severity}], variablesDetected, variantCount}`."""
    return service.lint_view(
        body.content, channel=body.channel, subject=body.subject, first_message=body.firstMessage
    )


@router.get("/{template_id}")
async def get_template(template_id: str, principal: Viewer, session: Session) -> dict[str, Any]:
    """One template with `versions`, `stats`, per-variant results (`variants`) and `usedBy`."""
    return await service.detail_view(session, principal.tenant_id, template_id)


@router.patch("/{template_id}")
async def patch_template(
    template_id: str, body: TemplatePatch, principal: Operator, session: Session
) -> dict[str, Any]:
    """Edit name, subject, content (a new version), variables, media, isActive, isApproved."""
    template, warnings = await service.update_template(
        session, principal, template_id, body.model_dump(exclude_unset=True)
    )
    view = await service.detail_view(session, principal.tenant_id, template.id)
    view["lint"] = warnings
    return view


@router.delete("/{template_id}", status_code=204)
async def delete_template(template_id: str, principal: Operator, session: Session) -> Response:
    """Deactivate the template; 409 `TEMPLATE_IN_USE` while a live sequence step sends it."""
    await service.delete_template(session, principal, template_id)
    return Response(status_code=204)


@router.post("/{template_id}/preview")
async def preview_template(
    template_id: str, body: PreviewRequest, principal: Viewer, session: Session
) -> dict[str, Any]:
    """Render for given values or a lead: `{preview, spintaxVariant, variablesUsed,
    missingVariables, lint, variantCount}`; deterministic with a `seed`."""
    return await service.preview(
        session,
        principal.tenant_id,
        template_id,
        personalization=body.personalization,
        lead_id=body.leadId,
        seed=None if body.seed is None else str(body.seed),
        spintax_variant=body.spintaxVariant,
        variant_id=body.variantId,
        first_message=body.firstMessage,
    )


@router.post("/{template_id}/variants", status_code=201)
async def add_variant(
    template_id: str, body: VariantCreate, principal: Operator, session: Session
) -> dict[str, Any]:
    """Add an A/B variant taking `weight` percent of the sends (the current text keeps the rest)."""
    version, warnings = await service.add_variant(
        session,
        principal,
        template_id,
        content=body.content,
        label=body.label,
        weight=body.weight,
        subject=body.subject,
        change_notes=body.changeNotes,
    )
    template = await service.get_template(session, principal.tenant_id, template_id)
    return service.version_view(version, template) | {"lint": warnings}


@router.patch("/{template_id}/variants/{version_id}")
async def patch_variant(
    template_id: str, version_id: str, body: VariantPatch, principal: Operator, session: Session
) -> dict[str, Any]:
    """Change a variant's label or weight (0 retires it)."""
    version = await service.update_variant(
        session, principal, template_id, version_id, label=body.label, weight=body.weight
    )
    template = await service.get_template(session, principal.tenant_id, template_id)
    return service.version_view(version, template)


@router.delete("/{template_id}/variants/{version_id}", status_code=204)
async def retire_variant(
    template_id: str, version_id: str, principal: Operator, session: Session
) -> Response:
    """Retire a variant (weight 0); its history and results stay."""
    await service.update_variant(session, principal, template_id, version_id, weight=0)
    return Response(status_code=204)
