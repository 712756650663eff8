"""SQL of the webhook feature: the raw event store and matching events to leads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.kit.clock import utcnow
from cerniq.models import GoldCommunicationLog, GoldLeadJourney, Tenant, WaPhoneNumber, WebhookEvent
from cerniq.models.enums import Channel, Direction, MessageStatus, WebhookStatus

PRUNED: dict[str, Any] = {"pruned": True}


# --- the event store --------------------------------------------------------------------------


async def insert_event(
    session: AsyncSession,
    *,
    provider: str,
    event_key: str,
    event_type: str | None,
    tenant_id: uuid.UUID | None,
    payload: dict[str, Any],
    headers: dict[str, Any],
    status: WebhookStatus,
    error: str | None,
) -> uuid.UUID | None:
    """Store one delivery; None when ``(provider, event_key)`` is already stored (a redelivery)."""
    statement = (
        insert(WebhookEvent)
        .values(
            id=uuid.uuid4(),
            provider=provider,
            event_key=event_key,
            event_type=event_type,
            tenant_id=tenant_id,
            payload=payload,
            headers=headers,
            status=status,
            error=error,
            processed_at=utcnow() if status != WebhookStatus.RECEIVED else None,
        )
        .on_conflict_do_nothing(index_elements=["provider", "event_key"])
        .returning(WebhookEvent.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def tenant_tokens(session: AsyncSession) -> list[tuple[uuid.UUID, str]]:
    """``(tenant id, webhook token)`` of every active tenant (compared in constant time by the caller)."""
    rows = await session.execute(select(Tenant.id, Tenant.webhook_token).where(Tenant.is_active.is_(True)))
    return [(r[0], str(r[1])) for r in rows]


async def lock_event(session: AsyncSession, event_id: uuid.UUID) -> WebhookEvent | None:
    query = select(WebhookEvent).where(WebhookEvent.id == event_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_event(
    session: AsyncSession, event_id: uuid.UUID, tenant_id: uuid.UUID | None = None
) -> WebhookEvent | None:
    """One event; with ``tenant_id``, only that tenant's events and those of no known tenant."""
    query = select(WebhookEvent).where(WebhookEvent.id == event_id)
    if tenant_id is not None:
        query = query.where((WebhookEvent.tenant_id == tenant_id) | WebhookEvent.tenant_id.is_(None))
    return (await session.execute(query)).scalar_one_or_none()


async def events_by_prefix(
    session: AsyncSession, prefix: str, tenant_id: uuid.UUID | None, limit: int = 2
) -> list[WebhookEvent]:
    """Events whose id starts with ``prefix`` (the CLI accepts a short id)."""
    query = select(WebhookEvent).where(cast(WebhookEvent.id, Text).like(f"{prefix.lower()}%"))
    if tenant_id is not None:
        query = query.where((WebhookEvent.tenant_id == tenant_id) | WebhookEvent.tenant_id.is_(None))
    return list((await session.execute(query.limit(limit))).scalars())


async def list_events(
    session: AsyncSession,
    *,
    status: WebhookStatus | None,
    provider: str | None,
    tenant_id: uuid.UUID | None,
    limit: int,
) -> list[WebhookEvent]:
    """Newest first; with ``tenant_id``, that tenant's events and those of no known tenant."""
    query = select(WebhookEvent)
    if status is not None:
        query = query.where(WebhookEvent.status == status)
    if provider:
        query = query.where(WebhookEvent.provider == provider)
    if tenant_id is not None:
        query = query.where((WebhookEvent.tenant_id == tenant_id) | WebhookEvent.tenant_id.is_(None))
    query = query.order_by(WebhookEvent.received_at.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def set_outcome(
    session: AsyncSession,
    event_id: uuid.UUID,
    status: WebhookStatus,
    *,
    error: str | None,
    attempts_increment: int = 0,
) -> None:
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id)
        .values(
            status=status,
            error=error,
            attempts=WebhookEvent.attempts + attempts_increment,
            processed_at=utcnow() if status != WebhookStatus.RECEIVED else None,
        )
    )


async def stale_received(session: AsyncSession, *, older_than: datetime, limit: int) -> list[WebhookEvent]:
    """RECEIVED events stored before ``older_than``: their processing job may be lost."""
    query = (
        select(WebhookEvent)
        .where(WebhookEvent.status == WebhookStatus.RECEIVED, WebhookEvent.received_at < older_than)
        .order_by(WebhookEvent.received_at)
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def prune_payloads(session: AsyncSession, *, older_than: datetime, limit: int) -> int:
    """Replace the payload and headers of up to ``limit`` events received before ``older_than``
    with ``{"pruned": true}``; the row (and its key) stays, so redeliveries remain no-ops."""
    ids = (
        select(WebhookEvent.id)
        .where(
            WebhookEvent.received_at < older_than,
            WebhookEvent.payload != PRUNED,
        )
        .limit(limit)
        .scalar_subquery()
    )
    result = await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id.in_(ids))
        .values(payload=PRUNED, headers={})
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- matching events to leads and phones ------------------------------------------------------


async def phone_by_number(session: AsyncSession, tenant_id: uuid.UUID, number: str) -> WaPhoneNumber | None:
    query = select(WaPhoneNumber).where(
        WaPhoneNumber.tenant_id == tenant_id, WaPhoneNumber.phone_number == number
    )
    return (await session.execute(query)).scalar_one_or_none()


async def journey_by_chat(
    session: AsyncSession, tenant_id: uuid.UUID, chat_id: str
) -> GoldLeadJourney | None:
    """The lead whose WhatsApp conversation is ``chat_id``: the journey's chat first, then the
    thread of any message logged in that chat."""
    query = (
        select(GoldLeadJourney)
        .where(GoldLeadJourney.tenant_id == tenant_id, GoldLeadJourney.wa_chat_id == chat_id)
        .order_by(GoldLeadJourney.last_contact_at.desc().nulls_last())
        .limit(1)
    )
    journey = (await session.execute(query)).scalar_one_or_none()
    if journey is not None:
        return journey
    logged = (
        select(GoldCommunicationLog.lead_journey_id)
        .where(
            GoldCommunicationLog.tenant_id == tenant_id,
            GoldCommunicationLog.thread_id == chat_id,
            GoldCommunicationLog.channel == Channel.WHATSAPP,
        )
        .order_by(GoldCommunicationLog.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        await session.execute(select(GoldLeadJourney).where(GoldLeadJourney.id == logged))
    ).scalar_one_or_none()


async def journey_by_mobile(
    session: AsyncSession, tenant_id: uuid.UUID, mobile: str, preferred_phone_id: str | None
) -> GoldLeadJourney | None:
    """The lead with this mobile number; when several share it, the one on ``preferred_phone_id``
    (the number that received the message), then the most recently contacted."""
    query = select(GoldLeadJourney).where(
        GoldLeadJourney.tenant_id == tenant_id, GoldLeadJourney.mobile_e164 == mobile
    )
    order: list[Any] = []
    if preferred_phone_id is not None:
        order.append((GoldLeadJourney.assigned_phone_id == preferred_phone_id).desc())
    order += [GoldLeadJourney.last_contact_at.desc().nulls_last(), GoldLeadJourney.created_at]
    return (await session.execute(query.order_by(*order).limit(1))).scalar_one_or_none()


async def message_by_external_id(
    session: AsyncSession, tenant_id: uuid.UUID, external_id: str, direction: Direction | None = None
) -> GoldCommunicationLog | None:
    query = select(GoldCommunicationLog).where(
        GoldCommunicationLog.tenant_id == tenant_id, GoldCommunicationLog.external_message_id == external_id
    )
    if direction is not None:
        query = query.where(GoldCommunicationLog.direction == direction)
    return (
        await session.execute(query.order_by(GoldCommunicationLog.created_at).limit(1))
    ).scalar_one_or_none()


async def fill_thread(session: AsyncSession, message_id: uuid.UUID, chat_id: str) -> None:
    """Record the chat of one of our messages when the send path has not yet."""
    await session.execute(
        update(GoldCommunicationLog)
        .where(GoldCommunicationLog.id == message_id, GoldCommunicationLog.thread_id.is_(None))
        .values(thread_id=chat_id)
    )


async def fill_journey_chat(
    session: AsyncSession, journey_id: uuid.UUID, phone_id: str | None, chat_id: str
) -> None:
    """Set the lead's chat when it has none and the message went from its sticky phone."""
    query = update(GoldLeadJourney).where(
        GoldLeadJourney.id == journey_id, GoldLeadJourney.wa_chat_id.is_(None)
    )
    if phone_id is not None:
        query = query.where(
            (GoldLeadJourney.assigned_phone_id == phone_id) | GoldLeadJourney.assigned_phone_id.is_(None)
        )
    await session.execute(query.values(wa_chat_id=chat_id))


# --- delivery status polling ------------------------------------------------------------------

POLLED = (MessageStatus.SENT, MessageStatus.DELIVERED)


async def messages_to_poll(
    session: AsyncSession, *, since: datetime, limit: int
) -> list[GoldCommunicationLog]:
    """Outbound WhatsApp messages of the last days still SENT or DELIVERED, least recently
    checked first (``status_updated_at`` is touched by every poll).

    Up to half of ``limit`` goes first to SENT messages whose chat is still unknown: new sends,
    whose first check records the chat and tells a number that is not on WhatsApp. Without that
    share a new message would wait a whole round of every open message of the window.
    """
    outbound = (
        GoldCommunicationLog.channel == Channel.WHATSAPP,
        GoldCommunicationLog.direction == Direction.OUTBOUND,
        GoldCommunicationLog.external_message_id.is_not(None),
        GoldCommunicationLog.sent_at >= since,
    )
    checked_longest_ago = (
        GoldCommunicationLog.status_updated_at.asc().nulls_first(),
        GoldCommunicationLog.sent_at,
    )
    fresh = select(GoldCommunicationLog).where(
        *outbound,
        GoldCommunicationLog.status == MessageStatus.SENT,
        GoldCommunicationLog.thread_id.is_(None),
    )
    first = list(
        (await session.execute(fresh.order_by(*checked_longest_ago).limit(max(limit // 2, 1)))).scalars()
    )
    rest = select(GoldCommunicationLog).where(
        *outbound,
        GoldCommunicationLog.status.in_(POLLED),
        GoldCommunicationLog.id.not_in([row.id for row in first]) if first else true(),
    )
    left = limit - len(first)
    if left <= 0:
        return first
    return first + list((await session.execute(rest.order_by(*checked_longest_ago).limit(left))).scalars())


async def lock_journeys(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[GoldLeadJourney]:
    """Lock leads in id order (the lock order), before any of their messages."""
    if not ids:
        return []
    query = (
        select(GoldLeadJourney)
        .where(GoldLeadJourney.id.in_(ids))
        .order_by(GoldLeadJourney.id)
        .with_for_update()
    )
    return list((await session.execute(query)).scalars())


async def lock_messages(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[GoldCommunicationLog]:
    if not ids:
        return []
    query = (
        select(GoldCommunicationLog)
        .where(GoldCommunicationLog.id.in_(ids))
        .order_by(GoldCommunicationLog.id)
        .with_for_update()
    )
    return list((await session.execute(query)).scalars())
