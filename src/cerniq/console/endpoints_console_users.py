"""Console: user management (admin only): the tenant's users, create, change role, deactivate /
reactivate and reset a password, through :mod:`cerniq.auth.users` (audited; no self-lockout)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth import users as users_service
from cerniq.console import i18n, web
from cerniq.console.repository_ops import users_of
from cerniq.errors import NotFound, ValidationFailed
from cerniq.kit.db import transaction
from cerniq.models.enums import Role

router = APIRouter(prefix="/console", include_in_schema=False)

ROLES = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)
BACK = "/console/users"

i18n.add_strings(
    {
        "users_new": {"ro": "Utilizator nou", "en": "New user"},
        "users_display_name": {"ro": "Nume afișat", "en": "Display name"},
        "users_role": {"ro": "Rol", "en": "Role"},
        "users_initial_password": {"ro": "Parolă inițială (min. 8)", "en": "Initial password (min. 8)"},
        "users_create": {"ro": "Creează", "en": "Create"},
        "users_active": {"ro": "Activ", "en": "Active"},
        "users_inactive": {"ro": "Dezactivat", "en": "Deactivated"},
        "users_last_login": {"ro": "Ultima autentificare", "en": "Last sign-in"},
        "users_change_role": {"ro": "Schimbă rolul", "en": "Change role"},
        "users_deactivate": {"ro": "Dezactivează", "en": "Deactivate"},
        "users_reactivate": {"ro": "Reactivează", "en": "Reactivate"},
        "users_new_password": {"ro": "Parolă nouă", "en": "New password"},
        "users_reset_password": {"ro": "Resetează parola", "en": "Reset password"},
        "users_you": {"ro": "(dvs.)", "en": "(you)"},
        "users_none": {"ro": "Niciun utilizator.", "en": "No users."},
    }
)


def _role(raw: str) -> Role:
    for role in ROLES:
        if role.value == raw.strip().lower():
            return role
    raise ValidationFailed("role is viewer, operator or admin", details={"field": "role"})


@router.get("/users")
async def users_page(request: Request) -> Response:
    found = await web.admin_page(request)
    if isinstance(found, Response):
        return found
    principal, csrf = found
    async with transaction() as session:
        people = await users_of(session, principal.tenant_id)
    return await web.render(
        request, "users.html", principal, csrf, people=people, roles=[r.value for r in ROLES]
    )


@router.post("/users")
async def create_user(request: Request) -> Response:
    principal, form = await web.guard(request, Role.ADMIN)

    async def work(session: AsyncSession) -> None:
        await users_service.create(
            session,
            principal,
            email=form.get("email", ""),
            display_name=form.get("displayName"),
            role=_role(form.get("role", "")),
            password=form.get("password", ""),
        )

    return await web.act(BACK, work)


@router.post("/users/{user_id}/{verb}")
async def user_action(user_id: uuid.UUID, verb: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.ADMIN)

    async def work(session: AsyncSession) -> None:
        if verb == "role":
            await users_service.change_role(session, principal, user_id, _role(form.get("role", "")))
        elif verb == "deactivate":
            await users_service.set_active(session, principal, user_id, False)
        elif verb == "reactivate":
            await users_service.set_active(session, principal, user_id, True)
        elif verb == "password":
            await users_service.reset_password(session, principal, user_id, form.get("password", ""))
        else:
            raise NotFound(f"no user action {verb!r}")

    return await web.act(BACK, work)
