"""Fake Resend API (spec/providers.md §3) with behaviour and fault controls.

Vendor API under ``/resend`` (a client's base URL is ``http://127.0.0.1:<port>/resend``):
``POST /emails`` (with ``Idempotency-Key``), ``POST /emails/batch`` (strict or permissive),
``GET /emails/{id}``, and webhook management (``POST|GET /webhooks``, ``GET|PATCH|DELETE
/webhooks/{id}``; creating one answers its ``whsec_`` signing secret).

Behaviour: a missing ``Authorization`` is 401 ``missing_api_key``, an unknown key 403, a missing
``User-Agent`` 403 (error code 1010); validation errors in the ``{statusCode, message, name}``
shape; ``from`` must be on a verified domain (403 ``validation_error``). The idempotency store
keeps each key 24 h: the same key and body replays the first answer (the email is not sent
again), another body is 409 ``invalid_idempotent_request``, a request still running is 409
``concurrent_idempotent_requests``. 10 requests/s with ``ratelimit-*`` headers on every answer
and ``retry-after`` on 429. Each accepted email then moves through ``sent``, ``delivered`` (or
``delivery_delayed``, ``bounced``), ``opened``, ``clicked``, ``complained`` by seeded chance or
address pattern; ``GET /emails/{id}`` shows its ``last_event`` and each event goes to the
subscribed endpoints signed with Svix (fresh ``svix-id`` per event, kept on retries; the retry
schedule immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, times ``retry_scale``).

Start-up options (``SandboxOptions`` extras, prefix ``resend_``): ``api_key``,
``verified_domains``, ``webhook_secret`` (one ``whsec_`` secret for every webhook instead of a
new one each), ``bounce_rate``, ``soft_bounce_rate``, ``open_rate``, ``click_rate``,
``complaint_rate``, ``delay_rate``, ``event_delay``, ``retry_scale``, ``out_of_order``.
Controls under ``/_control/resend``: ``reset``, ``state``, ``config``, ``faults``, ``emails``,
``events``, ``replay``, ``webhook-deliveries``.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cerniq.providers.resend.svix import generate_secret, signature_headers
from cerniq.sandbox.state import LoseResponse, SandboxContext, SandboxHTTPError, TokenBucket

__all__ = ["ResendConfig", "ResendSandbox"]

FaultMode = Literal[
    "http_429",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "timeout",
    "drop_after_accept",
    "hang_after_accept",
]
EVENT_TYPES = (
    "email.sent",
    "email.delivered",
    "email.delivery_delayed",
    "email.complained",
    "email.bounced",
    "email.opened",
    "email.clicked",
    "email.failed",
    "email.suppressed",
    "email.scheduled",
    "email.received",
)
RETRY_SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
IDEMPOTENCY_TTL = 24 * 3600.0
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_NAMED = re.compile(r"^\s*(?:\"?([^\"<]*?)\"?\s*)?<([^<>]+)>\s*$")
_TAG = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _pg_time(at: datetime) -> str:
    # GET /emails shows created_at as "2026-04-03 22:13:42.674981+00".
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + "+00"


def _error(status: int, name: str, message: str, headers: dict[str, str] | None = None) -> SandboxHTTPError:
    return SandboxHTTPError(status, {"statusCode": status, "message": message, "name": name}, headers)


def _address(value: str) -> str | None:
    """The bare address of ``addr`` or ``Name <addr>``, or None when malformed."""
    match = _NAMED.match(value)
    address = (match.group(2) if match else value).strip()
    return address if _EMAIL.match(address) else None


@dataclass
class EmailRecord:
    id: str
    sender: str
    to: list[str]
    subject: str
    html: str | None
    text: str | None
    cc: list[str]
    bcc: list[str]
    reply_to: list[str]
    tags: list[dict[str, str]]
    headers: dict[str, str]
    created_at: datetime
    idempotency_key: str | None
    last_event: str = "queued"
    events: list[str] = field(default_factory=list)

    @property
    def message_id(self) -> str:
        return f"<{self.id}@sandbox.resend.dev>"

    def api(self) -> dict[str, Any]:
        return {
            "object": "email",
            "id": self.id,
            "message_id": self.message_id,
            "to": list(self.to),
            "from": self.sender,
            "created_at": _pg_time(self.created_at),
            "subject": self.subject,
            "html": self.html,
            "text": self.text,
            "bcc": list(self.bcc),
            "cc": list(self.cc),
            "reply_to": list(self.reply_to),
            "last_event": self.last_event,
            "scheduled_at": None,
            "tags": [dict(t) for t in self.tags],
        }


@dataclass
class IdempotencyRecord:
    path: str
    fingerprint: str
    created: float
    done: bool = False
    response: Any = None


@dataclass
class WebhookRecord:
    id: str
    endpoint: str
    events: list[str]
    signing_secret: str
    created_at: datetime
    status: str = "enabled"
    exhausted_deliveries: int = 0

    def api(self, *, secret: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "object": "webhook",
            "id": self.id,
            "endpoint": self.endpoint,
            "events": list(self.events),
            "status": self.status,
            "created_at": _iso(self.created_at),
        }
        if secret:
            body["signing_secret"] = self.signing_secret
        return body


@dataclass
class Fault:
    id: int
    mode: FaultMode
    remaining: int
    target: Literal["send", "read", "any"]
    delay: float | None
    retry_after: float | None

    def api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mode": self.mode,
            "remaining": self.remaining,
            "target": self.target,
            "delay": self.delay,
            "retry_after": self.retry_after,
        }


@dataclass
class EventRecord:
    """One emitted event: kept to replay it (same ``svix-id``)."""

    svix_id: str
    body: dict[str, Any]


class ResendConfig(BaseModel):
    """Behaviour changeable at run time (``POST /_control/resend/config``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    verified_domains: list[str] = Field(default_factory=lambda: ["cerniq.app", "cerniq.example"])
    event_delay: float = Field(default=0.2, ge=0)
    """Seconds (times time_scale) between the events of one email."""
    bounce_rate: float = Field(default=0.0, ge=0, le=1)
    soft_bounce_rate: float = Field(default=0.0, ge=0, le=1)
    open_rate: float = Field(default=0.0, ge=0, le=1)
    click_rate: float = Field(default=0.0, ge=0, le=1)
    complaint_rate: float = Field(default=0.0, ge=0, le=1)
    delay_rate: float = Field(default=0.0, ge=0, le=1)
    bounce_pattern: str = r"^bounce"
    soft_bounce_pattern: str = r"^softbounce"
    complaint_pattern: str = r"^complain"
    delayed_pattern: str = r"^delayed"
    retry_scale: float = Field(default=1.0, ge=0)
    """Multiplies the webhook retry schedule (5 s, 5 min, 30 min...): 0.001 in tests."""
    out_of_order: bool = False
    """Deliver each email's events in a shuffled order (Resend does not guarantee order)."""
    disable_after: int = Field(default=5, ge=1)
    """Deliveries that exhausted every retry before the endpoint is auto-disabled."""
    rate_limit_enabled: bool = True
    rate_per_second: float = Field(default=10.0, gt=0)
    time_scale: float = Field(default=1.0, gt=0)

    @field_validator("bounce_pattern", "soft_bounce_pattern", "complaint_pattern", "delayed_pattern")
    @classmethod
    def _regex(cls, pattern: str) -> str:
        re.compile(pattern)
        return pattern


class FaultRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: FaultMode
    count: int = Field(default=1, ge=1)
    target: Literal["send", "read", "any"] = "send"
    delay: float | None = Field(default=None, ge=0)
    retry_after: float | None = Field(default=None, ge=0)


class EventRequest(BaseModel):
    """``POST /_control/resend/events``: an email event now."""

    model_config = ConfigDict(extra="forbid")
    email_id: str
    type: Literal[
        "email.sent",
        "email.delivered",
        "email.delivery_delayed",
        "email.complained",
        "email.bounced",
        "email.opened",
        "email.clicked",
        "email.failed",
        "email.suppressed",
    ]
    bounce_type: Literal["Permanent", "Temporary"] = "Permanent"


class ReplayRequest(BaseModel):
    """``POST /_control/resend/replay``: deliver an emitted event again, same ``svix-id``."""

    model_config = ConfigDict(extra="forbid")
    svix_id: str


def _parse_control(model: type[BaseModel], body: Any) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise SandboxHTTPError(
            422, {"error": "invalid control request", "details": json.loads(exc.json())}
        ) from None


class ResendSandbox:
    """The fake Resend team: state, vendor API router and control router."""

    name = "resend"

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.api = APIRouter(dependencies=[Depends(self._guard)])
        self.control = APIRouter()
        self._bucket = TokenBucket(10.0, 0)
        self._build_api()
        self._build_control()
        self.reset()

    def _option(self, key: str, default: Any) -> Any:
        return (self.ctx.options.model_extra or {}).get(f"resend_{key}", default)

    def reset(self) -> None:
        """Back to start-up: no emails, idempotency keys, webhooks or faults."""
        options = self.ctx.options
        values: dict[str, Any] = {
            "rate_limit_enabled": options.rate_limit_enabled,
            "time_scale": options.time_scale,
        }
        for key in ResendConfig.model_fields:
            if key in ("rate_limit_enabled", "time_scale"):
                continue
            marker = object()
            value = self._option(key, marker)
            if value is not marker:
                values[key] = value
        self.config = ResendConfig.model_validate(values)
        self._bucket.configure(self.config.rate_per_second, 0)
        self.api_key = str(self._option("api_key", "re_sandbox_key"))
        self.fixed_secret: str | None = self._option("webhook_secret", None)
        self.emails: dict[str, EmailRecord] = {}
        self.idempotency: dict[str, IdempotencyRecord] = {}
        self.webhooks: dict[str, WebhookRecord] = {}
        self.faults: list[Fault] = []
        self.deliveries: list[dict[str, Any]] = []
        self.emitted: dict[str, EventRecord] = {}
        self._fault_ids = itertools.count(1)
        self._rng = random.Random(f"{options.seed}:resend")

    def snapshot(self) -> dict[str, Any]:
        return {
            "emails": len(self.emails),
            "idempotency_keys": len(self.idempotency),
            "webhooks": [w.api() for w in self.webhooks.values()],
            "faults": [f.api() for f in self.faults],
            "config": self.config.model_dump(),
            "deliveries": len(self.deliveries),
        }

    def _scaled(self, seconds: float) -> float:
        return seconds * self.config.time_scale

    # --- guard ---------------------------------------------------------------------------------

    def _error(
        self, status: int, name: str, message: str, headers: dict[str, str] | None = None
    ) -> SandboxHTTPError:
        """The vendor's error, with the rate-limit headers Resend puts on every answer."""
        return _error(status, name, message, {**self._rate_headers(), **(headers or {})})

    def _rate_headers(self) -> dict[str, str]:
        return {
            "ratelimit-limit": f"{self.config.rate_per_second:g}",
            "ratelimit-remaining": str(max(0, int(self._bucket.tokens))),
            "ratelimit-reset": "1",
        }

    async def _guard(self, request: Request, response: Response) -> None:
        if self.config.rate_limit_enabled and not self._bucket.allow():
            raise self._error(
                429,
                "rate_limit_exceeded",
                "Too many requests. You can only make 10 requests per second.",
                {**self._rate_headers(), "retry-after": "1"},
            )
        response.headers.update(self._rate_headers())
        if not request.headers.get("user-agent"):
            raise SandboxHTTPError(403, "error code: 1010")
        header = request.headers.get("authorization", "")
        if not header:
            raise self._error(
                401,
                "missing_api_key",
                "Missing API key in the authorization header. Include the following header in the "
                "request: Authorization: Bearer YOUR_API_KEY",
            )
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.api_key:
            raise self._error(403, "validation_error", "API key is invalid")
        kind: Literal["send", "read"] = "read" if request.method == "GET" else "send"
        request.state.fault = (
            self._take_fault(kind)
            if request.url.path.rstrip("/").endswith(("/emails", "/emails/batch")) or kind == "read"
            else None
        )
        fault: Fault | None = request.state.fault
        if fault is not None:
            await self._before(fault)

    def _take_fault(self, kind: Literal["send", "read"]) -> Fault | None:
        for fault in self.faults:
            if fault.target not in (kind, "any"):
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.faults.remove(fault)
            return fault
        return None

    async def _before(self, fault: Fault) -> None:
        retry = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        if fault.mode == "http_429":
            raise self._error(
                429, "rate_limit_exceeded", "Too many requests.", {**self._rate_headers(), **retry}
            )
        if fault.mode == "http_500":
            raise self._error(500, "application_error", "An unexpected error occurred.")
        if fault.mode == "http_503":
            raise self._error(503, "service_unavailable", "Service unavailable.", retry)
        if fault.mode in ("http_502", "http_504"):
            status = int(fault.mode[5:])
            raise SandboxHTTPError(status, f"<html><body><h1>{status}</h1></body></html>", retry)
        if fault.mode == "timeout":
            await self.ctx.sleep(fault.delay if fault.delay is not None else self.ctx.options.fault_delay)
            raise SandboxHTTPError(504, "<html><body><h1>504 Gateway Time-out</h1></body></html>")

    # --- sending -------------------------------------------------------------------------------

    def _validate(self, body: Any, *, batch: bool) -> dict[str, Any]:
        """Check one email object; raise the vendor's error or return it normalized."""
        if not isinstance(body, dict):
            raise self._error(422, "validation_error", "The email must be an object.")
        for key in ("from", "to", "subject"):
            if not body.get(key):
                raise self._error(422, "missing_required_field", f"Missing `{key}` field.")
        if not body.get("html") and not body.get("text") and not body.get("template"):
            raise self._error(422, "missing_required_field", "Missing `html` or `text` field.")
        sender = _address(str(body["from"]))
        if sender is None:
            raise self._error(
                422,
                "validation_error",
                "Invalid `from` field. The email address needs to follow the "
                "`email@example.com` or `Name <email@example.com>` format.",
            )
        domain = sender.rsplit("@", 1)[1].lower()
        if domain not in {d.lower() for d in self.config.verified_domains}:
            raise self._error(
                403,
                "validation_error",
                f"The {domain} domain is not verified. Please, add and verify your domain on "
                "https://resend.com/domains",
            )
        to = body["to"] if isinstance(body["to"], list) else [body["to"]]
        if len(to) > 50:
            raise self._error(
                422, "validation_error", "Too many recipients: `to` accepts at most 50 addresses."
            )
        if not all(isinstance(t, str) and _address(t) for t in to):
            raise self._error(
                422,
                "validation_error",
                "Invalid `to` field. The email address needs to follow the "
                "`email@example.com` or `Name <email@example.com>` format.",
            )
        tags = body.get("tags") or []
        if not isinstance(tags, list) or not all(
            isinstance(t, dict)
            and isinstance(t.get("name"), str)
            and isinstance(t.get("value"), str)
            and _TAG.match(t["name"])
            and _TAG.match(t["value"])
            for t in tags
        ):
            raise self._error(
                422,
                "validation_error",
                "Tags should only contain ASCII letters, numbers, underscores, or dashes.",
            )
        if batch and body.get("attachments"):
            raise self._error(422, "validation_error", "Attachments are not supported in batch sending.")
        return body

    def _create(self, body: dict[str, Any], key: str | None) -> EmailRecord:
        def as_list(value: Any) -> list[str]:
            if value in (None, ""):
                return []
            return [str(v) for v in value] if isinstance(value, list) else [str(value)]

        email = EmailRecord(
            id=str(uuid.uuid4()),
            sender=str(body["from"]),
            to=as_list(body["to"]),
            subject=str(body["subject"]),
            html=body.get("html"),
            text=body.get("text"),
            cc=as_list(body.get("cc")),
            bcc=as_list(body.get("bcc")),
            reply_to=as_list(body.get("reply_to")),
            tags=[{"name": t["name"], "value": t["value"]} for t in body.get("tags") or []],
            headers=dict(body.get("headers") or {}),
            created_at=self.ctx.now(),
            idempotency_key=key,
        )
        self.emails[email.id] = email
        self._plan(email)
        return email

    def _plan(self, email: EmailRecord) -> None:
        cfg = self.config
        rng = random.Random(f"{self.ctx.options.seed}:{email.id}")
        address = (_address(email.to[0]) or "").lower()
        plan = ["email.sent"]
        if re.search(cfg.bounce_pattern, address) or rng.random() < cfg.bounce_rate:
            plan.append("email.bounced:Permanent")
        elif re.search(cfg.soft_bounce_pattern, address) or rng.random() < cfg.soft_bounce_rate:
            plan += ["email.delivery_delayed", "email.bounced:Temporary"]
        else:
            if re.search(cfg.delayed_pattern, address) or rng.random() < cfg.delay_rate:
                plan.append("email.delivery_delayed")
            plan.append("email.delivered")
            if rng.random() < cfg.open_rate:
                plan.append("email.opened")
                if rng.random() < cfg.click_rate:
                    plan.append("email.clicked")
            if re.search(cfg.complaint_pattern, address) or rng.random() < cfg.complaint_rate:
                plan.append("email.complained")
        if cfg.out_of_order:
            rng.shuffle(plan)
        self.ctx.spawn(self._play(email.id, plan, self._scaled(cfg.event_delay)))

    async def _play(self, email_id: str, plan: list[str], delay: float) -> None:
        for step in plan:
            if not await self.ctx.sleep(delay):
                return
            email = self.emails.get(email_id)
            if email is None:
                return
            kind, _, bounce_type = step.partition(":")
            self._event(email, kind, bounce_type or "Permanent")

    def _event(self, email: EmailRecord, kind: str, bounce_type: str = "Permanent") -> dict[str, Any]:
        email.last_event = kind.split(".", 1)[1]
        email.events.append(kind)
        now = self.ctx.now()
        data: dict[str, Any] = {
            "email_id": email.id,
            "created_at": _iso(email.created_at),
            "from": email.sender,
            "to": list(email.to),
            "subject": email.subject,
            "message_id": email.message_id,
            "tags": {t["name"]: t["value"] for t in email.tags},
        }
        if kind == "email.bounced":
            permanent = bounce_type == "Permanent"
            data["bounce"] = {
                "type": bounce_type,
                "subType": "General" if permanent else "MailboxFull",
                "message": (
                    "The recipient's email provider rejected the message: 550 5.1.1 user unknown."
                    if permanent
                    else "The recipient's mailbox is full: 452 4.2.2 mailbox over quota."
                ),
                "diagnosticCode": [
                    "smtp; 550 5.1.1 user unknown" if permanent else "smtp; 452 4.2.2 over quota"
                ],
            }
        elif kind == "email.clicked":
            data["click"] = {
                "ipAddress": "192.0.2.10",
                "link": "https://cerniq.app/oferta",
                "timestamp": _iso(now),
                "userAgent": "Mozilla/5.0",
            }
        elif kind == "email.failed":
            data["failed"] = {"reason": "reached_daily_quota"}
        elif kind == "email.suppressed":
            data["suppressed"] = {"type": "OnAccountSuppressionList", "message": "The address is suppressed."}
        body = {"type": kind, "created_at": _iso(now), "data": data}
        record = EventRecord(svix_id=f"msg_{uuid.uuid4().hex[:27]}", body=body)
        self.emitted[record.svix_id] = record
        for hook in list(self.webhooks.values()):
            if hook.status == "enabled" and kind in hook.events:
                self.ctx.spawn(self._deliver(hook, record))
        return {"svix_id": record.svix_id, **body}

    async def _deliver(self, hook: WebhookRecord, record: EventRecord) -> None:
        raw = json.dumps(record.body, ensure_ascii=False, separators=(",", ":")).encode()
        attempts = 0
        status: int | None = None
        error: str | None = None
        ok = False
        async with httpx.AsyncClient(timeout=self.ctx.options.webhook_timeout, trust_env=False) as client:
            for wait in (0.0, *RETRY_SCHEDULE):
                if attempts and not await self.ctx.sleep(wait * self.config.retry_scale):
                    break
                attempts += 1
                headers = {
                    "content-type": "application/json",
                    **signature_headers(hook.signing_secret, record.svix_id, int(time.time()), raw),
                }
                try:
                    response = await client.post(hook.endpoint, content=raw, headers=headers)
                except httpx.HTTPError as exc:
                    status, error = None, f"{type(exc).__name__}: {exc}"
                    continue
                status = response.status_code
                if 200 <= status < 300:
                    ok, error = True, None
                    break
                error = f"HTTP {status}"
        if not ok:
            hook.exhausted_deliveries += 1
            if hook.exhausted_deliveries >= self.config.disable_after:
                hook.status = "disabled"
        self.deliveries.append(
            {
                "webhook_id": hook.id,
                "svix_id": record.svix_id,
                "type": record.body["type"],
                "email_id": record.body["data"].get("email_id"),
                "url": hook.endpoint,
                "ok": ok,
                "attempts": attempts,
                "status_code": status,
                "error": error,
                "at": _iso(self.ctx.now()),
            }
        )

    async def _idempotent(self, request: Request, path: str, body: Any, action: Any) -> Any:
        """Run ``action()`` once per key: replay, conflict or execute."""
        key = request.headers.get("idempotency-key")
        if key is None:
            result = action(None)
            await self._after(request, None)
            return result
        if not key or len(key) > 256:
            raise self._error(400, "invalid_idempotency_key", "The key must be between 1-256 chars.")
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        now = time.monotonic()
        for stale in [k for k, r in self.idempotency.items() if now - r.created > IDEMPOTENCY_TTL]:
            del self.idempotency[stale]
        scoped = f"{path}:{key}"
        existing = self.idempotency.get(scoped)
        if existing is not None:
            if existing.fingerprint != fingerprint:
                raise self._error(
                    409,
                    "invalid_idempotent_request",
                    "Same idempotency key used with a different request payload. Change your idempotency "
                    "key or payload.",
                )
            if not existing.done:
                raise self._error(
                    409,
                    "concurrent_idempotent_requests",
                    "Same idempotency key used while original request is still in progress. Try the "
                    "request again later.",
                )
            return existing.response
        record = IdempotencyRecord(path=path, fingerprint=fingerprint, created=now)
        self.idempotency[scoped] = record
        try:
            result = action(key)
        except BaseException:
            del self.idempotency[scoped]
            raise
        record.response = result
        await self._after(request, record)
        return result

    async def _after(self, request: Request, record: IdempotencyRecord | None) -> None:
        fault: Fault | None = getattr(request.state, "fault", None)
        if fault is not None and fault.mode == "hang_after_accept":
            await self.ctx.sleep(fault.delay if fault.delay is not None else self.ctx.options.fault_delay)
        if record is not None:
            record.done = True
        if fault is not None and fault.mode == "drop_after_accept":
            raise LoseResponse()

    # --- vendor API ----------------------------------------------------------------------------

    def _build_api(self) -> None:
        api = self.api

        @api.post("/emails")
        async def send(request: Request) -> Any:
            try:
                body = await request.json()
            except ValueError:
                raise self._error(422, "validation_error", "Invalid JSON body.") from None
            checked = self._validate(body, batch=False)
            return await self._idempotent(
                request, "emails", body, lambda key: {"id": self._create(checked, key).id}
            )

        @api.post("/emails/batch")
        async def batch(request: Request) -> Any:
            try:
                body = await request.json()
            except ValueError:
                raise self._error(422, "validation_error", "Invalid JSON body.") from None
            if not isinstance(body, list) or not body:
                raise self._error(422, "validation_error", "The batch must be a non-empty array.")
            if len(body) > 100:
                raise self._error(422, "validation_error", "A batch has at most 100 emails.")
            permissive = request.headers.get("x-batch-validation", "strict").lower() == "permissive"
            valid: list[tuple[int, dict[str, Any]]] = []
            errors: list[dict[str, Any]] = []
            for index, item in enumerate(body):
                try:
                    valid.append((index, self._validate(item, batch=True)))
                except SandboxHTTPError as exc:
                    if not permissive:
                        raise
                    errors.append({"index": index, "message": exc.body["message"]})

            def create(key: str | None) -> dict[str, Any]:
                ids = [{"id": self._create(item, key).id} for _, item in valid]
                return {"data": ids, "errors": errors} if permissive else {"data": ids}

            return await self._idempotent(request, "emails/batch", body, create)

        @api.get("/emails/{email_id}")
        async def get_email(email_id: str) -> Any:
            email = self.emails.get(email_id)
            if email is None:
                raise self._error(404, "not_found", "Email not found")
            return email.api()

        @api.post("/webhooks")
        async def create_webhook(request: Request) -> Any:
            body = await request.json()
            if not isinstance(body, dict) or not isinstance(body.get("endpoint"), str):
                raise self._error(422, "missing_required_field", "Missing `endpoint` field.")
            events = body.get("events")
            if not isinstance(events, list) or not events or not all(e in EVENT_TYPES for e in events):
                raise self._error(422, "validation_error", "`events` must list email event types.")
            secret = self.fixed_secret or generate_secret(self._rng.randbytes(24))
            hook = WebhookRecord(
                id=str(uuid.uuid4()),
                endpoint=body["endpoint"],
                events=list(events),
                signing_secret=secret,
                created_at=self.ctx.now(),
            )
            self.webhooks[hook.id] = hook
            return {"object": "webhook", "id": hook.id, "signing_secret": hook.signing_secret}

        @api.get("/webhooks")
        async def list_webhooks() -> Any:
            return {"object": "list", "has_more": False, "data": [w.api() for w in self.webhooks.values()]}

        @api.get("/webhooks/{webhook_id}")
        async def get_webhook(webhook_id: str) -> Any:
            return self._webhook_or_404(webhook_id).api(secret=True)

        @api.patch("/webhooks/{webhook_id}")
        async def patch_webhook(webhook_id: str, request: Request) -> Any:
            hook = self._webhook_or_404(webhook_id)
            body = await request.json()
            if isinstance(body.get("endpoint"), str):
                hook.endpoint = body["endpoint"]
            if isinstance(body.get("events"), list):
                hook.events = [str(e) for e in body["events"]]
            if body.get("status") in ("enabled", "disabled"):
                hook.status = body["status"]
                hook.exhausted_deliveries = 0
            return {"object": "webhook", "id": hook.id}

        @api.delete("/webhooks/{webhook_id}")
        async def delete_webhook(webhook_id: str) -> Any:
            hook = self._webhook_or_404(webhook_id)
            del self.webhooks[webhook_id]
            return {"object": "webhook", "id": hook.id, "deleted": True}

    def _webhook_or_404(self, webhook_id: str) -> WebhookRecord:
        hook = self.webhooks.get(webhook_id)
        if hook is None:
            raise self._error(404, "not_found", "Webhook not found")
        return hook

    # --- control API ---------------------------------------------------------------------------

    def _build_control(self) -> None:
        control = self.control

        @control.post("/reset")
        async def reset() -> dict[str, Any]:
            await self.ctx.cancel_background()
            self.reset()
            return {"ok": True}

        @control.get("/state")
        async def state() -> dict[str, Any]:
            return self.snapshot()

        @control.get("/config")
        async def get_config() -> dict[str, Any]:
            return self.config.model_dump()

        @control.post("/config")
        async def set_config(request: Request) -> dict[str, Any]:
            body = await request.json()
            if not isinstance(body, dict):
                raise SandboxHTTPError(422, {"error": "config must be an object"})
            unknown = set(body) - set(ResendConfig.model_fields)
            if unknown:
                raise SandboxHTTPError(422, {"error": f"unknown config keys {sorted(unknown)}"})
            try:
                self.config = ResendConfig.model_validate({**self.config.model_dump(), **body})
            except ValidationError as exc:
                raise SandboxHTTPError(
                    422, {"error": "invalid config", "details": json.loads(exc.json())}
                ) from None
            self._bucket.configure(self.config.rate_per_second, 0)
            return self.config.model_dump()

        @control.get("/faults")
        async def list_faults() -> list[dict[str, Any]]:
            return [f.api() for f in self.faults]

        @control.post("/faults")
        async def add_fault(request: Request) -> dict[str, Any]:
            spec: FaultRequest = _parse_control(FaultRequest, await request.json())
            fault = Fault(
                next(self._fault_ids), spec.mode, spec.count, spec.target, spec.delay, spec.retry_after
            )
            self.faults.append(fault)
            return fault.api()

        @control.delete("/faults")
        async def clear_faults() -> dict[str, Any]:
            self.faults.clear()
            return {"ok": True}

        @control.get("/emails")
        async def emails(to: str | None = None) -> list[dict[str, Any]]:
            out = []
            for email in self.emails.values():
                if to and not any((_address(t) or "").lower() == to.lower() for t in email.to):
                    continue
                out.append(
                    {**email.api(), "events": list(email.events), "idempotency_key": email.idempotency_key}
                )
            return out

        @control.post("/events")
        async def force_event(request: Request) -> dict[str, Any]:
            spec: EventRequest = _parse_control(EventRequest, await request.json())
            email = self.emails.get(spec.email_id)
            if email is None:
                raise SandboxHTTPError(404, {"error": f"email {spec.email_id} not found"})
            return self._event(email, spec.type, spec.bounce_type)

        @control.post("/replay")
        async def replay(request: Request) -> dict[str, Any]:
            spec: ReplayRequest = _parse_control(ReplayRequest, await request.json())
            record = self.emitted.get(spec.svix_id)
            if record is None:
                raise SandboxHTTPError(404, {"error": f"event {spec.svix_id} not found"})
            hooks = [h for h in self.webhooks.values() if record.body["type"] in h.events]
            await asyncio.gather(*(self._deliver(h, record) for h in hooks))
            return {"replayed": len(hooks)}

        @control.get("/webhook-deliveries")
        async def deliveries() -> list[dict[str, Any]]:
            return list(self.deliveries)
