"""SQL of the reply pipeline: inbound rows, the messages a reply answers, suppressions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.models import (
    GoldCommunicationLog,
    GoldCompany,
    GoldContact,
    GoldLeadJourney,
    SequenceEnrollment,
    SuppressionEntry,
    Tenant,
)
from cerniq.models.enums import Channel, Direction, EnrollmentStatus, MessageStatus, SuppressionReason

#: Outbound statuses a reply can answer (the message reached the lead, or may have).
ANSWERABLE = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.REPLIED)
AUTOMATED = ("AUTOMATION", "AI")


@dataclass(frozen=True)
class SkippedMessage:
    id: uuid.UUID
    phone_id: str | None
    quota_date: date | None


async def lock_journey(session: AsyncSession, journey_id: uuid.UUID) -> GoldLeadJourney | None:
    """The journey, locked, with its columns re-read under the lock."""
    query = (
        select(GoldLeadJourney)
        .where(GoldLeadJourney.id == journey_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def lock_message(session: AsyncSession, message_id: uuid.UUID) -> GoldCommunicationLog | None:
    query = (
        select(GoldCommunicationLog)
        .where(GoldCommunicationLog.id == message_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def get_message(session: AsyncSession, message_id: uuid.UUID) -> GoldCommunicationLog | None:
    return await session.get(GoldCommunicationLog, message_id)


async def get_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant | None:
    return await session.get(Tenant, tenant_id)


async def message_by_external_id(
    session: AsyncSession, tenant_id: uuid.UUID, external_id: str, direction: Direction
) -> GoldCommunicationLog | None:
    query = (
        select(GoldCommunicationLog)
        .where(
            GoldCommunicationLog.tenant_id == tenant_id,
            GoldCommunicationLog.external_message_id == external_id,
            GoldCommunicationLog.direction == direction,
        )
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


def channel_group(channel: Channel) -> tuple[Channel, ...]:
    """The channels of one conversation: WhatsApp alone, or both email channels."""
    if channel in (Channel.EMAIL_COLD, Channel.EMAIL_WARM):
        return (Channel.EMAIL_COLD, Channel.EMAIL_WARM)
    return (channel,)


async def last_answerable(
    session: AsyncSession, journey_id: uuid.UUID, channel: Channel
) -> GoldCommunicationLog | None:
    """The lead's latest outbound message on ``channel``'s conversation that reached it."""
    query = (
        select(GoldCommunicationLog)
        .where(
            GoldCommunicationLog.lead_journey_id == journey_id,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.channel.in_(channel_group(channel)),
            GoldCommunicationLog.status.in_(ANSWERABLE),
        )
        .order_by(GoldCommunicationLog.sent_at.desc().nulls_last(), GoldCommunicationLog.created_at.desc())
        .limit(1)
        .with_for_update()
    )
    return (await session.execute(query)).scalar_one_or_none()


async def last_replied(
    session: AsyncSession, journey_id: uuid.UUID, channel: Channel
) -> GoldCommunicationLog | None:
    """The newest outbound message of the channel's group that the lead answered."""
    query = (
        select(GoldCommunicationLog)
        .where(
            GoldCommunicationLog.lead_journey_id == journey_id,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.channel.in_(channel_group(channel)),
            GoldCommunicationLog.status == MessageStatus.REPLIED,
        )
        .order_by(GoldCommunicationLog.replied_at.desc().nulls_last())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def last_outbound_text(session: AsyncSession, journey_id: uuid.UUID) -> str | None:
    query = (
        select(GoldCommunicationLog.content_rendered, GoldCommunicationLog.content)
        .where(
            GoldCommunicationLog.lead_journey_id == journey_id,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.status.in_(ANSWERABLE),
        )
        .order_by(GoldCommunicationLog.created_at.desc())
        .limit(1)
    )
    row = (await session.execute(query)).first()
    return (row[0] or row[1]) if row is not None else None


async def skip_queued_automated(
    session: AsyncSession, journey_id: uuid.UUID, reason: str
) -> list[SkippedMessage]:
    """Mark the lead's QUEUED automated messages (sequence steps, AI answers) SKIPPED."""
    result = await session.execute(
        update(GoldCommunicationLog)
        .where(
            GoldCommunicationLog.lead_journey_id == journey_id,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.status == MessageStatus.QUEUED,
            GoldCommunicationLog.origin.in_(AUTOMATED),
        )
        .values(status=MessageStatus.SKIPPED, error_code=reason, quota_cost=0)
        .returning(GoldCommunicationLog.id, GoldCommunicationLog.phone_id, GoldCommunicationLog.quota_date)
        .execution_options(synchronize_session=False)
    )
    return [SkippedMessage(r[0], r[1], r[2]) for r in result]


async def active_enrollments(session: AsyncSession, journey_id: uuid.UUID) -> list[SequenceEnrollment]:
    query = select(SequenceEnrollment).where(
        SequenceEnrollment.lead_journey_id == journey_id,
        SequenceEnrollment.status == EnrollmentStatus.ACTIVE,
    )
    return list((await session.execute(query)).scalars())


async def add_suppression(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    channel: str,
    value: str,
    reason: SuppressionReason,
    source: str,
    journey_id: uuid.UUID | None,
    details: dict[str, Any],
) -> bool:
    """Suppress ``value`` on ``channel``; False when it already was."""
    statement = (
        insert(SuppressionEntry)
        .values(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            channel=channel,
            value=value,
            reason=reason,
            source=source,
            lead_journey_id=journey_id,
            details=details,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "channel", "value"])
        .returning(SuppressionEntry.id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def lead_names(session: AsyncSession, journey: GoldLeadJourney) -> tuple[str, str | None]:
    """The company's name and the primary contact's name, for analysis context and drafts."""
    company = await session.get(GoldCompany, journey.lead_id)
    contact = (
        await session.get(GoldContact, journey.primary_contact_id) if journey.primary_contact_id else None
    )
    contact_name = None
    if contact is not None:
        contact_name = contact.full_name or " ".join(p for p in (contact.prenume, contact.nume) if p) or None
    return (company.denumire if company is not None else ""), contact_name
