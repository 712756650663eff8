"""The webhook sources: one per vendor, each saying how to authenticate, key, type and process
its deliveries.

A source registers itself when its module is imported::

    register(WebhookSource(
        name="resend",
        authenticate=verify_svix,        # (request, raw_body) -> tenant id | None; raise Unauthorized
        event_key=lambda payload, headers: headers["svix-id"],
        event_type=lambda payload: str(payload.get("type") or ""),
        process=process_resend_event,    # async (session, webhook_events row) -> None
    ))

TimelinesAI is registered by :mod:`cerniq.webhooks.timelinesai`; Instantly and Resend by
``cerniq.email.webhooks`` when that module exists (imported lazily by :func:`load_sources`). A
provider without a source still has its deliveries stored, quarantined with reason
``no processor`` so that nothing is lost and ``cerniq webhooks replay`` can process them later.

``process`` runs inside the job's transaction with the event row locked. It signals outcomes
other than success by raising :class:`Quarantine` (kept for an operator: unknown lead, bad
shape) or :class:`Ignore` (understood, nothing to do); any other exception is retried.
"""

from __future__ import annotations

import importlib
import inspect
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.logging import get_logger

if TYPE_CHECKING:
    from cerniq.models import WebhookEvent

__all__ = [
    "EXTERNAL_SOURCE_MODULES",
    "PROVIDERS",
    "Authenticate",
    "Ignore",
    "Quarantine",
    "WebhookSource",
    "authenticate",
    "get_source",
    "load_sources",
    "register",
    "registered",
]

log = get_logger("cerniq.webhooks")

#: The vendors with an ingest endpoint (``/api/v1/webhooks/{provider}``) and a queue
#: (``webhook:{provider}:ingest``).
PROVIDERS = ("timelinesai", "instantly", "resend")

#: Modules that register sources of other features; imported when present.
EXTERNAL_SOURCE_MODULES = ("cerniq.webhooks.timelinesai", "cerniq.email.webhooks")

Authenticate = Callable[[Request, bytes], "Awaitable[uuid.UUID | None] | uuid.UUID | None"]
EventKey = Callable[[dict[str, Any], Mapping[str, str]], str]
EventType = Callable[[dict[str, Any]], str]
Process = Callable[[AsyncSession, "WebhookEvent"], Awaitable[None]]


class Quarantine(Exception):
    """Raised by ``process``: keep the event for an operator (``cerniq webhooks quarantine``)
    with this message as its error; ``cerniq webhooks replay ID`` processes it again."""


class Ignore(Exception):
    """Raised by ``process``: the event was understood and needs nothing (status IGNORED)."""


@dataclass(frozen=True)
class WebhookSource:
    """How one vendor's webhooks are received.

    * ``authenticate(request, raw_body)`` returns the tenant id (``None`` when the delivery does
      not tell: ``process`` must then find it) or raises :class:`cerniq.errors.Unauthorized` for
      a forged or stale delivery (answered 401, nothing stored). It may be sync or async.
    * ``event_key(payload, headers)`` is the vendor's identity of the event: a redelivery has
      the same key and is stored once (``UNIQUE(provider, event_key)``).
    * ``event_type(payload)`` names the event (``message:received:new``, ``email.bounced``).
    * ``process(session, event_row)`` acts on a stored event, in the job's transaction.
    * ``secret_headers``: header names (lower case) never stored, on top of the defaults
      (``authorization``, cookies, anything named like a secret, token or signature).
    """

    name: str
    authenticate: Authenticate
    event_key: EventKey
    event_type: EventType
    process: Process
    secret_headers: frozenset[str] = field(default_factory=frozenset)


_sources: dict[str, WebhookSource] = {}
_loaded = False


def register(source: WebhookSource) -> None:
    """Register (or replace) the source of ``source.name``."""
    _sources[source.name] = source


def registered() -> list[str]:
    """Names of the registered sources."""
    load_sources()
    return sorted(_sources)


def load_sources() -> None:
    """Import the modules that register sources (once); a missing optional module is skipped."""
    global _loaded
    if _loaded:
        return
    for module in EXTERNAL_SOURCE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module.startswith(exc.name):
                log.info("webhooks.source_missing", module=module)  # not written yet: no processor
                continue
            log.exception("webhooks.source_broken", module=module)
        except Exception:
            # A broken source must not stop the other vendors' ingest; its deliveries are still
            # stored (quarantined, "no processor") and can be replayed once it is fixed.
            log.exception("webhooks.source_broken", module=module)
    _loaded = True


def get_source(provider: str) -> WebhookSource | None:
    """The registered source of ``provider``, or None (no processor yet)."""
    load_sources()
    return _sources.get(provider)


async def authenticate(source: WebhookSource, request: Request, raw_body: bytes) -> uuid.UUID | None:
    """Run ``source.authenticate`` whether it is sync or async."""
    result = source.authenticate(request, raw_body)
    if inspect.isawaitable(result):
        result = await result
    if result is not None and not isinstance(result, uuid.UUID):
        result = uuid.UUID(str(result))
    return result
