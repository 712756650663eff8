"""Pydantic models of the Resend objects and webhook bodies (spec/providers.md §3)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "TAG_PATTERN",
    "BatchResult",
    "BounceInfo",
    "ResendEmail",
    "ResendEvent",
    "ResendEventData",
    "ResendWebhook",
    "parse_resend_time",
    "valid_tag",
]

TAG_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def valid_tag(value: str) -> bool:
    """Tag names and values: ASCII letters, digits, ``_`` and ``-``, at most 256 characters."""
    return bool(TAG_PATTERN.match(value))


def parse_resend_time(value: object) -> datetime | None:
    """Resend times: ISO 8601 in webhooks, ``2026-04-03 22:13:42.674981+00`` on ``GET /emails``."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip().replace("Z", "+00:00")
    if re.search(r"[+-]\d{2}$", text):
        text += ":00"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


Timestamp = Annotated[datetime | None, BeforeValidator(parse_resend_time)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ResendEmail(_Model):
    """``GET /emails/{id}``."""

    id: str
    object: str = "email"
    to: list[str] = Field(default_factory=list)
    from_: str | None = Field(default=None, alias="from")
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    created_at: Timestamp = None
    last_event: str | None = None
    tags: list[dict[str, str]] | None = None


class BatchResult(_Model):
    ids: list[str] = Field(default_factory=list)
    errors: list[dict[str, Any]] = Field(default_factory=list)


class ResendWebhook(_Model):
    id: str
    endpoint: str | None = None
    events: list[str] | None = None
    signing_secret: str | None = None
    status: str | None = None


class BounceInfo(_Model):
    type: str | None = None
    subType: str | None = None
    message: str | None = None
    diagnosticCode: list[str] | None = None

    @property
    def is_permanent(self) -> bool:
        return (self.type or "").lower() != "temporary"


class ResendEventData(BaseModel):
    """``data`` of an email event; ``tags`` is an object here, unlike the array used to send."""

    model_config = ConfigDict(extra="allow")

    email_id: str | None = None
    created_at: Timestamp = None
    from_: str | None = Field(default=None, alias="from")
    to: list[str] = Field(default_factory=list)
    subject: str | None = None
    message_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    bounce: BounceInfo | None = None
    click: dict[str, Any] | None = None
    failed: dict[str, Any] | None = None
    suppressed: dict[str, Any] | None = None


class ResendEvent(BaseModel):
    """The webhook envelope ``{"type", "created_at", "data"}``."""

    model_config = ConfigDict(extra="allow")

    type: str
    created_at: Timestamp = None
    data: ResendEventData = Field(default_factory=ResendEventData)

    @classmethod
    def parse(cls, payload: dict[str, Any]) -> ResendEvent:
        """Validate a body; tags sent as ``[{name, value}]`` are read as an object too."""
        data = payload.get("data")
        if isinstance(data, dict) and isinstance(data.get("tags"), list):
            tags = {
                str(t.get("name")): str(t.get("value"))
                for t in data["tags"]
                if isinstance(t, dict) and t.get("name") is not None
            }
            payload = {**payload, "data": {**data, "tags": tags}}
        return cls.model_validate(payload)
