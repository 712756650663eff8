"""What every console page module shares: the Jinja2 environment, rendering with the common
context (strings, locale formatters, roles, the emergency-stop banner), the session and CSRF
guard for actions, and redirects carrying a notice.

A page module is ``console/endpoints_console_<page>.py`` with its own ``router`` (prefix
``/console``), its templates under ``console/templates/`` and its strings registered with
:func:`cerniq.console.i18n.add_strings`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import Principal
from cerniq.console import i18n
from cerniq.console import session as console_session
from cerniq.errors import CerniqError, Forbidden, Unauthorized
from cerniq.kit.db import transaction
from cerniq.models.enums import PhoneStatus, Role
from cerniq.models.user import User
from cerniq.ops import emergency

T = TypeVar("T")

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

# The main navigation: (path, string key). Every page of the console is listed here once.
NAV: tuple[tuple[str, str], ...] = (
    ("/console/dashboard", "dashboard"),
    ("/console/leads", "leads"),
    ("/console/reviews", "reviews"),
    ("/console/phones", "phones"),
    ("/console/sequences", "sequences"),
    ("/console/templates", "templates"),
    ("/console/campaigns", "campaigns"),
    ("/console/queues", "queues"),
    ("/console/alerts", "alerts"),
    ("/console/analytics", "analytics"),
    ("/console/audit", "audit"),
    ("/console/users", "users"),
)
# The pages only an admin may open (their handlers answer 403 to anyone else): not in their nav.
ADMIN_ONLY: frozenset[str] = frozenset({"/console/audit", "/console/users"})


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


def ip_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def redirect(path: str, **params: str) -> RedirectResponse:
    """A 303 to ``path`` with the non-empty ``params`` added to its query string."""
    query = urlencode({k: v for k, v in params.items() if v})
    if not query:
        return RedirectResponse(path, status_code=303)
    return RedirectResponse(f"{path}{'&' if '?' in path else '?'}{query}", status_code=303)


def safe_next(value: str | None, default: str = "/console/dashboard") -> str:
    """``value`` when it is a console path (no open redirect), else ``default``."""
    if value and value.startswith("/console") and "//" not in value and "\\" not in value:
        return value
    return default


async def current(session: AsyncSession, principal: Principal) -> Principal | None:
    """The session's principal checked against its user row: None once the user is deactivated
    or gone, otherwise with the user's current role (a demotion applies at once, not when the
    12-hour session cookie expires). Token and local sessions are returned as they are."""
    if principal.user_id is None:
        return principal
    user = await session.get(User, principal.user_id)
    if user is None or not user.is_active or user.tenant_id != principal.tenant_id:
        return None
    role = Role(user.role)
    return principal if role == principal.role else dataclasses.replace(principal, role=role)


async def render(request: Request, name: str, principal: Principal, csrf: str, **context: Any) -> Response:
    """Render a page template with the common context plus ``context``."""
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
            "nav": NAV,
            "admin_only": ADMIN_ONLY,
            "dt": lambda v: i18n.format_datetime(v, lang),
            "num": lambda v, d=0: i18n.format_number(v, lang, d),
            "pct": lambda v: i18n.format_percent(v, lang),
            "flash": request.query_params.get("flash"),
            "error": request.query_params.get("error"),
            "path": request.url.path,
            **context,
        },
    )


i18n.add_strings(
    {
        "forbidden_admin": {
            "ro": "Această pagină este doar pentru administratori.",
            "en": "This page is for admins only.",
        },
    }
)


async def forbidden(request: Request, principal: Principal, csrf: str, message: str) -> Response:
    """A page the principal may not open: a 403 in the console's frame with a readable
    ``message`` (a string key) and the way back, rather than an API error body."""
    page = await render(request, "forbidden.html", principal, csrf, message=message)
    page.status_code = 403
    return page


async def signed_in(request: Request) -> tuple[Principal, str] | None:
    """The session's principal and CSRF token, or None without a valid session.

    A user's session is checked against the user row on every request (see :func:`current`):
    deactivating a user or changing their role takes effect at once."""
    found = console_session.current(request)
    if found is None:
        return None
    async with transaction() as session:
        principal = await current(session, found[0])
    return None if principal is None else (principal, found[1])


def to_login(request: Request) -> RedirectResponse:
    return redirect("/console/login", next=request.url.path)


async def admin_page(request: Request) -> tuple[Principal, str] | Response:
    """The principal and CSRF token for a page of :data:`ADMIN_ONLY`, or the answer to give
    instead: the sign-in redirect without a session, the 403 page to anyone but an admin."""
    found = await signed_in(request)
    if found is None:
        return to_login(request)
    if not found[0].has(Role.ADMIN):
        return await forbidden(request, found[0], found[1], "forbidden_admin")
    return found


async def guard(request: Request, role: Role) -> tuple[Principal, dict[str, str]]:
    """The principal of a console POST after the session, CSRF and role checks, and its form.

    Repeated fields (checkboxes of a bulk action) are joined with commas; read them with
    :func:`form_list` on the raw form when the values matter one by one."""
    found = await signed_in(request)
    if found is None:
        raise Unauthorized("sign in to the console first")
    principal, csrf = found
    raw = await request.form()
    given = raw.get("csrf") or request.headers.get("x-csrf-token")
    if not console_session.csrf_ok(csrf, str(given) if given else None):
        raise Forbidden("the form's CSRF token is missing or wrong; reload the page", code="CSRF_FAILED")
    if not principal.has(role):
        raise Forbidden(f"this action needs the {role.value} role", details={"role": principal.role.value})
    form: dict[str, str] = {}
    for key in raw:
        values = [str(v) for v in raw.getlist(key)]
        form[key] = ",".join(values) if len(values) > 1 else values[0]
    return principal, form


async def form_list(request: Request, key: str) -> list[str]:
    """Every value of a repeated form field (the form is cached after :func:`guard`)."""
    return [str(v) for v in (await request.form()).getlist(key)]


def error_text(exc: CerniqError) -> str:
    return f"{exc.error_code}: {exc.message}"


async def act(
    back: str,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    then: Callable[[T], Response] | None = None,
) -> Response:
    """Run an action's ``work`` in one transaction and answer with a redirect to ``back``:
    ``error=<CODE: message>`` when it raises a CerniqError (nothing is committed), else
    ``flash=done``, or what ``then`` makes of the work's result (new ids, warnings)."""
    try:
        async with transaction() as session:
            result = await work(session)
    except CerniqError as exc:
        return redirect(back, error=error_text(exc))
    return redirect(back, flash="done") if then is None else then(result)
