"""The vendor clients this process uses, built from settings (one per event loop)."""

from __future__ import annotations

import asyncio

from cerniq.config import get_settings
from cerniq.providers.timelinesai.client import TimelinesAIClient, WhatsAppProvider

_whatsapp: dict[tuple[int, str, str | None], WhatsAppProvider] = {}


def whatsapp(lane: str | None = None) -> WhatsAppProvider:
    """The TimelinesAI client (the sandbox in tests and the demo: only the base URL differs).

    ``lane`` gives a caller that sends one request at a time its own connection pool: the send
    path passes the phone, whose queue runs one job at a time. httpx's pool costs more CPU per
    request the more requests share it at once (about 1.4 ms with 20 in flight against 0.5 ms
    alone, on the CI machine), so twenty phones sending together each get a pool of their own.
    """
    settings = get_settings()
    key = (id(asyncio.get_running_loop()), settings.timelinesai_base_url, lane)
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
