"""Bounces, complaints, unsubscribes and the suppression list (issue "Email channels" §4).

* A bounce marks its log row BOUNCED (type ``hard``/``soft``, reason, time). A hard bounce
  suppresses the address for good; soft bounces suppress it (for a while) once an address has
  ``email_soft_bounce_threshold`` of them. When the address is suppressed and the lead has no
  other channel, a LOW review (BOUNCE_DETECTED) is opened and its sequences stop.
* A complaint or an unsubscribe suppresses the address and opts the lead out of email (the
  reply pipeline's :func:`cerniq.replies.service.opt_out`: flags, sequences, queued mail).
* :func:`suppressed` is asked before every email send.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.email import repository
from cerniq.email.config import email_settings
from cerniq.kit.clock import utcnow
from cerniq.logging import get_logger
from cerniq.models import GoldCommunicationLog, GoldLeadJourney, SuppressionEntry
from cerniq.models.enums import Channel, MessageStatus, ReviewPriority, ReviewReason, SuppressionReason
from cerniq.sequences import engine as sequences

__all__ = [
    "BounceOutcome",
    "has_other_channel",
    "normalize_bounce_type",
    "opt_out_of_email",
    "record_bounce",
    "suppressed",
]

log = get_logger("cerniq.email")

BounceType = Literal["hard", "soft"]


@dataclass(frozen=True)
class BounceOutcome:
    recorded: bool
    """False when this row was already BOUNCED (a repeated event)."""
    suppressed: bool
    review_opened: bool
    soft_bounces: int = 0


def normalize_bounce_type(value: object) -> BounceType:
    """``Permanent``/``hard``/``5xx`` -> ``hard``; ``Temporary``/``soft``/``transient`` -> ``soft``."""
    text = str(value or "").strip().lower()
    if text in ("temporary", "soft", "transient", "softbounce", "soft_bounce") or text.startswith("4"):
        return "soft"
    return "hard"


async def suppressed(
    session: AsyncSession, tenant_id: uuid.UUID, email: str | None
) -> SuppressionEntry | None:
    """The active suppression of ``email`` for the tenant (EMAIL or ALL), if any."""
    if not email:
        return None
    return await repository.suppression_for(session, tenant_id, email, utcnow())


async def has_other_channel(session: AsyncSession, journey: GoldLeadJourney) -> bool:
    """True when the lead can still be reached on WhatsApp."""
    if not journey.mobile_e164 or journey.whatsapp_opted_out or journey.whatsapp_invalid:
        return False
    from sqlalchemy import select

    row = (
        await session.execute(
            select(SuppressionEntry.id).where(
                SuppressionEntry.tenant_id == journey.tenant_id,
                SuppressionEntry.channel.in_(("WHATSAPP", "ALL")),
                SuppressionEntry.value == journey.mobile_e164.lower(),
            )
        )
    ).first()
    return row is None


async def record_bounce(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    email: str,
    bounce_type: BounceType,
    reason: str,
    source: str,
    message: GoldCommunicationLog | None,
    journey: GoldLeadJourney | None,
    at: datetime | None = None,
    details: dict[str, Any] | None = None,
) -> BounceOutcome:
    """Record one bounce of ``email`` (see the module docstring). Idempotent per row."""
    now = at or utcnow()
    settings = email_settings()
    if message is not None:
        if message.status == MessageStatus.BOUNCED:
            return BounceOutcome(recorded=False, suppressed=False, review_opened=False)
        message.status = MessageStatus.BOUNCED
        message.bounce_type = bounce_type
        message.bounce_reason = (reason or "bounced")[:1000]
        message.bounced_at = now
        message.status_updated_at = utcnow()
        await session.flush()
    soft_count = 0
    if bounce_type == "hard":
        await repository.upsert_suppression(
            session,
            tenant_id=tenant_id,
            value=email,
            reason=SuppressionReason.HARD_BOUNCE,
            source=source,
            journey_id=journey.id if journey else None,
            permanent=True,
            expires_at=None,
            bounce_count=1,
            details={"reason": reason[:500], **(details or {})},
        )
        is_suppressed = True
    else:
        soft_count = await repository.soft_bounces(session, tenant_id, email)
        if message is None:
            soft_count += 1
        is_suppressed = soft_count >= settings.email_soft_bounce_threshold
        if is_suppressed:
            await repository.upsert_suppression(
                session,
                tenant_id=tenant_id,
                value=email,
                reason=SuppressionReason.SOFT_BOUNCE,
                source=source,
                journey_id=journey.id if journey else None,
                permanent=False,
                expires_at=now + settings.email_soft_bounce_suppression,
                bounce_count=soft_count,
                details={"reason": reason[:500], **(details or {})},
            )
    review = False
    if is_suppressed:
        await repository.skip_queued_to(session, tenant_id, [email], "SUPPRESSED")
        if journey is not None and not await has_other_channel(session, journey):
            review = await _open_bounce_review(session, journey, message, email, bounce_type, reason)
            await sequences.stop(session, journey, "BOUNCED")
    log.info(
        "email.bounce",
        tenant=str(tenant_id),
        lead=str(journey.id) if journey else None,
        bounce_type=bounce_type,
        suppressed=is_suppressed,
        review=review,
    )
    return BounceOutcome(
        recorded=True, suppressed=is_suppressed, review_opened=review, soft_bounces=soft_count
    )


async def _open_bounce_review(
    session: AsyncSession,
    journey: GoldLeadJourney,
    message: GoldCommunicationLog | None,
    email: str,
    bounce_type: str,
    reason: str,
) -> bool:
    """A LOW review: the lead's only channel bounced; an operator finds another address or
    closes the lead. One review per bounced row."""
    from cerniq.reviews.service import open_review

    await open_review(
        session,
        journey=journey,
        communication=message,
        reason=ReviewReason.BOUNCE_DETECTED,
        priority=ReviewPriority.LOW,
        trigger_content=f"{bounce_type} bounce of {email}: {reason}"[:2000],
        ai_analysis={"bounceType": bounce_type, "email": email, "reason": reason[:500]},
        created_by="email-bounces",
    )
    return True


async def opt_out_of_email(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    email: str,
    reason: SuppressionReason,
    source: str,
    journey: GoldLeadJourney | None,
    message: GoldCommunicationLog | None,
    at: datetime | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """A complaint or an unsubscribe: the address is suppressed for good and the lead opted out
    of email (sequences stopped, queued automation skipped, DEAD when no channel is left)."""
    now = at or utcnow()
    await repository.upsert_suppression(
        session,
        tenant_id=tenant_id,
        value=email,
        reason=reason,
        source=source,
        journey_id=journey.id if journey else None,
        permanent=True,
        expires_at=None,
        bounce_count=0,
        details=details or {},
    )
    if message is not None and reason == SuppressionReason.UNSUBSCRIBE:
        message.unsubscribed_at = message.unsubscribed_at or now
    await repository.skip_queued_to(session, tenant_id, [email], "OPTED_OUT")
    if journey is not None and not journey.email_opted_out:
        from cerniq.replies.service import opt_out

        await opt_out(
            session,
            journey,
            channel=Channel.EMAIL_COLD,
            scope="CHANNEL",
            source=source,
            details={"reason": reason.value, **(details or {})},
        )
