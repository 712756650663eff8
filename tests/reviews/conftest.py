"""Review-queue fixtures: the send-path sandbox and worker (from tests/messaging), the sandbox's
Slack as our webhook, tokens."""

from __future__ import annotations

from typing import Any

import pytest

from cerniq.config import get_settings
from cerniq.models.enums import Role
from tests.messaging.conftest import sandbox, sandbox_server, worker
from tests.reviews.seed import SLACK_PATH

__all__ = ["sandbox", "sandbox_server", "worker"]


@pytest.fixture
def slack(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sandbox's fake Slack as our incoming webhook; returns the sandbox handle."""
    monkeypatch.setenv("CERNIQ_SLACK_WEBHOOK_URL", sandbox.base_url + SLACK_PATH)
    monkeypatch.setenv("CERNIQ_PUBLIC_BASE_URL", "https://cerniq.example")
    get_settings.cache_clear()
    return sandbox


@pytest.fixture
async def viewer(tenant: Any, make_token: Any) -> dict[str, str]:
    return dict(await make_token(tenant, Role.VIEWER, "viewer"))


@pytest.fixture
async def operator(tenant: Any, make_token: Any) -> dict[str, str]:
    return dict(await make_token(tenant, Role.OPERATOR, "ops"))
