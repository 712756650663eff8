"""The vendor clients this process uses, built from settings (one per event loop)."""

from __future__ import annotations

import asyncio

from cerniq.config import get_settings
from cerniq.providers.timelinesai.client import TimelinesAIClient, WhatsAppProvider

_whatsapp: dict[tuple[int, str], WhatsAppProvider] = {}


def whatsapp() -> WhatsAppProvider:
    """The TimelinesAI client (the sandbox in tests and the demo: only the base URL differs)."""
    settings = get_settings()
    key = (id(asyncio.get_running_loop()), settings.timelinesai_base_url)
    client = _whatsapp.get(key)
    if client is None:
        client = TimelinesAIClient.from_settings(settings)
        _whatsapp[key] = client
    return client


async def close_vendors() -> None:
    for client in list(_whatsapp.values()):
        try:
            await client.aclose()
        except RuntimeError:
            pass
    _whatsapp.clear()
