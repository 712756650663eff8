"""Serving the sandbox: in the foreground (``cerniq sandbox``) or in a background thread (tests, demo).

In a test::

    handle = run_sandbox_in_thread(port=0, accounts=3, time_scale=0.05, reply_probability=0)
    client = TimelinesAIClient(base_url=handle.url("timelinesai"), token=handle.options.timelinesai_token)
    ...
    handle.control("POST", "/_control/timelinesai/faults", {"mode": "http_503"})
    handle.stop()
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import httpx
import uvicorn
from fastapi import FastAPI

from cerniq.sandbox.app import create_sandbox_app
from cerniq.sandbox.state import ResponseAborted, SandboxContext, SandboxOptions

__all__ = ["RecordedRequest", "SandboxHandle", "WebhookRecorder", "run_sandbox_in_thread", "serve_sandbox"]


class _HideAbortedResponses(logging.Filter):
    """Keep the deliberate connection cuts of ``drop_after_accept`` out of the error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, ResponseAborted):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideAbortedResponses) for f in logger.filters):
        logger.addFilter(_HideAbortedResponses())


def _uvicorn_config(app: FastAPI, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        loop="auto",
        timeout_graceful_shutdown=1,
    )


class SandboxHandle:
    """A sandbox running in a background thread. Stop it with :meth:`stop` (or ``with``)."""

    def __init__(
        self,
        app: FastAPI,
        server: uvicorn.Server,
        thread: threading.Thread,
        host: str,
        port: int,
        options: SandboxOptions,
    ) -> None:
        self.app = app
        """The sandbox app (``app.state.vendors`` holds the vendor objects, for debugging)."""
        self.server = server
        self.thread = thread
        self.host = host
        self.port = port
        self.options = options
        self.base_url = f"http://{host}:{port}"
        """``http://127.0.0.1:<port>``; vendors live under ``/<vendor>``."""
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def url(self, vendor: str) -> str:
        """A vendor's API root, e.g. ``url("timelinesai")`` -> ``http://127.0.0.1:<port>/timelinesai``."""
        return f"{self.base_url}/{vendor}"

    @property
    def timelinesai_url(self) -> str:
        """The TimelinesAI base URL to give the client."""
        return self.url("timelinesai")

    def control(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        """Call the control API synchronously (``path`` like ``/_control/reset``); returns the JSON.

        Raises ``httpx.HTTPStatusError`` on a non-2xx answer. Safe to call from any thread.
        """
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(base_url=self.base_url, timeout=10.0, trust_env=False)
            response = self._client.request(method, path, json=json, params=params or None)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Return every vendor to its start-up state (``POST /_control/reset``)."""
        self.control("POST", "/_control/reset")

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down (releasing requests held by faults) and wait for its thread."""
        ctx: SandboxContext = self.app.state.sandbox
        if ctx.loop is not None and not ctx.loop.is_closed():
            try:
                ctx.loop.call_soon_threadsafe(ctx.wake_sleepers)
            except RuntimeError:  # the loop closed meanwhile
                pass
        self.server.should_exit = True
        self.thread.join(timeout)
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_sandbox_in_thread(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    log_level: str = "warning",
    startup_timeout: float = 10.0,
    **options: Any,
) -> SandboxHandle:
    """Start the sandbox on ``host:port`` (0 = a free port) in a daemon thread and wait until it serves.

    ``options`` are :class:`~cerniq.sandbox.state.SandboxOptions` fields (``accounts=3``,
    ``seed=7``, ``time_scale=0.05``, ``reply_probability=0``...).
    """
    parsed = SandboxOptions(**options)
    _install_log_filter()
    # proto=IPPROTO_TCP: accepted sockets inherit it, and only then does asyncio set TCP_NODELAY
    # (without it every response waits ~40 ms for a delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = int(sock.getsockname()[1])
    app = create_sandbox_app(parsed)
    server = uvicorn.Server(_uvicorn_config(app, host, bound_port, log_level))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"cerniq-sandbox-{bound_port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"sandbox did not start on {host}:{bound_port}")
        time.sleep(0.01)
    return SandboxHandle(app, server, thread, host, bound_port, parsed)


def serve_sandbox(
    options: SandboxOptions, *, host: str = "127.0.0.1", port: int = 64100, log_level: str = "info"
) -> None:
    """Serve the sandbox in the foreground until interrupted (``cerniq sandbox``)."""
    _install_log_filter()
    uvicorn.Server(_uvicorn_config(create_sandbox_app(options), host, port, log_level)).run()


@dataclass(frozen=True)
class RecordedRequest:
    """One request received by a :class:`WebhookRecorder`."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    """The decoded JSON body (``None`` when it was not JSON)."""
    raw: bytes


class WebhookRecorder:
    """A tiny threaded HTTP server recording the requests it receives: a webhook receiver for tests.

    ``url`` is its root (any path is accepted). :meth:`fail_next` makes the next N requests answer
    an error status; ``delay`` holds every answer that many seconds. Use :meth:`wait_for` to wait
    until the recorded requests satisfy a condition.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[RecordedRequest] = []
        self.delay = 0.0
        self._fail: list[int] = []
        self._cond = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                status = recorder._record(
                    RecordedRequest(self.command, self.path, dict(self.headers.items()), body, raw)
                )
                if recorder.delay:
                    time.sleep(recorder.delay)
                payload = b"ok" if status < 300 else b"error"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_PUT = do_GET = _handle

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="webhook-recorder",
            daemon=True,
        )
        self._thread.start()

    def _record(self, request: RecordedRequest) -> int:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()
            return self._fail.pop(0) if self._fail else 200

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next ``count`` requests with ``status``."""
        with self._cond:
            self._fail.extend([status] * count)

    def bodies(self, path: str | None = None) -> list[Any]:
        """The JSON bodies received so far (only those sent to ``path`` if given)."""
        with self._cond:
            return [r.body for r in self.requests if path is None or r.path == path]

    def wait_for(
        self, predicate: Callable[[list[RecordedRequest]], bool], timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Block until ``predicate(requests)`` is true; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(list(self.requests)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"webhook recorder: condition not met in {timeout} s")
                self._cond.wait(remaining)
            return list(self.requests)

    def clear(self) -> None:
        """Forget recorded requests and pending failures."""
        with self._cond:
            self.requests.clear()
            self._fail.clear()
            self.delay = 0.0

    def stop(self) -> None:
        """Shut the server down."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
