"""``/api/v1/outreach/leads/{id}/...``: human takeover and release, operators' own messages,
moving a lead to another phone (runbook 3.1 step 6, 5.3). The lead list and detail live in
:mod:`cerniq.leads.endpoints`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from cerniq.auth.dependencies import Operator, Session
from cerniq.leads import takeover
from cerniq.leads.service import get_journey
from cerniq.models.enums import Channel

router = APIRouter(prefix="/api/v1/outreach/leads", tags=["leads"])


class TakeoverBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=10, max_length=500, description="Why a human takes over (10-500 chars)")


class ReleaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    returnToAutomation: bool = Field(default=False, description="Put the lead back into a sequence")
    sequenceId: uuid.UUID | None = Field(
        default=None, description="The sequence to return to (default: its last one, else the default)"
    )
    newSequenceId: uuid.UUID | None = Field(default=None, description="Synonym of sequenceId (digest §7)")


class SendMessageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel = Field(description="WHATSAPP or EMAIL_WARM")
    content: str = Field(min_length=1, max_length=4096)
    subject: str | None = Field(
        default=None, max_length=200, description="Email subject (default: Re: the conversation's last)"
    )
    templateId: uuid.UUID | None = None
    scheduledAt: datetime | None = Field(
        default=None, description="ISO 8601 with a timezone, in the future (WhatsApp: within business hours)"
    )


class ReassignPhoneBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phoneId: str | None = Field(default=None, description="An ACTIVE phone; default: the best ACTIVE phone")


@router.post("/{lead_id}/takeover")
async def take_over(
    lead_id: str, body: TakeoverBody, principal: Operator, session: Session
) -> dict[str, Any]:
    """A human takes the lead over: sequences stop, queued automated messages are skipped, and
    no automated message reaches the lead until release. 409 if already human-controlled."""
    journey = await get_journey(session, principal.tenant_id, lead_id, for_update=True)
    return await takeover.take_over(session, principal, journey, reason=body.reason.strip())


@router.post("/{lead_id}/release")
async def release(
    lead_id: str,
    principal: Operator,
    session: Session,
    body: Annotated[ReleaseBody | None, Body()] = None,
) -> dict[str, Any]:
    """End the takeover; `returnToAutomation: true` resumes (or starts) a sequence."""
    body = body or ReleaseBody()
    journey = await get_journey(session, principal.tenant_id, lead_id, for_update=True)
    return await takeover.release(
        session,
        principal,
        journey,
        return_to_automation=body.returnToAutomation,
        sequence_id=body.sequenceId or body.newSequenceId,
    )


@router.post("/{lead_id}/send-message")
async def send_message(
    lead_id: str, body: SendMessageBody, principal: Operator, session: Session
) -> dict[str, Any]:
    """An operator's message (also during a takeover): `{messageId, status: "QUEUED",
    scheduledAt}`. 429 QUOTA_EXCEEDED when a first WhatsApp contact finds the phone out of
    quota; 409 LEAD_NOT_WARM for warm email to a lead that has not replied; 409
    PHONE_NOT_ACTIVE when the lead's phone is down (see reassign-phone)."""
    journey = await get_journey(session, principal.tenant_id, lead_id, for_update=True)
    return await takeover.send_message(
        session,
        principal,
        journey,
        channel=body.channel,
        content=body.content,
        subject=body.subject,
        template_id=body.templateId,
        scheduled_at=body.scheduledAt,
    )


@router.post("/{lead_id}/reassign-phone")
async def reassign_phone(
    lead_id: str,
    principal: Operator,
    session: Session,
    body: Annotated[ReassignPhoneBody | None, Body()] = None,
) -> dict[str, Any]:
    """Move the lead to `phoneId` or the best ACTIVE phone (runbook 5.3 step 3; no body needed):
    `{assignedPhone: {id, label, status}, previousPhoneId, messagesMoved}`."""
    journey = await get_journey(session, principal.tenant_id, lead_id, for_update=True)
    return await takeover.reassign_phone(
        session, principal, journey, phone_id=(body.phoneId if body else None) or None
    )
