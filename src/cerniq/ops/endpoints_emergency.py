"""``/api/admin/emergency``: the emergency stop and resume of runbook 7 (admins only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from cerniq.auth.dependencies import Admin, Session, Viewer
from cerniq.errors import ValidationFailed
from cerniq.kit.db import commit
from cerniq.ops import emergency

router = APIRouter(prefix="/api/admin/emergency", tags=["emergency"])


class StopBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=3, max_length=1000, description="Why (security incident, legal, bug...)")


class ResumeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: bool = Field(description="true: the issue has been resolved")
    pauseBetweenSeconds: float = Field(default=5.0, ge=0, le=60, description="Pause between two phones")


@router.get("")
async def get_state(principal: Viewer, session: Session) -> dict[str, Any]:
    """`{"active", "reason", "at", "by", "sequencesDeactivated", "phonesPaused", "queuesPaused", ...}`."""
    del principal
    return await emergency.state(session)


@router.post("/stop")
async def stop(body: StopBody, principal: Admin, session: Session) -> dict[str, Any]:
    """Halt all outreach at once: nothing reaches a vendor from the commit on (checked before
    every vendor call), sequences deactivated, phones paused, dispatch and send queues paused,
    Slack notice, audit."""
    return await emergency.stop(session, principal, body.reason)


@router.post("/resume")
async def resume(body: ResumeBody, principal: Admin, session: Session) -> dict[str, Any]:
    """Resume the dispatcher, then the phones one by one (`pauseBetweenSeconds` apart). Sequences
    stay inactive: "Sequences must be manually reactivated". Answers when every phone is back."""
    if not body.confirm:
        raise ValidationFailed(
            'confirm the issue has been resolved with {"confirm": true}', code="CONFIRMATION_REQUIRED"
        )
    # the procedure runs its own transactions and takes a while: release the request's one now
    await commit(session)
    return await emergency.resume(principal, pause_between=body.pauseBetweenSeconds)
