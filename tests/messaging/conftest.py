"""Send-path fixtures: the sandbox over HTTP and an in-process worker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from cerniq.config import get_settings


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Any]:
    from cerniq.sandbox.server import run_sandbox_in_thread

    handle = run_sandbox_in_thread(
        accounts=25, reply_probability=0.0, time_scale=0.01, rate_limit_enabled=False, fault_delay=3.0
    )
    yield handle
    handle.stop()


@pytest.fixture
def sandbox(sandbox_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sandbox, reset, with our settings pointing at it."""
    sandbox_server.reset()
    monkeypatch.setenv("CERNIQ_TIMELINESAI_BASE_URL", sandbox_server.timelinesai_url)
    monkeypatch.setenv("CERNIQ_TIMELINESAI_API_TOKEN", "sandbox-timelinesai-token")
    monkeypatch.setenv("CERNIQ_TIMELINESAI_TIMEOUT", "1.5")
    monkeypatch.setenv("CERNIQ_BUSINESS_HOURS_ALWAYS_OPEN", "true")
    monkeypatch.setenv("CERNIQ_AMBIGUITY_GRACE", "1")
    get_settings.cache_clear()
    return sandbox_server


def sent_messages(sandbox: Any, **params: Any) -> list[dict[str, Any]]:
    body = sandbox.control("GET", "/_control/timelinesai/messages", **params)
    return list(body["messages"] if isinstance(body, dict) else body)


@pytest_asyncio.fixture(loop_scope="session")
async def worker(sandbox: Any) -> AsyncIterator[Any]:
    """A worker process running in the test's event loop (short locks for fast recovery)."""
    from cerniq.messaging.vendors import close_vendors
    from cerniq.worker.runner import WorkerProcess

    process = WorkerProcess(get_settings(), lock_duration_ms=5000, stalled_interval_ms=2000, grace_seconds=5)
    await process.start()
    yield process
    await process.stop()
    await close_vendors()
