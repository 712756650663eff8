"""SQL of the operations pages of the console (users of the tenant, the audit log). Every
query is scoped by tenant and bounded by a LIMIT."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.models.audit_log import AuditEntry
from cerniq.models.user import User

MAX_USERS = 500


async def users_of(session: AsyncSession, tenant_id: uuid.UUID, *, active_only: bool = False) -> list[User]:
    """The tenant's users by email (at most :data:`MAX_USERS`)."""
    query = select(User).where(User.tenant_id == tenant_id)
    if active_only:
        query = query.where(User.is_active.is_(True))
    return list((await session.execute(query.order_by(User.email).limit(MAX_USERS))).scalars())


@dataclass(frozen=True)
class AuditFilters:
    action: str | None = None  # a prefix: "review." or "review.assign"
    actor: str | None = None  # a prefix of the actor's label (an email, token:ana, cli:ion)
    entity_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def audit_page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    filters: AuditFilters,
    *,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[AuditEntry]:
    """One page of the tenant's audit log, newest first, keyset-paged on (created_at, id): the
    rows strictly older than ``before``. Walks ``ix_audit_log_tenant_created`` backwards."""
    query = select(AuditEntry).where(AuditEntry.tenant_id == tenant_id)
    if filters.action:
        query = query.where(AuditEntry.action.like(_escape_like(filters.action) + "%", escape="\\"))
    if filters.actor:
        query = query.where(AuditEntry.actor_label.like(_escape_like(filters.actor) + "%", escape="\\"))
    if filters.entity_type:
        query = query.where(AuditEntry.entity_type == filters.entity_type)
    if filters.since is not None:
        query = query.where(AuditEntry.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEntry.created_at < filters.until)
    if before is not None:
        at, row_id = before
        query = query.where(
            or_(AuditEntry.created_at < at, and_(AuditEntry.created_at == at, AuditEntry.id < row_id))
        )
    query = query.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())
