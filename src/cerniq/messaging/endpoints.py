"""``POST /api/v1/outreach/dispatch``: run a dispatch of the caller's tenant now (operator+)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cerniq.auth.dependencies import Operator, Session
from cerniq.auth.service import record_audit
from cerniq.messaging.dispatch import dispatch

router = APIRouter(prefix="/api/v1/outreach", tags=["outreach"])


@router.post("/dispatch")
async def dispatch_now(principal: Operator, session: Session) -> dict[str, Any]:
    """Claim the tenant's due leads and queue their messages now, as the 5-minute cron does.

    Returns the report: `{claimed, queuedWhatsapp, queuedEmail, waitingForQuota, noRoute,
    blocked, sequencesCompleted, emergencyStop, batches}` (nothing is queued under an
    emergency stop)."""
    report = (await dispatch(tenant_id=principal.tenant_id)).as_dict()
    await record_audit(
        session,
        principal,
        "outreach.dispatch",
        entity_type="dispatch",
        entity_id=principal.tenant_id,
        after=report,
    )
    return report
