"""Phone actions (runbook 2.1-2.3, 7.1-7.2): reconnect, resume, pause, reassign-leads, ban,
incidents under ``/api/v1/outreach/phones/{id}``; health-check, pause-all and resume-all under
``/api/admin/phones``; the test message at ``/api/v1/outreach/test/send``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query

from cerniq.auth.dependencies import Admin, Operator, Session, Viewer
from cerniq.auth.service import record_audit
from cerniq.phones import actions
from cerniq.phones.health import check_phones
from cerniq.phones.schemas_actions import BanBody, ReasonBody, TestSendBody

phone_router = APIRouter(prefix="/api/v1/outreach/phones", tags=["phones"])
admin_router = APIRouter(prefix="/api/admin/phones", tags=["phones", "admin"])
test_router = APIRouter(prefix="/api/v1/outreach/test", tags=["phones"])


@phone_router.post("/{phone_id}/reconnect")
async def reconnect(phone_id: str, principal: Operator, session: Session) -> dict[str, Any]:
    """Re-check the TimelinesAI account (the vendor has no reconnect call): OFFLINE -> RECONNECTING,
    or ACTIVE when connected again. `{status, connected, instructions}`; the instructions say to
    scan the QR code in the TimelinesAI app while the account is disconnected. 409 for a banned phone."""
    return await actions.reconnect_phone(session, principal, phone_id)


@phone_router.post("/{phone_id}/resume")
async def resume(phone_id: str, principal: Operator, session: Session) -> dict[str, Any]:
    """PAUSED / OFFLINE / RECONNECTING -> ACTIVE if the account is connected (409
    PHONE_DISCONNECTED otherwise; 409 PHONE_BANNED for a banned phone); waiting messages go now."""
    return await actions.resume_phone(session, principal, phone_id)


@phone_router.post("/{phone_id}/pause")
async def pause(
    phone_id: str, principal: Operator, session: Session, body: ReasonBody | None = Body(None)
) -> dict[str, Any]:
    """Take the phone out of rotation (`{"reason": "..."}` optional)."""
    return await actions.pause_phone(session, principal, phone_id, reason=body.reason if body else None)


@phone_router.post("/{phone_id}/reassign-leads")
async def reassign_leads(phone_id: str, principal: Operator, session: Session) -> dict[str, Any]:
    """Runbook 2.2 step 3: unassign the phone's COLD / CONTACTED_WA leads, due now (unless
    human-controlled) for the next dispatch to give them another phone. `{reassigned: N}`."""
    return await actions.reassign_leads(session, principal, phone_id)


@phone_router.post("/{phone_id}/ban")
async def ban(phone_id: str, body: BanBody, principal: Admin, session: Session) -> dict[str, Any]:
    """Runbook 2.2 in one step: BANNED, leads unassigned, queued messages skipped, jobs purged,
    `phone:banned` alert."""
    return await actions.ban(session, principal, phone_id, reason=body.reason)


@phone_router.get("/{phone_id}/incidents")
async def incidents(
    phone_id: str, principal: Viewer, session: Session, limit: int = Query(100, ge=1, le=1000)
) -> dict[str, Any]:
    """What happened to the phone, newest first (bans, outages, pauses, quota resets, ...)."""
    return await actions.incidents(session, principal.tenant_id, phone_id, limit=limit)


@admin_router.post("/health-check")
async def health_check(principal: Admin, session: Session) -> dict[str, Any]:
    """Run the phone health check now (runbook 2.3 step 5) and return its report."""
    report = await check_phones(session, tenant_id=principal.tenant_id)
    result = report.as_dict()
    await record_audit(
        session,
        principal,
        "phones.health_check",
        entity_type="phone",
        after={"summary": result["summary"], "timelinesaiOk": report.vendor_ok},
    )
    return result


@admin_router.post("/pause-all")
async def pause_all(
    principal: Admin, session: Session, body: ReasonBody | None = Body(None)
) -> dict[str, Any]:
    """Every ACTIVE phone -> PAUSED (runbook 7.1 step 3). `{"paused": [ids], "count": N}`."""
    return await actions.pause_all(session, principal, reason=body.reason if body else None)


@admin_router.post("/resume-all")
async def resume_all(principal: Admin, session: Session) -> dict[str, Any]:
    """Every PAUSED phone whose account is connected -> ACTIVE; the others are listed as skipped."""
    return await actions.resume_all(session, principal)


@test_router.post("/send")
async def send_test_message(body: TestSendBody, principal: Admin, session: Session) -> dict[str, Any]:
    """Send one test message from a phone (runbook 2.3 step 6). `{messageId, status}`."""
    return await actions.send_test_message(
        session, principal, phone_id=body.phoneId, test_number=body.testNumber, text=body.text
    )


router = APIRouter()
router.include_router(phone_router)
router.include_router(admin_router)
router.include_router(test_router)
