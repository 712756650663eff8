"""``POST /api/v1/outreach/leads/{leadId}/enroll``: enroll one lead in a sequence."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cerniq.auth.dependencies import Operator, Session
from cerniq.sequences import service
from cerniq.sequences.schemas import LeadEnrollRequest

router = APIRouter(prefix="/api/v1/outreach/leads", tags=["sequences"])


@router.post("/{lead_id}/enroll", status_code=201)
async def enroll_lead(
    lead_id: str, body: LeadEnrollRequest, principal: Operator, session: Session
) -> dict[str, Any]:
    """Enroll the lead (journey or company id): `{leadId, journeyId, enrollmentId, nextStepAt,
    sequenceId}`; 409 with the reason as code (`ALREADY_ENROLLED`, `LEAD_DEAD`, ...)."""
    return await service.enroll_lead(
        session,
        principal,
        lead_id,
        body.sequenceId,
        start_step=body.startStep,
        scheduled_start=body.scheduledStart,
    )
