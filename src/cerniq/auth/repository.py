"""SQL for tenants, users, tokens and audit rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.models import ApiToken, AuditEntry, Tenant, User
from cerniq.models.enums import Role


async def tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    return (await session.execute(select(Tenant).where(Tenant.slug == slug))).scalar_one_or_none()


async def tenant_by_id(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant | None:
    return await session.get(Tenant, tenant_id)


async def tenant_by_webhook_token(session: AsyncSession, token: str) -> Tenant | None:
    return (await session.execute(select(Tenant).where(Tenant.webhook_token == token))).scalar_one_or_none()


async def list_tenants(session: AsyncSession) -> list[Tenant]:
    return list((await session.execute(select(Tenant).order_by(Tenant.created_at))).scalars())


async def add_tenant(session: AsyncSession, *, slug: str, name: str) -> Tenant:
    tenant = Tenant(slug=slug, name=name)
    session.add(tenant)
    await session.flush()
    return tenant


async def active_token(session: AsyncSession, token_hash: str) -> ApiToken | None:
    now = datetime.now(UTC)
    row = (
        await session.execute(
            select(ApiToken).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
        )
    ).scalar_one_or_none()
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    return row


async def touch_token(session: AsyncSession, token_id: uuid.UUID) -> None:
    await session.execute(
        update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=datetime.now(UTC))
    )


async def add_token(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    token_hash: str,
    token_prefix: str,
    role: Role,
    user_id: uuid.UUID | None = None,
    expires_at: datetime | None = None,
) -> ApiToken:
    token = ApiToken(
        tenant_id=tenant_id,
        name=name,
        token_hash=token_hash,
        token_prefix=token_prefix,
        role=role,
        user_id=user_id,
        expires_at=expires_at,
    )
    session.add(token)
    await session.flush()
    return token


async def list_tokens(session: AsyncSession, tenant_id: uuid.UUID) -> list[ApiToken]:
    return list(
        (
            await session.execute(
                select(ApiToken).where(ApiToken.tenant_id == tenant_id).order_by(ApiToken.created_at)
            )
        ).scalars()
    )


async def revoke_token(session: AsyncSession, tenant_id: uuid.UUID, token_id: uuid.UUID) -> bool:
    result = await session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.tenant_id == tenant_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return bool(getattr(result, "rowcount", 0))


async def user_by_email(session: AsyncSession, tenant_id: uuid.UUID, email: str) -> User | None:
    return (
        await session.execute(
            select(User).where(User.tenant_id == tenant_id, User.email == email.strip().lower())
        )
    ).scalar_one_or_none()


async def add_user(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    email: str,
    display_name: str,
    role: Role,
    password_hash: str | None,
    team_role: str = "operator",
) -> User:
    user = User(
        tenant_id=tenant_id,
        email=email.strip().lower(),
        display_name=display_name,
        role=role,
        password_hash=password_hash,
        team_role=team_role,
    )
    session.add(user)
    await session.flush()
    return user


async def add_audit(session: AsyncSession, **values: Any) -> AuditEntry:
    row = AuditEntry(**values)
    session.add(row)
    await session.flush()
    return row
