"""``/api/v1/outreach/campaigns`` and ``/api/v1/outreach/email/*``: cold-email campaigns
(mirrored to Instantly), clean bounces (runbook 6.1 step 8), suppressions, on-demand checks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cerniq.auth.dependencies import Operator, Session, Viewer
from cerniq.auth.service import record_audit
from cerniq.email import campaigns, service
from cerniq.email.schemas import CampaignCreate, ReasonBody

router = APIRouter(prefix="/api/v1/outreach", tags=["email"])


@router.get("/campaigns")
async def list_campaigns(principal: Viewer, session: Session) -> dict[str, Any]:
    """Every campaign with its status (Instantly's own included: BOUNCE_PROTECT,
    ACCOUNTS_UNHEALTHY...) and stats: `{"campaigns": [...], "counts": {...}, "meta": {"total"}}`."""
    return await campaigns.list_view(session, principal.tenant_id)


@router.post("/campaigns", status_code=201)
async def create_campaign(body: CampaignCreate, principal: Operator, session: Session) -> dict[str, Any]:
    """Create the campaign at Instantly (or link `instantlyCampaignId`), mapped to a sequence
    step, a sequence, or (neither) the tenant's default for cold email. 502 if Instantly refuses."""
    campaign = await campaigns.create_campaign(
        session,
        principal,
        name=body.name,
        sequence_id=body.sequenceId,
        sequence_step_id=body.sequenceStepId,
        email_accounts=body.emailAccounts,
        schedule=body.schedule.instantly() if body.schedule else None,
        steps=[{"subject": s.subject, "body": s.body, "delay": s.delayDays} for s in body.steps]
        if body.steps
        else None,
        daily_limit=body.dailyLimit,
        activate=body.activate,
        instantly_campaign_id=body.instantlyCampaignId,
    )
    return campaigns.campaign_view(campaign)


@router.get("/campaigns/{campaign_id}")
async def get_campaign(campaign_id: str, principal: Viewer, session: Session) -> dict[str, Any]:
    """One campaign (our id or its Instantly id)."""
    return await campaigns.get_view(session, principal.tenant_id, campaign_id)


@router.post("/campaigns/{campaign_id}/pause")
async def pause_campaign(
    campaign_id: str, principal: Operator, session: Session, body: ReasonBody | None = None
) -> dict[str, Any]:
    """Pause here at once (nothing more is added to it) and at Instantly; audited."""
    return await campaigns.pause_campaign(
        session, principal, campaign_id, reason=body.reason if body else None
    )


@router.post("/campaigns/{campaign_id}/resume")
async def resume_campaign(
    campaign_id: str, principal: Operator, session: Session, body: ReasonBody | None = None
) -> dict[str, Any]:
    """Resume at Instantly and here (runbook 6.1 step 9); audited; the bounce breaker leaves it
    alone for the grace period (24 h by default)."""
    return await campaigns.resume_campaign(
        session, principal, campaign_id, reason=body.reason if body else None
    )


@router.post("/email/clean-bounces")
async def clean_bounces(principal: Operator, session: Session) -> dict[str, Any]:
    """Suppressed addresses out of future campaigns and out of the Instantly campaigns; reports
    what was removed (runbook 6.1 step 8)."""
    return await service.clean_bounces(session, principal)


@router.get("/email/suppressions")
async def suppressions(principal: Viewer, session: Session) -> dict[str, Any]:
    """The tenant's suppressed email addresses (bounces, complaints, unsubscribes, opt-outs)."""
    return await service.suppression_view(session, principal.tenant_id)


@router.post("/email/analytics/fetch")
async def fetch_analytics(principal: Operator, session: Session) -> dict[str, Any]:
    """Run the hourly analytics fetch now (status and counters from Instantly, then the breaker)."""
    result = await campaigns.fetch_analytics(tenant_id=principal.tenant_id)
    await record_audit(
        session,
        principal,
        "email.analytics.fetch",
        entity_type="email_campaign",
        after={"campaigns": result["campaigns"], "tripped": len(result["breaker"]["tripped"])},
    )
    return result


@router.post("/email/deliverability/check")
async def check_deliverability(principal: Operator, session: Session) -> dict[str, Any]:
    """Run the deliverability breaker now (``monitor:email:deliverability``)."""
    from cerniq.email.breaker import run_breaker

    result = await run_breaker(tenant_id=principal.tenant_id)
    await record_audit(
        session,
        principal,
        "email.deliverability.check",
        entity_type="email_campaign",
        after={"tripped": len(result["tripped"]), "phonesPaused": result["phonesPaused"]},
    )
    return result
