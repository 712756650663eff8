"""Pydantic models of the Instantly API v2 objects and webhook bodies (spec/providers.md §2).

Parsing is permissive (unknown keys ignored, optional fields ``None``): Instantly adds fields
freely and merges a lead's custom variables into webhook bodies as extra top-level keys.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "CAMPAIGN_STATUS_NAMES",
    "CAMPAIGN_STATUS_NUMBERS",
    "LEAD_STATUS_NAMES",
    "WEBHOOK_EVENT_TYPES",
    "BlockListEntry",
    "BulkAddResult",
    "Campaign",
    "CampaignAnalytics",
    "CreatedLead",
    "InstantlyWebhookEvent",
    "Lead",
    "Webhook",
    "campaign_status_name",
    "parse_iso",
]

# Campaign ``status`` numbers and our names for them (email_campaigns.status).
CAMPAIGN_STATUS_NAMES: dict[int, str] = {
    0: "DRAFT",
    1: "ACTIVE",
    2: "PAUSED",
    3: "COMPLETED",
    4: "RUNNING_SUBSEQUENCES",
    -99: "ACCOUNT_SUSPENDED",
    -1: "ACCOUNTS_UNHEALTHY",
    -2: "BOUNCE_PROTECT",
}
CAMPAIGN_STATUS_NUMBERS: dict[str, int] = {name: number for number, name in CAMPAIGN_STATUS_NAMES.items()}

LEAD_STATUS_NAMES: dict[int, str] = {
    1: "ACTIVE",
    2: "PAUSED",
    3: "COMPLETED",
    -1: "BOUNCED",
    -2: "UNSUBSCRIBED",
    -3: "SKIPPED",
}

# The ``event_type`` values of webhook payloads (what arrives), spec §2.4. Interest-status events
# (``lead_interested``...) and custom labels arrive too and are accepted as they come.
WEBHOOK_EVENT_TYPES = frozenset(
    {
        "email_sent",
        "email_opened",
        "link_clicked",
        "email_link_clicked",
        "reply_received",
        "auto_reply_received",
        "email_bounced",
        "lead_unsubscribed",
        "account_error",
        "campaign_completed",
    }
)


def campaign_status_name(status: int | None) -> str:
    """Our name of an Instantly campaign status number (``UNKNOWN_<n>`` for a new one)."""
    if status is None:
        return "DRAFT"
    return CAMPAIGN_STATUS_NAMES.get(int(status), f"UNKNOWN_{status}")


def parse_iso(value: object) -> datetime | None:
    """An ISO-8601 timestamp (``...Z`` or with offset) as an aware datetime; ``None`` if empty."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


Timestamp = Annotated[datetime | None, BeforeValidator(parse_iso)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Campaign(_Model):
    """A campaign (``status``: 0 Draft, 1 Active, 2 Paused, 3 Completed, ...)."""

    id: str
    name: str = ""
    status: int = 0
    email_list: list[str] = Field(default_factory=list)
    daily_limit: int | None = None
    timestamp_created: Timestamp = None
    timestamp_updated: Timestamp = None
    not_sending_status: Any = None
    campaign_schedule: dict[str, Any] | None = None
    sequences: list[dict[str, Any]] | None = None

    @property
    def status_name(self) -> str:
        return campaign_status_name(self.status)


class Lead(_Model):
    """A lead of the workspace (in a campaign or a list)."""

    id: str
    email: str | None = None
    campaign: str | None = None
    list_id: str | None = None
    status: int | None = None
    first_name: str | None = None
    last_name: str | None = None
    company_name: str | None = None
    email_open_count: int = 0
    email_reply_count: int = 0
    email_click_count: int = 0
    payload: dict[str, Any] | None = None
    timestamp_created: Timestamp = None


class CreatedLead(_Model):
    """One entry of ``created_leads``: the index of the lead in the request and its new id."""

    index: int
    id: str
    email: str | None = None


class BulkAddResult(_Model):
    """The answer of ``POST /api/v2/leads/add``."""

    status: str | None = None
    total_sent: int = 0
    leads_uploaded: int = 0
    in_blocklist: int = 0
    blocklist_used: Any = None
    duplicated_leads: int = 0
    skipped_count: int = 0
    invalid_email_count: int = 0
    incomplete_count: int = 0
    duplicate_email_count: int = 0
    remaining_in_plan: int | None = None
    created_leads: list[CreatedLead] = Field(default_factory=list)


class CampaignAnalytics(_Model):
    """One element of ``GET /api/v2/campaigns/analytics``: a campaign's counters."""

    campaign_id: str
    campaign_name: str | None = None
    campaign_status: int | None = None
    leads_count: int = 0
    contacted_count: int = 0
    emails_sent_count: int = 0
    open_count: int = 0
    open_count_unique: int = 0
    reply_count: int = 0
    reply_count_unique: int = 0
    reply_count_automatic: int = 0
    link_click_count: int = 0
    bounced_count: int = 0
    unsubscribed_count: int = 0
    completed_count: int = 0
    total_opportunities: int = 0


class BlockListEntry(_Model):
    id: str
    bl_value: str
    is_domain: bool = False
    timestamp_created: Timestamp = None


class Webhook(_Model):
    """A webhook subscription; ``headers`` are sent verbatim with every delivery."""

    id: str
    target_hook_url: str
    event_type: str | None = None
    campaign: str | None = None
    name: str | None = None
    headers: dict[str, str] | None = None
    status: Any = None
    timestamp_created: Timestamp = None


class InstantlyWebhookEvent(BaseModel):
    """A webhook body: flat JSON, base fields always present, the rest depending on the event."""

    model_config = ConfigDict(extra="allow")

    event_type: str
    timestamp: Timestamp = None
    workspace: str | None = None
    campaign_id: str | None = None
    campaign_name: str | None = None
    lead_email: str | None = None
    email_account: str | None = None
    unibox_url: str | None = None
    step: int | None = None
    variant: int | None = None
    is_first: bool | None = None
    email_id: str | None = None
    email_subject: str | None = None
    email_text: str | None = None
    email_html: str | None = None
    reply_subject: str | None = None
    reply_text: str | None = None
    reply_html: str | None = None
    reply_text_snippet: str | None = None

    @property
    def extras(self) -> dict[str, Any]:
        """The lead fields and custom variables Instantly merged into the body."""
        return dict(self.model_extra or {})
