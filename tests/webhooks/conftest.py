"""The webhook tests' fixtures live in :mod:`tests.webhooks.fixtures` (shared with tests/replies)."""

from tests.webhooks.fixtures import (  # noqa: F401
    app_server,
    full_worker,
    pipeline_worker,
    wh_sandbox,
    wh_sandbox_server,
)
