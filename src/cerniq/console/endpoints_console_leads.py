"""Console: the leads list and the lead detail page (conversation, takeover, send)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cerniq.console import web
from cerniq.errors import CerniqError, NotFound
from cerniq.kit.db import transaction
from cerniq.kit.pagination import PageParams
from cerniq.leads import service as leads_service
from cerniq.leads import takeover
from cerniq.leads.repository import LeadFilters
from cerniq.models.enums import Channel, Role

router = APIRouter(prefix="/console", include_in_schema=False)

SORTS = ("nextActionAt", "lastContactAt", "createdAt", "sentimentScore")


@router.get("/leads")
async def leads_page(request: Request) -> Response:
    found = web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    q = request.query_params
    try:
        page = max(1, int(q.get("page", "1")))
    except ValueError:
        page = 1
    state = q.get("state") or None
    search = q.get("search") or None
    sort_by = q.get("sortBy") if q.get("sortBy") in SORTS else "nextActionAt"
    order = "desc" if q.get("sortOrder") == "desc" else "asc"
    try:
        async with transaction() as session:
            listing = await leads_service.list_leads(
                session,
                principal.tenant_id,
                LeadFilters(states=leads_service.parse_states(state), search=search),
                PageParams(page=page, limit=25),
                sort_by=sort_by,  # type: ignore[arg-type]
                order=order,  # type: ignore[arg-type]
            )
    except CerniqError as exc:
        return web.redirect("/console/leads", error=web.error_text(exc))
    params = {"state": state or "", "search": search or "", "sortBy": sort_by, "sortOrder": order}
    return await web.render(
        request,
        "leads.html",
        principal,
        csrf,
        leads=listing["data"],
        meta=listing["meta"],
        params=params,
        query=lambda **kw: urlencode({k: v for k, v in {**params, **kw}.items() if v}),
        states=[
            "COLD",
            "CONTACTED_WA",
            "CONTACTED_EMAIL",
            "WARM_REPLY",
            "NEGOTIATION",
            "CONVERTED",
            "DEAD",
            "PAUSED",
        ],
    )


@router.get("/leads/{lead_id}")
async def lead_page(lead_id: str, request: Request) -> Response:
    found = web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    try:
        async with transaction() as session:
            lead = await leads_service.lead_detail(session, principal.tenant_id, lead_id)
    except NotFound as exc:
        return web.redirect("/console/leads", error=web.error_text(exc))
    conversation = sorted(lead["communications"], key=lambda m: m["createdAt"] or "")
    return await web.render(request, "lead.html", principal, csrf, lead=lead, conversation=conversation)


@router.post("/leads/{lead_id}/takeover")
async def lead_takeover(lead_id: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    back = f"/console/leads/{lead_id}"
    try:
        async with transaction() as session:
            journey = await leads_service.get_journey(session, principal.tenant_id, lead_id, for_update=True)
            reason = form.get("reason", "").strip() or "console takeover"
            await takeover.take_over(
                session, principal, journey, reason=reason, user_agent=request.headers.get("user-agent")
            )
    except CerniqError as exc:
        return web.redirect(back, error=web.error_text(exc))
    return web.redirect(back, flash="done")


@router.post("/leads/{lead_id}/release")
async def lead_release(lead_id: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    back = f"/console/leads/{lead_id}"
    try:
        async with transaction() as session:
            journey = await leads_service.get_journey(session, principal.tenant_id, lead_id, for_update=True)
            await takeover.release(
                session, principal, journey, return_to_automation=form.get("returnToAutomation") == "1"
            )
    except CerniqError as exc:
        return web.redirect(back, error=web.error_text(exc))
    return web.redirect(back, flash="done")


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
    try:
        async with transaction() as session:
            journey = await leads_service.get_journey(session, principal.tenant_id, lead_id, for_update=True)
            await takeover.send_message(
                session, principal, journey, channel=Channel(channel), content=content
            )
    except CerniqError as exc:
        return web.redirect(back, error=web.error_text(exc))
    return web.redirect(back, flash="done")
