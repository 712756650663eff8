"""``/api/v1/outreach/reviews``: the human review queue (runbook §5, digest §6-7)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Query, Request

from cerniq.auth.dependencies import Operator, Session, Viewer
from cerniq.kit.pagination import PageParams
from cerniq.reviews import service
from cerniq.reviews.schemas import AssignBody, EscalateBody, ResolveBody

router = APIRouter(prefix="/api/v1/outreach/reviews", tags=["reviews"])


def _user_agent(request: Request) -> str | None:
    agent = request.headers.get("user-agent")
    return agent[:500] if agent else None


@router.get("")
async def list_reviews(
    principal: Viewer,
    session: Session,
    status: str | None = Query(
        None,
        description="PENDING, ASSIGNED, IN_PROGRESS, RESOLVED, ESCALATED, EXPIRED (comma-separated), "
        "OPEN (default) or ALL",
    ),
    priority: str | None = Query(None, description="URGENT, HIGH, MEDIUM, LOW (comma-separated)"),
    reason: str | None = Query(None, description="Review reason(s), comma-separated"),
    slaBreached: bool | None = Query(None, description="true: past the SLA; false: within it"),
    assignedTo: str | None = Query(None, description="A user id, 'me' or 'unassigned'"),
    leadId: str | None = Query(None, description="The lead's journey id or company id"),
    page: int = Query(1, ge=1, le=1_000_000),
    limit: int = Query(20, ge=1, le=100),
) -> dict[str, Any]:
    """`{"reviews": [...], "counts": {...}, "meta": {"total", "page", "limit", "pages"}}`, URGENT
    first then by SLA deadline. `counts` are the tenant's open reviews by status and priority
    (with `total` and `slaBreached`). Timestamps are `YYYY-MM-DDTHH:MM:SSZ` (jq `fromdate`)."""
    return await service.list_view(
        session,
        principal,
        status=status,
        priority=priority,
        reason=reason,
        sla_breached=slaBreached,
        assigned_to=assignedTo,
        lead_id=leadId,
        page=PageParams(page=page, limit=limit),
    )


@router.get("/{review_id}")
async def get_review(review_id: uuid.UUID, principal: Viewer, session: Session) -> dict[str, Any]:
    """One review with `lead`, `company`, the last 10 `messages`, `suggestedResponses` and its
    `auditTrail`."""
    return await service.detail_view(session, principal.tenant_id, review_id)


@router.post("/{review_id}/assign")
async def assign(
    review_id: uuid.UUID, body: AssignBody, request: Request, principal: Operator, session: Session
) -> dict[str, Any]:
    """Give the review to a user of the tenant: ASSIGNED."""
    review = await service.assign(
        session, principal, review_id, body.userId, notes=body.notes, user_agent=_user_agent(request)
    )
    return {"review": await service.view_of(session, review)}


@router.post("/{review_id}/start")
async def start(
    review_id: uuid.UUID, request: Request, principal: Operator, session: Session
) -> dict[str, Any]:
    """Start working on the review: IN_PROGRESS."""
    review = await service.start(session, principal, review_id, user_agent=_user_agent(request))
    return {"review": await service.view_of(session, review)}


@router.post("/{review_id}/resolve")
async def resolve(
    review_id: uuid.UUID, body: ResolveBody, request: Request, principal: Operator, session: Session
) -> dict[str, Any]:
    """Resolve with `action` APPROVE (send the draft), EDIT (send `editedContent`), CUSTOM (send
    `customResponse`), REJECT, MARK_DEAD, PAUSE_LEAD, TAKEOVER or IGNORE: `{review,
    newLeadState, messageSent, messageId}`. A resolved review is a 409."""
    return await service.resolve(session, principal, review_id, body, user_agent=_user_agent(request))


@router.post("/{review_id}/escalate")
async def escalate(
    review_id: uuid.UUID, body: EscalateBody, request: Request, principal: Operator, session: Session
) -> dict[str, Any]:
    """Escalate to `manager`, `team_lead`, `on_call` or a user id, with a `reason`
    (runbook 5.1 step 4): ESCALATED, one level up, Slack notice."""
    review = await service.escalate(
        session,
        principal,
        review_id,
        escalate_to=body.escalateTo,
        reason=body.reason,
        user_agent=_user_agent(request),
    )
    return {"review": await service.view_of(session, review)}
