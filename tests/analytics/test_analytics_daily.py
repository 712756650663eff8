"""Runbook 1: the analytics the daily checklists read, the roll-up job and the daily report."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from cerniq.analytics import service
from cerniq.config import get_settings
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.models import AuditEntry, GoldCommunicationLog, GoldLeadJourney, HumanReview, OutreachDailyStats
from cerniq.models.enums import Channel, Direction, MessageStatus, ReviewReason, ReviewStatus, Role
from cerniq.worker import names, registry
from tests.fixtures.outreach import add_leads, add_phones, add_sequence


@pytest.fixture(autouse=True)
def local_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runbook's curl lines run on the box in local-operator mode."""
    monkeypatch.setenv("CERNIQ_LOCAL_OPERATOR_MODE", "true")
    get_settings.cache_clear()


async def seed(tenant: Any) -> dict[str, Any]:
    """4 leads contacted today on WhatsApp (one also got a follow-up), 2 replied (one
    positively), 1 converted, 1 review resolved; one lead contacted 3 days ago."""
    phones = await add_phones(tenant, 2)
    sequence = await add_sequence(tenant)
    leads = await add_leads(tenant, 5)
    now = utcnow()
    today = service.today()
    # today's sends: half an hour and ten minutes ago, but never before midnight (Bucharest)
    midnight, _ = service.bounds(today)
    first_send = max(now - timedelta(minutes=30), midnight + timedelta(seconds=1))
    follow_up = max(now - timedelta(minutes=10), first_send + timedelta(seconds=1))
    async with transaction() as session:

        def msg(journey: uuid.UUID, **kw: Any) -> GoldCommunicationLog:
            base: dict[str, Any] = {
                "tenant_id": tenant.id,
                "lead_journey_id": journey,
                "channel": Channel.WHATSAPP,
                "direction": Direction.OUTBOUND,
                "status": MessageStatus.SENT,
                "sequence_id": sequence,
                "content": "Bună ziua",
            }
            return GoldCommunicationLog(**(base | kw))

        rows = [
            msg(j, phone_id=phones[i % 2], quota_cost=1, quota_date=today, sent_at=first_send)
            for i, j in enumerate(leads[:4])
        ]
        rows.append(msg(leads[0], phone_id=phones[0], sent_at=follow_up))  # follow-up
        rows.append(
            msg(leads[0], direction=Direction.INBOUND, status=MessageStatus.RECEIVED, sentiment_score=60)
        )
        rows.append(
            msg(leads[1], direction=Direction.INBOUND, status=MessageStatus.RECEIVED, sentiment_score=-40)
        )
        three_days = now - timedelta(days=3)
        rows.append(
            msg(leads[4], phone_id=phones[0], quota_cost=1, sent_at=three_days, created_at=three_days)
        )
        session.add_all(rows)
        await session.flush()
        await session.execute(
            update(GoldLeadJourney).where(GoldLeadJourney.id.in_(leads[:4])).values(first_contact_at=now)
        )
        await session.execute(
            update(GoldLeadJourney).where(GoldLeadJourney.id == leads[4]).values(first_contact_at=three_days)
        )
        await session.execute(
            update(GoldLeadJourney)
            .where(GoldLeadJourney.id == leads[0])
            .values(converted_at=now, last_reply_at=now)
        )
        session.add(
            HumanReview(
                tenant_id=tenant.id,
                lead_journey_id=leads[1],
                reason=next(iter(ReviewReason)),
                status=ReviewStatus.RESOLVED,
                sla_due_at=now + timedelta(hours=1),
                resolved_at=now,
            )
        )
    return {"phones": phones, "sequence": sequence, "leads": leads}


async def test_daily_stats_and_series_and_dashboard_show_todays_figures(tenant: Any, local_api: Any) -> None:
    await seed(tenant)
    today = service.today().isoformat()
    resp = await local_api.get(f"/api/v1/outreach/analytics/daily-stats?date={today}")
    body = resp.json()
    assert resp.status_code == 200, body
    stats = body["stats"]
    assert stats["leadsContacted"] == 4
    assert stats["waNewContactsSent"] == 4
    assert stats["waFollowupsSent"] == 1
    assert stats["waQuotaUsed"] == 4
    assert stats["waRepliesReceived"] == 2
    assert stats["leadsReplied"] == 2
    assert stats["leadsPositiveReplies"] == 1
    assert stats["leadsConverted"] == 1
    assert stats["reviewsResolved"] == 1
    assert stats["sentimentAvg"] == 10.0

    daily = (await local_api.get("/api/v1/outreach/analytics/daily")).json()
    assert len(daily["dates"]) == 30 and daily["dates"][-1] == today
    last = {k: daily["metrics"][k][-1] for k in ("contacted", "replied", "converted", "reviewsResolved")}
    assert last == {"contacted": 4, "replied": 2, "converted": 1, "reviewsResolved": 1}
    assert daily["metrics"]["contacted"][-4] == 1  # the lead contacted three days ago
    assert sum(daily["metrics"]["contacted"]) == 5

    dash = (await local_api.get("/api/v1/outreach/analytics/dashboard")).json()
    assert dash["today"]["contacted"] == 4
    assert dash["today"]["waSent"] == 5
    assert dash["phones"]["total"] == 2


async def test_breakdowns_give_positive_replies_per_lead_contacted(tenant: Any, local_api: Any) -> None:
    seeded = await seed(tenant)
    body = (await local_api.get("/api/v1/outreach/analytics/sequences?days=1")).json()
    (seq,) = body["sequences"]
    assert seq["id"] == str(seeded["sequence"])
    assert seq["leadsContacted"] == 4
    assert seq["leadsReplied"] == 2
    assert seq["positiveReplies"] == 1
    assert seq["positiveRepliesPerLeadContacted"] == 0.25
    resp = await local_api.get("/api/v1/outreach/analytics/phones?days=1")
    assert resp.status_code == 200, resp.text
    phones = resp.json()["phones"]
    assert {p["id"]: p["newContacts"] for p in phones} == {seeded["phones"][0]: 2, seeded["phones"][1]: 2}
    funnel = (await local_api.get("/api/v1/outreach/analytics/funnel")).json()
    assert funnel["funnel"]["contacted"] == 5
    assert funnel["funnel"]["converted"] == 1


async def test_bad_dates_are_a_clear_400(tenant: Any, local_api: Any) -> None:
    r = await local_api.get("/api/v1/outreach/analytics/daily-stats?date=yesterday")
    assert 400 <= r.status_code < 500
    r = await local_api.get("/api/v1/outreach/analytics/daily?from=2026-05-01&to=2026-04-01")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_rollup_upserts_one_row_per_day_and_the_report_is_stored(tenant: Any, local_api: Any) -> None:
    await seed(tenant)
    day = service.today()
    async with transaction() as session:
        await service.rollup_all(session, day)
    async with transaction() as session:
        await service.rollup_all(session, day)  # UPSERT: still one row
        rows = (await session.execute(select(OutreachDailyStats))).scalars().all()
    assert len(rows) == 1 and rows[0].leads_contacted == 4

    r = await local_api.post("/api/v1/internal/reports/daily")
    assert r.status_code == 200
    assert "contacted 4" in r.json()["summary"]
    async with transaction() as session:
        row = (await session.execute(select(OutreachDailyStats))).scalar_one()
        assert row.report is not None and row.report["stats"]["leadsContacted"] == 4
        audit = (
            (await session.execute(select(AuditEntry).where(AuditEntry.action == "report.daily")))
            .scalars()
            .all()
        )
    assert len(audit) == 1


def test_rollup_runs_every_minute_for_today_and_after_midnight_and_the_snapshots_every_minute() -> None:
    registry.load_all_tasks()
    specs = sorted(
        (s.job_name, s.pattern, s.data.get("day"))
        for s in registry.schedules()
        if s.queue == names.MAINTENANCE_STATS
    )
    assert specs == [
        ("daily-stats", "* * * * *", None),
        ("daily-stats", "10 0 * * *", "yesterday"),
        ("snapshots", "* * * * *", None),
    ]


async def test_remote_callers_need_a_token_and_the_report_needs_an_operator(
    tenant: Any, api: Any, make_token: Any
) -> None:
    assert (await api.get("/api/v1/outreach/analytics/dashboard")).status_code == 401
    viewer = await make_token(tenant, Role.VIEWER, "viewer")
    assert (await api.get("/api/v1/outreach/analytics/dashboard", headers=viewer)).status_code == 200
    assert (await api.post("/api/v1/internal/reports/daily", headers=viewer)).status_code == 403
