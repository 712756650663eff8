"""The SLA monitor (runbook 5.1): breach flags, one alert per review, escalation by priority,
and that only a human action answers an SLA. Time moves by injecting ``now`` into the monitor."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from typing import Any

from sqlalchemy import select

from cerniq.kit.db import transaction
from cerniq.messaging.service import queue_message
from cerniq.models import Alert, GoldLeadJourney, HitlAuditEntry, HumanReview
from cerniq.models.enums import AlertStatus, Channel, ReviewPriority, ReviewStatus
from cerniq.reviews.service import check_slas
from tests.reviews.seed import add_user, inbound, later, open_for, review_row, slack_messages, warm_lead

URL = "/api/v1/outreach/reviews"


async def sla_alerts(review_id: uuid.UUID) -> list[Alert]:
    async with transaction() as session:
        rows = await session.execute(
            select(Alert).where(Alert.alert_type == "sla:breach", Alert.subject == str(review_id))
        )
        return list(rows.scalars())


async def hitl(review_id: uuid.UUID) -> list[HitlAuditEntry]:
    async with transaction() as session:
        rows = await session.execute(
            select(HitlAuditEntry)
            .where(HitlAuditEntry.review_id == review_id)
            .order_by(HitlAuditEntry.performed_at, HitlAuditEntry.id)
        )
        return list(rows.scalars())


async def test_an_unanswered_urgent_review_breaches_at_one_hour_and_goes_to_the_manager(
    api: Any, tenant: Any, slack: Any, make_token: Any
) -> None:
    from cerniq.models.enums import Role

    await add_user(tenant, "sef@ferma.ro", team_role="manager")
    lead = await warm_lead(tenant)
    review = await open_for(
        lead, await inbound(lead, "Sunteți niște escroci!"), priority=ReviewPriority.URGENT
    )
    # an AI answer goes out to the lead: it is no human action and answers no SLA
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
        assert journey is not None
        await queue_message(
            session,
            journey,
            channel=Channel.WHATSAPP,
            content="Mulțumim pentru mesaj, revenim în curând.",
            origin="AI",
            is_ai_generated=True,
        )

    report = await check_slas(now=later(59))
    assert report.breached == 0
    assert (await review_row(review)).sla_breached is False

    report = await check_slas(now=later(61))
    assert report.breached == 1 and report.escalated_to_manager == 1
    stored = await review_row(review)
    assert stored.sla_breached and stored.sla_breached_at is not None
    assert stored.status == ReviewStatus.ESCALATED
    assert stored.escalated_to == "manager"
    assert stored.escalation_level == 2
    assert stored.first_human_action_at is None
    (alert,) = await sla_alerts(review)
    assert alert.status == AlertStatus.OPEN and alert.tenant_id == tenant.id
    texts = [m["text"] or "" for m in slack_messages(slack)]
    assert any("escalated to manager (level 2)" in t for t in texts)

    # a second run at the same time changes nothing and raises no second alert
    report = await check_slas(now=later(62))
    assert report.breached == 0 and report.escalated_unanswered == 0
    assert len(await sla_alerts(review)) == 1
    assert (await sla_alerts(review))[0].occurrences == 1

    # two hours after it came in, still untouched by a human: escalated once more (level 3)
    report = await check_slas(now=later(121))
    assert report.escalated_unanswered == 1
    stored = await review_row(review)
    assert stored.escalation_level == 3
    entries = await hitl(review)
    assert [e.action for e in entries] == ["CREATED", "SLA_BREACH", "ESCALATED", "ESCALATED"]
    assert "SLA_BREACH_UNRESPONDED" in (entries[-1].notes or "")
    assert all(e.performed_by == "system:sla-monitor" for e in entries[1:])
    assert (await check_slas(now=later(180))).escalated_unanswered == 0

    # the API shows it breached; resolving it closes the alert
    operator = await make_token(tenant, Role.OPERATOR, "ops")
    listed = (await api.get(URL, params={"slaBreached": "true"}, headers=operator)).json()
    assert listed["meta"]["total"] == 1 and listed["counts"]["slaBreached"] == 1
    response = await api.post(f"{URL}/{review}/resolve", json={"action": "IGNORE"}, headers=operator)
    assert response.status_code == 200, response.text
    (alert,) = await sla_alerts(review)
    assert alert.status == AlertStatus.RESOLVED


async def test_a_review_someone_works_on_does_not_breach(api: Any, tenant: Any, make_token: Any) -> None:
    from cerniq.models.enums import Role

    operator = await make_token(tenant, Role.OPERATOR, "ops")
    lead = await warm_lead(tenant)
    started = await open_for(lead, await inbound(lead, "a"), priority=ReviewPriority.URGENT)
    waiting = await open_for(lead, await inbound(lead, "b"), priority=ReviewPriority.URGENT)
    assert (await api.post(f"{URL}/{started}/start", headers=operator)).status_code == 200
    report = await check_slas(now=later(61))
    assert report.breached == 1
    assert not (await review_row(started)).sla_breached
    assert (await review_row(waiting)).sla_breached
    # a human touched `started` in time: no unanswered escalation either
    await check_slas(now=later(125))
    assert (await review_row(started)).escalation_level == 0
    assert (await review_row(waiting)).escalation_level == 3


async def test_a_high_breach_goes_to_an_available_team_lead(tenant: Any) -> None:
    await add_user(tenant, "away@ferma.ro", team_role="team_lead", available=False)
    lead_user = await add_user(tenant, "lead@ferma.ro", team_role="team_lead")
    await add_user(tenant, "op@ferma.ro", team_role="operator")
    lead = await warm_lead(tenant)
    review = await open_for(
        lead, await inbound(lead, "Vreau să vorbesc cu directorul."), priority=ReviewPriority.HIGH
    )
    assert (await check_slas(now=later(3 * 60 + 59))).breached == 0
    report = await check_slas(now=later(4 * 60 + 1))
    assert report.assigned_to_team_lead == 1
    stored = await review_row(review)
    assert stored.sla_breached
    assert stored.status == ReviewStatus.ASSIGNED
    assert stored.assigned_to == lead_user
    assert stored.escalated_to == "team_lead" and stored.escalation_level == 1
    assert stored.first_human_action_at is None  # the monitor's assignment answers nothing
    assert len(await sla_alerts(review)) == 1


async def test_a_high_breach_without_a_team_lead_is_escalated_to_the_role(tenant: Any) -> None:
    lead = await warm_lead(tenant)
    review = await open_for(lead, await inbound(lead, "x"), priority=ReviewPriority.HIGH)
    report = await check_slas(now=later(4 * 60 + 1))
    assert report.escalated_to_team_lead == 1
    stored = await review_row(review)
    assert stored.status == ReviewStatus.ESCALATED and stored.escalated_to == "team_lead"
    assert stored.assigned_to is None


async def test_a_medium_breach_is_auto_assigned_to_the_least_loaded_available_operator(tenant: Any) -> None:
    busy = await add_user(tenant, "busy@ferma.ro")
    idle_but_away = await add_user(tenant, "away@ferma.ro", available=False)
    light = await add_user(tenant, "light@ferma.ro")
    await add_user(tenant, "lead@ferma.ro", team_role="team_lead")
    lead = await warm_lead(tenant)
    # current load: busy holds two assigned reviews, light one, away none (but is away)
    for owner, count in ((busy, 2), (light, 1)):
        for i in range(count):
            held = await open_for(lead, await inbound(lead, f"{owner}-{i}"), priority=ReviewPriority.LOW)
            async with transaction() as session:
                row = await session.get(HumanReview, held)
                assert row is not None
                row.status, row.assigned_to = ReviewStatus.ASSIGNED, owner
    review = await open_for(lead, await inbound(lead, "Mai am o întrebare."), priority=ReviewPriority.MEDIUM)
    assert (await check_slas(now=later(23 * 60))).breached == 0
    report = await check_slas(now=later(24 * 60 + 1))
    assert report.breached == 1 and report.assigned_to_operator == 1
    stored = await review_row(review)
    assert stored.status == ReviewStatus.ASSIGNED
    assert stored.assigned_to == light
    assert stored.assigned_to not in (busy, idle_but_away)
    assert stored.first_human_action_at is None
    actions = [e.action for e in await hitl(review)]
    assert actions == ["CREATED", "SLA_BREACH", "ASSIGNED"]


async def test_the_cli_lists_resolves_and_runs_the_monitor(tenant: Any) -> None:
    lead = await warm_lead(tenant)
    review = await open_for(lead, await inbound(lead, "x"), priority=ReviewPriority.URGENT)
    await add_user(tenant, "ana@ferma.ro")

    async def cerniq(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from cerniq.cli.main import main; main()",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
        )
        out, _ = await process.communicate()
        return process.returncode or 0, out.decode()

    code, out = await cerniq("reviews", "list", "--json", "--priority", "URGENT")
    assert code == 0, out
    assert json.loads(out)["reviews"][0]["id"] == str(review)
    code, out = await cerniq("reviews", "assign", str(review), "ana@ferma.ro")
    assert code == 0, out
    assert (await review_row(review)).status == ReviewStatus.ASSIGNED
    code, out = await cerniq("reviews", "sla-check")
    assert code == 0, out
    assert "breached" in out
    code, out = await cerniq("reviews", "resolve", str(review), "--action", "IGNORE", "--notes", "duplicate")
    assert code == 0, out
    stored = await review_row(review)
    assert stored.status == ReviewStatus.RESOLVED
    assert stored.resolved_by is not None and stored.resolved_by.startswith("cli:")
