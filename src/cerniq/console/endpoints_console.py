"""The operator console at ``/console``: server-rendered pages (Jinja2 + htmx), a signed
session cookie with a CSRF token, and roles checked on every action.

Pages read through the feature services (analytics, phones, reviews, leads) and actions call
the same services as the JSON API, so audit rows, takeover rules and the emergency stop apply
exactly as they do there. Actions are plain form POSTs answered with a redirect (303) back to
the page, carrying a short notice; they work without JavaScript, htmx only boosts navigation.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sse_starlette.sse import EventSourceResponse

from cerniq.analytics import service as analytics
from cerniq.auth import repository as auth_repository
from cerniq.auth import service as auth_service
from cerniq.auth.principal import Principal
from cerniq.auth.tokens import verify_password
from cerniq.config import get_settings
from cerniq.console import i18n
from cerniq.console import session as console_session
from cerniq.console.repository import recent_activity
from cerniq.errors import CerniqError, Forbidden, NotFound, Unauthorized, ValidationFailed
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.kit.pagination import PageParams
from cerniq.leads import service as leads_service
from cerniq.leads import takeover
from cerniq.leads.repository import LeadFilters
from cerniq.models.enums import Channel, PhoneStatus, ReviewPriority, Role
from cerniq.ops import emergency
from cerniq.phones import actions as phone_actions
from cerniq.phones import service as phones_service
from cerniq.reviews import service as reviews_service
from cerniq.reviews.schemas import ResolveBody

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

templates = Jinja2Templates(directory=str(HERE / "templates"))

router = APIRouter(prefix="/console", include_in_schema=False)


# ---------------------------------------------------------------------------------------------
# Helpers


def tile_class(phone: dict[str, Any]) -> str:
    """The colour of a phone tile: banned/full red, offline grey, paused yellow, >= 90 % amber."""
    status = phone["status"]
    used = int(phone["quota"]["used"])
    limit = int(phone["quota"]["limit"]) or 1
    if status == PhoneStatus.BANNED.value:
        return "red"
    if status in (PhoneStatus.OFFLINE.value, PhoneStatus.RECONNECTING.value):
        return "grey"
    if status in (PhoneStatus.PAUSED.value, PhoneStatus.QUARANTINE.value):
        return "yellow"
    if used >= limit:
        return "red"
    if used * 10 >= limit * 9:
        return "amber"
    return "green"


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _redirect(path: str, **params: str) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v})
    if not query:
        return RedirectResponse(path, status_code=303)
    return RedirectResponse(f"{path}{'&' if '?' in path else '?'}{query}", status_code=303)


def _safe_next(value: str | None, default: str = "/console/dashboard") -> str:
    if value and value.startswith("/console") and "//" not in value and "\\" not in value:
        return value
    return default


async def _render(request: Request, name: str, principal: Principal, csrf: str, **context: Any) -> Response:
    lang = console_session.language(request)
    async with transaction() as session:
        stop_state = await emergency.state(session)

    def t(key: str) -> str:
        return i18n.translate(lang, key)

    return templates.TemplateResponse(
        request,
        name,
        {
            "t": t,
            "lang": lang,
            "principal": principal,
            "csrf": csrf,
            "can_operate": principal.has(Role.OPERATOR),
            "is_admin": principal.has(Role.ADMIN),
            "stop": stop_state,
            "dt": lambda v: i18n.format_datetime(v, lang),
            "num": lambda v, d=0: i18n.format_number(v, lang, d),
            "pct": lambda v: i18n.format_percent(v, lang),
            "flash": request.query_params.get("flash"),
            "error": request.query_params.get("error"),
            "path": request.url.path,
            **context,
        },
    )


def _signed_in(request: Request) -> tuple[Principal, str] | None:
    return console_session.current(request)


def _to_login(request: Request) -> RedirectResponse:
    return _redirect("/console/login", next=request.url.path)


async def _guard(request: Request, role: Role) -> tuple[Principal, dict[str, Any]]:
    """The principal of a console POST after the session, CSRF and role checks, and its form."""
    found = _signed_in(request)
    if found is None:
        raise Unauthorized("sign in to the console first")
    principal, csrf = found
    form = dict(await request.form())
    given = form.get("csrf") or request.headers.get("x-csrf-token")
    if not console_session.csrf_ok(csrf, str(given) if given else None):
        raise Forbidden("the form's CSRF token is missing or wrong; reload the page", code="CSRF_FAILED")
    if not principal.has(role):
        raise Forbidden(f"this action needs the {role.value} role", details={"role": principal.role.value})
    return principal, {k: str(v) for k, v in form.items()}


def _error_text(exc: CerniqError) -> str:
    return f"{exc.error_code}: {exc.message}"


# ---------------------------------------------------------------------------------------------
# Static files, sign-in, language


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """Console assets shipped inside the package (no CDN)."""
    path = (STATIC_DIR / name).resolve()
    if path.parent != STATIC_DIR.resolve() or not path.is_file() or path.suffix not in STATIC_TYPES:
        raise NotFound(f"no console asset {name!r}")
    return FileResponse(path, media_type=STATIC_TYPES[path.suffix], headers={"Cache-Control": "max-age=3600"})


@router.get("")
async def home() -> RedirectResponse:
    return RedirectResponse("/console/dashboard", status_code=303)


@router.get("/login")
async def login_page(request: Request) -> Response:
    lang = console_session.language(request)
    return templates.TemplateResponse(
        request,
        "login.html",
        {
            "t": lambda key: i18n.translate(lang, key),
            "lang": lang,
            "error": request.query_params.get("error"),
            "next": _safe_next(request.query_params.get("next")),
            "tenant": get_settings().default_tenant_slug,
        },
    )


@router.post("/login")
async def login(request: Request) -> Response:
    """Sign in with email + password (a user of the tenant) or with an API token."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    next_path = _safe_next(form.get("next"))
    principal: Principal | None = None
    async with transaction() as session:
        token = form.get("token", "").strip()
        if token:
            principal = await auth_service.principal_for_token(session, token, _ip(request))
        else:
            slug = form.get("tenant", "").strip() or get_settings().default_tenant_slug
            tenant = await auth_repository.tenant_by_slug(session, slug)
            email = form.get("email", "").strip().lower()
            user = await auth_repository.user_by_email(session, tenant.id, email) if tenant else None
            if (
                user is not None
                and user.is_active
                and verify_password(form.get("password", ""), user.password_hash)
            ):
                user.last_login_at = utcnow()
                principal = Principal(
                    tenant_id=user.tenant_id,
                    role=Role(user.role),
                    actor_type="user",
                    actor_id=str(user.id),
                    actor_label=user.email,
                    user_id=user.id,
                    ip_address=_ip(request),
                )
        if principal is not None:
            await auth_service.record_audit(
                session, principal, "console.sign_in", entity_type="session", entity_id=principal.actor_id
            )
    if principal is None:
        return _redirect("/console/login", error="bad_credentials", next=next_path)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        console_session.COOKIE,
        console_session.encode(principal),
        max_age=console_session.SESSION_SECONDS,
        httponly=True,
        samesite="lax",
        secure=get_settings().env == "production",
        path="/console",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await _guard(request, Role.VIEWER)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(console_session.COOKIE, path="/console")
    return response


@router.get("/lang/{lang}")
async def set_language(lang: str, request: Request) -> Response:
    if lang not in console_session.LANGUAGES:
        raise ValidationFailed("language is ro or en", details={"lang": lang})
    response = RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    response.set_cookie(
        console_session.LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/console"
    )
    return response


# ---------------------------------------------------------------------------------------------
# Dashboard and live activity


@router.get("/dashboard")
async def dashboard(request: Request) -> Response:
    found = _signed_in(request)
    if found is None:
        return _to_login(request)
    principal, csrf = found
    async with transaction() as session:
        figures = await analytics.dashboard_view(session, principal.tenant_id)
        phones = await phones_service.list_view(session, principal.tenant_id, status=None, is_enabled=None)
    today = figures["today"]
    contacted = int(today["contacted"] or 0)
    kpis = {
        "contacted": contacted,
        "replies": int(today["replied"] or 0),
        "replyRate": (int(today["replied"] or 0) / contacted) if contacted else 0.0,
        "positivePerContacted": (int(today["positiveReplies"] or 0) / contacted) if contacted else 0.0,
        "pendingReviews": int(figures["reviews"]["open"]),
    }
    channels = [
        ("WhatsApp", int(today["waSent"] or 0)),
        ("Email cold", int(today["emailColdSent"] or 0)),
        ("Email warm", int(today["emailWarmSent"] or 0)),
    ]
    f = figures["funnel"]
    funnel = [
        ("COLD", int(f.get("total", 0))),
        ("CONTACTED", int(f.get("contacted", 0))),
        ("REPLIED", int(f.get("replied", 0))),
        ("CONVERTED", int(f.get("converted", 0))),
    ]
    tiles = [{**p, "tile": tile_class(p)} for p in phones["phones"]]
    return await _render(
        request,
        "dashboard.html",
        principal,
        csrf,
        kpis=kpis,
        channels=channels,
        channel_max=max([n for _, n in channels] + [1]),
        funnel=funnel,
        funnel_max=max([n for _, n in funnel] + [1]),
        tiles=tiles,
    )


def _activity_item(row: Any, lang: str) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "at": i18n.format_datetime(row.updated_at, lang),
        "channel": row.channel.value,
        "direction": row.direction.value,
        "status": row.status.value,
        "text": (row.content or "")[:120],
        "lead": str(row.lead_journey_id),
    }


@router.get("/events")
async def events(request: Request) -> Response:
    """Server-sent events: ``activity`` events with the tenant's new or updated messages.
    ``?once=1`` sends the current backlog and ends (for scripts and tests)."""
    found = _signed_in(request)
    if found is None:
        raise Unauthorized("sign in to the console first")
    principal = found[0]
    lang = console_session.language(request)
    once = request.query_params.get("once") == "1"

    async def stream() -> AsyncIterator[dict[str, str]]:
        since: datetime | None = None
        while True:
            async with transaction() as session:
                rows = await recent_activity(session, principal.tenant_id, since=since)
            for row in rows:
                since = row.updated_at if since is None or row.updated_at > since else since
                yield {"event": "activity", "data": json.dumps(_activity_item(row, lang))}
            if once or await request.is_disconnected():
                return
            await asyncio.sleep(2.0)

    return EventSourceResponse(stream(), ping=15)


# ---------------------------------------------------------------------------------------------
# Reviews


REVIEW_ACTIONS = {
    "APPROVE": Role.OPERATOR,
    "EDIT": Role.OPERATOR,
    "REJECT": Role.OPERATOR,
    "IGNORE": Role.OPERATOR,
    "TAKEOVER": Role.OPERATOR,
}


@router.get("/reviews")
async def reviews_page(request: Request) -> Response:
    found = _signed_in(request)
    if found is None:
        return _to_login(request)
    principal, csrf = found
    tab = request.query_params.get("tab", "URGENT").upper()
    if tab not in {p.value for p in ReviewPriority}:
        tab = "URGENT"
    async with transaction() as session:
        listing = await reviews_service.list_view(
            session, principal, priority=tab, page=PageParams(page=1, limit=50)
        )
    counts = listing["counts"]
    by_priority = counts.get("byPriority", counts)
    tabs = [(p, int(by_priority.get(p, 0) or 0)) for p in ("URGENT", "HIGH", "MEDIUM", "LOW")]
    return await _render(
        request, "reviews.html", principal, csrf, tab=tab, tabs=tabs, reviews=listing["reviews"]
    )


@router.post("/reviews/{review_id}/resolve")
async def resolve_review(review_id: uuid.UUID, request: Request) -> Response:
    principal, form = await _guard(request, Role.OPERATOR)
    action = form.get("action", "").upper()
    back = _safe_next(form.get("next"), "/console/reviews")
    if action not in REVIEW_ACTIONS:
        return _redirect(back, error=f"VALIDATION_ERROR: unknown action {action!r}")
    body = ResolveBody(
        action=action,
        editedContent=form.get("editedContent") or None,
        notes=form.get("notes") or None,
    )
    try:
        async with transaction() as session:
            await reviews_service.resolve(
                session, principal, review_id, body, user_agent=request.headers.get("user-agent")
            )
    except CerniqError as exc:
        return _redirect(back, error=_error_text(exc))
    return _redirect(back, flash="done")


# ---------------------------------------------------------------------------------------------
# Leads


SORTS = ("nextActionAt", "lastContactAt", "createdAt", "sentimentScore")


@router.get("/leads")
async def leads_page(request: Request) -> Response:
    found = _signed_in(request)
    if found is None:
        return _to_login(request)
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
        return _redirect("/console/leads", error=_error_text(exc))
    params = {"state": state or "", "search": search or "", "sortBy": sort_by, "sortOrder": order}
    return await _render(
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
    found = _signed_in(request)
    if found is None:
        return _to_login(request)
    principal, csrf = found
    try:
        async with transaction() as session:
            lead = await leads_service.lead_detail(session, principal.tenant_id, lead_id)
    except NotFound as exc:
        return _redirect("/console/leads", error=_error_text(exc))
    conversation = sorted(lead["communications"], key=lambda m: m["createdAt"] or "")
    return await _render(request, "lead.html", principal, csrf, lead=lead, conversation=conversation)


@router.post("/leads/{lead_id}/takeover")
async def lead_takeover(lead_id: str, request: Request) -> Response:
    principal, form = await _guard(request, Role.OPERATOR)
    back = f"/console/leads/{lead_id}"
    try:
        async with transaction() as session:
            journey = await leads_service.get_journey(session, principal.tenant_id, lead_id, for_update=True)
            reason = form.get("reason", "").strip() or "console takeover"
            await takeover.take_over(
                session, principal, journey, reason=reason, user_agent=request.headers.get("user-agent")
            )
    except CerniqError as exc:
        return _redirect(back, error=_error_text(exc))
    return _redirect(back, flash="done")


@router.post("/leads/{lead_id}/release")
async def lead_release(lead_id: str, request: Request) -> Response:
    principal, form = await _guard(request, Role.OPERATOR)
    back = f"/console/leads/{lead_id}"
    try:
        async with transaction() as session:
            journey = await leads_service.get_journey(session, principal.tenant_id, lead_id, for_update=True)
            await takeover.release(
                session, principal, journey, return_to_automation=form.get("returnToAutomation") == "1"
            )
    except CerniqError as exc:
        return _redirect(back, error=_error_text(exc))
    return _redirect(back, flash="done")


@router.post("/leads/{lead_id}/send")
async def lead_send(lead_id: str, request: Request) -> Response:
    principal, form = await _guard(request, Role.OPERATOR)
    back = f"/console/leads/{lead_id}"
    content = form.get("content", "").strip()
    channel = form.get("channel", "WHATSAPP")
    if not content:
        return _redirect(back, error="VALIDATION_ERROR: the message is empty")
    if channel not in (Channel.WHATSAPP.value, Channel.EMAIL_WARM.value):
        return _redirect(back, error="VALIDATION_ERROR: channel is WHATSAPP or EMAIL_WARM")
    try:
        async with transaction() as session:
            journey = await leads_service.get_journey(session, principal.tenant_id, lead_id, for_update=True)
            await takeover.send_message(
                session, principal, journey, channel=Channel(channel), content=content
            )
    except CerniqError as exc:
        return _redirect(back, error=_error_text(exc))
    return _redirect(back, flash="done")


# ---------------------------------------------------------------------------------------------
# Phones and the emergency stop


@router.get("/phones")
async def phones_page(request: Request) -> Response:
    found = _signed_in(request)
    if found is None:
        return _to_login(request)
    principal, csrf = found
    async with transaction() as session:
        phones = await phones_service.list_view(session, principal.tenant_id, status=None, is_enabled=None)
    cards = [{**p, "tile": tile_class(p)} for p in phones["phones"]]
    return await _render(request, "phones.html", principal, csrf, phones=cards)


@router.post("/phones/{phone_id}/{verb}")
async def phone_action(phone_id: str, verb: str, request: Request) -> Response:
    principal, form = await _guard(request, Role.OPERATOR)
    back = "/console/phones"
    try:
        async with transaction() as session:
            if verb == "pause":
                await phone_actions.pause_phone(
                    session, principal, phone_id, reason=form.get("reason") or None
                )
            elif verb == "resume":
                await phone_actions.resume_phone(session, principal, phone_id)
            elif verb == "recheck":
                await phone_actions.reconnect_phone(session, principal, phone_id)
            elif verb == "reassign":
                if not principal.has(Role.ADMIN):
                    raise Forbidden("reassigning a phone's leads needs the admin role")
                await phone_actions.reassign_leads(session, principal, phone_id)
            else:
                raise NotFound(f"no phone action {verb!r}")
    except Forbidden:
        raise
    except CerniqError as exc:
        return _redirect(back, error=_error_text(exc))
    return _redirect(back, flash="done")


@router.post("/emergency/stop")
async def emergency_stop(request: Request) -> Response:
    principal, form = await _guard(request, Role.ADMIN)
    back = _safe_next(form.get("next"))
    if form.get("confirm") != "yes":
        return _redirect(back, error="VALIDATION_ERROR: tick the confirmation to stop all outreach")
    try:
        async with transaction() as session:
            await emergency.stop(session, principal, form.get("reason", ""))
    except CerniqError as exc:
        return _redirect(back, error=_error_text(exc))
    return _redirect(back, flash="done")


@router.post("/emergency/resume")
async def emergency_resume(request: Request, background: BackgroundTasks) -> Response:
    principal, form = await _guard(request, Role.ADMIN)
    back = _safe_next(form.get("next"))
    async with transaction() as session:
        active = (await emergency.state(session))["active"]
    if not active:
        return _redirect(back, error="CONFLICT: no emergency stop is active")

    async def run() -> None:
        try:
            await emergency.resume(principal)
        except CerniqError:
            pass

    background.add_task(run)
    return _redirect(back, flash="done")
