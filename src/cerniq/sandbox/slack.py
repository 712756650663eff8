"""Fake Slack incoming webhooks: ``POST /slack/services/{path}`` records the message, answers ``ok``.

Controls under ``/_control/slack``: ``GET messages`` lists what was posted, ``POST faults``
(``{"mode": "http_500" | "http_429" | "http_404", "count": N}``) makes the next posts fail as
Slack does (plain-text bodies: ``rate_limited``, ``no_service``...), ``POST reset`` clears.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cerniq.providers.timelinesai.schemas import format_timestamp
from cerniq.sandbox.state import SandboxContext, SandboxHTTPError

__all__ = ["SlackSandbox"]

_FAULT_ANSWERS: dict[str, tuple[int, str, dict[str, str]]] = {
    "http_500": (500, "internal_error", {}),
    "http_429": (429, "rate_limited", {"Retry-After": "1"}),
    "http_404": (404, "no_service", {}),
}


class SlackFault(BaseModel):
    """``POST /_control/slack/faults``."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["http_500", "http_429", "http_404"]
    count: int = Field(default=1, ge=1)


class SlackSandbox:
    """Records incoming-webhook posts so tests can assert on alerts."""

    name = "slack"

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.api = APIRouter()
        self.control = APIRouter()
        self._build()
        self.reset()

    def reset(self) -> None:
        """Forget every recorded message and fault."""
        self.messages: list[dict[str, Any]] = []
        self.faults: list[list[Any]] = []
        self._ids = itertools.count(1)

    def snapshot(self) -> dict[str, Any]:
        """Counts for ``GET /_control/state``."""
        return {
            "messages": len(self.messages),
            "faults": [{"mode": m, "remaining": n} for m, n in self.faults],
        }

    def _build(self) -> None:
        @self.api.post("/services/{path:path}", response_class=PlainTextResponse)
        async def incoming_webhook(path: str, request: Request) -> str:
            if self.faults:
                fault = self.faults[0]
                fault[1] -= 1
                if fault[1] <= 0:
                    self.faults.pop(0)
                status, text, headers = _FAULT_ANSWERS[fault[0]]
                raise SandboxHTTPError(status, text, headers)
            try:
                payload = await request.json()
            except ValueError:
                raise SandboxHTTPError(400, "invalid_payload") from None
            if not isinstance(payload, dict):
                raise SandboxHTTPError(400, "invalid_payload")
            if not payload.get("text") and not payload.get("blocks") and not payload.get("attachments"):
                raise SandboxHTTPError(400, "no_text")
            self.messages.append(
                {
                    "id": next(self._ids),
                    "path": path,
                    "text": payload.get("text"),
                    "payload": payload,
                    "received_at": format_timestamp(self.ctx.now()),
                }
            )
            return "ok"

        @self.control.get("/messages")
        async def messages() -> list[dict[str, Any]]:
            return list(self.messages)

        @self.control.post("/faults")
        async def add_fault(request: Request) -> dict[str, Any]:
            try:
                fault = SlackFault.model_validate(await request.json())
            except (ValueError, ValidationError) as exc:
                raise SandboxHTTPError(422, {"error": str(exc)}) from None
            self.faults.append([fault.mode, fault.count])
            return {"mode": fault.mode, "remaining": fault.count}

        @self.control.post("/reset")
        async def reset() -> dict[str, Any]:
            self.reset()
            return {"ok": True}
