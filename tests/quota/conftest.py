"""Quota operation fixtures: the sandbox and worker of the send-path tests, and a private data dir
for the incident log files."""

from __future__ import annotations

from pathlib import Path

import pytest

from cerniq.config import get_settings
from tests.messaging.conftest import sandbox, sandbox_server, worker

__all__ = ["data_dir", "sandbox", "sandbox_server", "worker"]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``CERNIQ_DATA_DIR`` in a temporary directory (the incident log files go under it)."""
    monkeypatch.setenv("CERNIQ_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    return tmp_path
