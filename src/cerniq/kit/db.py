"""Database engine, sessions and the unit of work.

The request or the task owns the transaction: open one with :func:`transaction` (or the FastAPI
dependency :func:`get_session`), let services add and flush, and it commits at the end. Side
effects that must only happen once the data is durable (enqueuing jobs, notifications) are
registered with :func:`after_commit` and run right after the commit succeeds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from cerniq.config import Settings, get_settings

AfterCommit = Callable[[], Awaitable[Any]]

_engines: dict[str, AsyncEngine] = {}
_makers: dict[str, async_sessionmaker[AsyncSession]] = {}
_pre_ping = True


def set_pre_ping(enabled: bool) -> None:
    """Whether engines created from now on test a pooled connection before each use.

    The API keeps it (a request after a database restart then gets a fresh connection, not an
    error). Worker processes turn it off: it is a round trip per transaction, a job that meets a
    dropped connection fails and is retried, and the failed connection invalidates the pool."""
    global _pre_ping
    _pre_ping = enabled


def get_engine(settings: Settings | None = None) -> AsyncEngine:
    """The process's engine for the configured database (created on first use)."""
    settings = settings or get_settings()
    url = settings.database_url
    engine = _engines.get(url)
    if engine is None:
        engine = create_async_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_size,
            pool_pre_ping=_pre_ping,
            # jit off: PostgreSQL compiles a large query (an aggregate over a day of messages)
            # to machine code first, which cost more (0.2-0.3 s) than it saved on every such
            # query of the console at 10M messages; no query of ours runs long enough to gain.
            connect_args={"server_settings": {"application_name": "cerniq", "timezone": "UTC", "jit": "off"}},
        )
        _engines[url] = engine
        _makers[url] = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    return engine


def session_maker(settings: Settings | None = None) -> async_sessionmaker[AsyncSession]:
    settings = settings or get_settings()
    get_engine(settings)
    return _makers[settings.database_url]


async def dispose_engines() -> None:
    """Close every pool (at shutdown, and between tests that change the database)."""
    for engine in list(_engines.values()):
        await engine.dispose()
    _engines.clear()
    _makers.clear()


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run ``callback`` once the session's transaction has committed; dropped on rollback."""
    session.info.setdefault("cerniq_after_commit", []).append(callback)


async def run_after_commit(session: AsyncSession) -> None:
    callbacks: list[AfterCommit] = session.info.pop("cerniq_after_commit", [])
    for callback in callbacks:
        await callback()


async def commit(session: AsyncSession) -> None:
    """Commit, then run the after-commit callbacks. For tasks that commit in several steps."""
    await session.commit()
    await run_after_commit(session)


@asynccontextmanager
async def transaction(settings: Settings | None = None) -> AsyncIterator[AsyncSession]:
    """A session whose transaction commits when the block exits normally and rolls back otherwise."""
    async with session_maker(settings)() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            session.info.pop("cerniq_after_commit", None)
            await session.rollback()
            raise
        await run_after_commit(session)


async def get_session() -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one transaction per request, committed before the response is sent."""
    async with transaction() as session:
        yield session
