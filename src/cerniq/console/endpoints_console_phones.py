"""Console: phone cards with their recent incidents, their actions, and the emergency stop."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.console import i18n, web
from cerniq.errors import CerniqError, Forbidden, NotFound
from cerniq.kit.db import transaction
from cerniq.models.enums import Role
from cerniq.ops import emergency
from cerniq.phones import actions as phone_actions
from cerniq.phones import service as phones_service

router = APIRouter(prefix="/console", include_in_schema=False)

INCIDENTS_PER_PHONE = 10

i18n.add_strings(
    {
        "phone_incidents": {"ro": "Incidente recente", "en": "Recent incidents"},
        "phone_no_incidents": {"ro": "Niciun incident.", "en": "No incidents."},
        "phone_incident_kind": {"ro": "Tip", "en": "Kind"},
        "phone_incident_actor": {"ro": "De către", "en": "By"},
        "phone_incident_resolved": {"ro": "Încheiat", "en": "Ended"},
    }
)


@router.get("/phones")
async def phones_page(request: Request) -> Response:
    found = await web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    async with transaction() as session:
        phones = await phones_service.list_view(session, principal.tenant_id, status=None, is_enabled=None)
        cards = []
        for p in phones["phones"]:
            history = await phone_actions.incidents(
                session, principal.tenant_id, p["id"], limit=INCIDENTS_PER_PHONE
            )
            cards.append({**p, "tile": web.tile_class(p), "incidents": history["incidents"]})
    return await web.render(request, "phones.html", principal, csrf, phones=cards)


@router.post("/phones/{phone_id}/{verb}")
async def phone_action(phone_id: str, verb: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    if verb == "reassign" and not principal.has(Role.ADMIN):
        raise Forbidden("reassigning a phone's leads needs the admin role")

    async def work(session: AsyncSession) -> None:
        if verb == "pause":
            await phone_actions.pause_phone(session, principal, phone_id, reason=form.get("reason") or None)
        elif verb == "resume":
            await phone_actions.resume_phone(session, principal, phone_id)
        elif verb == "recheck":
            await phone_actions.reconnect_phone(session, principal, phone_id)
        elif verb == "reassign":
            await phone_actions.reassign_leads(session, principal, phone_id)
        else:
            raise NotFound(f"no phone action {verb!r}")

    return await web.act("/console/phones", work)


@router.post("/emergency/stop")
async def emergency_stop(request: Request) -> Response:
    principal, form = await web.guard(request, Role.ADMIN)
    back = web.safe_next(form.get("next"))
    if form.get("confirm") != "yes":
        return web.redirect(back, error="VALIDATION_ERROR: tick the confirmation to stop all outreach")
    return await web.act(back, lambda session: emergency.stop(session, principal, form.get("reason", "")))


@router.post("/emergency/resume")
async def emergency_resume(request: Request, background: BackgroundTasks) -> Response:
    principal, form = await web.guard(request, Role.ADMIN)
    back = web.safe_next(form.get("next"))
    async with transaction() as session:
        active = (await emergency.state(session))["active"]
    if not active:
        return web.redirect(back, error="CONFLICT: no emergency stop is active")

    async def run() -> None:
        try:
            await emergency.resume(principal)
        except CerniqError:
            pass

    background.add_task(run)
    return web.redirect(back, flash="done")
