"""Fake TimelinesAI Public API v1.3 (spec/providers.md §1) with behaviour and fault controls.

Vendor API under ``/timelinesai`` (so a client's base URL is ``http://127.0.0.1:<port>/timelinesai``):
``GET /whatsapp_accounts``, ``POST /messages``, ``POST /chats/{id}/messages``, ``GET /chats``,
``GET /chats/{id}``, ``GET /chats/{id}/messages``, ``GET /messages/{uid}``,
``GET /messages/{uid}/status_history``, ``GET|POST /webhooks``, ``GET|PUT|DELETE /webhooks/{id}``.

Controls under ``/_control/timelinesai`` (JSON): ``reset``, ``state``, ``accounts``, ``faults``,
``messages``, ``reply``, ``config``, ``operator-message``, ``webhook-deliveries``.

Behaviour: Bearer token check; accounts ``+40700000001``... in state connected, disconnected,
suspended or banned (the last two list as ``disconnected``); sends accepted at once and then
``Pending -> Sent -> Delivered -> Read`` by configured delays, computed when read (recipients
matching ``invalid_phone_pattern`` end ``Failed``); ``message:sent:new`` to subscribers after
each accepted send, and seeded Romanian replies (``message:received:new``) with a configured
probability, delay and mix; 30 req/s + 10 burst, then 429. Webhook deliveries run in the
background: 5 s timeout, 3 attempts, ``errors_counter`` bumped on failure, never disabled.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cerniq.providers.timelinesai.schemas import format_timestamp
from cerniq.sandbox.replies import REPLIES, pick_reply, pick_reply_kind
from cerniq.sandbox.state import (
    LoseResponse,
    SandboxContext,
    SandboxHTTPError,
    StatusDelays,
    TokenBucket,
)

__all__ = [
    "AccountChange",
    "FaultRequest",
    "OperatorMessage",
    "ReplyRequest",
    "TimelinesAIConfig",
    "TimelinesAISandbox",
]

PAGE_SIZE = 50
WEBHOOK_LIMIT = 10
CHAT_URL = "https://app.timelines.ai/chat/{chat_id}/messages/"
AccountState = Literal["connected", "disconnected", "suspended", "banned"]
FaultMode = Literal[
    "http_429",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "timeout",
    "drop_after_accept",
    "hang_after_accept",
    "ban",
]
EVENT_TYPES = frozenset(
    {
        "message:new",
        "message:received:new",
        "message:sent:new",
        "message:reaction",
        "chat:new",
        "chat:incoming:new",
        "chat:outgoing:new",
        "chat:responsible:assigned",
        "chat:responsible:unassigned",
        "whatsapp:account:connected",
        "whatsapp:account:disconnected",
        "whatsapp:account:suspended",
        "whatsapp:account:resumed",
        "call:incoming:missed",
        "call:incoming:ended",
        "call:outgoing:ended",
    }
)
BodyT = TypeVar("BodyT", bound=BaseModel)
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_PHONE_NOISE = re.compile(r"[\s\-().]")


# --- records ---------------------------------------------------------------------------------


@dataclass
class Account:
    """A WhatsApp number of the fake workspace."""

    phone: str
    account_name: str
    owner_name: str
    owner_email: str
    state: AccountState
    connected_on: datetime
    disconnected_on: datetime | None = None
    connected_seq: int = 0

    @property
    def jid(self) -> str:
        return f"{self.phone.lstrip('+')}@s.whatsapp.net"

    @property
    def api_status(self) -> str:
        # The contract's status is binary: suspended and banned accounts read "disconnected".
        return "active" if self.state == "connected" else "disconnected"

    def api(self) -> dict[str, Any]:
        return {
            "id": self.jid,
            "phone": self.phone,
            "connected_on": format_timestamp(self.connected_on),
            "status": self.api_status,
            "owner_name": self.owner_name,
            "owner_email": self.owner_email,
            "account_name": self.account_name,
        }

    def event_view(self) -> dict[str, Any]:
        view = self.api()
        if self.disconnected_on is not None:
            view["disconnected_on"] = format_timestamp(self.disconnected_on)
        return view

    def party(self) -> dict[str, Any]:
        return {"full_name": self.owner_name, "phone": self.phone}


@dataclass
class ChatRecord:
    """A direct chat between one account and one contact phone."""

    id: int
    account_phone: str
    phone: str
    name: str
    created_at: datetime
    last_seq: int = 0
    last_message_uid: str | None = None
    last_message_at: datetime | None = None
    outbound_api_count: int = 0
    message_uids: list[str] = field(default_factory=list)


@dataclass
class MessageRecord:
    """One message; an outbound message's status is derived from its age when read."""

    uid: str
    seq: int
    chat_id: int
    account_phone: str
    contact_phone: str
    from_me: bool
    text: str
    origin: str
    created_at: datetime
    created_mono: float
    delays: StatusDelays | None
    """Seconds to Sent/Delivered/Read (already time-scaled); None for inbound messages."""
    failure_reason: str | None = None
    read_offset: float | None = None
    """Seconds after creation at which a reply forced Read (people read before answering)."""
    reply_to: str | None = None

    def history(self, now_mono: float) -> list[tuple[str, datetime, str | None]]:
        """``(status, timestamp, failure_reason)`` steps reached by ``now_mono``."""
        if self.delays is None:
            return [("Delivered", self.created_at, None)]
        elapsed = now_mono - self.created_mono
        steps: list[tuple[str, datetime, str | None]] = [("Pending", self.created_at, None)]
        if self.failure_reason is not None:
            if elapsed >= self.delays.sent:
                at = self.created_at + timedelta(seconds=self.delays.sent)
                steps.append(("Failed", at, self.failure_reason))
            return steps
        cap = self.read_offset if self.read_offset is not None else float("inf")
        for status, offset in (
            ("Sent", self.delays.sent),
            ("Delivered", self.delays.delivered),
            ("Read", self.delays.read),
        ):
            offset = min(offset, cap)
            if elapsed >= offset:
                steps.append((status, self.created_at + timedelta(seconds=offset), None))
        return steps


@dataclass
class WebhookSub:
    """A webhook subscription."""

    id: int
    event_type: str
    url: str
    enabled: bool = True
    errors_counter: int = 0

    def api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_type": self.event_type,
            "enabled": self.enabled,
            "url": self.url,
            "errors_counter": self.errors_counter,
        }


@dataclass
class Fault:
    """An injected failure for the next ``remaining`` matching requests."""

    id: int
    mode: FaultMode
    remaining: int
    account_phone: str | None
    target: Literal["send", "read", "any"]
    delay: float | None
    retry_after: float | None

    def api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mode": self.mode,
            "remaining": self.remaining,
            "account_phone": self.account_phone,
            "target": self.target,
            "delay": self.delay,
            "retry_after": self.retry_after,
        }


# --- control request bodies ------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountChange(_Body):
    """``POST /_control/timelinesai/accounts``: add an account or change its state."""

    phone: str
    state: AccountState = "connected"
    account_name: str | None = None


class FaultRequest(_Body):
    """``POST /_control/timelinesai/faults``."""

    mode: FaultMode
    count: int = Field(default=1, ge=1)
    account_phone: str | None = None
    target: Literal["send", "read", "any"] = "send"
    """Which requests it hits: sends (default), GETs, or both."""
    delay: float | None = Field(default=None, ge=0)
    """Seconds ``timeout`` / ``hang_after_accept`` hold the request (default: option fault_delay)."""
    retry_after: float | None = Field(default=None, ge=0)
    """For ``http_429`` / ``http_503``: send a ``Retry-After`` header with this many seconds."""


class ReplyRequest(_Body):
    """``POST /_control/timelinesai/reply``: the contact answers now."""

    chat_id: int | None = None
    phone: str | None = None
    account_phone: str | None = None
    text: str | None = None
    kind: str | None = None


class OperatorMessage(_Body):
    """``POST /_control/timelinesai/operator-message``: typed on the phone itself, not via the API."""

    phone: str
    text: str
    account_phone: str | None = None


class TimelinesAIConfig(BaseModel):
    """Behaviour settings changeable at run time (``POST /_control/timelinesai/config``)."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    reply_probability: float = Field(default=0.3, ge=0, le=1)
    reply_delay: float = Field(default=2.0, ge=0)
    reply_mix: dict[str, float]
    status_delays: StatusDelays = Field(default_factory=StatusDelays)
    rate_limit_enabled: bool = True
    rate_limit_per_second: float = Field(default=30.0, gt=0)
    rate_limit_burst: int = Field(default=10, ge=0)
    invalid_phone_pattern: str = r"0000$"
    time_scale: float = Field(default=1.0, gt=0)

    @field_validator("reply_mix")
    @classmethod
    def _known_kinds(cls, mix: dict[str, float]) -> dict[str, float]:
        unknown = set(mix) - set(REPLIES)
        if unknown:
            raise ValueError(f"unknown reply kinds {sorted(unknown)}; known: {sorted(REPLIES)}")
        if any(weight < 0 for weight in mix.values()):
            raise ValueError("reply weights must be >= 0")
        return mix

    @field_validator("invalid_phone_pattern")
    @classmethod
    def _regex(cls, pattern: str) -> str:
        re.compile(pattern)
        return pattern


# --- helpers ---------------------------------------------------------------------------------


def _error(status: int, message: str, code: str, fields: list[str] | None = None) -> SandboxHTTPError:
    body: dict[str, Any] = {"status": "error", "message": message, "error_code": code}
    if fields:
        body["errors"] = [{"fields": fields, "msg": message}]
    return SandboxHTTPError(status, body)


def _ok(data: Any) -> dict[str, Any]:
    return {"status": "ok", "data": data}


def _sanitize_phone(value: Any) -> str:
    text = _PHONE_NOISE.sub("", str(value or ""))
    if text.startswith("00"):
        text = "+" + text[2:]
    return text


def _query_phone(raw: str) -> str:
    # A raw "+" in a query string decodes to a space: read a leading space as "+".
    if raw[:1] == " " and raw.strip()[:1].isdigit():
        raw = "+" + raw.strip()
    return _sanitize_phone(raw)


def _page(value: str | None) -> int:
    if value in (None, ""):
        return 1
    try:
        page = int(value)
    except ValueError:
        raise _error(400, "page must be an integer", "validation_error", ["page"]) from None
    if page < 1:
        raise _error(400, "page must be >= 1", "validation_error", ["page"])
    return page


def _paginate(items: list[Any], page: int) -> tuple[list[Any], bool]:
    start = (page - 1) * PAGE_SIZE
    return items[start : start + PAGE_SIZE], len(items) > start + PAGE_SIZE


def _bool_param(value: str | None, name: str) -> bool | None:
    if value in (None, ""):
        return None
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise _error(400, f"{name} must be true or false", "validation_error", [name])


def _parse_when(value: str | None, name: str, tz: ZoneInfo, *, end_of_day: bool) -> datetime | None:
    if value in (None, ""):
        return None
    text = value.strip()
    if text[:1] == " " or (len(text) > 19 and text[19:20] == " "):
        text = text.replace(" ", "+")
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).date()
            return datetime.combine(day, dtime.max if end_of_day else dtime.min, tzinfo=tz)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _error(400, f"{name} must be an ISO date or datetime", "validation_error", [name]) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _error(400, "Request body must be valid JSON", "validation_error") from None
    if not isinstance(body, dict):
        raise _error(400, "Request body must be a JSON object", "validation_error")
    return body


def _parse_control(model: type[BodyT], body: dict[str, Any]) -> BodyT:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise SandboxHTTPError(
            422, {"error": "invalid control request", "details": json.loads(exc.json())}
        ) from None


# --- the fake --------------------------------------------------------------------------------


class TimelinesAISandbox:
    """The fake TimelinesAI workspace: state, vendor API router and control router."""

    name = "timelinesai"

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.api = APIRouter(dependencies=[Depends(self._guard)])
        self.control = APIRouter()
        self._bucket = TokenBucket(1.0, 0)
        self._build_api()
        self._build_control()
        self.reset()

    # --- state ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to start-up: the option's accounts, no chats, messages, webhooks or faults."""
        options = self.ctx.options
        self.config = TimelinesAIConfig(
            reply_probability=options.reply_probability,
            reply_delay=options.reply_delay,
            reply_mix=dict(options.reply_mix),
            status_delays=options.status_delays.model_copy(),
            rate_limit_enabled=options.rate_limit_enabled,
            rate_limit_per_second=options.timelinesai_rate_per_second,
            rate_limit_burst=options.timelinesai_rate_burst,
            invalid_phone_pattern=options.invalid_phone_pattern,
            time_scale=options.time_scale,
        )
        self._bucket.configure(self.config.rate_limit_per_second, self.config.rate_limit_burst)
        self.token = options.timelinesai_token
        self.accounts: dict[str, Account] = {}
        self.chats: dict[int, ChatRecord] = {}
        self._chat_index: dict[tuple[str, str], int] = {}
        self.messages: dict[str, MessageRecord] = {}
        self.webhooks: dict[int, WebhookSub] = {}
        self.faults: list[Fault] = []
        self.deliveries: list[dict[str, Any]] = []
        self._seq = itertools.count(1)
        self._chat_ids = itertools.count(1_000_001)
        self._webhook_ids = itertools.count(789_001)
        self._fault_ids = itertools.count(1)
        self._replies = random.Random(f"{options.seed}:manual-replies")
        for n in range(1, options.accounts + 1):
            self._add_account(f"+40700{n:06d}", "connected", None)

    def snapshot(self) -> dict[str, Any]:
        """Counts and lists for ``GET /_control/state``."""
        return {
            "accounts": [self._control_account(a) for a in self.accounts.values()],
            "chats": len(self.chats),
            "messages": {
                "outbound": sum(1 for m in self.messages.values() if m.from_me),
                "inbound": sum(1 for m in self.messages.values() if not m.from_me),
            },
            "webhooks": [w.api() for w in self.webhooks.values()],
            "faults": [f.api() for f in self.faults],
            "config": self.config.model_dump(),
            "deliveries": len(self.deliveries),
        }

    def _add_account(self, phone: str, state: AccountState, name: str | None) -> Account:
        n = len(self.accounts) + 1
        account = Account(
            phone=phone,
            account_name=name or f"Cerniq Sales {n}",
            owner_name=f"Operator Vânzări {n}",
            owner_email=f"vanzari{n}@cerniq.example",
            state=state,
            connected_on=self.ctx.now(),
            disconnected_on=None if state == "connected" else self.ctx.now(),
            connected_seq=next(self._seq),
        )
        self.accounts[phone] = account
        return account

    @staticmethod
    def _control_account(account: Account) -> dict[str, Any]:
        return {**account.api(), "state": account.state}

    def _scaled(self, seconds: float) -> float:
        return seconds * self.config.time_scale

    # --- guard: rate limit, auth, read faults ------------------------------------------------

    async def _guard(self, request: Request) -> None:
        if self.config.rate_limit_enabled and not self._bucket.allow():
            raise SandboxHTTPError(
                429, {"error": "Too Many Requests", "message": "Rate limit exceeded. Please retry later."}
            )
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise SandboxHTTPError(
                401,
                {"status": "error", "message": "Missing credentials", "error_code": "missing_credentials"},
            )
        if scheme.lower() != "bearer" or token.strip() != self.token:
            raise SandboxHTTPError(
                401, {"status": "error", "message": "Invalid or expired token", "error_code": "invalid_token"}
            )
        if request.method == "GET":
            fault = self._take_fault("read", None)
            if fault is not None:
                await self._before_accept(fault, None)
                if fault.mode in ("drop_after_accept", "hang_after_accept"):
                    await self._after_accept(fault)

    # --- faults -------------------------------------------------------------------------------

    def _take_fault(self, kind: Literal["send", "read"], account_phone: str | None) -> Fault | None:
        for fault in self.faults:
            if fault.target not in (kind, "any"):
                continue
            if fault.account_phone is not None and fault.account_phone != account_phone:
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.faults.remove(fault)
            return fault
        return None

    async def _before_accept(self, fault: Fault | None, account: Account | None) -> None:
        """Apply the part of a fault that happens before the vendor accepts anything."""
        if fault is None:
            return
        retry = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        if fault.mode == "http_429":
            raise SandboxHTTPError(
                429,
                {"error": "Too Many Requests", "message": "Rate limit exceeded. Please retry later."},
                retry,
            )
        if fault.mode == "http_500":
            raise _error(500, "Internal server error", "internal_error")
        if fault.mode in ("http_502", "http_503", "http_504"):
            status = int(fault.mode[5:])
            text = {502: "502 Bad Gateway", 503: "503 Service Unavailable", 504: "504 Gateway Time-out"}
            raise SandboxHTTPError(status, f"<html><body><h1>{text[status]}</h1></body></html>", retry)
        if fault.mode == "timeout":
            await self.ctx.sleep(fault.delay if fault.delay is not None else self.ctx.options.fault_delay)
            raise SandboxHTTPError(504, "<html><body><h1>504 Gateway Time-out</h1></body></html>")
        if fault.mode == "ban" and account is not None:
            self._set_state(account, "banned")

    async def _after_accept(self, fault: Fault | None) -> None:
        """Apply the part of a fault that happens after the vendor accepted the request."""
        if fault is None:
            return
        if fault.mode == "drop_after_accept":
            raise LoseResponse()
        if fault.mode == "hang_after_accept":
            await self.ctx.sleep(fault.delay if fault.delay is not None else self.ctx.options.fault_delay)

    # --- accounts ------------------------------------------------------------------------------

    def _resolve_account(self, phone: Any) -> Account:
        if phone in (None, ""):
            connected = [a for a in self.accounts.values() if a.state == "connected"]
            if not connected:
                raise _error(400, "No connected WhatsApp account", "account_inactive")
            return max(connected, key=lambda a: a.connected_seq)
        account = self.accounts.get(_sanitize_phone(phone))
        if account is None:
            raise _error(404, f"WhatsApp account {phone} not found", "not_found", ["whatsapp_account_phone"])
        return account

    @staticmethod
    def _check_can_send(account: Account) -> None:
        if account.state == "banned":
            raise _error(
                403,
                f"WhatsApp account {account.phone} is banned: WhatsApp blocked this number",
                "account_inactive",
            )
        if account.state != "connected":
            raise _error(400, f"WhatsApp account {account.phone} is not connected", "account_inactive")

    def _set_state(self, account: Account, state: AccountState) -> None:
        previous = account.state
        if previous == state:
            return
        account.state = state
        if state == "connected":
            account.connected_on = self.ctx.now()
            account.disconnected_on = None
            account.connected_seq = next(self._seq)
            event = "whatsapp:account:resumed" if previous == "suspended" else "whatsapp:account:connected"
        else:
            account.disconnected_on = self.ctx.now()
            event = "whatsapp:account:suspended" if state == "suspended" else "whatsapp:account:disconnected"
        self._emit(event, {"event_type": event, "whatsapp_account": account.event_view()})

    # --- chats and messages -----------------------------------------------------------------

    def _chat_for(self, account: Account, phone: str, name: str | None = None) -> ChatRecord:
        existing = self._chat_index.get((account.phone, phone))
        if existing is not None:
            return self.chats[existing]
        chat = ChatRecord(
            id=next(self._chat_ids),
            account_phone=account.phone,
            phone=phone,
            name=name or phone,
            created_at=self.ctx.now(),
        )
        self.chats[chat.id] = chat
        self._chat_index[(account.phone, phone)] = chat.id
        return chat

    def _record(
        self, chat: ChatRecord, *, from_me: bool, text: str, origin: str, reply_to: str | None = None
    ) -> MessageRecord:
        delays = None
        failure = None
        if from_me:
            configured = self.config.status_delays
            delays = StatusDelays(
                sent=self._scaled(configured.sent),
                delivered=self._scaled(configured.delivered),
                read=self._scaled(configured.read),
            )
            if re.search(self.config.invalid_phone_pattern, chat.phone):
                failure = "Phone number is not registered on WhatsApp"
        message = MessageRecord(
            uid=str(uuid.uuid4()),
            seq=next(self._seq),
            chat_id=chat.id,
            account_phone=chat.account_phone,
            contact_phone=chat.phone,
            from_me=from_me,
            text=text,
            origin=origin,
            created_at=self.ctx.now(),
            created_mono=time.monotonic(),
            delays=delays,
            failure_reason=failure,
            reply_to=reply_to,
        )
        self.messages[message.uid] = message
        chat.message_uids.append(message.uid)
        chat.last_seq = message.seq
        chat.last_message_uid = message.uid
        chat.last_message_at = message.created_at
        return message

    def _accept_send(self, chat: ChatRecord, text: str, reply_to: str | None) -> MessageRecord:
        """Record an API send, announce it, and maybe schedule the contact's reply."""
        message = self._record(chat, from_me=True, text=text, origin="Public API", reply_to=reply_to)
        self._emit_message("message:sent:new", chat, message)
        chat.outbound_api_count += 1
        if message.failure_reason is None:
            rng = random.Random(
                f"{self.ctx.options.seed}:{chat.account_phone}:{chat.phone}:{chat.outbound_api_count}"
            )
            if rng.random() < self.config.reply_probability:
                kind = pick_reply_kind(rng, self.config.reply_mix)
                text = pick_reply(rng, kind)
                self.ctx.spawn(
                    self._reply_later(chat.id, message.uid, self._scaled(self.config.reply_delay), text)
                )
        return message

    async def _reply_later(self, chat_id: int, outbound_uid: str, delay: float, text: str) -> None:
        if not await self.ctx.sleep(delay):
            return
        chat = self.chats.get(chat_id)
        if chat is None or self.accounts[chat.account_phone].state != "connected":
            return
        self._inbound(chat, text, replying_to=self.messages.get(outbound_uid))

    def _inbound(
        self, chat: ChatRecord, text: str, replying_to: MessageRecord | None = None
    ) -> MessageRecord:
        if replying_to is None:
            outbound = [self.messages[uid] for uid in chat.message_uids if self.messages[uid].from_me]
            replying_to = outbound[-1] if outbound else None
        if replying_to is not None and replying_to.read_offset is None and replying_to.failure_reason is None:
            replying_to.read_offset = time.monotonic() - replying_to.created_mono
        message = self._record(chat, from_me=False, text=text, origin="WhatsApp")
        self._emit_message("message:received:new", chat, message)
        return message

    def _message_api(self, message: MessageRecord) -> dict[str, Any]:
        chat = self.chats[message.chat_id]
        account = self.accounts[message.account_phone]
        me = {"phone": account.phone, "name": account.owner_name}
        contact = {"phone": chat.phone, "name": chat.name}
        sender, recipient = (me, contact) if message.from_me else (contact, me)
        history = message.history(time.monotonic())
        status, _, reason = history[-1]
        data: dict[str, Any] = {
            "uid": message.uid,
            "chat_id": message.chat_id,
            "timestamp": format_timestamp(message.created_at),
            "received_timestamp": format_timestamp(message.created_at),
            "sender_phone": sender["phone"],
            "sender_name": sender["name"],
            "recipient_phone": recipient["phone"],
            "recipient_name": recipient["name"],
            "from_me": message.from_me,
            "text": message.text,
            "attachment_url": None,
            "attachment_filename": None,
            "status": status,
            "origin": message.origin,
            "has_attachment": False,
            "message_type": "whatsapp",
            "reactions": {},
            "data": {},
            "created_by": account.owner_name if message.from_me else None,
        }
        if reason is not None:
            data["failure_reason"] = reason
        return data

    def _chat_api(self, chat: ChatRecord) -> dict[str, Any]:
        account = self.accounts[chat.account_phone]
        return {
            "id": chat.id,
            "name": chat.name,
            "phone": chat.phone,
            "jid": f"{chat.phone.lstrip('+')}@s.whatsapp.net",
            "is_group": False,
            "closed": False,
            "read": True,
            "labels": [],
            "chatgpt_autoresponse_enabled": False,
            "responsible_email": None,
            "responsible_name": None,
            "whatsapp_account_id": account.jid,
            "chat_url": CHAT_URL.format(chat_id=chat.id),
            "created_timestamp": format_timestamp(chat.created_at),
            "last_message_uid": chat.last_message_uid,
            "last_message_timestamp": (
                format_timestamp(chat.last_message_at) if chat.last_message_at is not None else None
            ),
            "unattended": False,
            "photo": None,
            "group_members": [],
            "is_allowed_to_message": account.state == "connected",
        }

    # --- webhooks out ------------------------------------------------------------------------

    def _emit_message(self, event_type: str, chat: ChatRecord, message: MessageRecord) -> None:
        account = self.accounts[chat.account_phone]
        contact = {"full_name": chat.name, "phone": chat.phone}
        sender, recipient = (account.party(), contact) if message.from_me else (contact, account.party())
        body_message: dict[str, Any] = {
            "text": message.text,
            "direction": "sent" if message.from_me else "received",
            "origin": message.origin,
            "timestamp": format_timestamp(message.created_at),
            "received_timestamp": format_timestamp(message.created_at),
            "message_uid": message.uid,
            "sender": sender,
            "recipient": recipient,
        }
        if message.reply_to:
            body_message["reply_to_uid"] = message.reply_to
        self._emit(
            event_type,
            {
                "event_type": event_type,
                "chat": {
                    "full_name": chat.name,
                    "chat_url": CHAT_URL.format(chat_id=chat.id),
                    "chat_id": chat.id,
                    "is_group": False,
                    "phone": chat.phone,
                },
                "whatsapp_account": {
                    "full_name": account.owner_name,
                    "email": account.owner_email,
                    "phone": account.phone,
                },
                "message": body_message,
            },
        )

    def _emit(self, event_type: str, body: dict[str, Any]) -> None:
        """Deliver ``body`` in the background to every enabled subscription of ``event_type``."""
        for sub in list(self.webhooks.values()):
            wanted = sub.event_type == event_type or (
                sub.event_type == "message:new"
                and event_type.startswith("message:")
                and event_type.endswith(":new")
            )
            if sub.enabled and wanted:
                self.ctx.spawn(self._deliver(sub, {**body, "event_type": sub.event_type}))

    async def _deliver(self, sub: WebhookSub, body: dict[str, Any]) -> None:
        result = await self.ctx.post_webhook(sub.url, body)
        if result.ok:
            sub.errors_counter = 0
        else:
            sub.errors_counter += 1  # never disabled, per the contract
        message = body.get("message") or {}
        self.deliveries.append(
            {
                "webhook_id": sub.id,
                "event_type": body["event_type"],
                "url": sub.url,
                "ok": result.ok,
                "attempts": result.attempts,
                "status_code": result.status_code,
                "error": result.error,
                "message_uid": message.get("message_uid"),
                "at": format_timestamp(self.ctx.now()),
            }
        )

    # --- vendor API ----------------------------------------------------------------------------

    def _build_api(self) -> None:
        api = self.api

        @api.get("/whatsapp_accounts")
        async def list_accounts(page: str | None = None) -> dict[str, Any]:
            # The published spec shows no paging here; we page it like every other list (50).
            items, more = _paginate([a.api() for a in self.accounts.values()], _page(page))
            return _ok({"whatsapp_accounts": items, "has_more_pages": more})

        @api.post("/messages")
        async def send_to_phone(request: Request) -> Any:
            body = await _json_object(request)
            phone = _sanitize_phone(body.get("phone"))
            if not phone:
                raise _error(400, "phone is required", "validation_error", ["phone"])
            if not _E164.match(phone):
                raise _error(400, "Invalid phone number format", "validation_error", ["phone"])
            text = body.get("text")
            if not isinstance(text, str) or not text.strip():
                raise _error(400, "text is required", "validation_error", ["text"])
            account = self._resolve_account(body.get("whatsapp_account_phone"))
            fault = self._take_fault("send", account.phone)
            await self._before_accept(fault, account)
            self._check_can_send(account)
            chat_name = body.get("chat_name") if isinstance(body.get("chat_name"), str) else None
            message = self._accept_send(self._chat_for(account, phone, chat_name), text, None)
            await self._after_accept(fault)
            return _ok({"message_uid": message.uid})

        @api.post("/chats/{chat_id}/messages")
        async def send_in_chat(chat_id: str, request: Request) -> Any:
            chat = self._chat_or_404(chat_id)
            body = await _json_object(request)
            text = body.get("text")
            if not isinstance(text, str) or not text.strip():
                raise _error(400, "text is required", "validation_error", ["text"])
            reply_to = body.get("reply_to") or None
            if reply_to is not None and reply_to not in self.messages:
                raise _error(404, "reply_to message not found", "not_found", ["reply_to"])
            account = self.accounts[chat.account_phone]
            fault = self._take_fault("send", account.phone)
            await self._before_accept(fault, account)
            self._check_can_send(account)
            message = self._accept_send(chat, text, reply_to)
            await self._after_accept(fault)
            return _ok({"message_uid": message.uid})

        @api.get("/chats")
        async def list_chats(request: Request) -> Any:
            query = request.query_params
            chats = sorted(self.chats.values(), key=lambda c: (-c.last_seq, c.name))
            if query.get("phone"):
                wanted = _query_phone(query["phone"])
                if wanted.startswith("+"):
                    chats = [c for c in chats if c.phone == wanted]
                else:
                    digits = wanted.lstrip("0")
                    chats = [c for c in chats if digits and digits in c.phone]
            if query.get("whatsapp_account_id"):
                jids = {j.strip() for j in query["whatsapp_account_id"].split(",") if j.strip()}
                chats = [c for c in chats if self.accounts[c.account_phone].jid in jids]
            if query.get("whatsapp_phone"):
                phones = {_query_phone(p) for p in query["whatsapp_phone"].split(",") if p.strip()}
                chats = [c for c in chats if c.account_phone in phones]
            if query.get("name"):
                needles = [n.strip().lower() for n in query["name"].split(",") if n.strip()]
                chats = [c for c in chats if any(n in c.name.lower() for n in needles)]
            items, more = _paginate(chats, _page(query.get("page")))
            return _ok({"has_more_pages": more, "chats": [self._chat_api(c) for c in items]})

        @api.get("/chats/{chat_id}")
        async def get_chat(chat_id: str) -> Any:
            return _ok(self._chat_api(self._chat_or_404(chat_id)))

        @api.get("/chats/{chat_id}/messages")
        async def chat_messages(chat_id: str, request: Request) -> Any:
            chat = self._chat_or_404(chat_id)
            query = request.query_params
            tz = ZoneInfo(self.ctx.options.timezone)
            from_me = _bool_param(query.get("from_me"), "from_me")
            after = _parse_when(query.get("after"), "after", tz, end_of_day=False)
            before = _parse_when(query.get("before"), "before", tz, end_of_day=True)
            order = (query.get("sorting_order") or "desc").lower()
            if order not in ("asc", "desc"):
                raise _error(400, "sorting_order must be asc or desc", "validation_error", ["sorting_order"])
            messages = [self.messages[uid] for uid in chat.message_uids]
            if from_me is not None:
                messages = [m for m in messages if m.from_me is from_me]
            if after is not None:
                messages = [m for m in messages if m.created_at >= after]
            if before is not None:
                messages = [m for m in messages if m.created_at <= before]
            for key, keep_after in (("after_message", True), ("before_message", False)):
                uid = query.get(key)
                if uid:
                    pivot = self.messages.get(uid)
                    if pivot is None:
                        raise _error(404, f"{key} not found", "not_found", [key])
                    messages = [
                        m for m in messages if (m.seq > pivot.seq) == keep_after and m.seq != pivot.seq
                    ]
            messages.sort(key=lambda m: m.seq, reverse=order == "desc")
            items, more = _paginate(messages, _page(query.get("page")))
            return _ok({"has_more_pages": more, "messages": [self._message_api(m) for m in items]})

        @api.get("/messages/{uid}")
        async def get_message(uid: str) -> Any:
            return _ok(self._message_api(self._message_or_404(uid)))

        @api.get("/messages/{uid}/status_history")
        async def status_history(uid: str) -> Any:
            message = self._message_or_404(uid)
            steps = []
            for status, at, reason in message.history(time.monotonic()):
                step: dict[str, Any] = {"status": status, "timestamp": format_timestamp(at)}
                if reason is not None:
                    step["failure_reason"] = reason
                steps.append(step)
            return _ok(steps)

        @api.get("/webhooks")
        async def list_webhooks() -> Any:
            return _ok([w.api() for w in sorted(self.webhooks.values(), key=lambda w: w.id)])

        @api.post("/webhooks")
        async def create_webhook(request: Request) -> Any:
            body = await _json_object(request)
            event_type, url, enabled = self._webhook_fields(body, partial=False)
            if len(self.webhooks) >= WEBHOOK_LIMIT:
                raise _error(400, f"Webhooks limit ({WEBHOOK_LIMIT}) reached", "quota_exceeded")
            sub = WebhookSub(
                id=next(self._webhook_ids),
                event_type=event_type or "",
                url=url or "",
                enabled=True if enabled is None else enabled,
            )
            self.webhooks[sub.id] = sub
            return _ok(sub.api())

        @api.get("/webhooks/{webhook_id}")
        async def get_webhook(webhook_id: str) -> Any:
            return _ok(self._webhook_or_404(webhook_id).api())

        @api.put("/webhooks/{webhook_id}")
        async def update_webhook(webhook_id: str, request: Request) -> Any:
            sub = self._webhook_or_404(webhook_id)
            event_type, url, enabled = self._webhook_fields(await _json_object(request), partial=True)
            sub.event_type = event_type or sub.event_type
            sub.url = url or sub.url
            sub.enabled = sub.enabled if enabled is None else enabled
            return _ok(sub.api())

        @api.delete("/webhooks/{webhook_id}")
        async def delete_webhook(webhook_id: str) -> Any:
            sub = self._webhook_or_404(webhook_id)
            del self.webhooks[sub.id]
            return {"status": "ok"}

    @staticmethod
    def _webhook_fields(body: dict[str, Any], *, partial: bool) -> tuple[str | None, str | None, bool | None]:
        event_type = body.get("event_type")
        url = body.get("url")
        enabled = body.get("enabled")
        check_event = event_type is not None or not partial
        if check_event and event_type not in EVENT_TYPES:
            raise _error(400, f"Unsupported event_type {event_type!r}", "validation_error", ["event_type"])
        check_url = url is not None or not partial
        if check_url and (
            not isinstance(url, str) or len(url) > 4096 or not re.match(r"^https?://[^\s/]+", url)
        ):
            raise _error(
                400, "url must be an http(s) URL of at most 4096 characters", "validation_error", ["url"]
            )
        if enabled is not None and not isinstance(enabled, bool):
            raise _error(400, "enabled must be a boolean", "validation_error", ["enabled"])
        return event_type, url, enabled

    def _chat_or_404(self, chat_id: str) -> ChatRecord:
        try:
            chat = self.chats.get(int(chat_id))
        except ValueError:
            chat = None
        if chat is None:
            raise _error(404, f"Chat {chat_id} not found", "not_found")
        return chat

    def _message_or_404(self, uid: str) -> MessageRecord:
        message = self.messages.get(uid)
        if message is None:
            raise _error(404, f"Message {uid} not found", "not_found")
        return message

    def _webhook_or_404(self, webhook_id: str) -> WebhookSub:
        try:
            sub = self.webhooks.get(int(webhook_id))
        except ValueError:
            sub = None
        if sub is None:
            raise _error(404, f"Webhook {webhook_id} not found", "not_found")
        return sub

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

        @control.get("/accounts")
        async def accounts() -> list[dict[str, Any]]:
            return [self._control_account(a) for a in self.accounts.values()]

        @control.post("/accounts")
        async def change_account(request: Request) -> dict[str, Any]:
            change = _parse_control(AccountChange, await _json_object(request))
            phone = _sanitize_phone(change.phone)
            if not _E164.match(phone):
                raise SandboxHTTPError(422, {"error": f"phone {change.phone!r} is not E.164"})
            account = self.accounts.get(phone)
            if account is None:
                account = self._add_account(phone, change.state, change.account_name)
                if change.state == "connected":
                    self._emit(
                        "whatsapp:account:connected",
                        {
                            "event_type": "whatsapp:account:connected",
                            "whatsapp_account": account.event_view(),
                        },
                    )
            else:
                if change.account_name:
                    account.account_name = change.account_name
                self._set_state(account, change.state)
            return self._control_account(account)

        @control.get("/faults")
        async def list_faults() -> list[dict[str, Any]]:
            return [f.api() for f in self.faults]

        @control.post("/faults")
        async def add_fault(request: Request) -> dict[str, Any]:
            spec = _parse_control(FaultRequest, await _json_object(request))
            fault = Fault(
                id=next(self._fault_ids),
                mode=spec.mode,
                remaining=spec.count,
                account_phone=_sanitize_phone(spec.account_phone) if spec.account_phone else None,
                target=spec.target,
                delay=spec.delay,
                retry_after=spec.retry_after,
            )
            self.faults.append(fault)
            return fault.api()

        @control.delete("/faults")
        async def clear_faults() -> dict[str, Any]:
            self.faults.clear()
            return {"ok": True}

        @control.get("/messages")
        async def list_messages(
            phone: str | None = None,
            account_phone: str | None = None,
            chat_id: int | None = None,
            direction: Literal["outbound", "inbound", "all"] = "outbound",
        ) -> list[dict[str, Any]]:
            wanted_phone = _query_phone(phone) if phone else None
            wanted_account = _query_phone(account_phone) if account_phone else None
            out = []
            for message in sorted(self.messages.values(), key=lambda m: m.seq):
                if direction == "outbound" and not message.from_me:
                    continue
                if direction == "inbound" and message.from_me:
                    continue
                if wanted_phone and message.contact_phone != wanted_phone:
                    continue
                if wanted_account and message.account_phone != wanted_account:
                    continue
                if chat_id is not None and message.chat_id != chat_id:
                    continue
                out.append({**self._message_api(message), "account_phone": message.account_phone})
            return out

        @control.get("/webhook-deliveries")
        async def deliveries() -> list[dict[str, Any]]:
            return list(self.deliveries)

        @control.post("/reply")
        async def force_reply(request: Request) -> dict[str, Any]:
            spec = _parse_control(ReplyRequest, await _json_object(request))
            chat = self._control_chat(spec.chat_id, spec.phone, spec.account_phone)
            if spec.text:
                text = spec.text
            elif spec.kind:
                if spec.kind not in REPLIES:
                    raise SandboxHTTPError(
                        422, {"error": f"unknown kind {spec.kind!r}", "kinds": sorted(REPLIES)}
                    )
                text = pick_reply(self._replies, spec.kind)
            else:
                text = pick_reply(self._replies, pick_reply_kind(self._replies, self.config.reply_mix))
            message = self._inbound(chat, text)
            return {**self._message_api(message), "account_phone": message.account_phone}

        @control.post("/operator-message")
        async def operator_message(request: Request) -> dict[str, Any]:
            spec = _parse_control(OperatorMessage, await _json_object(request))
            chat = self._control_chat(None, spec.phone, spec.account_phone)
            message = self._record(chat, from_me=True, text=spec.text, origin="WhatsApp")
            self._emit_message("message:sent:new", chat, message)
            return {**self._message_api(message), "account_phone": message.account_phone}

        @control.get("/config")
        async def get_config() -> dict[str, Any]:
            return self.config.model_dump()

        @control.post("/config")
        async def set_config(request: Request) -> dict[str, Any]:
            body = await _json_object(request)
            merged = self.config.model_dump()
            if isinstance(body.get("status_delays"), dict):
                body = {**body, "status_delays": {**merged["status_delays"], **body["status_delays"]}}
            unknown = set(body) - set(TimelinesAIConfig.model_fields)
            if unknown:
                raise SandboxHTTPError(422, {"error": f"unknown config keys {sorted(unknown)}"})
            try:
                self.config = TimelinesAIConfig.model_validate({**merged, **body})
            except ValidationError as exc:
                raise SandboxHTTPError(
                    422, {"error": "invalid config", "details": json.loads(exc.json())}
                ) from None
            self._bucket.configure(self.config.rate_limit_per_second, self.config.rate_limit_burst)
            return self.config.model_dump()

    def _control_chat(self, chat_id: int | None, phone: str | None, account_phone: str | None) -> ChatRecord:
        if chat_id is not None:
            chat = self.chats.get(chat_id)
            if chat is None:
                raise SandboxHTTPError(404, {"error": f"chat {chat_id} not found"})
            return chat
        if not phone:
            raise SandboxHTTPError(422, {"error": "give chat_id or phone"})
        wanted = _sanitize_phone(phone)
        if not _E164.match(wanted):
            raise SandboxHTTPError(422, {"error": f"phone {phone!r} is not E.164"})
        existing = sorted(
            (c for c in self.chats.values() if c.phone == wanted), key=lambda c: c.last_seq, reverse=True
        )
        if account_phone:
            account_key = _sanitize_phone(account_phone)
            existing = [c for c in existing if c.account_phone == account_key]
        if existing:
            return existing[0]
        try:
            account = self._resolve_account(account_phone)
        except SandboxHTTPError:
            raise SandboxHTTPError(404, {"error": "no such (connected) account for a new chat"}) from None
        return self._chat_for(account, wanted)
