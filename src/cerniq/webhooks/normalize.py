"""One internal event for every vendor webhook (the digest's ``SystemEvent``).

Each source turns its vendor's body into an :class:`InboundEvent`; everything after that (lead
matching, the reply pipeline, phone status) reads only this shape. The email sources use the
``EMAIL_*`` kinds with ``email`` / ``subject`` set.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import phonenumbers

from cerniq.providers.timelinesai.schemas import AccountEvent, MessageEvent

__all__ = ["EventKind", "InboundEvent", "e164", "from_timelinesai"]


class EventKind(StrEnum):
    """What happened, whatever the vendor."""

    MESSAGE_RECEIVED = "MESSAGE_RECEIVED"  # the lead wrote to us (a reply)
    MESSAGE_SENT = "MESSAGE_SENT"  # a message left one of our numbers (API or the phone itself)
    MESSAGE_STATUS = "MESSAGE_STATUS"  # delivered / read / failed of one of our messages
    ACCOUNT_CONNECTED = "ACCOUNT_CONNECTED"
    ACCOUNT_DISCONNECTED = "ACCOUNT_DISCONNECTED"
    EMAIL_SENT = "EMAIL_SENT"
    EMAIL_DELIVERED = "EMAIL_DELIVERED"
    EMAIL_OPENED = "EMAIL_OPENED"
    EMAIL_CLICKED = "EMAIL_CLICKED"
    EMAIL_REPLIED = "EMAIL_REPLIED"
    EMAIL_BOUNCED = "EMAIL_BOUNCED"
    EMAIL_COMPLAINED = "EMAIL_COMPLAINED"
    EMAIL_UNSUBSCRIBED = "EMAIL_UNSUBSCRIBED"
    EMAIL_FAILED = "EMAIL_FAILED"


@dataclass(frozen=True)
class InboundEvent:
    """A vendor event in our words. Phones are E.164; ``raw`` is the vendor body as stored."""

    kind: EventKind
    provider: str
    tenant_id: uuid.UUID | None
    vendor_event_type: str = ""
    external_message_id: str | None = None
    chat_id: str | None = None
    sender_phone: str | None = None
    recipient_phone: str | None = None
    account_phone: str | None = None  # our WhatsApp number the event is about
    text: str | None = None
    timestamp: datetime | None = None
    origin: str | None = None  # TimelinesAI: "Public API" for our sends, else the phone/app
    is_group: bool = False
    email: str | None = None  # the lead's address (email events)
    subject: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def contact_phone(self) -> str | None:
        """The lead's number: the sender of a received message, the recipient of a sent one."""
        if self.kind == EventKind.MESSAGE_RECEIVED:
            return self.sender_phone
        if self.kind == EventKind.MESSAGE_SENT:
            return self.recipient_phone
        return None

    @property
    def sent_through_api(self) -> bool:
        """True when TimelinesAI says the message was sent by an API call (ours)."""
        return (self.origin or "").strip().lower() == "public api"


def e164(raw: str | None, region: str = "RO") -> str | None:
    """``raw`` as E.164 (Romanian by default), or None when it is not a phone number."""
    if not raw:
        return None
    try:
        parsed = phonenumbers.parse(raw if raw.startswith("+") or raw.startswith("0") else f"+{raw}", region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_CONNECTED = {"whatsapp:account:connected", "whatsapp:account:resumed"}


def from_timelinesai(
    event: MessageEvent | AccountEvent, *, tenant_id: uuid.UUID | None, raw: dict[str, Any]
) -> InboundEvent:
    """Normalise a parsed TimelinesAI message or account event."""
    if isinstance(event, AccountEvent):
        account = event.whatsapp_account
        kind = (
            EventKind.ACCOUNT_CONNECTED if event.event_type in _CONNECTED else EventKind.ACCOUNT_DISCONNECTED
        )
        return InboundEvent(
            kind=kind,
            provider="timelinesai",
            tenant_id=tenant_id,
            vendor_event_type=event.event_type,
            account_phone=e164(account.phone) or account.phone,
            timestamp=account.disconnected_on
            if kind == EventKind.ACCOUNT_DISCONNECTED
            else account.connected_on,
            raw=raw,
        )
    message = event.message
    received = not message.from_me if message.direction else event.event_type != "message:sent:new"
    chat_phone = e164(event.chat.phone)
    account_phone = e164(event.whatsapp_account.phone)
    sender = e164(message.sender.phone if message.sender else None)
    recipient = e164(message.recipient.phone if message.recipient else None)
    if received:
        sender = sender or chat_phone
        recipient = recipient or account_phone
    else:
        sender = sender or account_phone
        recipient = recipient or chat_phone
    return InboundEvent(
        kind=EventKind.MESSAGE_RECEIVED if received else EventKind.MESSAGE_SENT,
        provider="timelinesai",
        tenant_id=tenant_id,
        vendor_event_type=event.event_type,
        external_message_id=message.message_uid,
        chat_id=str(event.chat.chat_id),
        sender_phone=sender,
        recipient_phone=recipient,
        account_phone=account_phone,
        text=message.text or "",
        timestamp=message.timestamp or message.received_timestamp,
        origin=message.origin,
        is_group=event.chat.is_group,
        raw=raw,
    )
