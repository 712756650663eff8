"""SQL of the email channels: campaigns, email log rows, suppression, deliverability counts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.kit.clock import utcnow
from cerniq.models import (
    EmailCampaign,
    GoldCommunicationLog,
    GoldLeadJourney,
    OutreachSequenceStep,
    PhoneIncident,
    SuppressionEntry,
    WaPhoneNumber,
)
from cerniq.models.communication_log_columns import touched_since
from cerniq.models.enums import Channel, Direction, MessageStatus, PhoneStatus, SuppressionReason

# Rows that reached the vendor (the denominator of a bounce rate).
SENT_STATES = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.READ,
    MessageStatus.OPENED,
    MessageStatus.CLICKED,
    MessageStatus.REPLIED,
    MessageStatus.BOUNCED,
)
EMAIL_CHANNELS = (Channel.EMAIL_COLD, Channel.EMAIL_WARM)


# --- campaigns ---------------------------------------------------------------------------------


async def list_campaigns(session: AsyncSession, tenant_id: uuid.UUID) -> list[EmailCampaign]:
    query = (
        select(EmailCampaign).where(EmailCampaign.tenant_id == tenant_id).order_by(EmailCampaign.created_at)
    )
    return list((await session.execute(query)).scalars())


async def get_campaign(
    session: AsyncSession, tenant_id: uuid.UUID, ref: str, *, for_update: bool = False
) -> EmailCampaign | None:
    """The tenant's campaign by our id or by its Instantly id."""
    condition = EmailCampaign.instantly_campaign_id == ref
    try:
        condition = or_(condition, EmailCampaign.id == uuid.UUID(ref))
    except ValueError:
        pass
    query = select(EmailCampaign).where(EmailCampaign.tenant_id == tenant_id, condition)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query.limit(1))).scalar_one_or_none()


async def lock_campaign(session: AsyncSession, campaign_id: uuid.UUID) -> EmailCampaign | None:
    query = select(EmailCampaign).where(EmailCampaign.id == campaign_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def campaign_by_instantly_id(session: AsyncSession, instantly_id: str) -> EmailCampaign | None:
    query = select(EmailCampaign).where(EmailCampaign.instantly_campaign_id == instantly_id)
    return (await session.execute(query)).scalar_one_or_none()


async def mirrored_campaigns(
    session: AsyncSession, tenant_id: uuid.UUID | None = None
) -> list[EmailCampaign]:
    """Campaigns that exist at Instantly (every tenant unless one is given)."""
    query = select(EmailCampaign).where(EmailCampaign.instantly_campaign_id.is_not(None))
    if tenant_id is not None:
        query = query.where(EmailCampaign.tenant_id == tenant_id)
    return list((await session.execute(query.order_by(EmailCampaign.created_at))).scalars())


async def campaign_for_message(session: AsyncSession, message: GoldCommunicationLog) -> EmailCampaign | None:
    """The campaign a cold row goes to: its own, its sequence step's, its sequence's, or the
    tenant's default (a campaign mapped to no sequence; the newest wins)."""
    if message.email_campaign_id is not None:
        return await session.get(EmailCampaign, message.email_campaign_id)
    base = select(EmailCampaign).where(
        EmailCampaign.tenant_id == message.tenant_id, EmailCampaign.instantly_campaign_id.is_not(None)
    )
    if message.sequence_id is not None and message.sequence_step is not None:
        step_id = (
            await session.execute(
                select(OutreachSequenceStep.id).where(
                    OutreachSequenceStep.sequence_id == message.sequence_id,
                    OutreachSequenceStep.step_number == message.sequence_step,
                )
            )
        ).scalar_one_or_none()
        if step_id is not None:
            found = (
                (
                    await session.execute(
                        base.where(EmailCampaign.sequence_step_id == step_id).order_by(
                            EmailCampaign.created_at.desc()
                        )
                    )
                )
                .scalars()
                .first()
            )
            if found is not None:
                return found
    if message.sequence_id is not None:
        found = (
            (
                await session.execute(
                    base.where(
                        EmailCampaign.sequence_id == message.sequence_id,
                        EmailCampaign.sequence_step_id.is_(None),
                    ).order_by(EmailCampaign.created_at.desc())
                )
            )
            .scalars()
            .first()
        )
        if found is not None:
            return found
    return (
        (
            await session.execute(
                base.where(
                    EmailCampaign.sequence_id.is_(None), EmailCampaign.sequence_step_id.is_(None)
                ).order_by(EmailCampaign.created_at.desc())
            )
        )
        .scalars()
        .first()
    )


# --- log rows ----------------------------------------------------------------------------------


async def lock_message(session: AsyncSession, message_id: uuid.UUID) -> GoldCommunicationLog | None:
    query = select(GoldCommunicationLog).where(GoldCommunicationLog.id == message_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def lock_journey(session: AsyncSession, journey_id: uuid.UUID) -> GoldLeadJourney | None:
    query = select(GoldLeadJourney).where(GoldLeadJourney.id == journey_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def batch_companions(
    session: AsyncSession,
    message: GoldCommunicationLog,
    campaign_id: uuid.UUID,
    *,
    explicit: bool,
    limit: int,
) -> list[GoldCommunicationLog]:
    """Other QUEUED cold rows bound for the same campaign, locked without waiting: one bulk add
    takes them all. Bound means stamped with the campaign, or (when ``message`` found its
    campaign through its sequence) unstamped with the same sequence and step."""
    if limit <= 0:
        return []
    same_campaign = GoldCommunicationLog.email_campaign_id == campaign_id
    if not explicit:
        same_campaign = or_(
            same_campaign,
            and_(
                GoldCommunicationLog.email_campaign_id.is_(None),
                GoldCommunicationLog.sequence_id.is_not_distinct_from(message.sequence_id),
                GoldCommunicationLog.sequence_step.is_not_distinct_from(message.sequence_step),
            ),
        )
    query = (
        select(GoldCommunicationLog)
        .where(
            GoldCommunicationLog.tenant_id == message.tenant_id,
            GoldCommunicationLog.channel == Channel.EMAIL_COLD,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.status == MessageStatus.QUEUED,
            GoldCommunicationLog.id != message.id,
            or_(GoldCommunicationLog.scheduled_at.is_(None), GoldCommunicationLog.scheduled_at <= func.now()),
            same_campaign,
        )
        .order_by(GoldCommunicationLog.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(query)).scalars())


async def outbound_email_row(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    channel: Channel,
    journey_id: uuid.UUID | None = None,
    email: str | None = None,
    campaign_id: uuid.UUID | None = None,
    external_id: str | None = None,
    for_update: bool = True,
) -> GoldCommunicationLog | None:
    """The newest outbound email row matching the given keys."""
    query = select(GoldCommunicationLog).where(
        GoldCommunicationLog.tenant_id == tenant_id,
        GoldCommunicationLog.channel == channel,
        GoldCommunicationLog.direction == Direction.OUTBOUND,
    )
    if journey_id is not None:
        query = query.where(GoldCommunicationLog.lead_journey_id == journey_id)
    if email is not None:
        query = query.where(func.lower(GoldCommunicationLog.email) == email.lower())
    if campaign_id is not None:
        query = query.where(GoldCommunicationLog.email_campaign_id == campaign_id)
    if external_id is not None:
        query = query.where(GoldCommunicationLog.external_message_id == external_id)
    query = query.order_by(GoldCommunicationLog.created_at.desc()).limit(1)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def journey_by_email(session: AsyncSession, tenant_id: uuid.UUID, email: str) -> GoldLeadJourney | None:
    query = (
        select(GoldLeadJourney)
        .where(GoldLeadJourney.tenant_id == tenant_id, func.lower(GoldLeadJourney.email) == email.lower())
        .order_by(GoldLeadJourney.created_at)
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def soft_bounces(session: AsyncSession, tenant_id: uuid.UUID, email: str) -> int:
    """Soft-bounced email rows of an address (each row is one message)."""
    query = select(func.count()).where(
        GoldCommunicationLog.tenant_id == tenant_id,
        GoldCommunicationLog.channel.in_(EMAIL_CHANNELS),
        GoldCommunicationLog.status == MessageStatus.BOUNCED,
        GoldCommunicationLog.bounce_type == "soft",
        func.lower(GoldCommunicationLog.email) == email.lower(),
    )
    return int((await session.execute(query)).scalar_one())


async def recent_bounces(
    session: AsyncSession, tenant_id: uuid.UUID, limit: int
) -> list[GoldCommunicationLog]:
    query = (
        select(GoldCommunicationLog)
        .where(
            GoldCommunicationLog.tenant_id == tenant_id,
            GoldCommunicationLog.channel.in_(EMAIL_CHANNELS),
            GoldCommunicationLog.status == MessageStatus.BOUNCED,
        )
        .order_by(func.coalesce(GoldCommunicationLog.bounced_at, GoldCommunicationLog.updated_at).desc())
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def skip_queued_to(
    session: AsyncSession, tenant_id: uuid.UUID, emails: Sequence[str], reason: str
) -> list[uuid.UUID]:
    """QUEUED email rows to these addresses become SKIPPED; returns their ids."""
    if not emails:
        return []
    result = await session.execute(
        update(GoldCommunicationLog)
        .where(
            GoldCommunicationLog.tenant_id == tenant_id,
            GoldCommunicationLog.channel.in_(EMAIL_CHANNELS),
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.status == MessageStatus.QUEUED,
            func.lower(GoldCommunicationLog.email).in_([e.lower() for e in emails]),
        )
        .values(status=MessageStatus.SKIPPED, error_code=reason, status_updated_at=utcnow())
        .returning(GoldCommunicationLog.id)
    )
    return [r[0] for r in result]


async def queued_cold_ids(session: AsyncSession, campaign: EmailCampaign) -> list[uuid.UUID]:
    """QUEUED cold rows stamped with this campaign (waiting while it was paused)."""
    query = select(GoldCommunicationLog.id).where(
        GoldCommunicationLog.email_campaign_id == campaign.id,
        GoldCommunicationLog.channel == Channel.EMAIL_COLD,
        GoldCommunicationLog.status == MessageStatus.QUEUED,
    )
    return [r[0] for r in await session.execute(query)]


async def instantly_leads_of(
    session: AsyncSession, campaign_id: uuid.UUID, emails: Sequence[str]
) -> dict[str, str]:
    """Instantly lead ids we recorded for these addresses in this campaign (lower email -> id)."""
    if not emails:
        return {}
    rows = await session.execute(
        select(GoldCommunicationLog.email, GoldCommunicationLog.external_message_id).where(
            GoldCommunicationLog.email_campaign_id == campaign_id,
            GoldCommunicationLog.channel == Channel.EMAIL_COLD,
            GoldCommunicationLog.external_message_id.is_not(None),
            func.lower(GoldCommunicationLog.email).in_([e.lower() for e in emails]),
        )
    )
    return {str(email).lower(): str(external) for email, external in rows if email}


# --- suppression -------------------------------------------------------------------------------


def _active(now: datetime) -> Any:
    return or_(SuppressionEntry.expires_at.is_(None), SuppressionEntry.expires_at > now)


async def suppression_for(
    session: AsyncSession, tenant_id: uuid.UUID, email: str, now: datetime
) -> SuppressionEntry | None:
    """The active EMAIL (or ALL) suppression of an address, if any."""
    query = select(SuppressionEntry).where(
        SuppressionEntry.tenant_id == tenant_id,
        SuppressionEntry.channel.in_(("EMAIL", "ALL")),
        SuppressionEntry.value == email.lower(),
        _active(now),
    )
    return (await session.execute(query.limit(1))).scalar_one_or_none()


async def suppressed_among(
    session: AsyncSession, tenant_id: uuid.UUID, emails: Sequence[str], now: datetime
) -> set[str]:
    if not emails:
        return set()
    query = select(SuppressionEntry.value).where(
        SuppressionEntry.tenant_id == tenant_id,
        SuppressionEntry.channel.in_(("EMAIL", "ALL")),
        SuppressionEntry.value.in_([e.lower() for e in emails]),
        _active(now),
    )
    return {str(r[0]) for r in await session.execute(query)}


async def active_email_suppressions(
    session: AsyncSession, tenant_id: uuid.UUID, now: datetime
) -> list[SuppressionEntry]:
    query = (
        select(SuppressionEntry)
        .where(
            SuppressionEntry.tenant_id == tenant_id,
            SuppressionEntry.channel.in_(("EMAIL", "ALL")),
            SuppressionEntry.value.like("%@%"),
            _active(now),
        )
        .order_by(SuppressionEntry.created_at)
    )
    return list((await session.execute(query)).scalars())


async def upsert_suppression(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    value: str,
    reason: SuppressionReason,
    source: str,
    journey_id: uuid.UUID | None,
    permanent: bool,
    expires_at: datetime | None,
    bounce_count: int,
    details: dict[str, Any],
) -> None:
    """Suppress an address on EMAIL. A permanent reason upgrades an existing temporary entry;
    an existing permanent entry is never weakened."""
    statement = insert(SuppressionEntry).values(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        channel="EMAIL",
        value=value.lower(),
        reason=reason,
        source=source,
        lead_journey_id=journey_id,
        is_permanent=permanent,
        expires_at=None if permanent else expires_at,
        bounce_count=bounce_count,
        details=details,
    )
    existing = SuppressionEntry.__table__.c
    statement = statement.on_conflict_do_update(
        index_elements=["tenant_id", "channel", "value"],
        set_={
            "bounce_count": func.greatest(existing.bounce_count, statement.excluded.bounce_count),
            "reason": statement.excluded.reason if permanent else existing.reason,
            "is_permanent": existing.is_permanent.op("OR")(statement.excluded.is_permanent),
            "expires_at": None
            if permanent
            else func.greatest(existing.expires_at, statement.excluded.expires_at),
            "updated_at": func.now(),
        },
        where=and_(existing.is_permanent.is_(False)) if not permanent else None,
    )
    await session.execute(statement)


async def purge_expired_suppressions(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        delete(SuppressionEntry).where(
            SuppressionEntry.expires_at.is_not(None), SuppressionEntry.expires_at <= now
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- deliverability counts --------------------------------------------------------------------


def _tenant_touched_since(tenant_id: uuid.UUID, since: datetime) -> tuple[Any, ...]:
    """The tenant's rows that can have been sent or bounced since ``since``."""
    return (GoldCommunicationLog.tenant_id == tenant_id, touched_since(GoldCommunicationLog, since))


async def log_counts_by_campaign(
    session: AsyncSession, since: datetime, tenant_id: uuid.UUID | None = None
) -> dict[uuid.UUID, tuple[int, int]]:
    """Per campaign: cold rows sent since ``since`` and those of them that bounced."""
    query = (
        select(
            GoldCommunicationLog.email_campaign_id,
            func.count(),
            func.count().filter(GoldCommunicationLog.status == MessageStatus.BOUNCED),
        )
        .where(
            GoldCommunicationLog.channel == Channel.EMAIL_COLD,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.email_campaign_id.is_not(None),
            GoldCommunicationLog.status.in_(SENT_STATES),
            GoldCommunicationLog.sent_at >= since,
        )
        .group_by(GoldCommunicationLog.email_campaign_id)
    )
    if tenant_id is not None:
        query = query.where(*_tenant_touched_since(tenant_id, since))
    return {r[0]: (int(r[1]), int(r[2])) for r in await session.execute(query) if r[0] is not None}


async def warm_counts(
    session: AsyncSession, since: datetime, tenant_id: uuid.UUID | None = None
) -> dict[uuid.UUID, tuple[int, int]]:
    """Per tenant: warm emails sent since ``since`` and those that bounced."""
    query = (
        select(
            GoldCommunicationLog.tenant_id,
            func.count(),
            func.count().filter(GoldCommunicationLog.status == MessageStatus.BOUNCED),
        )
        .where(
            GoldCommunicationLog.channel == Channel.EMAIL_WARM,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.status.in_(SENT_STATES),
            GoldCommunicationLog.sent_at >= since,
        )
        .group_by(GoldCommunicationLog.tenant_id)
    )
    if tenant_id is not None:
        query = query.where(*_tenant_touched_since(tenant_id, since))
    return {r[0]: (int(r[1]), int(r[2])) for r in await session.execute(query)}


async def bounce_totals(
    session: AsyncSession, tenant_id: uuid.UUID, since: datetime | None
) -> dict[str, int]:
    """Bounces of the tenant's email rows by type (since ``since`` when given)."""
    query = select(GoldCommunicationLog.bounce_type, func.count()).where(
        GoldCommunicationLog.tenant_id == tenant_id,
        GoldCommunicationLog.channel.in_(EMAIL_CHANNELS),
        GoldCommunicationLog.status == MessageStatus.BOUNCED,
    )
    if since is not None:
        query = query.where(
            GoldCommunicationLog.bounced_at >= since, *_tenant_touched_since(tenant_id, since)
        )
    rows = await session.execute(query.group_by(GoldCommunicationLog.bounce_type))
    return {str(kind or "unknown"): int(count) for kind, count in rows}


# --- WhatsApp signals per phone ---------------------------------------------------------------


async def active_phones(session: AsyncSession) -> list[WaPhoneNumber]:
    query = select(WaPhoneNumber).where(WaPhoneNumber.status == PhoneStatus.ACTIVE)
    return list((await session.execute(query)).scalars())


async def wa_sends_by_phone(session: AsyncSession, since: datetime) -> dict[str, int]:
    query = (
        select(GoldCommunicationLog.phone_id, func.count())
        .where(
            GoldCommunicationLog.channel == Channel.WHATSAPP,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.sent_at >= since,
            GoldCommunicationLog.phone_id.is_not(None),
        )
        .group_by(GoldCommunicationLog.phone_id)
    )
    return {str(r[0]): int(r[1]) for r in await session.execute(query)}


BLOCK_ERROR_CODES = ("PHONE_BANNED", "BLOCKED", "RECIPIENT_BLOCKED", "SPAM_REPORTED")


async def wa_block_signals_by_phone(session: AsyncSession, since: datetime) -> dict[str, int]:
    """Ban and block signals per phone since ``since``: sends refused as banned or blocked, ban
    incidents, and leads of the phone who opted out of WhatsApp (people who block a number
    usually say so first)."""
    signals: dict[str, int] = {}
    refused = await session.execute(
        select(GoldCommunicationLog.phone_id, func.count())
        .where(
            GoldCommunicationLog.channel == Channel.WHATSAPP,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.error_code.in_(BLOCK_ERROR_CODES),
            GoldCommunicationLog.status_updated_at >= since,
            GoldCommunicationLog.phone_id.is_not(None),
        )
        .group_by(GoldCommunicationLog.phone_id)
    )
    bans = await session.execute(
        select(PhoneIncident.phone_id, func.count())
        .where(PhoneIncident.kind.in_(("BANNED", "BLOCKED")), PhoneIncident.created_at >= since)
        .group_by(PhoneIncident.phone_id)
    )
    opt_outs = await session.execute(
        select(GoldLeadJourney.assigned_phone_id, func.count())
        .where(
            GoldLeadJourney.whatsapp_opted_out.is_(True),
            GoldLeadJourney.opted_out_at >= since,
            GoldLeadJourney.assigned_phone_id.is_not(None),
        )
        .group_by(GoldLeadJourney.assigned_phone_id)
    )
    for rows in (refused, bans, opt_outs):
        for phone_id, count in rows:
            signals[str(phone_id)] = signals.get(str(phone_id), 0) + int(count)
    return signals


async def last_phone_resume(session: AsyncSession, phone_id: str) -> datetime | None:
    """When an operator last set the phone ACTIVE again (the breaker's grace starts there)."""
    query = select(func.max(PhoneIncident.created_at)).where(
        PhoneIncident.phone_id == phone_id, PhoneIncident.kind.in_(("ACTIVE", "RESUMED"))
    )
    value = (await session.execute(query)).scalar_one_or_none()
    return value if isinstance(value, datetime) else None
