"""Console sessions: a signed cookie (HMAC-SHA256 with ``settings.session_secret``) holding the
principal, the CSRF token of the session, the language and an expiry.

The cookie is ``<base64url(json)>.<hex hmac>``; a tampered or expired cookie is no session.
Every console POST must carry the session's CSRF token (form field ``csrf`` or header
``X-CSRF-Token``); it is compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

from fastapi import Request

from cerniq.auth.principal import Principal
from cerniq.config import get_settings
from cerniq.models.enums import Role

COOKIE = "cerniq_console"
LANG_COOKIE = "cerniq_lang"
SESSION_SECONDS = 12 * 3600
LANGUAGES = ("ro", "en")


def _sign(payload: bytes) -> str:
    key = get_settings().session_secret.get_secret_value().encode("utf-8")
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def encode(principal: Principal, *, csrf: str | None = None, now: float | None = None) -> str:
    """The cookie value of a new session for ``principal``."""
    data = {
        "tid": str(principal.tenant_id),
        "role": principal.role.value,
        "at": principal.actor_type,
        "aid": principal.actor_id,
        "label": principal.actor_label,
        "uid": str(principal.user_id) if principal.user_id else None,
        "csrf": csrf or secrets.token_urlsafe(24),
        "exp": int((now or time.time()) + SESSION_SECONDS),
    }
    raw = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode("utf-8"))
    return f"{raw.decode('ascii')}.{_sign(raw)}"


def decode(value: str | None, *, now: float | None = None) -> dict[str, Any] | None:
    """The session data of a cookie value, or None when missing, tampered or expired."""
    if not value or "." not in value:
        return None
    raw, _, signature = value.rpartition(".")
    if not hmac.compare_digest(_sign(raw.encode("ascii", "replace")), signature):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.encode("ascii")))
    except ValueError:
        return None
    if not isinstance(data, dict) or int(data.get("exp", 0)) < (now or time.time()):
        return None
    return data


def principal_of(data: dict[str, Any], ip: str | None) -> Principal:
    return Principal(
        tenant_id=uuid.UUID(data["tid"]),
        role=Role(data["role"]),
        actor_type=str(data["at"]),
        actor_id=str(data["aid"]),
        actor_label=str(data["label"]),
        user_id=uuid.UUID(data["uid"]) if data.get("uid") else None,
        ip_address=ip,
    )


def current(request: Request) -> tuple[Principal, str] | None:
    """The signed-in principal and the session's CSRF token, or None."""
    data = decode(request.cookies.get(COOKIE))
    if data is None:
        return None
    try:
        principal = principal_of(data, request.client.host if request.client else None)
    except (KeyError, ValueError):
        return None
    return principal, str(data.get("csrf", ""))


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(expected, given or "")


def language(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, "ro")
    return lang if lang in LANGUAGES else "ro"
