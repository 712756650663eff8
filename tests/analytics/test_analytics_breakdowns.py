"""Per phone / template / sequence figures over a range: closed days come from their rolled-up
row, today is computed, and a reply is credited to the last message sent before it."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from cerniq.analytics import service, snapshots
from cerniq.config import get_settings
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.models import GoldCommunicationLog, OutreachDailyStats, OutreachTemplate
from cerniq.models.enums import Channel, Direction, MessageStatus
from tests.fixtures.outreach import add_leads, add_phones, add_sequence


@pytest.fixture(autouse=True)
def local_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERNIQ_LOCAL_OPERATOR_MODE", "true")
    get_settings.cache_clear()


def at(day_offset: int, hour: int) -> datetime:
    """``hour``:00 Bucharest time ``day_offset`` days from today."""
    day = service.today() + timedelta(days=day_offset)
    return datetime.combine(day, time(hour), tzinfo=get_settings().tz)


async def seed(tenant: Any) -> dict[str, Any]:
    """Yesterday: leads A and B get template T1 from phone 1. Today: lead A gets a follow-up
    with template T2 from phone 2 and then replies positively; lead B replies (to yesterday's
    message)."""
    phones = await add_phones(tenant, 2)
    sequence = await add_sequence(tenant)
    a, b = await add_leads(tenant, 2)
    yesterday, today = at(-1, 10), at(0, 0) + timedelta(minutes=1)
    async with transaction() as session:
        templates = [
            OutreachTemplate(tenant_id=tenant.id, name=f"T{n}", channel=Channel.WHATSAPP, content="Bună")
            for n in (1, 2)
        ]
        session.add_all(templates)
        await session.flush()
        t1, t2 = (t.id for t in templates)

        def msg(journey: uuid.UUID, when: datetime, **kw: Any) -> GoldCommunicationLog:
            return GoldCommunicationLog(
                **{
                    "tenant_id": tenant.id,
                    "lead_journey_id": journey,
                    "channel": Channel.WHATSAPP,
                    "direction": Direction.OUTBOUND,
                    "status": MessageStatus.SENT,
                    "sequence_id": sequence,
                    "content": "Bună ziua",
                    "created_at": when,
                    "updated_at": when,
                    "sent_at": when,
                }
                | kw
            )

        session.add_all(
            [
                msg(a, yesterday, phone_id=phones[0], template_id=t1, quota_cost=1),
                msg(b, yesterday, phone_id=phones[0], template_id=t1, quota_cost=1),
                msg(a, today, phone_id=phones[1], template_id=t2),
            ]
        )
        await session.flush()
        reply = {"direction": Direction.INBOUND, "status": MessageStatus.RECEIVED, "sent_at": None}
        session.add_all(
            [
                msg(a, today + timedelta(minutes=1), sentiment_score=70, **reply),
                msg(b, today + timedelta(minutes=2), sentiment_score=-10, **reply),
            ]
        )
    return {"phones": phones, "sequence": sequence, "t1": str(t1), "t2": str(t2)}


async def test_a_range_adds_up_its_days_and_credits_replies_to_the_last_message(
    tenant: Any, local_api: Any
) -> None:
    s = await seed(tenant)
    resp = await local_api.get("/api/v1/outreach/analytics/templates?days=2")
    body = resp.json()
    assert resp.status_code == 200, body
    by_id = {t["id"]: t for t in body["templates"]}
    assert (by_id[s["t1"]]["sent"], by_id[s["t1"]]["newContacts"], by_id[s["t1"]]["leadsContacted"]) == (
        2,
        2,
        2,
    )
    # B's reply follows T1 (its last message); A's follows T2, sent to A today.
    assert (by_id[s["t1"]]["leadsReplied"], by_id[s["t1"]]["positiveReplies"]) == (1, 0)
    assert (by_id[s["t2"]]["leadsReplied"], by_id[s["t2"]]["positiveReplies"]) == (1, 1)
    assert by_id[s["t2"]]["replyRate"] == 1.0

    phones = {
        p["id"]: p for p in (await local_api.get("/api/v1/outreach/analytics/phones?days=2")).json()["phones"]
    }
    assert phones[s["phones"][0]]["leadsReplied"] == 1 and phones[s["phones"][1]]["leadsReplied"] == 1

    # The sequence reached A on both days: a lead counts once per day it was messaged.
    (seq,) = (await local_api.get("/api/v1/outreach/analytics/sequences?days=2")).json()["sequences"]
    assert (seq["sent"], seq["leadsContacted"], seq["leadsReplied"]) == (3, 3, 2)
    # Only today: A's follow-up, and both replies (both leads were messaged before).
    (seq,) = (await local_api.get("/api/v1/outreach/analytics/sequences?days=1")).json()["sequences"]
    assert (seq["sent"], seq["leadsContacted"], seq["leadsReplied"]) == (1, 1, 2)


async def test_a_closed_day_is_read_from_its_rolled_up_row(tenant: Any, local_api: Any) -> None:
    s = await seed(tenant)
    yesterday = service.today() - timedelta(days=1)
    async with transaction() as session:
        await service.rollup(session, tenant.id, yesterday)
    async with transaction() as session:
        row = (await session.execute(select(OutreachDailyStats))).scalar_one()
        assert row.breakdowns is not None
        assert row.breakdowns["templates"][s["t1"]]["sent"] == 2
        # Yesterday's messages are archived away or erased: its figures stay what they were.
        await session.execute(
            update(GoldCommunicationLog)
            .where(GoldCommunicationLog.sent_at < at(0, 0))
            .values(template_id=None)
        )
    body = (
        await local_api.get(f"/api/v1/outreach/analytics/templates?from={yesterday}&to={yesterday}")
    ).json()
    assert [(t["id"], t["sent"]) for t in body["templates"]] == [(s["t1"], 2)]


async def test_breakdown_ranges_are_checked(tenant: Any, local_api: Any) -> None:
    r = await local_api.get("/api/v1/outreach/analytics/phones?from=2026-05-02&to=2026-05-01")
    assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_backfill_rolls_up_closed_days_without_breakdowns(tenant: Any) -> None:
    s = await seed(tenant)
    yesterday = service.today() - timedelta(days=1)
    before = yesterday - timedelta(days=1)
    async with transaction() as session:
        await service.rollup(session, tenant.id, yesterday)
        await session.execute(update(OutreachDailyStats).values(breakdowns=None))  # rolled up before 0004
    async with transaction() as session:
        filled = await service.backfill(session, tenant.id, before, service.today())
    assert filled == [before, yesterday]  # never today: it is not closed
    async with transaction() as session:
        rows = {r.stat_date: r for r in (await session.execute(select(OutreachDailyStats))).scalars()}
    assert set(rows) == {before, yesterday}
    assert rows[yesterday].breakdowns is not None
    assert rows[yesterday].breakdowns["templates"][s["t1"]]["sent"] == 2
    assert rows[before].breakdowns == {"phones": {}, "templates": {}, "sequences": {}}
    async with transaction() as session:
        assert await service.backfill(session, tenant.id, before, yesterday) == []


async def test_the_dashboard_funnel_and_sequence_figures_are_the_minute_jobs_count_while_fresh(
    tenant: Any, local_api: Any
) -> None:
    from cerniq.kit.redis import get_redis

    await seed(tenant)
    async with transaction() as session:
        assert await snapshots.refresh(session) >= 1
    await add_leads(tenant, 3, start=50)  # after the count: the dashboard shows the stored one
    dash = (await local_api.get("/api/v1/outreach/analytics/dashboard")).json()
    assert dash["funnel"]["total"] == 2 and dash["funnelAsOf"] is not None
    live = (await local_api.get("/api/v1/outreach/analytics/funnel")).json()
    assert live["funnel"]["total"] == 5  # the funnel endpoint always counts
    listing = (await local_api.get("/api/v1/outreach/sequences")).json()
    assert listing["meta"]["statsAsOf"] == dash["funnelAsOf"]  # the same minute's count

    key = snapshots.KEY.format("funnel", tenant.id)
    stale = json.loads(await get_redis().get(key) or "{}")
    stale["at"] = (datetime.fromisoformat(stale["at"]) - snapshots.FRESH * 2).isoformat()
    await get_redis().set(key, json.dumps(stale))
    dash = (await local_api.get("/api/v1/outreach/analytics/dashboard")).json()
    assert dash["funnel"]["total"] == 5 and dash["funnelAsOf"] is None


async def test_todays_figures_are_the_minute_roll_up_while_fresh(tenant: Any, local_api: Any) -> None:
    s = await seed(tenant)
    async with transaction() as session:
        await service.rollup(session, tenant.id, service.today())
    async with transaction() as session:  # a message after the roll-up
        session.add(
            GoldCommunicationLog(
                tenant_id=tenant.id,
                lead_journey_id=(await add_leads(tenant, 1, start=60))[0],
                channel=Channel.WHATSAPP,
                direction=Direction.OUTBOUND,
                status=MessageStatus.SENT,
                content="Bună ziua",
                phone_id=s["phones"][0],
                quota_cost=1,
                sent_at=utcnow(),
            )
        )
    dash = (await local_api.get("/api/v1/outreach/analytics/dashboard")).json()
    assert dash["today"]["waNewContacts"] == 0 and dash["todayAsOf"] is not None
    phones = (await local_api.get("/api/v1/outreach/analytics/phones?days=1")).json()["phones"]
    assert {p["id"]: p["newContacts"] for p in phones}.get(s["phones"][0], 0) == 0  # as rolled up

    async with transaction() as session:  # the roll-up stopped running: today is counted live
        await session.execute(
            update(OutreachDailyStats).values(computed_at=utcnow() - service.TODAY_FRESH * 2)
        )
    dash = (await local_api.get("/api/v1/outreach/analytics/dashboard")).json()
    assert dash["today"]["waNewContacts"] == 1 and dash["todayAsOf"] is None
    phones = (await local_api.get("/api/v1/outreach/analytics/phones?days=1")).json()["phones"]
    assert {p["id"]: p["newContacts"] for p in phones}[s["phones"][0]] == 1
