"""The TimelinesAI webhook source (providers.md §1.5-1.6).

TimelinesAI signs nothing: each tenant's URL ends with its long random ``webhook_token``
(``/api/v1/webhooks/timelinesai/{token}``), compared in constant time against every active
tenant's token. Deliveries may repeat; the event key is the ``message_uid`` for message
events and ``event_type`` + account id + connected_on/disconnected_on for account events.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.errors import Unauthorized
from cerniq.kit.db import transaction
from cerniq.models import WebhookEvent
from cerniq.providers.timelinesai.schemas import AccountEvent, MessageEvent, UnknownEvent, parse_webhook
from cerniq.webhooks import repository
from cerniq.webhooks.normalize import from_timelinesai
from cerniq.webhooks.registry import Ignore, Quarantine, WebhookSource, register

__all__ = ["SOURCE", "authenticate", "event_key", "event_type", "process"]

#: Vendor event types we know but do not act on (chats, reactions, calls, WABA).
NOT_USED_PREFIXES = ("chat:", "call:", "waba:", "message:reaction")


async def authenticate(request: Request, raw_body: bytes) -> uuid.UUID:
    """The tenant whose webhook token ends the URL; Unauthorized otherwise."""
    del raw_body
    token = str(request.path_params.get("token") or "")
    async with transaction() as session:
        candidates = await repository.tenant_tokens(session)
    match: uuid.UUID | None = None
    given = token.encode()
    for tenant_id, expected in candidates:
        # No early exit: the time taken does not depend on which token (if any) matched.
        if hmac.compare_digest(given, expected.encode()):
            match = tenant_id
    if match is None or not token:
        raise Unauthorized("unknown webhook token", code="INVALID_WEBHOOK_TOKEN")
    return match


def event_type(payload: dict[str, Any]) -> str:
    value = payload.get("event_type")
    return value if isinstance(value, str) else ""


def _stamp(payload: dict[str, Any]) -> str:
    account = payload.get("whatsapp_account")
    if isinstance(account, dict):
        for key in ("disconnected_on", "connected_on"):
            if account.get(key):
                return str(account[key])
    return "sha256:" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def event_key(payload: dict[str, Any], headers: Mapping[str, str]) -> str:
    """The vendor identity of a delivery. Raises for a body of no known shape (quarantined)."""
    del headers
    kind = event_type(payload)
    if not kind:
        raise ValueError("the body has no event_type")
    try:
        event = parse_webhook(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}" for err in exc.errors()[:3]
        )
        raise ValueError(f"{kind}: {problems}") from None
    if isinstance(event, MessageEvent):
        return event.message.message_uid
    if isinstance(event, AccountEvent):
        account = event.whatsapp_account
        # The disconnect instant for disconnects, the connect instant otherwise (providers.md §1.6).
        wanted = "disconnected_on" if kind.endswith(("disconnected", "suspended")) else "connected_on"
        raw_account = payload.get("whatsapp_account") or {}
        stamp = str(raw_account.get(wanted) or "") or _stamp(payload)
        return f"{kind}:{account.id or account.phone}:{stamp}"
    return f"{kind}:{_stamp(payload)}"


async def process(session: AsyncSession, row: WebhookEvent) -> None:
    """Normalise the stored body and act on it (reply, operator message, phone status)."""
    from cerniq.webhooks.service import apply_event

    try:
        event = parse_webhook(row.payload)
    except ValidationError as exc:
        raise Quarantine(f"unknown shape: {exc.errors()[:1]}") from None
    if isinstance(event, UnknownEvent):
        kind = event.event_type or "(none)"
        if kind.startswith(NOT_USED_PREFIXES):
            raise Ignore(f"{kind} events are not used")
        raise Quarantine(f"unknown event type {kind!r}")
    await apply_event(session, row, from_timelinesai(event, tenant_id=row.tenant_id, raw=row.payload))


SOURCE = WebhookSource(
    name="timelinesai",
    authenticate=authenticate,
    event_key=event_key,
    event_type=event_type,
    process=process,
)
register(SOURCE)
