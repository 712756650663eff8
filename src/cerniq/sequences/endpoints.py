"""``/api/v1/outreach/sequences``: sequences, their steps, enrollment, pause and resume."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from cerniq.auth.dependencies import Operator, Session, Viewer
from cerniq.kit.pagination import PageParams, page_params
from cerniq.sequences import service
from cerniq.sequences.schemas import EnrollRequest, PauseRequest, SequenceCreate, SequencePatch, StepsReplace

router = APIRouter(prefix="/api/v1/outreach/sequences", tags=["sequences"])

Page = Annotated[PageParams, Depends(page_params)]


@router.get("")
async def list_sequences(
    principal: Viewer,
    session: Session,
    page: Page,
    isActive: bool | None = Query(None),
    channel: str | None = Query(
        None, description="primary channel: WHATSAPP, EMAIL_COLD, EMAIL_WARM or EMAIL"
    ),
    includeArchived: bool = Query(False, description="also list deleted sequences"),
) -> dict[str, Any]:
    """Sequences with their steps and enrolled / active / completed / replied counts:
    `{"data": [...], "meta": {page, limit, total, pages}}`."""
    return await service.list_view(
        session,
        principal.tenant_id,
        page,
        is_active=isActive,
        channel=channel,
        include_archived=includeArchived,
    )


@router.post("", status_code=201)
async def create_sequence(body: SequenceCreate, principal: Operator, session: Session) -> dict[str, Any]:
    """Create a sequence with 1-10 steps. Step 1's delay counts from enrollment, later ones
    from the previous send. Lint warnings of the step texts come back in `warnings`."""
    sequence, warnings = await service.create_sequence(
        session,
        principal,
        name=body.name,
        steps=body.steps,
        code=body.code,
        description=body.description,
        primary_channel=body.primaryChannel,
        fallback_channel=body.fallbackChannel,
        respect_business_hours=body.respectBusinessHours,
        stop_on_reply=body.stopOnReply,
        stop_on_bounce=body.stopOnBounce,
        is_default=body.isDefault,
        is_active=body.isActive,
    )
    return await service.detail_view(session, principal.tenant_id, sequence.id) | {"warnings": warnings}


@router.get("/stats")
async def sequence_stats(principal: Viewer, session: Session) -> list[dict[str, Any]]:
    """Enrollment results per sequence: `[{sequenceId, name, enrollments, completions, stopped,
    conversions, avgStepsCompleted, responseRate}]` (responseRate: replied / contacted
    enrollments). Message counts per sequence are in `/api/v1/outreach/analytics/sequences`."""
    return await service.analytics_view(session, principal.tenant_id)


@router.get("/{sequence_id}")
async def get_sequence(sequence_id: str, principal: Viewer, session: Session) -> dict[str, Any]:
    """One sequence with its steps and `stats` (enrollments by status, stopped by reason,
    messages per step, replies, reply rate, conversions, average steps done)."""
    return await service.detail_view(session, principal.tenant_id, sequence_id)


@router.patch("/{sequence_id}")
async def patch_sequence(
    sequence_id: str, body: SequencePatch, principal: Operator, session: Session
) -> dict[str, Any]:
    """Edit name, description, channels, flags, `isActive` and `isDefault` (one per tenant)."""
    sequence = await service.update_sequence(
        session, principal, sequence_id, body.model_dump(exclude_unset=True)
    )
    return await service.detail_view(session, principal.tenant_id, sequence.id)


@router.put("/{sequence_id}/steps")
async def replace_steps(
    sequence_id: str, body: StepsReplace, principal: Operator, session: Session
) -> dict[str, Any]:
    """Replace the steps; enrolled leads keep their step number."""
    sequence, warnings = await service.replace_steps(session, principal, sequence_id, body.steps)
    return await service.detail_view(session, principal.tenant_id, sequence.id) | {"warnings": warnings}


@router.delete("/{sequence_id}", status_code=204)
async def delete_sequence(
    sequence_id: str,
    principal: Operator,
    session: Session,
    force: bool = Query(False, description="stop the enrollments of leads still in the sequence"),
) -> Response:
    """Soft delete; 409 `SEQUENCE_HAS_ENROLLMENTS` while leads are enrolled, unless `?force=true`."""
    await service.delete_sequence(session, principal, sequence_id, force=force)
    return Response(status_code=204)


@router.post("/{sequence_id}/enroll")
async def enroll(
    sequence_id: str, body: EnrollRequest, principal: Operator, session: Session
) -> dict[str, Any]:
    """Enroll leads: `{"enrolled": n, "skipped": [{leadId, reason}], "errors": [...]}`."""
    return await service.enroll_leads(
        session,
        principal,
        sequence_id,
        body.leadIds,
        start_step=body.startStep,
        scheduled_start=body.scheduledStart,
    )


@router.post("/{sequence_id}/pause")
async def pause(
    sequence_id: str, principal: Operator, session: Session, body: PauseRequest | None = None
) -> dict[str, Any]:
    """Stop sending for this sequence; enrolled leads keep their place."""
    sequence = await service.pause_sequence(
        session, principal, sequence_id, reason=body.reason if body else None
    )
    return await service.detail_view(session, principal.tenant_id, sequence.id)


@router.post("/{sequence_id}/resume")
async def resume(
    sequence_id: str, principal: Operator, session: Session, body: PauseRequest | None = None
) -> dict[str, Any]:
    """Reactivate the sequence (the manual reactivation after an emergency resume); its
    enrolled leads become due again (`leadsDueAgain`)."""
    sequence, due_again = await service.resume_sequence(
        session, principal, sequence_id, reason=body.reason if body else None
    )
    return await service.detail_view(session, principal.tenant_id, sequence.id) | {"leadsDueAgain": due_again}
