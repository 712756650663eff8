"""structlog set-up: JSON when stdout is not a terminal, key/value on a terminal.

Bind ``tenant``, ``lead``, ``phone``, ``job`` and ``action`` with ``structlog.contextvars`` or
``log.bind``; message bodies, API keys and full phone numbers are never logged.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from cerniq.config import Settings


def configure_logging(settings: Settings) -> None:
    """Configure structlog and the standard library root logger once per process."""
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        level = logging.INFO
    as_json = settings.log_json if settings.log_json is not None else not sys.stdout.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr, format="%(name)s %(message)s")


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; bind context with ``.bind(tenant=..., lead=..., phone=..., job=...)``."""
    return structlog.get_logger(name)


def mask_phone(phone: str | None) -> str:
    """``+40712345678`` -> ``+40****5678``."""
    if not phone:
        return ""
    return phone[:3] + "****" + phone[-4:] if len(phone) > 7 else "****"


def mask_email(email: str | None) -> str:
    """``ion@ferma.ro`` -> ``i***@ferma.ro``."""
    if not email or "@" not in email:
        return ""
    local, domain = email.split("@", 1)
    return f"{local[:1]}***@{domain}"
