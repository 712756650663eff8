"""Instantly (cold email): the v2 client, its Protocol and the API/webhook models."""

from cerniq.providers.instantly.client import (
    DEFAULT_BASE_URL,
    MAX_BULK_LEADS,
    ColdEmailProvider,
    InstantlyClient,
)
from cerniq.providers.instantly.schemas import (
    CAMPAIGN_STATUS_NAMES,
    CAMPAIGN_STATUS_NUMBERS,
    BulkAddResult,
    Campaign,
    CampaignAnalytics,
    InstantlyWebhookEvent,
    Lead,
    Webhook,
    campaign_status_name,
)

__all__ = [
    "CAMPAIGN_STATUS_NAMES",
    "CAMPAIGN_STATUS_NUMBERS",
    "DEFAULT_BASE_URL",
    "MAX_BULK_LEADS",
    "BulkAddResult",
    "Campaign",
    "CampaignAnalytics",
    "ColdEmailProvider",
    "InstantlyClient",
    "InstantlyWebhookEvent",
    "Lead",
    "Webhook",
    "campaign_status_name",
]
