"""The email vendor clients of this process, built from settings (one per event loop and URL)."""

from __future__ import annotations

import asyncio

from cerniq.config import get_settings
from cerniq.email.config import email_settings
from cerniq.errors import ServiceUnavailable
from cerniq.providers.instantly.client import ColdEmailProvider, InstantlyClient
from cerniq.providers.resend.client import ResendClient, WarmEmailProvider

__all__ = ["close_email_vendors", "instantly", "resend"]

_instantly: dict[tuple[int, str, str], ColdEmailProvider] = {}
_resend: dict[tuple[int, str, str], WarmEmailProvider] = {}


def instantly() -> ColdEmailProvider:
    """The Instantly client (the sandbox in tests and the demo: only the base URL differs)."""
    settings = get_settings()
    api_key = settings.instantly_api_key.get_secret_value()
    if not api_key:
        raise ServiceUnavailable(
            "Instantly is not configured (CERNIQ_INSTANTLY_API_KEY)", code="INSTANTLY_NOT_CONFIGURED"
        )
    key = (id(asyncio.get_running_loop()), settings.instantly_base_url, api_key)
    client = _instantly.get(key)
    if client is None:
        client = InstantlyClient(
            api_key=api_key,
            base_url=settings.instantly_base_url,
            timeout=email_settings().instantly_timeout.total_seconds(),
        )
        _instantly[key] = client
    return client


def resend() -> WarmEmailProvider:
    """The Resend client."""
    settings = get_settings()
    api_key = settings.resend_api_key.get_secret_value()
    if not api_key:
        raise ServiceUnavailable(
            "Resend is not configured (CERNIQ_RESEND_API_KEY)", code="RESEND_NOT_CONFIGURED"
        )
    key = (id(asyncio.get_running_loop()), settings.resend_base_url, api_key)
    client = _resend.get(key)
    if client is None:
        client = ResendClient(
            api_key=api_key,
            base_url=settings.resend_base_url,
            timeout=email_settings().resend_timeout.total_seconds(),
        )
        _resend[key] = client
    return client


async def close_email_vendors() -> None:
    """Close every client (worker shutdown, tests)."""
    clients: list[ColdEmailProvider | WarmEmailProvider] = [*_instantly.values(), *_resend.values()]
    for client in clients:
        try:
            await client.aclose()
        except RuntimeError:
            pass
    _instantly.clear()
    _resend.clear()
