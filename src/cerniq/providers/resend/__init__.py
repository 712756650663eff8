"""Resend (warm email): the client, its Protocol, the models and the Svix signature recipe."""

from cerniq.providers.resend.client import DEFAULT_BASE_URL, ResendClient, WarmEmailProvider
from cerniq.providers.resend.schemas import (
    BatchResult,
    BounceInfo,
    ResendEmail,
    ResendEvent,
    ResendEventData,
    ResendWebhook,
    valid_tag,
)
from cerniq.providers.resend.svix import SignatureError, sign, signature_headers, verify

__all__ = [
    "DEFAULT_BASE_URL",
    "BatchResult",
    "BounceInfo",
    "ResendClient",
    "ResendEmail",
    "ResendEvent",
    "ResendEventData",
    "ResendWebhook",
    "SignatureError",
    "WarmEmailProvider",
    "sign",
    "signature_headers",
    "valid_tag",
    "verify",
]
