"""Outreach analytics (runbook 1): the daily roll-up into ``outreach_daily_stats``, the views
the checklists read (daily-stats, dashboard, daily series, funnel, per phone / template /
sequence), and the daily report.

A day is a business day in ``settings.timezone`` (Europe/Bucharest). Figures are computed from
the communication log *and its archive*, so archiving (and GDPR erasure, which keeps the rows)
never changes a past day's numbers. Today is always computed live; past days come from the
rolled-up row when there is one.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.analytics import repository, snapshots
from cerniq.config import get_settings
from cerniq.errors import ValidationFailed
from cerniq.kit.clock import utcnow
from cerniq.models import HumanReview, OutreachDailyStats, WaPhoneNumber
from cerniq.models.enums import PhoneStatus, ReviewStatus

FIELDS = (
    "wa_new_contacts_sent",
    "wa_followups_sent",
    "wa_replies_received",
    "wa_quota_used",
    "wa_quota_remaining",
    "email_cold_sent",
    "email_cold_opens",
    "email_cold_clicks",
    "email_cold_replies",
    "email_cold_bounces",
    "email_cold_bounce_rate",
    "email_warm_sent",
    "email_warm_opens",
    "leads_contacted",
    "leads_replied",
    "leads_positive_replies",
    "leads_converted",
    "leads_marked_dead",
    "reviews_created",
    "reviews_resolved",
    "reviews_sla_breached",
    "sentiment_avg",
)

# series of GET /analytics/daily: the runbook reads contacted, replied, converted, reviewsResolved
SERIES = {
    "contacted": "leads_contacted",
    "replied": "leads_replied",
    "positiveReplies": "leads_positive_replies",
    "converted": "leads_converted",
    "dead": "leads_marked_dead",
    "reviewsCreated": "reviews_created",
    "reviewsResolved": "reviews_resolved",
    "reviewsSlaBreached": "reviews_sla_breached",
    "waNewContactsSent": "wa_new_contacts_sent",
    "waFollowupsSent": "wa_followups_sent",
    "waRepliesReceived": "wa_replies_received",
    "waQuotaUsed": "wa_quota_used",
    "emailColdSent": "email_cold_sent",
    "emailColdBounces": "email_cold_bounces",
    "emailWarmSent": "email_warm_sent",
}

MAX_RANGE_DAYS = 366
#: How old today's rolled-up row may be to stand for today (the roll-up runs every minute).
TODAY_FRESH = timedelta(minutes=5)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def today() -> date:
    return datetime.now(get_settings().tz).date()


def bounds(day: date) -> tuple[datetime, datetime]:
    tz = get_settings().tz
    start = datetime.combine(day, time.min, tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


async def compute(session: AsyncSession, tenant_id: uuid.UUID, day: date) -> dict[str, Any]:
    """Every ``outreach_daily_stats`` figure of ``day``, computed now."""
    start, end = bounds(day)
    values = await repository.message_figures(session, tenant_id, day, start, end)
    values.update(await repository.lead_figures(session, tenant_id, start, end))
    capacity = await repository.quota_capacity(session, tenant_id)
    values["wa_quota_used"] = int(values["wa_quota_used"])
    values["wa_quota_remaining"] = max(capacity - values["wa_quota_used"], 0)
    sent, bounced = int(values["email_cold_sent"]), int(values["email_cold_bounces"])
    values["email_cold_bounce_rate"] = (
        (Decimal(bounced) / Decimal(sent)).quantize(Decimal("0.0001")) if sent else Decimal(0)
    )
    avg = values["sentiment_avg"]
    values["sentiment_avg"] = Decimal(avg).quantize(Decimal("0.01")) if avg is not None else None
    return {k: values[k] for k in FIELDS}


async def rollup(session: AsyncSession, tenant_id: uuid.UUID, day: date) -> dict[str, Any]:
    """Compute ``day`` (its figures and, under ``breakdowns``, its per phone / template /
    sequence breakdowns), UPSERT it on (tenant_id, stat_date) and return it."""
    values = await compute(session, tenant_id, day)
    values["breakdowns"] = (await compute_breakdowns(session, tenant_id, [day]))[day]
    await repository.upsert_stats(session, tenant_id, day, values)
    return values


def _empty_breakdowns() -> repository.Breakdowns:
    return {kind: {} for kind in repository.BREAKDOWN_KEYS}


async def rollup_all(session: AsyncSession, day: date) -> int:
    """Roll ``day`` up for every tenant; returns how many tenants."""
    tenants = await repository.tenant_ids(session)
    for tid in tenants:
        await rollup(session, tid, day)
    return len(tenants)


def stats_view(values: dict[str, Any]) -> dict[str, Any]:
    return {camel(k): _plain(values.get(k)) for k in FIELDS}


def usable(row: OutreachDailyStats | None, day: date) -> bool:
    """Whether ``day``'s rolled-up row stands for its figures: always for a closed day, and for
    today while the minute roll-up keeps it at most ``TODAY_FRESH`` old (computing today reads
    every message of the day: seconds at 100k messages a day)."""
    if row is None:
        return False
    current = today()
    return day < current or (day == current and utcnow() - row.computed_at <= TODAY_FRESH)


async def figures(
    session: AsyncSession, tenant_id: uuid.UUID, day: date
) -> tuple[dict[str, Any], str | None]:
    """The figures of ``day`` and when they were computed (``None``: now): from the rolled-up
    row when ``usable``, else computed."""
    rows = await repository.stored(session, tenant_id, day, day)
    if rows and usable(rows[0], day):
        return {k: getattr(rows[0], k) for k in FIELDS}, rows[0].computed_at.isoformat()
    return await compute(session, tenant_id, day), None


async def daily_stats_view(session: AsyncSession, tenant_id: uuid.UUID, day: date | None) -> dict[str, Any]:
    day = day or today()
    values, computed_at = await figures(session, tenant_id, day)
    return {
        "date": day.isoformat(),
        "stats": stats_view(values),
        "computedAt": computed_at,
        "live": computed_at is None,
    }


def parse_range(first: date | None, last: date | None, days: int) -> tuple[date, date]:
    last = last or today()
    first = first or last - timedelta(days=days - 1)
    if first > last:
        raise ValidationFailed("from must not be after to", details={"from": str(first), "to": str(last)})
    if (last - first).days >= MAX_RANGE_DAYS:
        raise ValidationFailed(
            f"at most {MAX_RANGE_DAYS} days per request", details={"from": str(first), "to": str(last)}
        )
    return first, last


async def daily_series_view(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    first: date | None = None,
    last: date | None = None,
    days: int = 30,
) -> dict[str, Any]:
    """``{"dates": [...], "metrics": {"contacted": [...], ...}}``, oldest first, one entry per day
    (days without activity are zeros), so ``.metrics.contacted[-1]`` is the last day."""
    first, last = parse_range(first, last, days)
    stored = {r.stat_date: r for r in await repository.stored(session, tenant_id, first, last)}
    dates: list[str] = []
    metrics: dict[str, list[Any]] = {name: [] for name in SERIES}
    day = first
    while day <= last:
        row = stored.get(day)
        if row is not None and usable(row, day):
            values = {k: getattr(row, k) for k in FIELDS}
        else:
            values = await compute(session, tenant_id, day)
        dates.append(day.isoformat())
        for name, column in SERIES.items():
            metrics[name].append(_plain(values[column]))
        day += timedelta(days=1)
    return {"from": first.isoformat(), "to": last.isoformat(), "dates": dates, "metrics": metrics}


async def dashboard_view(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, Any]:
    """``{"today": {...}, "todayAsOf", "yesterday": {...}, "phones": {...}, "reviews": {...},
    "funnel": {...}, "funnelAsOf"}``: today's figures and the funnel as the minute jobs last
    counted them (``todayAsOf``, ``funnelAsOf``), or counted now (``null``) when that count is
    missing or stale."""
    day = today()
    now_values, now_at = await figures(session, tenant_id, day)
    prev_values, _ = await figures(session, tenant_id, day - timedelta(days=1))

    def summary(values: dict[str, Any]) -> dict[str, Any]:
        return {
            "contacted": values["leads_contacted"],
            "replied": values["leads_replied"],
            "positiveReplies": values["leads_positive_replies"],
            "converted": values["leads_converted"],
            "waSent": int(values["wa_new_contacts_sent"]) + int(values["wa_followups_sent"]),
            "waNewContacts": values["wa_new_contacts_sent"],
            "waFollowups": values["wa_followups_sent"],
            "emailColdSent": values["email_cold_sent"],
            "emailWarmSent": values["email_warm_sent"],
            "replies": int(values["wa_replies_received"]) + int(values["email_cold_replies"]),
            "quotaUsed": values["wa_quota_used"],
            "quotaRemaining": values["wa_quota_remaining"],
            "reviewsCreated": values["reviews_created"],
            "reviewsResolved": values["reviews_resolved"],
            "slaBreaches": values["reviews_sla_breached"],
        }

    phones = (
        await session.execute(
            select(WaPhoneNumber.status, func.count())
            .where(WaPhoneNumber.tenant_id == tenant_id)
            .group_by(WaPhoneNumber.status)
        )
    ).all()
    by_status = {s.value: int(n) for s, n in phones}
    pending = int(
        (
            await session.execute(
                select(func.count()).where(
                    HumanReview.tenant_id == tenant_id,
                    HumanReview.status.in_(
                        [
                            ReviewStatus.PENDING,
                            ReviewStatus.ASSIGNED,
                            ReviewStatus.IN_PROGRESS,
                            ReviewStatus.ESCALATED,
                        ]
                    ),
                )
            )
        ).scalar_one()
    )
    funnel, funnel_at = await snapshots.read(session, tenant_id, "funnel")
    return {
        "date": day.isoformat(),
        "today": summary(now_values),
        "todayAsOf": now_at,
        "yesterday": summary(prev_values),
        "phones": {
            "total": sum(by_status.values()),
            "active": by_status.get(PhoneStatus.ACTIVE.value, 0),
            "byStatus": by_status,
        },
        "reviews": {"open": pending},
        "funnel": funnel,
        "funnelAsOf": funnel_at.isoformat() if funnel_at else None,
    }


async def funnel_view(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, Any]:
    f = await repository.funnel(session, tenant_id)
    contacted = f["contacted"]
    return {
        "funnel": f,
        "rates": {
            "replyRate": round(f["replied"] / contacted, 4) if contacted else 0.0,
            "conversionRate": round(f["converted"] / contacted, 4) if contacted else 0.0,
        },
    }


def _runs(days: list[date]) -> list[list[date]]:
    """``days`` (ascending) cut into runs of consecutive days."""
    runs: list[list[date]] = []
    for day in days:
        if runs and runs[-1][-1] + timedelta(days=1) == day:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


async def compute_breakdowns(
    session: AsyncSession, tenant_id: uuid.UUID, days: list[date]
) -> dict[date, repository.Breakdowns]:
    """The breakdowns of ``days`` computed from the messages: one statement pair per run."""
    out: dict[date, repository.Breakdowns] = {}
    tz = get_settings().timezone
    for run in _runs(days):
        start, end = bounds(run[0])[0], bounds(run[-1])[1]
        found = await repository.breakdowns_by_day(session, tenant_id, start, end, tz)
        out |= {day: found.get(day) or _empty_breakdowns() for day in run}
    return out


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


async def breakdowns_of(
    session: AsyncSession, tenant_id: uuid.UUID, first: date, last: date
) -> list[repository.Breakdowns]:
    """The per-key figures of every day in [first, last]: from the day's rolled-up row when
    ``usable``, the others (days never rolled up, today without a fresh roll-up) computed."""
    rows = {r.stat_date: r for r in await repository.stored(session, tenant_id, first, last)}
    days: dict[date, repository.Breakdowns] = {}
    missing: list[date] = []
    for day in _days(first, last):
        row = rows.get(day)
        if row is not None and row.breakdowns is not None and usable(row, day):
            days[day] = row.breakdowns
        else:
            missing.append(day)
    days |= await compute_breakdowns(session, tenant_id, missing)
    return [days[d] for d in sorted(days)]


async def backfill(session: AsyncSession, tenant_id: uuid.UUID, first: date, last: date) -> list[date]:
    """Roll up the closed days in [first, last] that have no row or no breakdowns (days from
    before breakdowns were stored, or missed by the job); returns them. Days with a row get
    their breakdowns from one scan per run of such days."""
    last = min(last, today() - timedelta(days=1))
    if last < first:
        return []
    rows = {r.stat_date: r for r in await repository.stored(session, tenant_id, first, last)}
    missing = [d for d in _days(first, last) if d not in rows or rows[d].breakdowns is None]
    computed = await compute_breakdowns(session, tenant_id, [d for d in missing if d in rows])
    for day, figures in computed.items():
        rows[day].breakdowns = figures
    for day in missing:
        if day not in rows:
            await rollup(session, tenant_id, day)
    await session.flush()
    return missing


async def breakdown_view(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    kind: str,
    first: date | None,
    last: date | None,
    days: int = 30,
) -> dict[str, Any]:
    """Per phone, template or sequence over the range: the sum of its days (see
    ``repository.breakdowns_by_day``)."""
    return await breakdowns_view(session, tenant_id, first, last, days, kinds=(kind,))


async def breakdowns_view(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    first: date | None,
    last: date | None,
    days: int = 30,
    *,
    kinds: tuple[str, ...] = tuple(repository.BREAKDOWN_KEYS),
) -> dict[str, Any]:
    """``{"from", "to", "phones": [...], "templates": [...], "sequences": [...]}`` (``kinds``)."""
    first, last = parse_range(first, last, days)
    figures = await breakdowns_of(session, tenant_id, first, last)
    items = {kind: repository.breakdown_items(figures, kind) for kind in kinds}
    return {"from": first.isoformat(), "to": last.isoformat(), **items}


async def daily_report(session: AsyncSession, tenant_id: uuid.UUID, day: date) -> dict[str, Any]:
    """Roll ``day`` up, build the full report (stats, funnel, per phone / template / sequence)
    and store it in the day's ``outreach_daily_stats.report``."""
    values = await rollup(session, tenant_id, day)
    figures = [values["breakdowns"]]
    report = {
        "date": day.isoformat(),
        "stats": stats_view(values),
        "funnel": await repository.funnel(session, tenant_id),
        **{kind: repository.breakdown_items(figures, kind) for kind in repository.BREAKDOWN_KEYS},
    }
    row = (
        await session.execute(
            select(OutreachDailyStats).where(
                OutreachDailyStats.tenant_id == tenant_id, OutreachDailyStats.stat_date == day
            )
        )
    ).scalar_one()
    row.report = report
    await session.flush()
    return report


def report_text(report: dict[str, Any]) -> str:
    s = report["stats"]
    return (
        f"Cerniq daily report {report['date']}: contacted {s['leadsContacted']}, replied {s['leadsReplied']} "
        f"({s['leadsPositiveReplies']} positive), converted {s['leadsConverted']}; WhatsApp new "
        f"{s['waNewContactsSent']} / follow-ups {s['waFollowupsSent']}; cold email {s['emailColdSent']} "
        f"(bounces {s['emailColdBounces']}); reviews resolved {s['reviewsResolved']}, SLA breaches "
        f"{s['reviewsSlaBreached']}"
    )
