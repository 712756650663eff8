"""The sandbox app: every fake vendor in one FastAPI app, plus the control API.

``create_sandbox_app(options)`` mounts each vendor's API at ``/<name>`` and its controls at
``/_control/<name>``, and adds ``POST /_control/reset`` and ``GET /_control/state`` across all
vendors. To add a vendor, write a class satisfying :class:`cerniq.sandbox.state.SandboxVendor`
(constructor taking a :class:`~cerniq.sandbox.state.SandboxContext`) and append it to
:data:`VENDORS`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from cerniq.sandbox.instantly import InstantlySandbox
from cerniq.sandbox.resend import ResendSandbox
from cerniq.sandbox.slack import SlackSandbox
from cerniq.sandbox.state import (
    AbortingResponse,
    LoseResponse,
    SandboxContext,
    SandboxHTTPError,
    SandboxOptions,
    SandboxVendor,
)
from cerniq.sandbox.timelinesai import TimelinesAISandbox

__all__ = ["VENDORS", "VendorFactory", "create_sandbox_app"]

VendorFactory = Callable[[SandboxContext], SandboxVendor]
VENDORS: list[VendorFactory] = [TimelinesAISandbox, SlackSandbox, InstantlySandbox, ResendSandbox]
"""Every fake vendor the sandbox serves, in mounting order."""


def create_sandbox_app(
    options: SandboxOptions | None = None, *, vendors: Sequence[VendorFactory] | None = None
) -> FastAPI:
    """Build the sandbox ASGI app for ``options`` (defaults when omitted).

    ``app.state.sandbox`` is the :class:`SandboxContext`; ``app.state.vendors`` maps each
    vendor's name to its instance.
    """
    ctx = SandboxContext(options or SandboxOptions())
    instances = [factory(ctx) for factory in (VENDORS if vendors is None else vendors)]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await ctx.start()
        try:
            yield
        finally:
            await ctx.stop()

    app = FastAPI(
        title="Cerniq provider sandbox",
        description="Fake TimelinesAI, Slack (and more) over real HTTP, with fault controls under /_control.",
        lifespan=lifespan,
    )
    app.state.sandbox = ctx
    app.state.vendors = {vendor.name: vendor for vendor in instances}

    @app.exception_handler(SandboxHTTPError)
    async def vendor_error(_: Request, exc: SandboxHTTPError) -> Response:
        if isinstance(exc.body, dict | list):
            return JSONResponse(exc.body, status_code=exc.status_code, headers=exc.headers)
        return PlainTextResponse(str(exc.body), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(LoseResponse)
    async def lose_response(_: Request, __: LoseResponse) -> Response:
        return AbortingResponse()

    for vendor in instances:
        app.include_router(vendor.api, prefix=f"/{vendor.name}", tags=[vendor.name])
        app.include_router(vendor.control, prefix=f"/_control/{vendor.name}", tags=["control"])

    @app.post("/_control/reset", tags=["control"])
    async def reset_all() -> dict[str, Any]:
        """Cancel background work and return every vendor to its start-up state."""
        await ctx.cancel_background()
        for vendor in instances:
            vendor.reset()
        return {"ok": True}

    @app.get("/_control/state", tags=["control"])
    async def state() -> dict[str, Any]:
        """Every vendor's state summary and the start-up options."""
        return {
            "options": ctx.options.model_dump(),
            "vendors": {vendor.name: vendor.snapshot() for vendor in instances},
        }

    @app.get("/_control/health", tags=["control"])
    async def health() -> dict[str, Any]:
        """Liveness probe."""
        return {"ok": True, "vendors": [vendor.name for vendor in instances]}

    return app
