"""``/api/v1/outreach/analytics/*`` (runbook 1.1 step 7, 1.2 steps 1-2) and
``POST /api/v1/internal/reports/daily`` (runbook 1.2, extra step)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Query

from cerniq.analytics import service
from cerniq.auth.dependencies import Operator, Session, Viewer
from cerniq.auth.service import record_audit

router = APIRouter(tags=["analytics"])

PREFIX = "/api/v1/outreach/analytics"


@router.get(f"{PREFIX}/daily-stats")
async def daily_stats(
    principal: Viewer, session: Session, date_: date | None = Query(None, alias="date")
) -> dict[str, Any]:
    """`{"date", "stats": {waNewContactsSent, leadsContacted, ...}, "computedAt", "live"}`."""
    return await service.daily_stats_view(session, principal.tenant_id, date_)


@router.get(f"{PREFIX}/dashboard")
async def dashboard(principal: Viewer, session: Session) -> dict[str, Any]:
    """`{"today": {contacted, replied, converted, waSent, ...}, "yesterday", "phones", "reviews",
    "funnel"}`."""
    return await service.dashboard_view(session, principal.tenant_id)


@router.get(f"{PREFIX}/daily")
async def daily(
    principal: Viewer,
    session: Session,
    from_: date | None = Query(None, alias="from"),
    to: date | None = Query(None),
    days: int = Query(30, ge=1, le=service.MAX_RANGE_DAYS),
) -> dict[str, Any]:
    """`{"dates": [...], "metrics": {"contacted": [...], "replied": [...], "converted": [...],
    "reviewsResolved": [...], ...}}`, oldest first; default the last 30 days."""
    return await service.daily_series_view(session, principal.tenant_id, from_, to, days)


@router.get(f"{PREFIX}/funnel")
async def funnel(principal: Viewer, session: Session) -> dict[str, Any]:
    return await service.funnel_view(session, principal.tenant_id)


def _breakdown_route(kind: str) -> None:
    async def view(
        principal: Viewer,
        session: Session,
        from_: date | None = Query(None, alias="from"),
        to: date | None = Query(None),
        days: int = Query(30, ge=1, le=service.MAX_RANGE_DAYS),
    ) -> dict[str, Any]:
        return await service.breakdown_view(session, principal.tenant_id, kind, from_, to, days)

    view.__name__ = f"analytics_{kind}"
    view.__doc__ = (
        f"Per {kind[:-1]}: sent, newContacts, leadsContacted, leadsReplied, positiveReplies, replyRate, "
        "positiveRepliesPerLeadContacted over the window (default 30 days)."
    )
    router.add_api_route(f"{PREFIX}/{kind}", view, methods=["GET"])


for _kind in ("phones", "templates", "sequences"):
    _breakdown_route(_kind)


@router.post("/api/v1/internal/reports/daily")
async def daily_report(
    principal: Operator, session: Session, date_: date | None = Query(None, alias="date")
) -> dict[str, Any]:
    """Roll up the day (default today), store the full report in outreach_daily_stats.report and
    post a summary to Slack (when configured)."""
    from cerniq.kit.db import after_commit
    from cerniq.ops.notify import slack_notice

    day = date_ or service.today()
    report = await service.daily_report(session, principal.tenant_id, day)
    await record_audit(
        session, principal, "report.daily", entity_type="daily_report", entity_id=day.isoformat()
    )
    text = service.report_text(report)

    async def notify() -> None:
        await slack_notice(text, severity="LOW")

    after_commit(session, notify)
    return {"date": day.isoformat(), "stored": True, "summary": text, "report": report}
