"""Settings of the email channels (``CERNIQ_*`` environment variables, like :mod:`cerniq.config`).

Kept beside the feature so the shared Settings object does not grow a block per channel; read
with :func:`email_settings`, which rebuilds whenever the process settings are reloaded.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cerniq.config import Settings, get_settings, parse_duration

__all__ = ["EmailSettings", "email_settings"]


class EmailSettings(BaseSettings):
    """Cold email (Instantly), warm email (Resend), bounces and the deliverability breaker."""

    model_config = SettingsConfigDict(env_prefix="CERNIQ_", env_file=".env", extra="ignore")

    # The deliverability breaker (runbook 6.1): bounce rate over a rolling window.
    email_bounce_threshold: float = Field(default=0.03, gt=0, lt=1)
    """A campaign or sending domain above this bounce rate is paused (3 %)."""
    email_breaker_min_sample: int = Field(default=20, ge=1)
    """Sends needed in the window before a rate is judged."""
    email_breaker_window: timedelta = timedelta(hours=24)
    email_breaker_grace: timedelta = timedelta(hours=24)
    """After an operator resumes a campaign the breaker leaves it alone this long."""
    wa_block_threshold: float = Field(default=0.05, gt=0, lt=1)
    """A phone whose ban/block signals pass this share of its sends in the window is paused."""
    wa_block_min_sample: int = Field(default=20, ge=1)

    # Suppression.
    email_soft_bounce_threshold: int = Field(default=3, ge=1)
    """Soft bounces of one address before it is suppressed."""
    email_soft_bounce_suppression: timedelta = timedelta(days=30)

    # Instantly.
    instantly_timeout: timedelta = timedelta(seconds=30)
    instantly_webhook_header: str = "X-Webhook-Secret"
    instantly_skip_if_in_workspace: bool = True
    """Skip a lead Instantly already has in any campaign (never two campaigns at once)."""
    instantly_bulk_size: int = Field(default=100, ge=1, le=1000)
    instantly_sender_accounts: list[str] = Field(default_factory=list)
    """Sender accounts given to campaigns created here (``email_list``)."""
    email_campaign_wait: timedelta = timedelta(minutes=15)
    """How long a cold message waits before looking again at a paused campaign."""

    # Resend.
    resend_timeout: timedelta = timedelta(seconds=30)

    # Retries of a send whose answer was lost (safe: Resend's idempotency key, Instantly's skip
    # flags): after ``email_retry_delay`` x 2^n, at most ``email_ambiguous_retries`` times.
    email_retry_delay: timedelta = timedelta(seconds=5)
    email_ambiguous_retries: int = Field(default=8, ge=0, le=50)

    # Schedules.
    email_analytics_cron: str = "0 * * * *"
    email_deliverability_cron: str = "30 * * * *"

    @field_validator(
        "email_breaker_window",
        "email_breaker_grace",
        "email_soft_bounce_suppression",
        "instantly_timeout",
        "resend_timeout",
        "email_campaign_wait",
        "email_retry_delay",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value)


# Keyed by the process settings object, which is kept alive here so its id is never reused.
_cache: dict[int, tuple[Settings, EmailSettings]] = {}


def email_settings() -> EmailSettings:
    """The email settings, rebuilt when the process settings are (tests clear that cache)."""
    settings = get_settings()
    cached = _cache.get(id(settings))
    if cached is None or cached[0] is not settings:
        _cache.clear()
        cached = (settings, EmailSettings())
        _cache[id(settings)] = cached
    return cached[1]
