"""TimelinesAI Public API v1.3 client (spec/providers.md §1) behind the :class:`WhatsAppProvider` Protocol.

One :class:`TimelinesAIClient` per process: it owns a pooled ``httpx.AsyncClient``; close it with
:meth:`TimelinesAIClient.aclose` (or use it as an async context manager). The client never
retries by itself: every failure is raised as a :mod:`cerniq.providers.errors` class and the
caller (the send job) decides. Sends have no idempotency key at TimelinesAI, so a lost response
on a send is an :class:`~cerniq.providers.errors.AmbiguousProviderError`; resolve it with
:meth:`TimelinesAIClient.find_sent_message` rather than sending again.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
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
from cerniq.providers.timelinesai.schemas import (
    Chat,
    StatusHistoryEntry,
    WaMessage,
    Webhook,
    WhatsAppAccount,
)

if TYPE_CHECKING:
    from cerniq.config import Settings

__all__ = ["DEFAULT_BASE_URL", "PROVIDER", "TimelinesAIClient", "WhatsAppProvider", "jid_for_phone"]

DEFAULT_BASE_URL = "https://app.timelines.ai/integrations/api"
PROVIDER = "timelinesai"
_MAX_PAGES = 10_000
_NON_DIGITS = re.compile(r"\D")


def jid_for_phone(phone: str) -> str:
    """The WhatsApp JID of an E.164 number: ``+40700000001`` -> ``40700000001@s.whatsapp.net``."""
    return f"{_NON_DIGITS.sub('', phone)}@s.whatsapp.net"


def _same_phone(a: str | None, b: str | None) -> bool:
    return bool(a and b) and _NON_DIGITS.sub("", a or "") == _NON_DIGITS.sub("", b or "")


@runtime_checkable
class WhatsAppProvider(Protocol):
    """What the WhatsApp channel needs from a vendor. :class:`TimelinesAIClient` implements it."""

    async def list_accounts(self) -> list[WhatsAppAccount]:
        """All WhatsApp accounts of the workspace."""
        ...

    async def send_to_phone(self, *, account_phone: str, phone: str, text: str) -> str:
        """Send ``text`` from ``account_phone`` to ``phone``; returns the message uid."""
        ...

    async def send_in_chat(self, *, chat_id: int, text: str) -> str:
        """Send ``text`` in an existing chat; returns the message uid."""
        ...

    async def get_message(self, uid: str) -> WaMessage:
        """One message with its current status."""
        ...

    async def status_history(self, uid: str) -> list[StatusHistoryEntry]:
        """The status changes of one message, oldest first."""
        ...

    async def find_chat(self, phone: str, account_id: str | None = None) -> Chat | None:
        """The direct chat with ``phone`` (on ``account_id`` if given), or ``None``."""
        ...

    async def get_chat(self, chat_id: int) -> Chat:
        """One chat."""
        ...

    async def chat_messages(
        self, chat_id: int, *, from_me: bool | None = None, after: datetime | None = None
    ) -> list[WaMessage]:
        """A chat's messages, oldest first."""
        ...

    async def find_sent_message(
        self, *, account_phone: str, phone: str, text: str, since: datetime | None = None
    ) -> WaMessage | None:
        """Our outbound message with exactly ``text`` to ``phone``, if the vendor has it."""
        ...

    async def list_webhooks(self) -> list[Webhook]:
        """The workspace's webhook subscriptions."""
        ...

    async def create_webhook(self, event_type: str, url: str) -> Webhook:
        """Subscribe ``url`` to ``event_type``."""
        ...

    async def delete_webhook(self, webhook_id: int) -> None:
        """Remove a webhook subscription."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class TimelinesAIClient(BearerApiClient):
    """Async client of the TimelinesAI Public API (``Authorization: Bearer <token>``).

    ``base_url`` is the API root (production ``https://app.timelines.ai/integrations/api``, the
    sandbox ``http://127.0.0.1:<port>/timelinesai``); ``timeout`` is in seconds or an
    ``httpx.Timeout``. All methods raise :class:`~cerniq.providers.errors.ProviderError`
    subclasses; see that module for what each means.
    """

    def __init__(
        self,
        *,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | httpx.Timeout = 30.0,
        max_connections: int = 20,
        user_agent: str = "cerniq-outreach",
    ) -> None:
        super().__init__(
            secret=token,
            missing_secret="a TimelinesAI API token is required",
            base_url=base_url,
            timeout=timeout,
            max_connections=max_connections,
            user_agent=user_agent,
            trust_env=True,  # as before: HTTP(S)_PROXY from the environment applies
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> TimelinesAIClient:
        """Build the client from ``CERNIQ_TIMELINESAI_*`` settings."""
        return cls(
            token=settings.timelinesai_api_token.get_secret_value(),
            base_url=settings.timelinesai_base_url,
            timeout=settings.timelinesai_timeout.total_seconds(),
        )

    # --- accounts ------------------------------------------------------------------------------

    async def list_accounts(self) -> list[WhatsAppAccount]:
        """All WhatsApp accounts of the workspace, following ``has_more_pages`` if present.

        A banned or suspended account shows as ``disconnected`` (``WhatsAppAccount.is_active`` is
        false); only a send from it tells a ban apart.
        """
        accounts: list[WhatsAppAccount] = []
        async for item in self._paged("whatsapp_accounts", "whatsapp_accounts", {}):
            accounts.append(WhatsAppAccount.model_validate(item))
        return accounts

    # --- sending -------------------------------------------------------------------------------

    async def send_to_phone(self, *, account_phone: str, phone: str, text: str) -> str:
        """Send ``text`` to ``phone`` (E.164) from the account ``account_phone`` (E.164).

        Returns the ``message_uid``. The vendor only queues the message: poll
        :meth:`get_message` for delivery. Raises ``InvalidRecipientError`` for a malformed
        number, ``AccountUnavailableError`` / ``BannedProviderError`` for an unusable sender,
        ``TransientProviderError`` when nothing was accepted and ``AmbiguousProviderError``
        when the vendor may have accepted it.
        """
        body: dict[str, Any] = {"phone": phone, "whatsapp_account_phone": account_phone, "text": text}
        data = await self._request("POST", "messages", json=body, side_effect=True)
        return self._message_uid(data)

    async def send_in_chat(self, *, chat_id: int, text: str, reply_to: str | None = None) -> str:
        """Send ``text`` in the existing chat ``chat_id`` (its own account sends it).

        Returns the ``message_uid``; errors as for :meth:`send_to_phone`.
        """
        body: dict[str, Any] = {"text": text}
        if reply_to:
            body["reply_to"] = reply_to
        data = await self._request("POST", f"chats/{int(chat_id)}/messages", json=body, side_effect=True)
        return self._message_uid(data)

    # --- messages ------------------------------------------------------------------------------

    async def get_message(self, uid: str) -> WaMessage:
        """One message; ``status`` is normalised (``queued`` -> PENDING, any case)."""
        data = await self._request("GET", f"messages/{uid}")
        return WaMessage.model_validate(self._expect_dict(data))

    async def status_history(self, uid: str) -> list[StatusHistoryEntry]:
        """The status changes of message ``uid`` as the vendor lists them (oldest first)."""
        data = await self._request("GET", f"messages/{uid}/status_history")
        items = data if isinstance(data, list) else self._expect_dict(data).get("status_history", [])
        return [StatusHistoryEntry.model_validate(item) for item in items]

    async def find_sent_message(
        self, *, account_phone: str, phone: str, text: str, since: datetime | None = None
    ) -> WaMessage | None:
        """Look up our outbound message with exactly ``text`` from ``account_phone`` to ``phone``.

        This is how an ambiguous send is resolved: the vendor has no idempotency keys, but every
        accepted send lands in the chat history at once. ``since`` limits the search (inclusive;
        pass the time just before the attempt, a minute of slack is subtracted for clock skew).
        Returns the newest match, or ``None`` when the vendor has no such message.
        """
        chat = await self.find_chat(phone, account_id=jid_for_phone(account_phone))
        if chat is None:
            return None
        after = since - timedelta(minutes=1) if since is not None else None
        matches = [
            message
            for message in await self.chat_messages(chat.id, from_me=True, after=after)
            if message.text == text
        ]
        return matches[-1] if matches else None

    # --- chats ---------------------------------------------------------------------------------

    async def find_chat(self, phone: str, account_id: str | None = None) -> Chat | None:
        """The direct chat with ``phone`` (E.164, exact match), or ``None``.

        ``account_id`` restricts the search to one account (a JID, or an E.164 phone which is
        turned into its JID). Without it, the chat with the most recent message wins.
        """
        params: dict[str, Any] = {"phone": phone if phone.startswith("+") else f"+{phone}"}
        if account_id:
            params["whatsapp_account_id"] = account_id if "@" in account_id else jid_for_phone(account_id)
        async for item in self._paged("chats", "chats", params):
            chat = Chat.model_validate(item)
            if chat.is_group or not _same_phone(chat.phone, phone):
                continue
            if account_id and chat.whatsapp_account_id != params["whatsapp_account_id"]:
                continue
            return chat
        return None

    async def get_chat(self, chat_id: int) -> Chat:
        """One chat by id (``PermanentProviderError`` with status 404 if unknown)."""
        data = await self._request("GET", f"chats/{int(chat_id)}")
        return Chat.model_validate(self._expect_dict(data))

    async def chat_messages(
        self,
        chat_id: int,
        *,
        from_me: bool | None = None,
        after: datetime | None = None,
    ) -> list[WaMessage]:
        """All messages of a chat, oldest first, following every page.

        ``from_me`` keeps only outbound (True) or inbound (False) messages; ``after`` (inclusive)
        keeps messages created at or after that instant (send aware datetimes).
        """
        params: dict[str, Any] = {"sorting_order": "asc"}
        if from_me is not None:
            params["from_me"] = "true" if from_me else "false"
        if after is not None:
            params["after"] = after.isoformat()
        return [
            WaMessage.model_validate(item)
            async for item in self._paged(f"chats/{int(chat_id)}/messages", "messages", params)
        ]

    # --- webhooks ------------------------------------------------------------------------------

    async def list_webhooks(self) -> list[Webhook]:
        """The workspace's webhook subscriptions, ordered by id."""
        data = await self._request("GET", "webhooks")
        items = data if isinstance(data, list) else self._expect_dict(data).get("webhooks", [])
        return [Webhook.model_validate(item) for item in items]

    async def create_webhook(self, event_type: str, url: str, *, enabled: bool = True) -> Webhook:
        """Subscribe ``url`` to ``event_type`` (e.g. ``message:received:new``).

        TimelinesAI does not sign deliveries: put a long random secret in ``url``.
        """
        data = await self._request(
            "POST",
            "webhooks",
            json={"event_type": event_type, "url": url, "enabled": enabled},
            side_effect=True,
        )
        return Webhook.model_validate(self._expect_dict(data))

    async def delete_webhook(self, webhook_id: int) -> None:
        """Remove a webhook subscription (deliveries stop at once)."""
        await self._request("DELETE", f"webhooks/{int(webhook_id)}")

    # --- plumbing ------------------------------------------------------------------------------

    async def _paged(self, path: str, key: str, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Yield the items under ``data[key]`` of every page (``page`` from 1, ``has_more_pages``)."""
        page = 1
        while page <= _MAX_PAGES:
            data = self._expect_dict(await self._request("GET", path, params={**params, "page": page}))
            items = data.get(key) or []
            for item in items:
                yield item
            if not data.get("has_more_pages") or not items:
                return
            page += 1

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        side_effect: bool = False,
    ) -> Any:
        """One API call; returns the envelope's ``data`` or raises a classified ProviderError."""
        try:
            response = await self._send(method, path, params=params, json=json)
        except httpx.TransportError as exc:
            raise classify_transport_error(exc, side_effect=side_effect, provider=PROVIDER) from exc
        if response.status_code >= 400:
            raise self._error(response, side_effect=side_effect)
        try:
            body = response.json()
        except ValueError as exc:
            message = f"unreadable {response.status_code} response body"
            if side_effect:
                raise AmbiguousProviderError(
                    message, status_code=response.status_code, provider=PROVIDER
                ) from exc
            raise TransientProviderError(
                message, status_code=response.status_code, provider=PROVIDER
            ) from exc
        if isinstance(body, dict) and body.get("status") == "error":
            raise self._error(response, side_effect=side_effect, body=body)
        if isinstance(body, dict) and "data" in body:
            return body["data"]
        return body

    @staticmethod
    def _error(
        response: httpx.Response, *, side_effect: bool, body: dict[str, Any] | None = None
    ) -> ProviderError:
        if body is None:
            try:
                decoded = response.json()
            except ValueError:
                decoded = None
            body = decoded if isinstance(decoded, dict) else {"text": response.text[:1000]}
        message = str(body.get("message") or body.get("error") or response.reason_phrase or "error")
        error_code = body.get("error_code")
        return classify_response(
            response.status_code,
            message=message,
            error_code=str(error_code) if error_code else None,
            raw=body,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            side_effect=side_effect,
            provider=PROVIDER,
        )

    @staticmethod
    def _expect_dict(data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise TransientProviderError(f"unexpected response data {type(data).__name__}", provider=PROVIDER)
        return data

    @staticmethod
    def _message_uid(data: Any) -> str:
        uid = data.get("message_uid") if isinstance(data, dict) else None
        if not uid:
            # Accepted (2xx) but we cannot tell which message: the send may well have happened.
            raise AmbiguousProviderError("send accepted without a message_uid", provider=PROVIDER)
        return str(uid)
