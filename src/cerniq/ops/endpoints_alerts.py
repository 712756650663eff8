"""``/api/v1/outreach/alerts``: the open alerts, their history, acknowledge / resolve / silence."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cerniq.auth.dependencies import Operator, Session, Viewer
from cerniq.errors import ValidationFailed
from cerniq.kit.clock import utcnow
from cerniq.kit.pagination import PageParams, page_params
from cerniq.models.enums import AlertSeverity, AlertStatus
from cerniq.ops import alerts

router = APIRouter(prefix="/api/v1/outreach/alerts", tags=["alerts"])


class AlertNote(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=2000)


class SilenceBody(BaseModel):
    """Give ``until`` (an ISO time with a timezone) or ``minutes``."""

    model_config = ConfigDict(extra="forbid")
    until: datetime | None = None
    minutes: int | None = Field(default=None, ge=1, le=43200)
    reason: str = Field(min_length=3, max_length=500)

    @model_validator(mode="after")
    def _one_end(self) -> SilenceBody:
        if (self.until is None) == (self.minutes is None):
            raise ValueError("give either until or minutes")
        return self


def _csv(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for value in values or []:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


def _statuses(values: list[str] | None) -> list[AlertStatus] | None:
    raw = [v.upper() for v in _csv(values)]
    if not raw:
        return list(alerts.OPEN_STATES)
    if raw == ["ALL"]:
        return None
    try:
        return [AlertStatus(v) for v in raw]
    except ValueError as exc:
        raise ValidationFailed(
            "status must be OPEN, ACKNOWLEDGED, SILENCED, RESOLVED or all", details={"status": raw}
        ) from exc


def _severities(values: list[str] | None) -> list[AlertSeverity] | None:
    raw = [v.upper() for v in _csv(values)]
    try:
        return [AlertSeverity(v) for v in raw] or None
    except ValueError as exc:
        raise ValidationFailed(
            "severity must be LOW, MEDIUM, HIGH or CRITICAL", details={"severity": raw}
        ) from exc


@router.get("")
async def list_alerts(
    principal: Viewer,
    session: Session,
    status: list[str] | None = Query(
        None, description="OPEN, ACKNOWLEDGED, SILENCED, RESOLVED or all (default: open ones)"
    ),
    severity: list[str] | None = Query(None, description="LOW, MEDIUM, HIGH, CRITICAL"),
    type: list[str] | None = Query(None, description="e.g. phone:offline"),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    """`{"alerts": [...], "counts": {"open", "byStatus", "bySeverity"}, "meta": {"total"}}`, most
    severe first. The tenant's alerts and the install-wide ones (queues, DLQ, emergency stop)."""
    rows, total = await alerts.list_alerts(
        session,
        principal.tenant_id,
        statuses=_statuses(status),
        severities=_severities(severity),
        types=_csv(type) or None,
        limit=limit,
        offset=offset,
    )
    return {
        "alerts": [alerts.view(a) for a in rows],
        "counts": await alerts.counts(session, principal.tenant_id),
        "meta": {"total": total, "limit": limit, "offset": offset},
    }


@router.get("/history")
async def history(
    principal: Viewer,
    session: Session,
    days: int = Query(7, ge=1, le=365),
    type: list[str] | None = Query(None),
    severity: list[str] | None = Query(None),
    page: PageParams = Depends(page_params),
) -> dict[str, Any]:
    """Every alert seen in the last `days` days, whatever its status."""
    rows, total = await alerts.list_alerts(
        session,
        principal.tenant_id,
        statuses=None,
        severities=_severities(severity),
        types=_csv(type) or None,
        since=utcnow() - timedelta(days=days),
        limit=page.limit,
        offset=page.offset,
    )
    return {"alerts": [alerts.view(a) for a in rows], "meta": page.meta(total, days=days)}


@router.get("/matrix")
async def matrix(principal: Viewer) -> dict[str, Any]:
    """The response matrix (runbook 9.1): severity, response time and procedure per alert type."""
    del principal
    return {
        "alerts": [
            {
                "type": k.alert_type,
                "severity": k.severity.value,
                "responseMinutes": k.response_minutes,
                "procedure": k.procedure,
                "title": k.title,
            }
            for k in alerts.MATRIX.values()
        ],
        "escalation": [
            "L1 on-call: at once (HIGH, CRITICAL)",
            "L2 team lead: after 30 min",
            "L3 manager: after 2 h",
        ],
    }


@router.get("/{alert_id}")
async def get_alert(alert_id: uuid.UUID, principal: Viewer, session: Session) -> dict[str, Any]:
    return alerts.view(await alerts.get_alert(session, principal.tenant_id, alert_id))


@router.post("/{alert_id}/acknowledge")
async def acknowledge(
    alert_id: uuid.UUID, principal: Operator, session: Session, body: AlertNote | None = None
) -> dict[str, Any]:
    """Take the alert: it stops escalating."""
    alert = await alerts.acknowledge(session, principal, alert_id, note=body.note if body else None)
    return alerts.view(alert)


@router.post("/{alert_id}/resolve")
async def resolve(
    alert_id: uuid.UUID, principal: Operator, session: Session, body: AlertNote | None = None
) -> dict[str, Any]:
    """Close the alert (a condition still true opens a new one at the next check)."""
    alert = await alerts.resolve(session, principal, alert_id, note=body.note if body else None)
    return alerts.view(alert)


@router.post("/{alert_id}/silence")
async def silence(
    alert_id: uuid.UUID, body: SilenceBody, principal: Operator, session: Session
) -> dict[str, Any]:
    """No notification or escalation until `until` (or for `minutes`); OPEN again afterwards if
    the condition is still there."""
    until = body.until if body.until is not None else utcnow() + timedelta(minutes=body.minutes or 0)
    alert = await alerts.silence(session, principal, alert_id, until=until, reason=body.reason)
    return alerts.view(alert)
