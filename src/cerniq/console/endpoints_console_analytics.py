"""Console: analytics over a date range (read-only; every role may see it).

The figures come from the services behind ``/api/v1/outreach/analytics/*``: the daily series
(the pre-aggregated ``outreach_daily_stats`` rows for past days, live for today), the per phone /
template / sequence breakdowns, the templates' A/B variant results, the sequences' enrollment
results and the review SLA performance.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.analytics import service as analytics
from cerniq.console import web
from cerniq.console.i18n import add_strings
from cerniq.errors import CerniqError, NotFound, ValidationFailed
from cerniq.kit.db import transaction
from cerniq.reviews import service as reviews
from cerniq.sequences import service as sequences
from cerniq.templates import service as templates

router = APIRouter(prefix="/console", include_in_schema=False)

DEFAULT_DAYS = 7
MAX_DAYS = 92
TEMPLATES_SHOWN = 20

add_strings(
    {
        "an_from": {"ro": "De la", "en": "From"},
        "an_to": {"ro": "Până la", "en": "To"},
        "an_show": {"ro": "Afișează", "en": "Show"},
        "an_daily": {"ro": "Pe zile", "en": "Per day"},
        "an_date": {"ro": "Data", "en": "Date"},
        "an_contacted": {"ro": "Contactați", "en": "Contacted"},
        "an_replied": {"ro": "Au răspuns", "en": "Replied"},
        "an_positive": {"ro": "Pozitivi", "en": "Positive"},
        "an_wa_new": {"ro": "WA primul mesaj", "en": "WA first message"},
        "an_wa_followups": {"ro": "WA reveniri", "en": "WA follow-ups"},
        "an_email_cold": {"ro": "E-mail rece", "en": "Cold email"},
        "an_email_warm": {"ro": "E-mail cald", "en": "Warm email"},
        "an_sent_total": {"ro": "Trimise (total)", "en": "Sent (total)"},
        "an_per_phone": {"ro": "Pe telefon", "en": "Per phone"},
        "an_per_template": {"ro": "Pe șablon", "en": "Per template"},
        "an_per_sequence": {"ro": "Pe secvență", "en": "Per sequence"},
        "an_sent": {"ro": "Trimise", "en": "Sent"},
        "an_new_contacts": {"ro": "Contacte noi", "en": "New contacts"},
        "an_reply_rate": {"ro": "Rată răspuns", "en": "Reply rate"},
        "an_positive_rate": {"ro": "Pozitivi / contactați", "en": "Positive per contacted"},
        "an_nothing": {"ro": "Nicio activitate în interval.", "en": "No activity in the range."},
        "an_variants": {"ro": "Variante A/B (de la început)", "en": "A/B variants (all time)"},
        "an_variant": {"ro": "Variantă", "en": "Variant"},
        "an_weight": {"ro": "Pondere", "en": "Weight"},
        "an_used": {"ro": "Folosită", "en": "Used"},
        "an_control": {"ro": "control", "en": "control"},
        "an_enrollments": {"ro": "Înscrieri (de la început)", "en": "Enrollments (all time)"},
        "an_completions": {"ro": "Finalizate", "en": "Completed"},
        "an_sla": {"ro": "Performanța SLA a revizuirilor", "en": "Review SLA performance"},
        "an_sla_window": {
            "ro": "Revizuiri deschise în ultimele {days} zile",
            "en": "Reviews opened in the last {days} days",
        },
        "an_priority": {"ro": "Prioritate", "en": "Priority"},
        "an_sla_minutes": {"ro": "SLA (min)", "en": "SLA (min)"},
        "an_total": {"ro": "Total", "en": "Total"},
        "an_resolved": {"ro": "Rezolvate", "en": "Resolved"},
        "an_breached": {"ro": "Depășite", "en": "Breached"},
        "an_breach_rate": {"ro": "Rată depășire", "en": "Breach rate"},
        "an_avg_minutes": {"ro": "Medie (min)", "en": "Average (min)"},
        "an_p90_minutes": {"ro": "P90 (min)", "en": "P90 (min)"},
        "an_within_sla": {"ro": "În SLA", "en": "Within SLA"},
        "an_deleted": {"ro": "(șters)", "en": "(deleted)"},
        "an_counting": {
            "ro": "Un lead se numără o dată pe fiecare zi în care a primit mesaje; un răspuns se atribuie "
            "telefonului, șablonului și secvenței ultimului mesaj trimis înaintea lui.",
            "en": "A lead counts once per day it was sent messages; a reply is credited to the phone, "
            "template and sequence of the last message sent before it.",
        },
    }
)


def _parse_day(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed(f"{field} is not a date (YYYY-MM-DD): {value[:20]!r}") from None


def date_range(given_from: str | None, given_to: str | None) -> tuple[date, date]:
    """The page's range: default the last 7 days; ``from <= to``, at most 92 days."""
    last = _parse_day(given_to, "to") or analytics.today()
    first = _parse_day(given_from, "from") or last - timedelta(days=DEFAULT_DAYS - 1)
    first, last = analytics.parse_range(first, last, DEFAULT_DAYS)
    if (last - first).days + 1 > MAX_DAYS:
        raise ValidationFailed(f"choose at most {MAX_DAYS} days (from {first} to {last} is longer)")
    return first, last


def _daily_rows(series: dict[str, Any]) -> list[dict[str, Any]]:
    m = series["metrics"]
    rows = []
    for i, day in enumerate(series["dates"]):
        wa_new, wa_follow = int(m["waNewContactsSent"][i]), int(m["waFollowupsSent"][i])
        cold, warm = int(m["emailColdSent"][i]), int(m["emailWarmSent"][i])
        rows.append(
            {
                "date": date.fromisoformat(day),
                "contacted": int(m["contacted"][i]),
                "replied": int(m["replied"][i]),
                "positive": int(m["positiveReplies"][i]),
                "waNew": wa_new,
                "waFollowups": wa_follow,
                "emailCold": cold,
                "emailWarm": warm,
                "sent": wa_new + wa_follow + cold + warm,
            }
        )
    return rows


async def _template_rows(
    session: AsyncSession, tenant_id: uuid.UUID, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The range breakdown per template with each template's name and A/B variant results."""
    out = []
    for item in sorted(items, key=lambda i: -int(i["sent"]))[:TEMPLATES_SHOWN]:
        try:
            detail = await templates.detail_view(session, tenant_id, item["id"])
        except NotFound:
            out.append({**item, "name": None, "variants": []})
            continue
        out.append({**item, "name": detail["name"], "variants": detail["variants"]})
    return out


@router.get("/analytics")
async def analytics_page(request: Request) -> Response:
    found = await web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    q = request.query_params
    form = {"from": q.get("from", ""), "to": q.get("to", "")}
    try:
        first, last = date_range(form["from"], form["to"])
    except CerniqError as exc:
        page = await web.render(
            request, "analytics.html", principal, csrf, form=form, error=web.error_text(exc)
        )
        page.status_code = 400
        return page
    tenant_id = principal.tenant_id
    sla_days = min(max((analytics.today() - first).days + 1, 1), 365)
    async with transaction() as session:
        series = await analytics.daily_series_view(session, tenant_id, first, last)
        breakdowns = await analytics.breakdowns_view(session, tenant_id, first, last)
        phones, by_template = breakdowns["phones"], breakdowns["templates"]
        by_sequence = breakdowns["sequences"]
        template_rows = await _template_rows(session, tenant_id, by_template)
        sequence_stats = {s["sequenceId"]: s for s in await sequences.analytics_view(session, tenant_id)}
        sla = await reviews.sla_performance(session, tenant_id, days=sla_days)
    daily = _daily_rows(series)
    totals = {k: sum(r[k] for r in daily) for k in daily[0] if k != "date"} if daily else {}
    sequence_rows = [
        {
            **item,
            "name": (sequence_stats.get(item["id"]) or {}).get("name"),
            "stats": sequence_stats.get(item["id"]),
        }
        for item in sorted(by_sequence, key=lambda i: -int(i["sent"]))
    ]
    return await web.render(
        request,
        "analytics.html",
        principal,
        csrf,
        form={"from": first.isoformat(), "to": last.isoformat()},
        first=first,
        last=last,
        daily=daily,
        totals=totals,
        max_sent=max([r["sent"] for r in daily] + [1]),
        max_contacted=max([r["contacted"] for r in daily] + [1]),
        phones=sorted(phones, key=lambda p: p["id"]),
        template_rows=template_rows,
        sequence_rows=sequence_rows,
        sla=sla,
    )
