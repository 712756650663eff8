"""Test fixtures: real PostgreSQL and Redis, one database per test session, each test isolated.

The session creates ``cerniq_test_<pid>`` and migrates it; before each test every table is
truncated and the test Redis databases are flushed. Vendors are the sandbox over real HTTP.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

_PID = os.getpid()
# inherited by child processes that re-import this module, like the Redis URL below
TEST_DB = os.environ.setdefault("CERNIQ_TEST_DB_NAME", f"cerniq_test_{_PID}")
PG_BASE = os.environ.get("CERNIQ_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_private_redis() -> tuple[str, subprocess.Popen[bytes] | None]:
    """A redis-server of this test session's own, so concurrent sessions never flush each other
    (and reliability tests may restart or flush it). Falls back to the shared local server."""
    if os.environ.get("CERNIQ_TEST_REDIS"):
        return os.environ["CERNIQ_TEST_REDIS"], None
    binary = shutil.which("redis-server")
    if binary is None:
        return "redis://127.0.0.1:6379", None
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="cerniq-test-redis-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--maxmemory-policy",
            "noeviction",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    return f"redis://127.0.0.1:{port}", proc


REDIS_BASE, _REDIS_PROC = _start_private_redis()
# child processes (spawned workers, CLI subprocesses) re-import this module: they reuse the server
os.environ["CERNIQ_TEST_REDIS"] = REDIS_BASE
TEST_REDIS_PORT = int(REDIS_BASE.rsplit(":", 1)[1]) if REDIS_BASE.count(":") == 2 else 6379

os.environ.update(
    {
        "CERNIQ_ENV": "test",
        "CERNIQ_DATABASE_URL": f"{PG_BASE}/{TEST_DB}",
        "CERNIQ_REDIS_URL": f"{REDIS_BASE}/10",
        "CERNIQ_QUEUE_REDIS_DB": "11",
        "CERNIQ_JITTER_BASE": "0",
        "CERNIQ_JITTER_SPREAD": "0",
        "CERNIQ_LOG_LEVEL": "WARNING",
        "CERNIQ_LOG_JSON": "false",
        "CERNIQ_LOCAL_OPERATOR_MODE": "false",
        "CERNIQ_BACKUPS_DIR": f"/tmp/cerniq-test-backups-{_PID}",
    }
)

from cerniq.config import Settings, get_settings  # noqa: E402
from cerniq.models.enums import Role  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def database() -> Iterator[str]:
    """Create and migrate this session's database; drop it at the end."""
    from cerniq.kit.migrate import drop_database, ensure_database_exists, upgrade_database

    url = os.environ["CERNIQ_DATABASE_URL"]
    drop_database(url)
    ensure_database_exists(url)
    upgrade_database(url)
    yield url
    drop_database(url)
    if _REDIS_PROC is not None:
        _REDIS_PROC.terminate()
        _REDIS_PROC.wait(timeout=10)


@pytest_asyncio.fixture(loop_scope="session", scope="session", autouse=True)
async def close_clients() -> AsyncIterator[None]:
    """Close pools and clients on the session loop before it ends."""
    yield
    from cerniq.kit.db import dispose_engines
    from cerniq.kit.redis import close_redis
    from cerniq.worker.queues import close_queues

    await close_queues()
    await close_redis()
    await dispose_engines()


@pytest_asyncio.fixture(loop_scope="session", autouse=True)
async def clean_state(database: str) -> AsyncIterator[None]:
    """Empty every table and the test Redis databases before each test."""
    from cerniq.kit.db import get_engine
    from cerniq.kit.redis import get_queue_redis, get_redis
    from cerniq.models import Base

    get_settings.cache_clear()
    # DELETE in reverse dependency order: far faster than TRUNCATE on a few dozen small tables.
    statements = ";".join(f'DELETE FROM "{t.name}"' for t in reversed(Base.metadata.sorted_tables))
    async with get_engine().begin() as conn:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.execute(
            statements + ";ALTER SEQUENCE wa_phone_numbers_id_seq RESTART WITH 1"
        )
    await get_redis().flushdb()
    await get_queue_redis().flushdb()
    yield


@pytest.fixture
def settings() -> Settings:
    return get_settings()


@pytest_asyncio.fixture(loop_scope="session")
async def tenant() -> Any:
    """The default tenant."""
    from cerniq.auth import service
    from cerniq.kit.db import transaction

    async with transaction() as session:
        return await service.ensure_tenant(session, get_settings().default_tenant_slug, "Agro Demo")


@pytest_asyncio.fixture(loop_scope="session")
async def other_tenant() -> Any:
    from cerniq.auth import service
    from cerniq.kit.db import transaction

    async with transaction() as session:
        return await service.ensure_tenant(session, "other", "Other Farm Co")


TokenFactory = Callable[..., Awaitable[dict[str, str]]]


@pytest_asyncio.fixture(loop_scope="session")
async def make_token() -> TokenFactory:
    """``await make_token(tenant, Role.VIEWER)`` -> headers with a fresh bearer token."""
    from cerniq.auth import service
    from cerniq.kit.db import transaction

    async def factory(tenant_row: Any, role: Role = Role.ADMIN, name: str = "test") -> dict[str, str]:
        async with transaction() as session:
            _row, raw = await service.create_token(session, tenant_id=tenant_row.id, role=role, name=name)
        return {"Authorization": f"Bearer {raw}"}

    return factory


@pytest_asyncio.fixture(loop_scope="session")
async def admin_headers(tenant: Any, make_token: TokenFactory) -> dict[str, str]:
    return await make_token(tenant, Role.ADMIN, "admin")


@pytest_asyncio.fixture(loop_scope="session")
async def api() -> AsyncIterator[Any]:
    """An HTTP client on the app, in process."""
    import httpx

    from cerniq.app import create_app

    app = create_app(get_settings())
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def local_api() -> AsyncIterator[Any]:
    """A client calling from loopback, as the runbook's curl lines do on the box."""
    import httpx

    from cerniq.app import create_app

    app = create_app(get_settings())
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:64000") as client:
        yield client


def new_id() -> uuid.UUID:
    return uuid.uuid4()
