"""Stable identities derived from domain ids (never timestamps).

Job ids never contain ``:`` and are never integer-like, so Node BullMQ tools accept them too.
"""

from __future__ import annotations

import re
import uuid

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def job_id(prefix: str, *parts: object) -> str:
    """``job_id("wa", row_id)`` -> ``wa-<row id>``."""
    raw = "-".join([prefix, *(str(p) for p in parts)])
    return _UNSAFE.sub("_", raw)


def idempotency_key(kind: str, entity_id: uuid.UUID | str) -> str:
    """Key for a vendor call that must happen once, e.g. ``send/wa/<row id>``."""
    return f"{kind}/{entity_id}"


def new_uuid() -> uuid.UUID:
    return uuid.uuid4()
