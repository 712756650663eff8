"""The console's own reads: the live activity feed (recent messages of the tenant)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.models.gold_communication_log import GoldCommunicationLog


async def recent_activity(
    session: AsyncSession, tenant_id: uuid.UUID, *, since: datetime | None, limit: int = 20
) -> list[GoldCommunicationLog]:
    """The tenant's newest messages (created or updated after ``since``), newest last."""
    m = GoldCommunicationLog
    stamp = m.updated_at
    query = select(m).where(m.tenant_id == tenant_id)
    if since is not None:
        query = query.where(stamp > since)
    rows = (await session.execute(query.order_by(stamp.desc()).limit(limit))).scalars().all()
    return list(reversed(rows))
