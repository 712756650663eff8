"""How every channel classifies a vendor failure.

A send job decides what to do from the class of the error alone:

- :class:`TransientProviderError`: the vendor certainly did not act (429, 5xx on a safe call,
  connection refused). Retry with backoff, honouring ``retry_after``.
- :class:`AmbiguousProviderError`: the vendor may have acted (response lost after the request was
  written). Never resend blindly: resolve with a lookup.
- :class:`AuthProviderError`: token invalid or access denied. Stop the channel, alert.
- :class:`AccountUnavailableError`: the sending account is disconnected, inactive or unknown.
  Take the sender out of rotation.
- :class:`BannedProviderError`: the sending account is banned or blocked. Mark the sender banned.
- :class:`InvalidRecipientError`: malformed recipient or not on the network. Fail the message,
  suppress the contact.
- :class:`PermanentProviderError`: any other definite rejection (4xx). Fail, no retry.

The last five are all *definite* failures: the four specific ones subclass
:class:`PermanentProviderError`, so ``except PermanentProviderError`` catches every "the vendor
refused, do not retry" case. The
vendor-neutral helpers :func:`classify_response` and :func:`classify_transport_error` are the
single place where statuses and transport errors become these classes; vendor clients only extract
the message and error code from their own body shape.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

__all__ = [
    "AccountUnavailableError",
    "AmbiguousProviderError",
    "AuthProviderError",
    "BannedProviderError",
    "InvalidRecipientError",
    "PermanentProviderError",
    "ProviderError",
    "TransientProviderError",
    "classify_response",
    "classify_transport_error",
    "parse_retry_after",
]


class ProviderError(Exception):
    """Base of every vendor failure.

    ``status_code`` is the HTTP status (``None`` for transport failures), ``error_code`` the
    vendor's machine-readable code if it sent one, ``message`` its human text and ``raw`` the
    decoded error body (or ``{}``).
    """

    retryable: ClassVar[bool] = False
    """True when the same request may simply be sent again later."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        raw: Mapping[str, Any] | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_code = error_code
        self.raw: dict[str, Any] = dict(raw or {})
        self.provider = provider

    def __str__(self) -> str:
        parts = [self.message]
        if self.status_code is not None:
            parts.append(f"status={self.status_code}")
        if self.error_code:
            parts.append(f"error_code={self.error_code}")
        if self.provider:
            parts.append(f"provider={self.provider}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status_code={self.status_code!r}, "
            f"error_code={self.error_code!r})"
        )


class TransientProviderError(ProviderError):
    """The vendor certainly did not act; the same request may be retried after a backoff.

    Raised for 429, for 5xx on calls that are safe to repeat (and 502/503/504 on sends, which
    gateways answer without reaching the application), and for connection failures that happened
    before the request was written (refused, connect timeout, pool timeout).
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        raw: Mapping[str, Any] | None = None,
        provider: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, error_code=error_code, raw=raw, provider=provider)
        self.retry_after = retry_after
        """Seconds the vendor asked us to wait (``Retry-After``), if it said so."""


class AmbiguousProviderError(ProviderError):
    """The vendor may have accepted the request: the outcome is unknown.

    Read timeouts, connections dropped after the request was written and a plain 500 on a send all
    land here. The caller must never resend blindly: it records the attempt as ambiguous and
    resolves it with a lookup (e.g. the chat history) or an idempotency key.
    """


class PermanentProviderError(ProviderError):
    """The vendor definitely refused the request (a 4xx); retrying the same request cannot help."""


class AuthProviderError(PermanentProviderError):
    """Missing, invalid or revoked credentials, or access denied (401/403)."""


class AccountUnavailableError(PermanentProviderError):
    """The sending account is disconnected, inactive or unknown to the vendor workspace."""


class BannedProviderError(PermanentProviderError):
    """The sending account was banned or blocked by the network."""


class InvalidRecipientError(PermanentProviderError):
    """The recipient is malformed or cannot receive messages on this network."""


_BAN = re.compile(r"\b(banned|blocked|ban)\b", re.IGNORECASE)
_ACCOUNT_DOWN = re.compile(
    r"no connected whatsapp account|account (is )?(not connected|disconnected|inactive|suspended)",
    re.IGNORECASE,
)
_BAD_RECIPIENT = re.compile(
    r"invalid phone|phone number (is )?(invalid|not valid)|not (registered )?on whatsapp|"
    r"not a whatsapp|invalid recipient",
    re.IGNORECASE,
)
_RECIPIENT_FIELDS = frozenset({"phone", "jid", "to", "recipient", "email"})
_AUTH_CODES = frozenset(
    {"missing_credentials", "invalid_token", "member_not_found", "permission_denied", "insufficient_scope"}
)
_GATEWAY_STATUSES = frozenset({502, 503, 504})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _error_fields(raw: Mapping[str, Any]) -> set[str]:
    fields: set[str] = set()
    errors = raw.get("errors")
    if isinstance(errors, list):
        for item in errors:
            if isinstance(item, Mapping):
                names = item.get("fields") or item.get("loc") or []
                if isinstance(names, str):
                    names = [names]
                fields.update(str(n) for n in names if isinstance(n, str | int))
    return fields


def classify_response(
    status_code: int,
    *,
    message: str,
    error_code: str | None = None,
    raw: Mapping[str, Any] | None = None,
    retry_after: float | None = None,
    side_effect: bool = False,
    provider: str | None = None,
) -> ProviderError:
    """Turn an HTTP error response into the right :class:`ProviderError` subclass.

    ``side_effect`` is true for calls that change the vendor's state when accepted and have no
    idempotency key (a send): then a plain 500 is ambiguous, since the application may have acted
    before failing, while 502/503/504 (answered by a gateway) stay transient. Ban signals win over
    every other 4xx reading, so a 403 "account is banned" is a ban, not an auth problem.
    """
    body: dict[str, Any] = dict(raw or {})
    kwargs: dict[str, Any] = {
        "status_code": status_code,
        "error_code": error_code,
        "raw": body,
        "provider": provider,
    }
    code = (error_code or "").lower()
    if status_code == 429 or code == "rate_limit_exceeded":
        return TransientProviderError(message, retry_after=retry_after, **kwargs)
    if status_code >= 500:
        if side_effect and status_code not in _GATEWAY_STATUSES:
            return AmbiguousProviderError(message, **kwargs)
        return TransientProviderError(message, retry_after=retry_after, **kwargs)
    status_text = str(body.get("account_status") or body.get("status_detail") or "")
    if _BAN.search(message) or status_text.lower() in {"banned", "suspended", "blocked"}:
        return BannedProviderError(message, **kwargs)
    if code == "account_inactive" or _ACCOUNT_DOWN.search(message):
        return AccountUnavailableError(message, **kwargs)
    if status_code == 404 and "whatsapp account" in message.lower():
        return AccountUnavailableError(message, **kwargs)
    if _BAD_RECIPIENT.search(message) or (
        code == "validation_error" and _error_fields(body) & _RECIPIENT_FIELDS
    ):
        return InvalidRecipientError(message, **kwargs)
    if status_code in (401, 403) or code in _AUTH_CODES:
        return AuthProviderError(message, **kwargs)
    return PermanentProviderError(message, **kwargs)


def classify_transport_error(
    exc: httpx.TransportError, *, side_effect: bool, provider: str | None = None
) -> ProviderError:
    """Turn an httpx transport failure into a transient or ambiguous error.

    Failures before the request left (refused connection, connect or pool timeout) are transient.
    Failures after it was written (read timeout, dropped connection, a broken write) are
    ambiguous when ``side_effect`` is true, and transient for calls that are safe to repeat.
    """
    name = type(exc).__name__
    text = str(exc) or name
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return TransientProviderError(f"{name}: {text}", provider=provider)
    if side_effect:
        return AmbiguousProviderError(f"{name}: {text}", provider=provider)
    return TransientProviderError(f"{name}: {text}", provider=provider)
