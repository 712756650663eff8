"""Console: the alerts page (open alerts, recent history) with acknowledge, resolve and silence.

Same services and roles as ``/api/v1/outreach/alerts``: a viewer reads, an operator (or admin)
acknowledges, resolves and silences."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.console import i18n, web
from cerniq.console.content_forms import page_of
from cerniq.errors import NotFound, ValidationFailed
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.models.enums import AlertStatus, Role
from cerniq.ops import alerts

router = APIRouter(prefix="/console", include_in_schema=False)

HISTORY_DAYS = 7
HISTORY_PAGE = 25
OPEN_LIMIT = 100
# (minutes, string key) offered by the silence form; the service accepts up to 30 days.
SILENCE_CHOICES = ((30, "30 min"), (60, "1 h"), (240, "4 h"), (720, "12 h"), (1440, "24 h"), (10080, "7 d"))

i18n.add_strings(
    {
        "alert_open_alerts": {"ro": "Alerte deschise", "en": "Open alerts"},
        "alert_history": {"ro": "Istoric (ultimele 7 zile)", "en": "History (last 7 days)"},
        "alert_no_alerts": {"ro": "Nicio alertă deschisă.", "en": "No open alerts."},
        "alert_no_history": {"ro": "Nicio alertă în ultimele 7 zile.", "en": "No alerts in the last 7 days."},
        "alert_severity": {"ro": "Severitate", "en": "Severity"},
        "alert_title": {"ro": "Alertă", "en": "Alert"},
        "alert_first_seen": {"ro": "Prima dată", "en": "First seen"},
        "alert_last_seen": {"ro": "Ultima dată", "en": "Last seen"},
        "alert_occurrences": {"ro": "Apariții", "en": "Count"},
        "alert_acknowledge": {"ro": "Preiau", "en": "Acknowledge"},
        "alert_resolve_alert": {"ro": "Rezolvă", "en": "Resolve"},
        "alert_silence": {"ro": "Amuță", "en": "Silence"},
        "alert_silence_for": {"ro": "Amuță pentru", "en": "Silence for"},
        "alert_silence_reason": {"ro": "Motiv (min. 3 caractere)", "en": "Reason (at least 3 characters)"},
        "alert_silenced_until": {"ro": "amuțită până la", "en": "silenced until"},
        "alert_resolved_at": {"ro": "Rezolvată", "en": "Resolved"},
    }
)


@router.get("/alerts")
async def alerts_page(request: Request) -> Response:
    found = await web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    page = page_of(request.query_params.get("page"), most=10_000)
    async with transaction() as session:
        open_rows, open_total = await alerts.list_alerts(
            session, principal.tenant_id, statuses=list(alerts.OPEN_STATES), limit=OPEN_LIMIT
        )
        history_rows, history_total = await alerts.list_alerts(
            session,
            principal.tenant_id,
            statuses=[AlertStatus.RESOLVED],
            since=utcnow() - timedelta(days=HISTORY_DAYS),
            limit=HISTORY_PAGE,
            offset=(page - 1) * HISTORY_PAGE,
        )
    return await web.render(
        request,
        "alerts.html",
        principal,
        csrf,
        open_alerts=[alerts.view(a) for a in open_rows],
        open_total=open_total,
        history=[alerts.view(a) for a in history_rows],
        page=page,
        pages=max(1, (history_total + HISTORY_PAGE - 1) // HISTORY_PAGE),
        silence_choices=SILENCE_CHOICES,
    )


@router.post("/alerts/{alert_id}/{verb}")
async def alert_action(alert_id: uuid.UUID, verb: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    note = (form.get("note") or "").strip()[:2000] or None

    async def work(session: AsyncSession) -> None:
        if verb == "acknowledge":
            await alerts.acknowledge(session, principal, alert_id, note=note)
        elif verb == "resolve":
            await alerts.resolve(session, principal, alert_id, note=note)
        elif verb == "silence":
            try:
                minutes = int(form.get("minutes", ""))
            except ValueError:
                raise ValidationFailed("pick how long to silence the alert") from None
            if not 1 <= minutes <= 43200:
                raise ValidationFailed("an alert can be silenced for 1 minute to 30 days")
            reason = (form.get("reason") or "").strip()
            if not 3 <= len(reason) <= 500:
                raise ValidationFailed("give a reason of at least 3 characters to silence an alert")
            await alerts.silence(
                session, principal, alert_id, until=utcnow() + timedelta(minutes=minutes), reason=reason
            )
        else:
            raise NotFound(f"no alert action {verb!r}")

    return await web.act("/console/alerts", work)
