"""TimelinesAI webhook bodies shaped like the vendor's (and the sandbox's) deliveries."""

from __future__ import annotations

import uuid
from typing import Any

ACCOUNT = "+40700000001"


def message_event(
    *,
    direction: str,
    contact_phone: str,
    text: str,
    chat_id: int = 1_000_001,
    account_phone: str = ACCOUNT,
    uid: str | None = None,
    origin: str | None = None,
    timestamp: str = "2026-03-02 10:15:00 +0200",
) -> dict[str, Any]:
    """A ``message:received:new`` (direction ``received``) or ``message:sent:new`` body."""
    account = {"full_name": "Operator Vânzări 1", "phone": account_phone}
    contact = {"full_name": "Ion Popescu", "phone": contact_phone}
    sender, recipient = (contact, account) if direction == "received" else (account, contact)
    return {
        "event_type": "message:received:new" if direction == "received" else "message:sent:new",
        "chat": {
            "full_name": "Ion Popescu",
            "chat_url": f"https://app.timelines.ai/chat/{chat_id}/messages/",
            "chat_id": chat_id,
            "is_group": False,
            "phone": contact_phone,
        },
        "whatsapp_account": {
            "full_name": "Operator Vânzări 1",
            "email": "vanzari1@cerniq.example",
            "phone": account_phone,
        },
        "message": {
            "text": text,
            "direction": direction,
            "origin": origin or ("WhatsApp" if direction == "received" else "Public API"),
            "timestamp": timestamp,
            "received_timestamp": timestamp,
            "message_uid": uid or str(uuid.uuid4()),
            "sender": sender,
            "recipient": recipient,
        },
    }


def received(contact_phone: str, text: str, **kwargs: Any) -> dict[str, Any]:
    return message_event(direction="received", contact_phone=contact_phone, text=text, **kwargs)


def account_event(
    event_type: str,
    *,
    phone: str = ACCOUNT,
    connected_on: str = "2026-03-01 08:00:00 +0200",
    disconnected_on: str | None = None,
) -> dict[str, Any]:
    account: dict[str, Any] = {
        "id": f"{phone.lstrip('+')}@s.whatsapp.net",
        "phone": phone,
        "connected_on": connected_on,
        "status": "disconnected" if disconnected_on else "active",
        "account_name": "Cerniq Sales 1",
        "owner_name": "Operator Vânzări 1",
        "owner_email": "vanzari1@cerniq.example",
    }
    if disconnected_on:
        account["disconnected_on"] = disconnected_on
    return {"event_type": event_type, "whatsapp_account": account}
