"""What every fake vendor of the sandbox shares: options, the run-time context, HTTP error plumbing.

A vendor module (``timelinesai.py``, ``slack.py``, later ``instantly.py`` and ``resend.py``)
defines a class satisfying :class:`SandboxVendor`: a ``name`` (its URL prefix), an ``api`` router
(mounted at ``/<name>``), a ``control`` router (mounted at ``/_control/<name>``), ``reset()`` and
``snapshot()``. It receives a :class:`SandboxContext` giving it the options, a seeded random
source, background tasks, interruptible sleeps and an outbound webhook poster.

All state lives on the server's one event loop; handlers do not await between reading and
writing it, which is all the locking an in-memory fake needs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = [
    "DEFAULT_REPLY_MIX",
    "AbortingResponse",
    "LoseResponse",
    "ResponseAborted",
    "SandboxContext",
    "SandboxHTTPError",
    "SandboxOptions",
    "SandboxVendor",
    "StatusDelays",
    "TokenBucket",
    "WebhookDelivery",
]

log = logging.getLogger("cerniq.sandbox")

DEFAULT_REPLY_MIX: dict[str, float] = {
    "positive": 0.30,
    "question": 0.25,
    "negative": 0.20,
    "opt_out": 0.10,
    "out_of_office": 0.10,
    "complaint": 0.05,
}


class StatusDelays(BaseModel):
    """Seconds after acceptance at which an outbound WhatsApp message becomes Sent, Delivered, Read."""

    model_config = ConfigDict(extra="forbid")
    sent: float = Field(default=0.2, ge=0)
    delivered: float = Field(default=1.0, ge=0)
    read: float = Field(default=3.0, ge=0)


class SandboxOptions(BaseModel):
    """Start-up options of the whole sandbox (``cerniq sandbox --...``, ``run_sandbox_in_thread(**options)``).

    Unknown keys are kept (``extra="allow"``) so a vendor module can read options of its own from
    ``options.model_extra`` without this class knowing them. ``POST /_control/reset`` returns every
    vendor to the state these options describe.
    """

    model_config = ConfigDict(extra="allow")

    seed: int = 1
    """Seeds every random choice (replies, reply kinds), so runs are reproducible."""
    time_scale: float = Field(default=1.0, gt=0)
    """Multiplies every simulated delay (status progression, reply delay): 0.05 = 20x faster."""
    timezone: str = "Europe/Bucharest"
    """The workspace time zone of vendor timestamps."""
    rate_limit_enabled: bool = True
    """Vendor rate limits on (off for benchmarks)."""
    webhook_timeout: float = Field(default=5.0, gt=0)
    """Seconds a receiver has to answer a webhook delivery (TimelinesAI: 5 s)."""
    webhook_attempts: int = Field(default=3, ge=1)
    """Attempts per webhook delivery (TimelinesAI: 3)."""
    webhook_retry_delay: float = Field(default=1.0, ge=0)
    """Seconds between two attempts of one delivery."""
    fault_delay: float = Field(default=40.0, ge=0)
    """How long ``timeout`` / ``hang_after_accept`` faults hold a request (longer than clients wait)."""

    # TimelinesAI
    timelinesai_token: str = "sandbox-timelinesai-token"
    accounts: int = Field(default=20, ge=0, le=9999)
    """WhatsApp accounts created at start-up: +40700000001, +40700000002, ..."""
    reply_probability: float = Field(default=0.3, ge=0, le=1)
    reply_delay: float = Field(default=2.0, ge=0)
    reply_mix: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_REPLY_MIX))
    status_delays: StatusDelays = Field(default_factory=StatusDelays)
    invalid_phone_pattern: str = r"0000$"
    """Recipients matching this regex are "not on WhatsApp": accepted, then Failed."""
    timelinesai_rate_per_second: float = Field(default=30.0, gt=0)
    timelinesai_rate_burst: int = Field(default=10, ge=0)


class SandboxHTTPError(Exception):
    """Raise from any sandbox handler to answer with exactly this status, body and headers.

    ``body`` is sent as JSON when it is a dict or list, as text otherwise; each vendor builds the
    error body shape of its own contract.
    """

    def __init__(self, status_code: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"sandbox HTTP {status_code}")
        self.status_code = status_code
        self.body = body
        self.headers = dict(headers or {})


class LoseResponse(Exception):
    """Raise from a handler (after acting) to make the client lose the response.

    The app answers it with an :class:`AbortingResponse`: headers and part of the body are
    sent, then the connection is cut. The client sees ``RemoteProtocolError`` (peer closed the
    connection without sending the complete body), exactly as when a response is lost after the
    server acted.
    """


class ResponseAborted(Exception):
    """Raised inside :class:`AbortingResponse` so the ASGI server closes the connection."""


class AbortingResponse(Response):
    """A response that sends its headers and part of its body, then kills the connection."""

    def __init__(self) -> None:
        super().__init__(content=b"", status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"status": "ok", "da', "more_body": True})
        raise ResponseAborted("sandbox cut the connection on purpose")


class TokenBucket:
    """``rate`` requests per second with ``burst`` extra requests of headroom."""

    def __init__(self, rate: float, burst: int) -> None:
        self.configure(rate, burst)

    def configure(self, rate: float, burst: int) -> None:
        """Change the limits and refill the bucket."""
        self.rate = rate
        self.capacity = max(1.0, rate + burst)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def allow(self) -> bool:
        """Take one token if there is one."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class WebhookDelivery:
    """The outcome of one outbound webhook delivery (all attempts)."""

    url: str
    ok: bool
    attempts: int
    status_code: int | None
    error: str | None


class SandboxContext:
    """The run-time services the vendors share: options, tasks, sleeps, clock, webhook poster."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self._tasks: set[asyncio.Task[Any]] = set()
        self._interrupt = asyncio.Event()
        self._http: httpx.AsyncClient | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        """The loop serving the app, once started (for thread-safe calls from outside)."""

    async def start(self) -> None:
        """Open the outbound HTTP client (called from the app's lifespan)."""
        self.loop = asyncio.get_running_loop()
        self._http = httpx.AsyncClient(timeout=self.options.webhook_timeout, trust_env=False)

    async def stop(self) -> None:
        """Cancel background work and close the outbound HTTP client."""
        await self.cancel_background()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def now(self) -> datetime:
        """Current time in the workspace time zone."""
        return datetime.now(ZoneInfo(self.options.timezone))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background (kept referenced; cancelled by reset and stop)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sandbox background task failed", exc_info=task.exception())

    def wake_sleepers(self) -> None:
        """Wake every held request and background sleep (their ``sleep`` returns False)."""
        self._interrupt.set()
        self._interrupt = asyncio.Event()

    async def cancel_background(self) -> None:
        """Cancel every background task and wake every held request (``sleep`` returns False)."""
        self.wake_sleepers()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def sleep(self, seconds: float) -> bool:
        """Sleep, unless reset or shutdown comes first; True when the full time passed."""
        interrupt = self._interrupt
        try:
            await asyncio.wait_for(interrupt.wait(), timeout=max(0.0, seconds))
        except TimeoutError:
            return True
        return False

    async def post_webhook(
        self, url: str, body: Any, *, headers: Mapping[str, str] | None = None
    ) -> WebhookDelivery:
        """POST ``body`` as JSON to ``url`` with the configured timeout and attempts.

        A 2xx answer is success; anything else (status, timeout, refused) is retried after
        ``webhook_retry_delay`` until ``webhook_attempts`` are spent.
        """
        if self._http is None:
            raise RuntimeError("sandbox context not started")
        attempts = 0
        status: int | None = None
        error: str | None = None
        for attempt in range(self.options.webhook_attempts):
            attempts = attempt + 1
            try:
                response = await self._http.post(url, json=body, headers=dict(headers or {}))
            except httpx.HTTPError as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
            else:
                status, error = response.status_code, None
                if 200 <= response.status_code < 300:
                    return WebhookDelivery(url, True, attempts, status, None)
                error = f"HTTP {response.status_code}"
            if attempts < self.options.webhook_attempts and not await self.sleep(
                self.options.webhook_retry_delay
            ):
                break
        return WebhookDelivery(url, False, attempts, status, error)


class SandboxVendor(Protocol):
    """One fake vendor mounted in the sandbox app."""

    name: str
    """URL prefix: the API is served at ``/<name>``, its controls at ``/_control/<name>``."""
    api: APIRouter
    control: APIRouter

    def reset(self) -> None:
        """Return to the start-up state described by the options."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able summary of the vendor's state for ``GET /_control/state``."""
        ...
