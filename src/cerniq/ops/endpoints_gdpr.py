"""``GET/DELETE /api/v1/outreach/leads/{id}/personal-data``: GDPR access (art. 15, operator)
and erasure (art. 17, admin)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Query

from cerniq.auth.dependencies import Admin, Operator, Session
from cerniq.ops import gdpr

router = APIRouter(prefix="/api/v1/outreach/leads", tags=["gdpr"])


@router.get("/{lead_id}/personal-data")
async def personal_data(lead_id: uuid.UUID, principal: Operator, session: Session) -> dict[str, Any]:
    """Everything held about the lead's people (company, contacts, journey, messages incl.
    archive, reviews, webhook events, suppression entries). The access itself is audited."""
    data = await gdpr.export(session, principal.tenant_id, lead_id)
    await gdpr.record_export(session, principal, lead_id)
    return data


@router.delete("/{lead_id}/personal-data")
async def erase_personal_data(
    lead_id: uuid.UUID, principal: Admin, session: Session, reason: str | None = Query(None, max_length=500)
) -> dict[str, Any]:
    """Anonymize the lead's people everywhere, keep the counts, suppress them permanently."""
    return await gdpr.erase(session, principal, lead_id, reason=reason)
