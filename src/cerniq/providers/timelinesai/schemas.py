"""Pydantic models of the TimelinesAI Public API v1.3 objects and webhook bodies (spec/providers.md §1).

Parsing is permissive: unknown keys are ignored, optional fields default to ``None``, and
timestamps accept the vendor's ``YYYY-MM-DD HH:MM:SS ±ZZZZ`` as well as ISO 8601. Our webhook
ingest uses :func:`parse_webhook` on raw bodies.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = [
    "VENDOR_TIMESTAMP_FORMAT",
    "AccountEvent",
    "AccountEventAccount",
    "Chat",
    "MessageEvent",
    "StatusHistoryEntry",
    "UnknownEvent",
    "WaMessage",
    "WaMessageStatus",
    "Webhook",
    "WebhookAttachment",
    "WebhookChat",
    "WebhookEvent",
    "WebhookMessage",
    "WebhookMessageAccount",
    "WebhookParty",
    "WhatsAppAccount",
    "format_timestamp",
    "normalize_status",
    "parse_timestamp",
    "parse_webhook",
]

VENDOR_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S %z"


def parse_timestamp(value: object) -> datetime | None:
    """Parse a vendor timestamp into an aware datetime (naive values are taken as UTC).

    Accepts ``2024-01-08 10:35:18 +0200``, ISO 8601 (``2024-01-08T10:35:18Z``), epoch seconds
    and datetimes; empty values give ``None``.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    elif isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.strptime(text, VENDOR_TIMESTAMP_FORMAT)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ValueError(f"unrecognised timestamp {value!r}") from exc
    else:
        raise ValueError(f"unrecognised timestamp {value!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def format_timestamp(value: datetime) -> str:
    """Render an aware datetime the way the vendor does: ``YYYY-MM-DD HH:MM:SS ±ZZZZ``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.strftime(VENDOR_TIMESTAMP_FORMAT)


Timestamp = Annotated[datetime | None, BeforeValidator(parse_timestamp)]


class WaMessageStatus(StrEnum):
    """A message's delivery status, normalised from the vendor's spellings."""

    PENDING = "PENDING"
    SENDING = "SENDING"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    READ = "READ"
    FAILED = "FAILED"


_STATUS_ALIASES = {
    "pending": WaMessageStatus.PENDING,
    "queued": WaMessageStatus.PENDING,
    "scheduled": WaMessageStatus.PENDING,
    "sending": WaMessageStatus.SENDING,
    "sent": WaMessageStatus.SENT,
    "delivered": WaMessageStatus.DELIVERED,
    "read": WaMessageStatus.READ,
    "played": WaMessageStatus.READ,
    "failed": WaMessageStatus.FAILED,
    "error": WaMessageStatus.FAILED,
}


def normalize_status(value: object) -> WaMessageStatus:
    """Map a vendor status (``"Delivered"``, ``"queued"``, ...) to :class:`WaMessageStatus`.

    Comparison is case-insensitive; ``queued`` counts as pending, and an unknown or missing
    status is treated as pending (still to be resolved by a later poll).
    """
    if isinstance(value, WaMessageStatus):
        return value
    key = str(value or "").strip().lower()
    return _STATUS_ALIASES.get(key, WaMessageStatus.PENDING)


Status = Annotated[WaMessageStatus, BeforeValidator(normalize_status)]


def _none_to_empty_list(value: object) -> object:
    return [] if value is None else value


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class WhatsAppAccount(_Model):
    """One WhatsApp number linked to the workspace (``GET /whatsapp_accounts``)."""

    id: str
    """The account JID, ``<digits>@s.whatsapp.net``."""
    phone: str
    connected_on: Timestamp = None
    status: str = ""
    owner_name: str | None = None
    owner_email: str | None = None
    account_name: str | None = None

    @property
    def is_active(self) -> bool:
        """True when the account can send (vendor status ``active``, any case)."""
        return self.status.strip().lower() == "active"


class Chat(_Model):
    """A chat (``GET /chats``, ``GET /chats/{id}``)."""

    id: int
    name: str | None = None
    phone: str | None = None
    jid: str | None = None
    is_group: bool = False
    closed: bool = False
    read: bool = True
    labels: Annotated[list[str], BeforeValidator(_none_to_empty_list)] = Field(default_factory=list)
    responsible_email: str | None = None
    responsible_name: str | None = None
    whatsapp_account_id: str | None = None
    chat_url: str | None = None
    created_timestamp: Timestamp = None
    last_message_uid: str | None = None
    last_message_timestamp: Timestamp = None
    unattended: bool | None = None
    is_allowed_to_message: bool | None = None


class WaMessage(_Model):
    """A message (``GET /messages/{uid}``, chat history), status normalised."""

    uid: str
    chat_id: int | None = None
    status: Status = WaMessageStatus.PENDING
    from_me: bool = False
    text: str | None = None
    timestamp: Timestamp = None
    received_timestamp: Timestamp = None
    sender_phone: str | None = None
    sender_name: str | None = None
    recipient_phone: str | None = None
    recipient_name: str | None = None
    origin: str | None = None
    message_type: str | None = None
    has_attachment: bool = False
    failure_reason: str | None = None
    raw_status: str | None = None
    """The vendor's status spelling before normalisation."""

    @model_validator(mode="before")
    @classmethod
    def _keep_raw_status(cls, data: Any) -> Any:
        if isinstance(data, dict) and "raw_status" not in data and data.get("status") is not None:
            return {**data, "raw_status": str(data["status"])}
        return data


class StatusHistoryEntry(_Model):
    """One step of ``GET /messages/{uid}/status_history``."""

    status: Status
    timestamp: Timestamp = None
    failure_reason: str | None = None


class Webhook(_Model):
    """A webhook subscription (``/webhooks``)."""

    id: int
    event_type: str
    url: str
    enabled: bool = True
    errors_counter: int = 0


# --- webhook bodies (§1.5) -------------------------------------------------------------------


class WebhookParty(_Model):
    """Sender or recipient of a webhook message."""

    full_name: str | None = None
    phone: str | None = None


class WebhookAttachment(_Model):
    """An attachment of a webhook message (download URL valid for 15 minutes)."""

    temporary_download_url: str | None = None
    filename: str | None = None
    size: int | None = None
    mimetype: str | None = None


class WebhookChat(_Model):
    """``chat`` of a message event."""

    chat_id: int
    full_name: str | None = None
    chat_url: str | None = None
    is_group: bool = False
    phone: str | None = None
    responsible_name: str | None = None
    responsible_email: str | None = None


class WebhookMessageAccount(_Model):
    """``whatsapp_account`` of a message event (the receiving/sending number)."""

    full_name: str | None = None
    email: str | None = None
    phone: str | None = None


class WebhookMessage(_Model):
    """``message`` of a message event."""

    message_uid: str
    text: str | None = None
    direction: str | None = None
    """``"sent"`` or ``"received"``."""
    origin: str | None = None
    timestamp: Timestamp = None
    received_timestamp: Timestamp = None
    reply_to_uid: str | None = None
    sender: WebhookParty | None = None
    recipient: WebhookParty | None = None
    attachments: Annotated[list[WebhookAttachment], BeforeValidator(_none_to_empty_list)] = Field(
        default_factory=list
    )

    @property
    def from_me(self) -> bool:
        """True for an outbound message (direction ``sent``)."""
        return (self.direction or "").lower() == "sent"


class MessageEvent(_Model):
    """``message:new`` / ``message:received:new`` / ``message:sent:new`` body."""

    event_type: Literal["message:new", "message:received:new", "message:sent:new"]
    chat: WebhookChat
    whatsapp_account: WebhookMessageAccount
    message: WebhookMessage


class AccountEventAccount(_Model):
    """``whatsapp_account`` of an account event."""

    id: str | None = None
    phone: str
    connected_on: Timestamp = None
    disconnected_on: Timestamp = None
    status: str | None = None
    account_name: str | None = None
    owner_name: str | None = None
    owner_email: str | None = None


class AccountEvent(_Model):
    """``whatsapp:account:connected|disconnected|suspended|resumed`` body."""

    event_type: Literal[
        "whatsapp:account:connected",
        "whatsapp:account:disconnected",
        "whatsapp:account:suspended",
        "whatsapp:account:resumed",
    ]
    whatsapp_account: AccountEventAccount


class UnknownEvent(_Model):
    """Any other event type (chats, reactions, calls, WABA): kept raw, not interpreted."""

    model_config = ConfigDict(extra="allow")
    event_type: str = ""


WebhookEvent = MessageEvent | AccountEvent | UnknownEvent

_MESSAGE_EVENTS = frozenset({"message:new", "message:received:new", "message:sent:new"})
_ACCOUNT_EVENTS = frozenset(
    {
        "whatsapp:account:connected",
        "whatsapp:account:disconnected",
        "whatsapp:account:suspended",
        "whatsapp:account:resumed",
    }
)


def parse_webhook(body: dict[str, Any]) -> WebhookEvent:
    """Parse a TimelinesAI webhook body by its ``event_type``.

    Message and account events become typed models (raising ``pydantic.ValidationError`` when a
    required part is missing); every other event type is returned as :class:`UnknownEvent`.
    """
    event_type = str(body.get("event_type") or "")
    if event_type in _MESSAGE_EVENTS:
        return MessageEvent.model_validate(body)
    if event_type in _ACCOUNT_EVENTS:
        return AccountEvent.model_validate(body)
    return UnknownEvent.model_validate(body)
