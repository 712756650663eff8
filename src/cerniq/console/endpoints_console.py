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
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sse_starlette.sse import EventSourceResponse

from cerniq.analytics import service as analytics
from cerniq.auth import repository as auth_repository
from cerniq.auth import service as auth_service
from cerniq.auth.principal import Principal
from cerniq.auth.tokens import verify_password
from cerniq.config import get_settings
from cerniq.console import i18n, login_limit, web
from cerniq.console import session as console_session
from cerniq.console.repository import recent_activity
from cerniq.errors import NotFound, Unauthorized, ValidationFailed
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.models.enums import Role
from cerniq.phones import service as phones_service

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

router = APIRouter(prefix="/console", include_in_schema=False)


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
    return web.templates.TemplateResponse(
        request,
        "login.html",
        {
            "t": lambda key: i18n.translate(lang, key),
            "lang": lang,
            "error": request.query_params.get("error"),
            "next": web.safe_next(request.query_params.get("next")),
            "tenant": get_settings().default_tenant_slug,
        },
    )


@router.post("/login")
async def login(request: Request) -> Response:
    """Sign in with email + password (a user of the tenant) or with an API token."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    next_path = web.safe_next(form.get("next"))
    principal: Principal | None = None
    ip = web.ip_of(request)
    email = form.get("email", "").strip().lower()
    slug = form.get("tenant", "").strip() or get_settings().default_tenant_slug
    email_key = f"{slug}/{email}" if email and not form.get("token", "").strip() else None
    if await login_limit.blocked(email_key, ip):
        return web.redirect("/console/login", error="too_many_attempts", next=next_path)
    async with transaction() as session:
        token = form.get("token", "").strip()
        if token:
            principal = await auth_service.principal_for_token(session, token, web.ip_of(request))
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
                    ip_address=web.ip_of(request),
                )
        if principal is not None:
            await auth_service.record_audit(
                session, principal, "console.sign_in", entity_type="session", entity_id=principal.actor_id
            )
    if principal is None:
        await login_limit.failed(email_key, ip)
        return web.redirect("/console/login", error="bad_credentials", next=next_path)
    await login_limit.succeeded(email_key)
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
    await web.guard(request, Role.VIEWER)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(console_session.COOKIE, path="/console")
    return response


@router.get("/lang/{lang}")
async def set_language(lang: str, request: Request) -> Response:
    if lang not in console_session.LANGUAGES:
        raise ValidationFailed("language is ro or en", details={"lang": lang})
    response = RedirectResponse(web.safe_next(request.query_params.get("next")), status_code=303)
    response.set_cookie(
        console_session.LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/console"
    )
    return response


# ---------------------------------------------------------------------------------------------
# Dashboard and live activity


@router.get("/dashboard")
async def dashboard(request: Request) -> Response:
    found = await web.signed_in(request)
    if found is None:
        return web.to_login(request)
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
    tiles = [{**p, "tile": web.tile_class(p)} for p in phones["phones"]]
    return await web.render(
        request,
        "dashboard.html",
        principal,
        csrf,
        kpis=kpis,
        channels=channels,
        channel_max=max([n for _, n in channels] + [1]),
        funnel=funnel,
        funnel_max=max([n for _, n in funnel] + [1]),
        funnel_as_of=figures["funnelAsOf"],
        today_as_of=figures["todayAsOf"],
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
    found = await web.signed_in(request)
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
