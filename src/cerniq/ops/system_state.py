"""Process-wide switches kept in ``system_state`` (PostgreSQL is the truth), mirrored in Redis
for cheap checks. The emergency stop is the one that matters: every send checks it in
PostgreSQL just before calling a vendor."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.kit.redis import get_redis
from cerniq.models import SystemState

EMERGENCY_STOP = "emergency_stop"
EMERGENCY_STOP_KEY = "system:emergency_stop"


async def get_state(session: AsyncSession, key: str) -> dict[str, Any] | None:
    row = (await session.execute(select(SystemState).where(SystemState.key == key))).scalar_one_or_none()
    return dict(row.value) if row is not None else None


async def emergency_stop(session: AsyncSession) -> dict[str, Any] | None:
    """The active emergency stop ({reason, at, by}) or None."""
    value = await get_state(session, EMERGENCY_STOP)
    if value and value.get("active"):
        return value
    return None


async def is_stopped_fast() -> bool:
    """The Redis mirror: a cheap pre-check for loops; the send path re-checks PostgreSQL."""
    return bool(await get_redis().exists(EMERGENCY_STOP_KEY))


async def lock_state(session: AsyncSession, key: str) -> SystemState:
    """The row of ``key``, created empty if missing, locked for the rest of the transaction (so
    two operators stopping or resuming at once are serialized)."""
    await session.execute(
        insert(SystemState).values(key=key, value={}).on_conflict_do_nothing(index_elements=["key"])
    )
    row = (
        await session.execute(
            select(SystemState)
            .where(SystemState.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    return row


async def put_state(
    session: AsyncSession, key: str, value: dict[str, Any], *, updated_by: str | None = None
) -> None:
    """Set ``key`` to ``value`` (creating the row if needed)."""
    row = await lock_state(session, key)
    row.value = value
    row.updated_by = updated_by
    await session.flush()
