"""Managing the people of a tenant: create, change role, deactivate / reactivate, reset the
password. Every change writes ``audit_log``; an admin cannot lock themselves out (deactivate
or demote their own user). Passwords are hashed by :mod:`cerniq.auth.tokens`, never audited."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth import service
from cerniq.auth.principal import Principal
from cerniq.auth.tokens import hash_password
from cerniq.errors import Conflict, NotFound, ValidationFailed
from cerniq.models import User
from cerniq.models.enums import Role

MIN_PASSWORD = 8


def _snapshot(user: User) -> dict[str, Any]:
    return {"email": user.email, "role": Role(user.role).value, "isActive": user.is_active}


async def _user(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> User:
    query = select(User).where(User.tenant_id == tenant_id, User.id == user_id).with_for_update()
    user = (await session.execute(query)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"user {user_id} not found", code="USER_NOT_FOUND")
    return user


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(
            f"the password needs at least {MIN_PASSWORD} characters", details={"field": "password"}
        )


async def create(
    session: AsyncSession,
    principal: Principal,
    *,
    email: str,
    display_name: str | None,
    role: Role,
    password: str,
) -> User:
    """A new user of the principal's tenant who signs in with ``password``."""
    _check_password(password)
    user = await service.create_user(
        session,
        tenant_id=principal.tenant_id,
        email=email.strip().lower(),
        display_name=(display_name or "").strip() or None,
        role=role,
        password=password,
    )
    await service.record_audit(
        session, principal, "user.create", entity_type="user", entity_id=user.id, after=_snapshot(user)
    )
    return user


async def change_role(session: AsyncSession, principal: Principal, user_id: uuid.UUID, role: Role) -> User:
    user = await _user(session, principal.tenant_id, user_id)
    if user.id == principal.user_id and role != Role(user.role):
        raise Conflict("you cannot change your own role; ask another admin", code="SELF_LOCKOUT")
    before = _snapshot(user)
    user.role = role
    await session.flush()
    await service.record_audit(
        session,
        principal,
        "user.role_change",
        entity_type="user",
        entity_id=user.id,
        before=before,
        after=_snapshot(user),
    )
    return user


async def set_active(session: AsyncSession, principal: Principal, user_id: uuid.UUID, active: bool) -> User:
    user = await _user(session, principal.tenant_id, user_id)
    if user.id == principal.user_id and not active:
        raise Conflict("you cannot deactivate yourself; ask another admin", code="SELF_LOCKOUT")
    before = _snapshot(user)
    user.is_active = active
    await session.flush()
    await service.record_audit(
        session,
        principal,
        "user.reactivate" if active else "user.deactivate",
        entity_type="user",
        entity_id=user.id,
        before=before,
        after=_snapshot(user),
    )
    return user


async def reset_password(
    session: AsyncSession, principal: Principal, user_id: uuid.UUID, password: str
) -> User:
    _check_password(password)
    user = await _user(session, principal.tenant_id, user_id)
    user.password_hash = hash_password(password)
    await session.flush()
    await service.record_audit(
        session, principal, "user.password_reset", entity_type="user", entity_id=user.id
    )
    return user
