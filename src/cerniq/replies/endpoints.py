"""``POST /api/v1/outreach/ai/analyze``: the triage of a text, as the reply pipeline would do it."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from cerniq.auth.dependencies import Session, Viewer
from cerniq.config import get_settings
from cerniq.replies import service

router = APIRouter(prefix="/api/v1/outreach/ai", tags=["ai"])


class AnalyzeRequest(BaseModel):
    """The text of a reply and the channel it came on (WhatsApp by default)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The reply, 1 to 10,000 characters")
    channel: Literal["WHATSAPP", "EMAIL", "EMAIL_COLD", "EMAIL_WARM"] | None = None


@router.post("/analyze")
async def analyze(body: AnalyzeRequest, principal: Viewer, session: Session) -> dict[str, Any]:
    """Score, intent, opt-out and the route the pipeline would take (`AUTO_REPLY`, `REVIEW`,
    `OPT_OUT`, `RESCHEDULE`, `CLOSE`) with the review priority; changes nothing."""
    return await service.analyze_for_api(
        session, principal.tenant_id, body.text, body.channel, get_settings()
    )
