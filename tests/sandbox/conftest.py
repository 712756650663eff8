"""Sandbox fixtures: one sandbox per test session on a free port, reset before each test.

``sandbox`` gives a freshly reset :class:`~cerniq.sandbox.SandboxHandle` (``.base_url``,
``.url("timelinesai")``, ``.control(method, path, json)``); ``webhook_recorder`` a receiver that
records what the sandbox posts. Tests needing other start-up options call
``run_sandbox_in_thread(**options)`` themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cerniq.sandbox import SandboxHandle, WebhookRecorder, run_sandbox_in_thread

SANDBOX_TEST_OPTIONS: dict[str, Any] = {
    "accounts": 5,
    "seed": 7,
    "reply_probability": 0.0,
    "reply_delay": 0.1,
    "status_delays": {"sent": 0.1, "delivered": 0.2, "read": 0.3},
    "webhook_timeout": 1.0,
    "webhook_retry_delay": 0.05,
    "fault_delay": 2.0,
}
"""Fast, reply-free defaults; tests switch replies on through ``/_control/timelinesai/config``."""


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxHandle]:
    """The session's sandbox (not reset: use ``sandbox``)."""
    handle = run_sandbox_in_thread(port=0, **SANDBOX_TEST_OPTIONS)
    yield handle
    handle.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle) -> SandboxHandle:
    """The session's sandbox, reset to its start-up state."""
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def webhook_recorder() -> Iterator[WebhookRecorder]:
    """An HTTP receiver recording every webhook delivered to it."""
    recorder = WebhookRecorder()
    yield recorder
    recorder.stop()
