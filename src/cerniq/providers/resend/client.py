"""Resend client (spec/providers.md §3) behind the :class:`WarmEmailProvider` Protocol.

Sends carry an ``Idempotency-Key``: Resend keeps it 24 h and answers a repeat of the same key and
body with the first answer without sending again, so a send whose response was lost is retried
with the same key, never resolved by guessing. The client never retries by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import httpx

from cerniq.providers.errors import (
    AmbiguousProviderError,
    ProviderError,
    TransientProviderError,
    classify_response,
    classify_transport_error,
    parse_retry_after,
)
from cerniq.providers.http import BearerApiClient
from cerniq.providers.resend.schemas import BatchResult, ResendEmail, ResendWebhook

if TYPE_CHECKING:
    from cerniq.config import Settings

__all__ = ["DEFAULT_BASE_URL", "PROVIDER", "ResendClient", "WarmEmailProvider"]

DEFAULT_BASE_URL = "https://api.resend.com"
PROVIDER = "resend"


@runtime_checkable
class WarmEmailProvider(Protocol):
    """What the warm-email channel needs from a vendor. :class:`ResendClient` implements it."""

    async def send_email(self, email: dict[str, Any], *, idempotency_key: str) -> str: ...

    async def send_batch(
        self, emails: Sequence[dict[str, Any]], *, idempotency_key: str, permissive: bool = False
    ) -> BatchResult: ...

    async def get_email(self, email_id: str) -> ResendEmail: ...

    async def create_webhook(self, endpoint: str, events: Sequence[str]) -> ResendWebhook: ...

    async def list_webhooks(self) -> list[ResendWebhook]: ...

    async def delete_webhook(self, webhook_id: str) -> None: ...

    async def aclose(self) -> None: ...


class ResendClient(BearerApiClient):
    """Async client of the Resend API (``Authorization: Bearer re_...``, a ``User-Agent`` always)."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | httpx.Timeout = 30.0,
        max_connections: int = 10,
        user_agent: str = "cerniq-outreach/0.1",
    ) -> None:
        super().__init__(
            secret=api_key,
            missing_secret="a Resend API key is required",
            base_url=base_url,
            timeout=timeout,
            max_connections=max_connections,
            user_agent=user_agent,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout: float = 30.0) -> ResendClient:
        """Build the client from ``CERNIQ_RESEND_*`` settings."""
        return cls(
            api_key=settings.resend_api_key.get_secret_value(),
            base_url=settings.resend_base_url,
            timeout=timeout,
        )

    async def send_email(self, email: dict[str, Any], *, idempotency_key: str) -> str:
        """Send one email (``from``, ``to``, ``subject``, ``html``/``text``, ``tags``...); returns its id.

        ``AmbiguousProviderError`` (lost response, plain 500) and ``TransientProviderError``
        (429, 503, a concurrent request with the same key) are both safe to retry **with the
        same key and the same body**.
        """
        if not idempotency_key or len(idempotency_key) > 256:
            raise ValueError("the idempotency key must have 1 to 256 characters")
        data = await self._request(
            "POST", "emails", json=email, headers={"Idempotency-Key": idempotency_key}, side_effect=True
        )
        email_id = data.get("id") if isinstance(data, dict) else None
        if not email_id:
            raise AmbiguousProviderError("send accepted without an id", provider=PROVIDER)
        return str(email_id)

    async def send_batch(
        self, emails: Sequence[dict[str, Any]], *, idempotency_key: str, permissive: bool = False
    ) -> BatchResult:
        """Send up to 100 emails (no attachments); ids come back in request order."""
        if not emails or len(emails) > 100:
            raise ValueError("a batch has 1 to 100 emails")
        headers = {"Idempotency-Key": idempotency_key}
        if permissive:
            headers["x-batch-validation"] = "permissive"
        data = await self._request(
            "POST", "emails/batch", json=list(emails), headers=headers, side_effect=True
        )
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise AmbiguousProviderError("batch accepted without data", provider=PROVIDER)
        return BatchResult(ids=[str(i.get("id")) for i in items], errors=list(data.get("errors") or []))

    async def get_email(self, email_id: str) -> ResendEmail:
        return ResendEmail.model_validate(await self._request("GET", f"emails/{email_id}"))

    async def create_webhook(self, endpoint: str, events: Sequence[str]) -> ResendWebhook:
        """Subscribe ``endpoint``; the answer carries the ``signing_secret`` (``whsec_...``)."""
        data = await self._request(
            "POST", "webhooks", json={"endpoint": endpoint, "events": list(events)}, side_effect=True
        )
        return ResendWebhook.model_validate(data)

    async def list_webhooks(self) -> list[ResendWebhook]:
        data = await self._request("GET", "webhooks")
        items = data.get("data") if isinstance(data, dict) else data
        return [ResendWebhook.model_validate(i) for i in items or []]

    async def delete_webhook(self, webhook_id: str) -> None:
        await self._request("DELETE", f"webhooks/{webhook_id}")

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        side_effect: bool = False,
    ) -> Any:
        try:
            response = await self._send(method, path, json=json, headers=headers)
        except httpx.TransportError as exc:
            raise classify_transport_error(exc, side_effect=side_effect, provider=PROVIDER) from exc
        if response.status_code >= 400:
            raise _error(response, side_effect=side_effect)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            message = f"unreadable {response.status_code} response body"
            if side_effect:
                raise AmbiguousProviderError(
                    message, status_code=response.status_code, provider=PROVIDER
                ) from exc
            raise TransientProviderError(
                message, status_code=response.status_code, provider=PROVIDER
            ) from exc


def _error(response: httpx.Response, *, side_effect: bool) -> ProviderError:
    """``{"statusCode", "message", "name"}`` to a ProviderError."""
    try:
        decoded = response.json()
    except ValueError:
        decoded = None
    body: dict[str, Any] = decoded if isinstance(decoded, dict) else {"text": response.text[:1000]}
    message = str(body.get("message") or response.reason_phrase or "error")
    name = str(body.get("name") or "") or None
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if name == "concurrent_idempotent_requests":
        # The first request with this key is still running: nothing new happened, try later.
        return TransientProviderError(
            message,
            status_code=response.status_code,
            error_code=name,
            raw=body,
            provider=PROVIDER,
            retry_after=retry_after or 1.0,
        )
    if name in ("daily_quota_exceeded", "monthly_quota_exceeded", "rate_limit_exceeded"):
        return TransientProviderError(
            message,
            status_code=response.status_code,
            error_code=name,
            raw=body,
            provider=PROVIDER,
            retry_after=retry_after,
        )
    return classify_response(
        response.status_code,
        message=message,
        error_code=name,
        raw=body,
        retry_after=retry_after,
        side_effect=side_effect,
        provider=PROVIDER,
    )
