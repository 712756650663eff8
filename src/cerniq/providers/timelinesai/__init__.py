"""TimelinesAI (WhatsApp shared inbox): the client, its Protocol and the API/webhook models."""

from cerniq.providers.timelinesai.client import (
    DEFAULT_BASE_URL,
    TimelinesAIClient,
    WhatsAppProvider,
    jid_for_phone,
)
from cerniq.providers.timelinesai.schemas import (
    AccountEvent,
    Chat,
    MessageEvent,
    StatusHistoryEntry,
    UnknownEvent,
    WaMessage,
    WaMessageStatus,
    Webhook,
    WebhookEvent,
    WhatsAppAccount,
    parse_webhook,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "AccountEvent",
    "Chat",
    "MessageEvent",
    "StatusHistoryEntry",
    "TimelinesAIClient",
    "UnknownEvent",
    "WaMessage",
    "WaMessageStatus",
    "Webhook",
    "WebhookEvent",
    "WhatsAppAccount",
    "WhatsAppProvider",
    "jid_for_phone",
    "parse_webhook",
]
