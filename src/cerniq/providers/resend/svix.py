"""Svix webhook signatures, as Resend signs its webhooks (spec/providers.md §3.5).

``sign`` produces the ``svix-signature`` entry for a body; ``verify`` checks the three headers
against the raw body: all present, timestamp within 5 minutes of now (past or future), and at
least one ``v1,`` entry equal (constant time) to base64(HMAC-SHA256(key, id.timestamp.body)),
where the key is the base64-decoded secret without its ``whsec_`` prefix.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

__all__ = [
    "SECRET_PREFIX",
    "TOLERANCE_SECONDS",
    "SignatureError",
    "generate_secret",
    "sign",
    "signature_headers",
    "verify",
]

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """The request is not a genuine, fresh webhook. ``reason`` is a short machine word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _key(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the webhook secret is not whsec_<base64>") from exc


def generate_secret(entropy: bytes) -> str:
    """A ``whsec_`` secret from random bytes (the sandbox hands these out)."""
    return SECRET_PREFIX + base64.b64encode(entropy).decode()


def sign(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """The ``v1,<base64>`` signature of ``body`` sent as message ``msg_id`` at ``timestamp``."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three ``svix-*`` headers of a delivery."""
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(timestamp),
        "svix-signature": sign(secret, msg_id, timestamp, body),
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = {k.lower(): v for k, v in headers.items()}
        value = lowered.get(name)
    return value


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> str:
    """Check a delivery; returns its ``svix-id`` or raises :class:`SignatureError`.

    Reasons: ``missing_headers``, ``bad_timestamp``, ``stale``, ``bad_signature``.
    """
    msg_id = _header(headers, "svix-id")
    stamp = _header(headers, "svix-timestamp")
    signatures = _header(headers, "svix-signature")
    if not msg_id or not stamp or not signatures:
        raise SignatureError("missing_headers", "svix-id, svix-timestamp and svix-signature are required")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("bad_timestamp", "svix-timestamp is not a Unix time") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("stale", "svix-timestamp is outside the 5-minute tolerance")
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1].encode()
    for entry in signatures.split(" "):
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return msg_id
    raise SignatureError("bad_signature", "no svix-signature entry matches")
