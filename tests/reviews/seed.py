"""Seeding helpers of the review and takeover tests: leads, inbound messages, reviews, users."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from cerniq.auth import service as auth_service
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.models import GoldCommunicationLog, GoldLeadJourney, HumanReview
from cerniq.models.enums import (
    Channel,
    Direction,
    LeadState,
    MessageStatus,
    ReviewPriority,
    ReviewReason,
    Role,
)
from cerniq.reviews import service
from tests.fixtures.outreach import add_leads, add_phones

SLACK_PATH = "/slack/services/T0CERNIQ/B0REVIEWS/testsecret"


def slack_messages(sandbox: Any) -> list[dict[str, Any]]:
    return list(sandbox.control("GET", "/_control/slack/messages"))


async def warm_lead(
    tenant: Any,
    *,
    n: int = 1,
    state: LeadState = LeadState.WARM_REPLY,
    phones: int = 1,
    email: bool = True,
    assign_phone: bool = True,
) -> uuid.UUID:
    """A lead (journey id) in ``state`` with a mobile, an email and (optionally) phone_01."""
    if phones:
        await add_phones(tenant, phones)
    (journey_id,) = await add_leads(tenant, 1, start=n, email=email)
    async with transaction() as session:
        await session.execute(
            update(GoldLeadJourney)
            .where(GoldLeadJourney.id == journey_id)
            .values(
                current_state=state,
                next_action_at=None,
                assigned_phone_id="phone_01" if assign_phone and phones else None,
                last_channel_used=Channel.WHATSAPP,
            )
        )
    return journey_id


async def inbound(
    journey_id: uuid.UUID,
    text: str,
    *,
    channel: Channel = Channel.WHATSAPP,
    subject: str | None = None,
    sentiment: int | None = None,
) -> uuid.UUID:
    """An inbound message of the lead (what the reply pipeline reviews)."""
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        row = GoldCommunicationLog(
            tenant_id=journey.tenant_id,
            lead_journey_id=journey.id,
            channel=channel,
            direction=Direction.INBOUND,
            status=MessageStatus.RECEIVED,
            origin="WEBHOOK",
            content=text,
            subject=subject,
            sentiment_score=sentiment,
            phone_id=journey.assigned_phone_id if channel == Channel.WHATSAPP else None,
            email=journey.email if channel != Channel.WHATSAPP else None,
        )
        session.add(row)
        await session.flush()
        return row.id


async def open_for(
    journey_id: uuid.UUID,
    message_id: uuid.UUID | None,
    *,
    priority: ReviewPriority = ReviewPriority.MEDIUM,
    reason: ReviewReason = ReviewReason.NEGATIVE_SENTIMENT,
    text: str = "Nu mai vreau mesaje, sunt nemulțumit.",
    suggested: str | None = "Ne pare rău, vă contactăm imediat un coleg.",
    analysis: dict[str, Any] | None = None,
) -> uuid.UUID:
    """``service.open_review`` as the reply pipeline calls it, in its own transaction."""
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        message = await session.get(GoldCommunicationLog, message_id) if message_id else None
        review = await service.open_review(
            session,
            journey=journey,
            communication=message,
            reason=reason,
            priority=priority,
            trigger_content=text,
            ai_analysis=analysis or {"sentimentScore": -80, "intent": "complaint", "confidence": 0.9},
            suggested_response=suggested,
        )
        return review.id


async def review_row(review_id: uuid.UUID) -> HumanReview:
    async with transaction() as session:
        review = await session.get(HumanReview, review_id)
        assert review is not None
        return review


async def journey_row(journey_id: uuid.UUID) -> GoldLeadJourney:
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        return journey


async def add_user(
    tenant: Any, email: str, *, team_role: str = "operator", available: bool = True
) -> uuid.UUID:
    async with transaction() as session:
        user = await auth_service.create_user(
            session,
            tenant_id=tenant.id,
            email=email,
            display_name=None,
            role=Role.OPERATOR,
            password=None,
            team_role=team_role,
        )
        user.is_available = available
        return user.id


def later(minutes: float) -> datetime:
    """An instant ``minutes`` from now, to run the SLA monitor as if time had passed."""
    return utcnow() + timedelta(minutes=minutes)
