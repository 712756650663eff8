"""One typed settings object, read from ``CERNIQ_*`` environment variables (and ``.env``)."""

from __future__ import annotations

from datetime import time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "demo", "production"]


class Settings(BaseSettings):
    """Everything configurable. Durations accept seconds (``30``) or ISO 8601 (``PT30S``)."""

    model_config = SettingsConfigDict(
        env_prefix="CERNIQ_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Environment = "development"

    # Stores. Unset means: the local default ports, or embedded servers for run/demo.
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/cerniq"
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_redis_db: int = Field(default=2, ge=0, le=15)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    data_dir: Path = Path(".cerniq")

    # API
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=64000, ge=1, le=65535)
    public_base_url: str = "http://127.0.0.1:64000"
    local_operator_mode: bool = False
    default_tenant_slug: str = "default"
    session_secret: SecretStr = SecretStr("change-me-in-production-please-0123456789")

    # Logging
    log_level: str = "INFO"
    log_json: bool | None = None  # None: JSON when stdout is not a terminal

    # Business clock
    timezone: str = "Europe/Bucharest"
    business_hours_start: time = time(9, 0)
    business_hours_end: time = time(18, 0)
    business_days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])  # Monday=0
    business_holidays_country: str = "RO"
    business_hours_always_open: bool = False

    # WhatsApp sending
    wa_daily_quota: int = Field(default=200, ge=0)
    wa_followup_daily_cap: int = Field(default=500, ge=0)
    jitter_base: timedelta = timedelta(seconds=30)
    jitter_spread: timedelta = timedelta(seconds=120)
    dispatch_batch_size: int = Field(default=100, ge=1, le=10000)
    dispatch_cron: str = "*/5 * * * *"
    followup_delay: timedelta = timedelta(hours=72)
    send_max_attempts: int = Field(default=5, ge=1, le=50)
    outbox_relay_after: timedelta = timedelta(seconds=60)
    # How long an ambiguous WhatsApp send waits before a lookup that finds nothing allows a resend.
    ambiguity_grace: timedelta = timedelta(seconds=90)

    # Vendors (the sandbox stands in for all of them in tests and the demo)
    timelinesai_base_url: str = "https://app.timelines.ai/integrations/api"
    timelinesai_api_token: SecretStr = SecretStr("")
    timelinesai_timeout: timedelta = timedelta(seconds=30)
    instantly_base_url: str = "https://api.instantly.ai"
    instantly_api_key: SecretStr = SecretStr("")
    instantly_webhook_secret: SecretStr = SecretStr("")
    resend_base_url: str = "https://api.resend.com"
    resend_api_key: SecretStr = SecretStr("")
    resend_webhook_secret: SecretStr = SecretStr("")
    resend_from: str = "Cerniq Sales <sales@cerniq.app>"
    resend_reply_to: str = "reply@cerniq.app"
    slack_webhook_url: str = ""
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: SecretStr = SecretStr("")
    sandbox_port: int = Field(default=64100, ge=1, le=65535)

    # Operations
    backups_dir: Path = Path("backups")
    archive_after: timedelta = timedelta(days=90)
    webhook_payload_retention: timedelta = timedelta(days=30)
    dlq_max_length: int = Field(default=1000, ge=1)
    completed_job_retention: timedelta = timedelta(days=7)

    # Alerts (runbook 9): where each severity is announced, escalation delays, thresholds.
    # Slack goes to ``alert_slack_webhook_urls[severity]`` or else ``slack_webhook_url``; email
    # goes to the on-call users (team_role on_call) plus ``alert_email_to``, escalations to team
    # leads (L2) and managers (L3). ``alert_email_backend`` "auto" sends through SMTP when
    # ``smtp_host`` is set and otherwise only records the email (log line + the alert's details).
    alert_slack_severities: list[str] = Field(default_factory=lambda: ["CRITICAL", "HIGH", "MEDIUM"])
    alert_email_severities: list[str] = Field(default_factory=lambda: ["CRITICAL", "HIGH"])
    alert_slack_webhook_urls: dict[str, str] = Field(default_factory=dict)
    alert_email_to: list[str] = Field(default_factory=list)
    alert_email_backend: Literal["auto", "log", "smtp"] = "auto"
    alert_escalate_l2_after: timedelta = timedelta(minutes=30)
    alert_escalate_l3_after: timedelta = timedelta(hours=2)
    alert_dlq_threshold: int = Field(default=100, ge=0)
    alert_backlog_threshold: int = Field(default=1000, ge=0)
    alert_backlog_for: timedelta = timedelta(minutes=10)
    alert_stalled_after: timedelta = timedelta(minutes=5)
    alert_degraded_for: timedelta = timedelta(minutes=5)
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "Cerniq Alerts <alerts@cerniq.app>"
    smtp_starttls: bool = True
    smtp_timeout: timedelta = timedelta(seconds=10)

    @field_validator(
        "alert_escalate_l2_after",
        "alert_escalate_l3_after",
        "alert_backlog_for",
        "alert_stalled_after",
        "alert_degraded_for",
        "smtp_timeout",
        mode="before",
    )
    @classmethod
    def _alert_duration(cls, value: object) -> object:
        return parse_duration(value)

    @field_validator(
        "jitter_base",
        "jitter_spread",
        "followup_delay",
        "outbox_relay_after",
        "ambiguity_grace",
        "timelinesai_timeout",
        "archive_after",
        "webhook_payload_retention",
        "completed_job_retention",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("database_url must be a postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("redis_url must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("business_days")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if not value or any(d < 0 or d > 6 for d in value):
            raise ValueError("business_days must be weekday numbers 0 (Monday) to 6 (Sunday)")
        return sorted(set(value))

    @model_validator(mode="after")
    def _window(self) -> Settings:
        if self.business_hours_end <= self.business_hours_start:
            raise ValueError("business_hours_end must be after business_hours_start")
        if self.jitter_base < timedelta(0) or self.jitter_spread < timedelta(0):
            raise ValueError("jitter durations cannot be negative")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def sync_database_url(self) -> str:
        """The same database for psycopg (Alembic, pg_dump helpers)."""
        return "postgresql+psycopg://" + self.database_url.split("://", 1)[1]

    @property
    def libpq_database_url(self) -> str:
        """A plain ``postgresql://`` URL for libpq tools (psql, pg_dump)."""
        return "postgresql://" + self.database_url.split("://", 1)[1]

    @property
    def queue_redis_url(self) -> str:
        """The Redis URL of the queue database (DB 2 by default)."""
        return with_redis_db(self.redis_url, self.queue_redis_db)


_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> object:
    """Seconds (``"30"``, ``30``) or ``30s``/``5m``/``2h``/``3d``/``250ms`` to a timedelta;
    anything else (ISO 8601 ``PT30S``, a timedelta) is left for pydantic."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        raw = value.strip().lower()
        for unit in ("ms", "s", "m", "h", "d"):
            if raw.endswith(unit) and raw[: -len(unit)].replace(".", "", 1).isdigit():
                return timedelta(seconds=float(raw[: -len(unit)]) * _UNITS[unit])
        if raw.replace(".", "", 1).isdigit():
            return timedelta(seconds=float(raw))
    return value


def with_redis_db(url: str, db: int) -> str:
    """Return ``url`` pointing at database ``db``."""
    if url.startswith("unix://"):
        base = url.split("?", 1)[0]
        return f"{base}?db={db}"
    head, _, rest = url.partition("://")
    hostpart, slash, _path = rest.partition("/")
    query = ""
    if "?" in rest:
        query = "?" + rest.split("?", 1)[1]
        hostpart = hostpart.split("?", 1)[0]
    del slash
    return f"{head}://{hostpart}/{db}{query}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings. Tests call ``get_settings.cache_clear()`` after changing the env."""
    return Settings()
