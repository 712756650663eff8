"""Instantly API v2 client (spec/providers.md §2) behind the :class:`ColdEmailProvider` Protocol.

One :class:`InstantlyClient` per process and event loop; it owns a pooled ``httpx.AsyncClient``.
The client never retries by itself: failures are raised as :mod:`cerniq.providers.errors`
classes and the caller decides. Instantly has **no idempotency keys**: a bulk add retried after
a lost response is made safe by ``skip_if_in_campaign`` / ``skip_if_in_workspace`` (the lead is
skipped, not added twice) and resolved with :meth:`InstantlyClient.find_leads`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import httpx

from cerniq.providers.errors import (
    AmbiguousProviderError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    classify_response,
    classify_transport_error,
    parse_retry_after,
)
from cerniq.providers.http import BearerApiClient
from cerniq.providers.instantly.schemas import (
    BulkAddResult,
    Campaign,
    CampaignAnalytics,
    Lead,
    Webhook,
)

if TYPE_CHECKING:
    from cerniq.config import Settings

__all__ = ["DEFAULT_BASE_URL", "MAX_BULK_LEADS", "PROVIDER", "ColdEmailProvider", "InstantlyClient"]

DEFAULT_BASE_URL = "https://api.instantly.ai"
PROVIDER = "instantly"
MAX_BULK_LEADS = 1000
PAGE_LIMIT = 100
_MAX_PAGES = 10_000


@runtime_checkable
class ColdEmailProvider(Protocol):
    """What the cold-email channel needs from a vendor. :class:`InstantlyClient` implements it."""

    async def create_campaign(
        self,
        *,
        name: str,
        schedule: dict[str, Any],
        steps: Sequence[dict[str, Any]],
        email_list: Sequence[str] = (),
        daily_limit: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> Campaign: ...

    async def get_campaign(self, campaign_id: str) -> Campaign: ...

    async def list_campaigns(self, *, search: str | None = None) -> list[Campaign]: ...

    async def activate_campaign(self, campaign_id: str) -> Campaign: ...

    async def pause_campaign(self, campaign_id: str) -> Campaign: ...

    async def add_leads(
        self,
        campaign_id: str,
        leads: Sequence[dict[str, Any]],
        *,
        skip_if_in_workspace: bool = True,
        skip_if_in_campaign: bool = True,
    ) -> BulkAddResult: ...

    async def find_leads(
        self, *, campaign_id: str | None = None, emails: Sequence[str] = ()
    ) -> list[Lead]: ...

    async def delete_lead(self, lead_id: str) -> None: ...

    async def campaign_analytics(
        self,
        campaign_ids: Sequence[str] = (),
        *,
        start_date: date | None = None,
        end_date: date | None = None,
    ) -> list[CampaignAnalytics]: ...

    async def block_emails(self, values: Sequence[str]) -> int: ...

    async def list_webhooks(self) -> list[Webhook]: ...

    async def create_webhook(
        self,
        *,
        target_hook_url: str,
        event_type: str = "all_events",
        headers: dict[str, str] | None = None,
        name: str | None = None,
        campaign_id: str | None = None,
    ) -> Webhook: ...

    async def delete_webhook(self, webhook_id: str) -> None: ...

    async def aclose(self) -> None: ...


class InstantlyClient(BearerApiClient):
    """Async client of Instantly API v2 (``Authorization: Bearer <API key>``).

    ``base_url`` is the API host (production ``https://api.instantly.ai``, the sandbox
    ``http://127.0.0.1:<port>/instantly``); every path is under ``/api/v2``.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | httpx.Timeout = 30.0,
        max_connections: int = 10,
        user_agent: str = "cerniq-outreach",
    ) -> None:
        super().__init__(
            secret=api_key,
            missing_secret="an Instantly API key is required",
            base_url=base_url,
            api_prefix="/api/v2",
            timeout=timeout,
            max_connections=max_connections,
            user_agent=user_agent,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout: float = 30.0) -> InstantlyClient:
        """Build the client from ``CERNIQ_INSTANTLY_*`` settings."""
        return cls(
            api_key=settings.instantly_api_key.get_secret_value(),
            base_url=settings.instantly_base_url,
            timeout=timeout,
        )

    # --- campaigns ---------------------------------------------------------------------------

    async def create_campaign(
        self,
        *,
        name: str,
        schedule: dict[str, Any],
        steps: Sequence[dict[str, Any]],
        email_list: Sequence[str] = (),
        daily_limit: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> Campaign:
        """Create a campaign (always Draft, status 0: creating never sends).

        ``schedule`` is one ``campaign_schedule.schedules[]`` entry (``name``, ``timing{from,to}``,
        ``days{"0".."6"}``, ``timezone``); ``steps`` are ``{subject, body, delay}`` dicts (delay in
        days before the step). Not idempotent: a lost response is ambiguous (list by name to
        resolve).
        """
        body: dict[str, Any] = {
            "name": name,
            "campaign_schedule": {"schedules": [schedule]},
            "sequences": [
                {
                    "steps": [
                        {
                            "type": "email",
                            "delay": int(step.get("delay", 0)),
                            "delay_unit": step.get("delay_unit", "days"),
                            "variants": [{"subject": step["subject"], "body": step["body"]}],
                        }
                        for step in steps
                    ]
                }
            ],
        }
        if email_list:
            body["email_list"] = list(email_list)
        if daily_limit is not None:
            body["daily_limit"] = daily_limit
        body.update(options or {})
        return Campaign.model_validate(await self._request("POST", "campaigns", json=body, side_effect=True))

    async def get_campaign(self, campaign_id: str) -> Campaign:
        return Campaign.model_validate(await self._request("GET", f"campaigns/{campaign_id}"))

    async def list_campaigns(self, *, search: str | None = None) -> list[Campaign]:
        """Every campaign of the workspace (cursor pages of 100)."""
        params: dict[str, Any] = {"search": search} if search else {}
        return [Campaign.model_validate(item) async for item in self._cursor("GET", "campaigns", params)]

    async def activate_campaign(self, campaign_id: str) -> Campaign:
        """Activate (or resume) a campaign; repeating it is harmless."""
        return Campaign.model_validate(await self._request("POST", f"campaigns/{campaign_id}/activate"))

    async def pause_campaign(self, campaign_id: str) -> Campaign:
        """Pause a campaign; repeating it is harmless."""
        return Campaign.model_validate(await self._request("POST", f"campaigns/{campaign_id}/pause"))

    # --- leads -------------------------------------------------------------------------------

    async def add_leads(
        self,
        campaign_id: str,
        leads: Sequence[dict[str, Any]],
        *,
        skip_if_in_workspace: bool = True,
        skip_if_in_campaign: bool = True,
    ) -> BulkAddResult:
        """Add up to 1000 leads to a campaign (``POST /leads/add``).

        Each lead is a dict of the lead fields (``email`` required; ``custom_variables`` flat).
        ``created_leads`` maps each added lead's request ``index`` to its new id; a lead absent
        from it was skipped (already there, block-listed, invalid). A lost response raises
        :class:`AmbiguousProviderError`: send the same batch again, the skip flags make it safe.
        """
        if not leads:
            return BulkAddResult(status="success")
        if len(leads) > MAX_BULK_LEADS:
            raise ValueError(f"at most {MAX_BULK_LEADS} leads per bulk add")
        body: dict[str, Any] = {
            "campaign_id": campaign_id,
            "leads": list(leads),
            "skip_if_in_campaign": skip_if_in_campaign,
            "skip_if_in_workspace": skip_if_in_workspace,
            "verify_leads_on_import": False,
        }
        return BulkAddResult.model_validate(
            await self._request("POST", "leads/add", json=body, side_effect=True)
        )

    async def find_leads(self, *, campaign_id: str | None = None, emails: Sequence[str] = ()) -> list[Lead]:
        """Leads by campaign and/or email addresses (``POST /leads/list``, every page)."""
        body: dict[str, Any] = {}
        if campaign_id:
            body["campaign"] = campaign_id
        if emails:
            body["contacts"] = list(emails)
        return [Lead.model_validate(item) async for item in self._cursor("POST", "leads/list", body)]

    async def get_lead(self, lead_id: str) -> Lead:
        return Lead.model_validate(await self._request("GET", f"leads/{lead_id}"))

    async def delete_lead(self, lead_id: str) -> None:
        """Delete a lead (it stops receiving the campaign). A lead already gone is not an error."""
        try:
            await self._request("DELETE", f"leads/{lead_id}")
        except PermanentProviderError as exc:
            if exc.status_code != 404:
                raise

    # --- analytics and block list ----------------------------------------------------------

    async def campaign_analytics(
        self,
        campaign_ids: Sequence[str] = (),
        *,
        start_date: date | None = None,
        end_date: date | None = None,
    ) -> list[CampaignAnalytics]:
        """Counters per campaign (``[]`` until a campaign's first send); all campaigns when empty."""
        params: list[tuple[str, str]] = []
        ids = list(campaign_ids)
        if len(ids) == 1:
            params.append(("id", ids[0]))
        else:
            params.extend(("ids", i) for i in ids)
        if start_date is not None:
            params.append(("start_date", start_date.isoformat()))
        if end_date is not None:
            params.append(("end_date", end_date.isoformat()))
        data = await self._request("GET", "campaigns/analytics", params=params)
        if not isinstance(data, list):
            raise TransientProviderError("analytics answer is not a list", provider=PROVIDER)
        return [CampaignAnalytics.model_validate(item) for item in data]

    async def block_emails(self, values: Sequence[str]) -> int:
        """Add addresses (or domains) to the workspace block list; returns how many were valid."""
        total = 0
        for chunk in _chunks(values, 1000):
            data = await self._request("POST", "block-lists-entries/bulk-create", json={"bl_values": chunk})
            total += int(data.get("valid_count", len(chunk))) if isinstance(data, dict) else len(chunk)
        return total

    # --- webhooks ----------------------------------------------------------------------------

    async def list_webhooks(self) -> list[Webhook]:
        return [Webhook.model_validate(item) async for item in self._cursor("GET", "webhooks", {})]

    async def create_webhook(
        self,
        *,
        target_hook_url: str,
        event_type: str = "all_events",
        headers: dict[str, str] | None = None,
        name: str | None = None,
        campaign_id: str | None = None,
    ) -> Webhook:
        """Subscribe ``target_hook_url``; ``headers`` (our shared secret) come back on every delivery."""
        body: dict[str, Any] = {"target_hook_url": target_hook_url, "event_type": event_type}
        if headers:
            body["headers"] = headers
        if name:
            body["name"] = name
        if campaign_id:
            body["campaign"] = campaign_id
        return Webhook.model_validate(await self._request("POST", "webhooks", json=body, side_effect=True))

    async def delete_webhook(self, webhook_id: str) -> None:
        await self._request("DELETE", f"webhooks/{webhook_id}")

    # --- plumbing ----------------------------------------------------------------------------

    async def _cursor(self, method: str, path: str, params: dict[str, Any]) -> Any:
        """Yield the ``items`` of every cursor page (``limit`` + ``starting_after``)."""
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            query = {**params, "limit": PAGE_LIMIT}
            if cursor:
                query["starting_after"] = cursor
            if method == "GET":
                data = await self._request("GET", path, params=query)
            else:
                data = await self._request(method, path, json=query)
            if not isinstance(data, dict):
                raise TransientProviderError("list answer is not an object", provider=PROVIDER)
            items = data.get("items") or []
            for item in items:
                yield item
            cursor = data.get("next_starting_after")
            # The last page may still carry a cursor; the next call then answers no items.
            if not cursor or not items:
                return

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        side_effect: bool = False,
    ) -> Any:
        try:
            response = await self._send(method, path, params=params, json=json)
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
    """``{"statusCode", "error", "message"}`` (or a bare ``{"message"}``) to a ProviderError."""
    try:
        decoded = response.json()
    except ValueError:
        decoded = None
    body: dict[str, Any] = decoded if isinstance(decoded, dict) else {"text": response.text[:1000]}
    message = str(body.get("message") or body.get("error") or response.reason_phrase or "error")
    code = "rate_limit_exceeded" if response.status_code == 429 else None
    return classify_response(
        response.status_code,
        message=message,
        error_code=code,
        raw=body,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        side_effect=side_effect,
        provider=PROVIDER,
    )


def _chunks(values: Iterable[str], size: int) -> list[list[str]]:
    items = list(values)
    return [items[i : i + size] for i in range(0, len(items), size)]
