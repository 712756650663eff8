"""The provider sandbox: fake TimelinesAI and Slack (Instantly and Resend to come) over real HTTP.

Tests and the demo run the real provider clients against it; only the base URL differs. Start it
with :func:`run_sandbox_in_thread` (tests) or ``cerniq sandbox`` (a terminal); steer it through
the JSON control API under ``/_control``.
"""

from cerniq.sandbox.app import VENDORS, create_sandbox_app
from cerniq.sandbox.server import (
    RecordedRequest,
    SandboxHandle,
    WebhookRecorder,
    run_sandbox_in_thread,
    serve_sandbox,
)
from cerniq.sandbox.state import SandboxContext, SandboxHTTPError, SandboxOptions, SandboxVendor

__all__ = [
    "VENDORS",
    "RecordedRequest",
    "SandboxContext",
    "SandboxHTTPError",
    "SandboxHandle",
    "SandboxOptions",
    "SandboxVendor",
    "WebhookRecorder",
    "create_sandbox_app",
    "run_sandbox_in_thread",
    "serve_sandbox",
]
