"""The review queue over HTTP (in process) against real PostgreSQL and Redis: opening reviews,
the list the runbook reads (counts, meta, jq-parseable SLA dates), filters, detail, resolving
(the answer goes through the send path), escalation, roles and tenancy."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.models import AuditEntry, GoldCommunicationLog, HitlAuditEntry, HumanReview, LeadStateHistory
from cerniq.models.enums import (
    Channel,
    Direction,
    MessageStatus,
    ReviewAction,
    ReviewPriority,
    ReviewReason,
    ReviewStatus,
)
from cerniq.worker.queues import get_queue
from tests.reviews.seed import (
    add_user,
    inbound,
    journey_row,
    open_for,
    review_row,
    slack_messages,
    warm_lead,
)

URL = "/api/v1/outreach/reviews"
JQ_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


async def hitl_actions(review_id: uuid.UUID) -> list[str]:
    async with transaction() as session:
        rows = await session.execute(
            select(HitlAuditEntry.action)
            .where(HitlAuditEntry.review_id == review_id)
            .order_by(HitlAuditEntry.performed_at, HitlAuditEntry.id)
        )
        return list(rows.scalars())


async def outbound(journey_id: uuid.UUID) -> list[GoldCommunicationLog]:
    async with transaction() as session:
        rows = await session.execute(
            select(GoldCommunicationLog)
            .where(
                GoldCommunicationLog.lead_journey_id == journey_id,
                GoldCommunicationLog.direction == Direction.OUTBOUND,
            )
            .order_by(GoldCommunicationLog.created_at)
        )
        return list(rows.scalars())


async def audit_actions() -> list[str]:
    async with transaction() as session:
        return list(
            (await session.execute(select(AuditEntry.action).order_by(AuditEntry.created_at))).scalars()
        )


# ---------------------------------------------------------------------------------------------
# Opening


async def test_one_review_per_inbound_message(tenant: Any) -> None:
    lead = await warm_lead(tenant)
    message = await inbound(lead, "Prețul e prea mare, sunt nemulțumit.", sentiment=-60)
    first = await open_for(lead, message, priority=ReviewPriority.HIGH)
    again = await open_for(lead, message, priority=ReviewPriority.URGENT)
    assert again == first
    async with transaction() as session:
        count = (await session.execute(select(func.count()).select_from(HumanReview))).scalar_one()
    assert count == 1
    review = await review_row(first)
    assert review.priority == ReviewPriority.HIGH  # the second call changed nothing
    assert review.status == ReviewStatus.PENDING
    assert review.trigger_sentiment_score == -80  # from the AI analysis
    assert (
        timedelta(hours=3, minutes=59)
        < review.sla_due_at - review.created_at
        <= timedelta(hours=4, seconds=5)
    )
    assert await hitl_actions(first) == ["CREATED"]
    journey = await journey_row(lead)
    assert journey.requires_human_review
    assert journey.human_review_priority == ReviewPriority.HIGH
    assert journey.human_review_reason == ReviewReason.NEGATIVE_SENTIMENT.value

    # reviews without a message (a bounce, a manual flag) are allowed and never merged
    bounce_a = await open_for(lead, None, priority=ReviewPriority.LOW, reason=ReviewReason.BOUNCE_DETECTED)
    bounce_b = await open_for(lead, None, priority=ReviewPriority.LOW, reason=ReviewReason.BOUNCE_DETECTED)
    assert bounce_a != bounce_b
    low = await review_row(bounce_a)
    assert timedelta(hours=71, minutes=59) < low.sla_due_at - low.created_at <= timedelta(hours=72, seconds=5)


async def test_urgent_review_is_posted_to_slack(tenant: Any, slack: Any) -> None:
    lead = await warm_lead(tenant)
    urgent = await open_for(lead, await inbound(lead, "Vă dau în judecată!"), priority=ReviewPriority.URGENT)
    await open_for(lead, await inbound(lead, "Cât costă?"), priority=ReviewPriority.MEDIUM)
    posted = slack_messages(slack)
    assert len(posted) == 1  # MEDIUM reviews are not announced
    text = posted[0]["text"]
    assert "[URGENT]" in text
    assert "Agro Ferma 1 SRL" in text
    assert "SLA" in text
    assert f"https://cerniq.example/console/reviews/{urgent}" in text


async def test_a_slack_failure_never_fails_the_review(tenant: Any, slack: Any) -> None:
    slack.control("POST", "/_control/slack/faults", {"mode": "http_500", "count": 1})
    lead = await warm_lead(tenant)
    review = await open_for(lead, await inbound(lead, "Urgent!"), priority=ReviewPriority.URGENT)
    assert (await review_row(review)).status == ReviewStatus.PENDING
    assert slack_messages(slack) == []
    # the failed notice waits on the retry queue under an id derived from the review
    job = await get_queue("human:review:notify").getJob(f"slack-{review}-created")
    assert job is not None
    assert "[URGENT]" in job.data["text"]


# ---------------------------------------------------------------------------------------------
# The list the runbook reads


async def seed_queue(tenant: Any) -> dict[str, uuid.UUID]:
    lead = await warm_lead(tenant)
    ids = {}
    for priority in (ReviewPriority.LOW, ReviewPriority.MEDIUM, ReviewPriority.URGENT, ReviewPriority.HIGH):
        ids[priority.value] = await open_for(
            lead, await inbound(lead, f"mesaj {priority.value}"), priority=priority
        )
    ids["DONE"] = await open_for(lead, await inbound(lead, "gata"), priority=ReviewPriority.URGENT)
    async with transaction() as session:
        await session.execute(
            update(HumanReview)
            .where(HumanReview.id == ids["DONE"])
            .values(
                status=ReviewStatus.RESOLVED, resolution_action=ReviewAction.IGNORED, resolved_at=utcnow()
            )
        )
    return ids


async def test_list_shape_counts_and_meta(api: Any, tenant: Any, viewer: dict[str, str]) -> None:
    ids = await seed_queue(tenant)
    response = await api.get(URL, headers=viewer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"reviews", "counts", "meta"}
    assert [r["priority"] for r in body["reviews"]] == ["URGENT", "HIGH", "MEDIUM", "LOW"]  # open only
    assert body["meta"]["total"] == 4
    assert body["meta"]["page"] == 1 and body["meta"]["limit"] == 20 and body["meta"]["pages"] == 1
    counts = body["counts"]
    assert counts["PENDING"] == 4 and counts["ASSIGNED"] == 0
    assert (counts["URGENT"], counts["HIGH"], counts["MEDIUM"], counts["LOW"]) == (1, 1, 1, 1)
    assert counts["total"] == 4 and counts["slaBreached"] == 0
    item = body["reviews"][0]
    assert item["id"] == str(ids["URGENT"])
    for key in (
        "id",
        "leadJourneyId",
        "leadId",
        "company",
        "reason",
        "priority",
        "status",
        "triggerContent",
        "triggerSentimentScore",
        "aiAnalysis",
        "suggestedResponse",
        "assignedTo",
        "assignedAt",
        "slaDueAt",
        "slaBreached",
        "escalatedTo",
        "escalationLevel",
        "createdAt",
    ):
        assert key in item, key
    assert item["company"] == {"denumire": "Agro Ferma 1 SRL", "judet": "Timiș"}
    assert item["aiAnalysis"]["intent"] == "complaint"
    for review in body["reviews"]:
        assert JQ_DATE.match(review["slaDueAt"]), review["slaDueAt"]
        assert JQ_DATE.match(review["createdAt"]), review["createdAt"]

    # ALL includes the resolved one; paging
    everything = (await api.get(URL, params={"status": "ALL", "limit": 2, "page": 2}, headers=viewer)).json()
    assert everything["meta"]["total"] == 5 and everything["meta"]["pages"] == 3
    assert len(everything["reviews"]) == 2


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
async def test_the_runbook_jq_filters_work_on_the_list(api: Any, tenant: Any, viewer: dict[str, str]) -> None:
    ids = await seed_queue(tenant)

    def jq(program: str, document: Any) -> Any:
        out = subprocess.run(
            ["jq", "-c", program], input=json.dumps(document), capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout)

    risk = ".reviews | map(select(.slaBreached == true or (.slaDueAt | fromdate) < now)) | length"
    pending = (await api.get(URL, params={"status": "PENDING"}, headers=viewer)).json()
    assert jq(risk, pending) == 0
    assert jq(".counts", pending)["PENDING"] == 4
    # the URGENT review's deadline passes (the monitor has not run yet)
    async with transaction() as session:
        await session.execute(
            update(HumanReview)
            .where(HumanReview.id == ids["URGENT"])
            .values(sla_due_at=utcnow() - timedelta(minutes=5))
        )
    pending = (await api.get(URL, params={"status": "PENDING"}, headers=viewer)).json()
    assert jq(risk, pending) == 1
    breached = (await api.get(URL, params={"slaBreached": "true"}, headers=viewer)).json()
    assert jq(".meta.total", breached) == 1
    assert breached["reviews"][0]["id"] == str(ids["URGENT"])


async def test_filters(api: Any, tenant: Any, viewer: dict[str, str], operator: dict[str, str]) -> None:
    ids = await seed_queue(tenant)
    other_lead = await warm_lead(tenant, n=2, phones=0)
    other = await open_for(other_lead, await inbound(other_lead, "altceva"), priority=ReviewPriority.MEDIUM)
    ana = await add_user(tenant, "ana@ferma.ro")
    assert (
        await api.post(f"{URL}/{ids['HIGH']}/assign", json={"userId": str(ana)}, headers=operator)
    ).status_code == 200

    async def listed(**params: Any) -> list[str]:
        response = await api.get(URL, params=params, headers=viewer)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["reviews"]]

    assert await listed(status="ASSIGNED") == [str(ids["HIGH"])]
    assert await listed(status="PENDING,ASSIGNED", priority="HIGH,URGENT") == [
        str(ids["URGENT"]),
        str(ids["HIGH"]),
    ]
    assert await listed(status="RESOLVED") == [str(ids["DONE"])]
    assert sorted(await listed(priority="MEDIUM")) == sorted([str(ids["MEDIUM"]), str(other)])
    assert await listed(assignedTo=str(ana)) == [str(ids["HIGH"])]
    assert len(await listed(assignedTo="unassigned")) == 4
    assert await listed(leadId=str(other_lead)) == [str(other)]
    assert await listed(slaBreached="true") == []
    assert len(await listed(slaBreached="false")) == 5
    for bad in ({"status": "OPENED"}, {"priority": "CRITICAL"}, {"leadId": "x"}, {"limit": 1000}):
        response = await api.get(URL, params=bad, headers=viewer)
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_detail_has_the_conversation_and_the_audit_trail(
    api: Any, tenant: Any, viewer: dict[str, str]
) -> None:
    lead = await warm_lead(tenant)
    for i in range(12):
        await inbound(lead, f"mesaj vechi {i}")
    message = await inbound(lead, "Nu sunt mulțumit de ofertă.")
    review = await open_for(lead, message, priority=ReviewPriority.HIGH)
    response = await api.get(f"{URL}/{review}", headers=viewer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(review)
    assert body["lead"]["id"] == str(lead) and body["lead"]["currentState"] == "WARM_REPLY"
    assert body["company"]["denumire"] == "Agro Ferma 1 SRL"
    assert len(body["messages"]) == 10
    assert body["messages"][-1]["content"] == "Nu sunt mulțumit de ofertă."  # oldest first, newest last
    assert body["suggestedResponses"][0]["content"].startswith("Ne pare rău")
    assert [e["action"] for e in body["auditTrail"]] == ["CREATED"]
    assert (await api.get(f"{URL}/{uuid.uuid4()}", headers=viewer)).status_code == 404
    assert (await api.get(f"{URL}/not-a-uuid", headers=viewer)).status_code == 400


# ---------------------------------------------------------------------------------------------
# Resolving


async def test_approve_queues_the_draft_through_the_send_path(
    api: Any, tenant: Any, operator: dict[str, str]
) -> None:
    lead = await warm_lead(tenant)
    review = await open_for(lead, await inbound(lead, "Nu-mi place."), priority=ReviewPriority.URGENT)
    response = await api.post(
        f"{URL}/{review}/resolve", json={"action": "APPROVE", "notes": "ok"}, headers=operator
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["messageSent"] is True
    assert body["newLeadState"] == "WARM_REPLY"
    assert body["review"]["status"] == "RESOLVED"
    assert body["review"]["resolutionAction"] == "APPROVED"
    (row,) = await outbound(lead)
    assert str(row.id) == body["messageId"]
    assert row.status == MessageStatus.QUEUED
    assert row.origin == "REVIEW"
    assert row.channel == Channel.WHATSAPP
    assert row.content == "Ne pare rău, vă contactăm imediat un coleg."
    assert row.phone_id == "phone_01"
    job = await get_queue("q:wa:phone_01").getJob(f"wa-{row.id}")
    assert job is not None  # the phone's send job is waiting
    stored = await review_row(review)
    assert stored.response_message_id == row.id
    assert stored.first_human_action_at is not None
    assert stored.resolved_by == "token:ops"
    assert not (await journey_row(lead)).requires_human_review
    assert await hitl_actions(review) == ["CREATED", "RESOLVED", "MESSAGE_QUEUED"]
    assert "review.resolve" in await audit_actions()

    again = await api.post(f"{URL}/{review}/resolve", json={"action": "IGNORE"}, headers=operator)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "REVIEW_CLOSED"
    assert len(await outbound(lead)) == 1


async def test_ignore_and_reject_send_nothing(api: Any, tenant: Any, operator: dict[str, str]) -> None:
    lead = await warm_lead(tenant)
    first = await open_for(lead, await inbound(lead, "a"), priority=ReviewPriority.HIGH)
    second = await open_for(lead, await inbound(lead, "b"), priority=ReviewPriority.MEDIUM)
    response = await api.post(f"{URL}/{first}/resolve", json={"action": "IGNORE"}, headers=operator)
    assert response.status_code == 200, response.text
    assert response.json()["messageSent"] is False and response.json()["messageId"] is None
    journey = await journey_row(lead)
    assert journey.requires_human_review  # the second review is still open
    assert journey.human_review_priority == ReviewPriority.MEDIUM
    response = await api.post(f"{URL}/{second}/resolve", json={"action": "REJECT"}, headers=operator)
    assert response.json()["review"]["resolutionAction"] == "REJECTED"
    assert await outbound(lead) == []
    assert not (await journey_row(lead)).requires_human_review


async def test_edit_and_custom_need_text_and_email_conversations_answer_by_warm_email(
    api: Any, tenant: Any, operator: dict[str, str]
) -> None:
    lead = await warm_lead(tenant)
    message = await inbound(
        lead, "Trimiteți oferta pe email.", channel=Channel.EMAIL_COLD, subject="Oferta Cerniq"
    )
    review = await open_for(lead, message, suggested=None)
    missing = await api.post(f"{URL}/{review}/resolve", json={"action": "EDIT"}, headers=operator)
    assert missing.status_code == 400
    no_draft = await api.post(f"{URL}/{review}/resolve", json={"action": "APPROVE"}, headers=operator)
    assert no_draft.status_code == 400
    assert no_draft.json()["error"]["code"] == "NO_SUGGESTED_RESPONSE"
    bad = await api.post(f"{URL}/{review}/resolve", json={"action": "SEND_FLOWERS"}, headers=operator)
    assert bad.status_code == 400
    response = await api.post(
        f"{URL}/{review}/resolve",
        json={"action": "CUSTOM", "customResponse": "Vă trimit oferta azi."},
        headers=operator,
    )
    assert response.status_code == 200, response.text
    (row,) = await outbound(lead)
    assert row.channel == Channel.EMAIL_WARM
    assert row.origin == "REVIEW"
    assert row.subject == "Re: Oferta Cerniq"
    assert row.content == "Vă trimit oferta azi."
    assert (await review_row(review)).resolution_action == ReviewAction.EDITED
    job = await get_queue("q:email:warm").getJob(f"warm-{row.id}")
    assert job is not None


async def test_mark_dead_and_pause_move_the_lead(api: Any, tenant: Any, operator: dict[str, str]) -> None:
    dead_lead = await warm_lead(tenant)
    review = await open_for(dead_lead, await inbound(dead_lead, "Nu mă mai contactați."))
    response = await api.post(
        f"{URL}/{review}/resolve", json={"action": "MARK_DEAD", "notes": "nu e interesat"}, headers=operator
    )
    assert response.status_code == 200, response.text
    assert response.json()["newLeadState"] == "DEAD"
    assert (await review_row(review)).resolution_action == ReviewAction.MARKED_DEAD

    paused_lead = await warm_lead(tenant, n=2, phones=0)
    review = await open_for(paused_lead, await inbound(paused_lead, "Reveniți în martie."))
    response = await api.post(f"{URL}/{review}/resolve", json={"action": "PAUSE_LEAD"}, headers=operator)
    assert response.json()["newLeadState"] == "PAUSED"
    async with transaction() as session:
        history = (await session.execute(select(LeadStateHistory.to_state, LeadStateHistory.trigger))).all()
    assert sorted((h[0].value, h[1]) for h in history) == [("DEAD", "REVIEW"), ("PAUSED", "REVIEW")]


async def test_takeover_resolution_hands_the_lead_to_a_human(
    api: Any, tenant: Any, operator: dict[str, str]
) -> None:
    lead = await warm_lead(tenant)
    review = await open_for(lead, await inbound(lead, "Vreau să vorbesc cu un om."))
    response = await api.post(f"{URL}/{review}/resolve", json={"action": "TAKEOVER"}, headers=operator)
    assert response.status_code == 200, response.text
    journey = await journey_row(lead)
    assert journey.is_human_controlled
    assert journey.human_control_reason == f"takeover from review {review}"
    assert (await review_row(review)).resolution_action == ReviewAction.TAKEOVER
    assert "TAKEOVER_INITIATED" in await hitl_actions(review)


# ---------------------------------------------------------------------------------------------
# Assigning and escalating


async def test_assign_and_start(api: Any, tenant: Any, operator: dict[str, str]) -> None:
    lead = await warm_lead(tenant)
    review = await open_for(lead, await inbound(lead, "?"), priority=ReviewPriority.HIGH)
    ana = await add_user(tenant, "Ana@Ferma.ro")
    response = await api.post(f"{URL}/{review}/assign", json={"userId": str(ana)}, headers=operator)
    assert response.status_code == 200, response.text
    assert response.json()["review"]["status"] == "ASSIGNED"
    assert response.json()["review"]["assignedTo"] == str(ana)
    assert JQ_DATE.match(response.json()["review"]["assignedAt"])
    stored = await review_row(review)
    assert stored.first_human_action_at is not None  # a human assignment is a human action
    unknown = await api.post(f"{URL}/{review}/assign", json={"userId": str(uuid.uuid4())}, headers=operator)
    assert unknown.status_code == 400
    started = await api.post(f"{URL}/{review}/start", headers=operator)
    assert started.json()["review"]["status"] == "IN_PROGRESS"
    assert await hitl_actions(review) == ["CREATED", "ASSIGNED", "IN_PROGRESS"]
    async with transaction() as session:
        entry = (
            await session.execute(select(HitlAuditEntry).where(HitlAuditEntry.action == "ASSIGNED"))
        ).scalar_one()
    assert entry.performed_by == "token:ops"
    assert entry.ip_address == "203.0.113.7"
    assert entry.user_agent and "python-httpx" in entry.user_agent


async def test_escalate_with_the_runbook_body_in_local_operator_mode(
    local_api: Any, tenant: Any, slack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cerniq.config import get_settings

    monkeypatch.setenv("CERNIQ_LOCAL_OPERATOR_MODE", "true")
    get_settings.cache_clear()
    await add_user(tenant, "sef@ferma.ro", team_role="manager")
    lead = await warm_lead(tenant)
    review = await open_for(lead, await inbound(lead, "x"), priority=ReviewPriority.MEDIUM)
    # runbook 5.1 step 4, verbatim
    response = await local_api.post(
        f"{URL}/{review}/escalate",
        content='{"escalateTo": "manager", "reason": "SLA_BREACH_UNRESPONDED"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    item = response.json()["review"]
    assert item["status"] == "ESCALATED"
    assert item["escalatedTo"] == "manager"
    assert item["escalationLevel"] == 1
    stored = await review_row(review)
    assert stored.escalated_at is not None and stored.first_human_action_at is not None
    assert "ESCALATED" in await hitl_actions(review)
    assert any("escalated to manager" in (m["text"] or "") for m in slack_messages(slack))
    short = await local_api.post(
        f"{URL}/{review}/escalate", json={"escalateTo": "manager", "reason": "urgent"}
    )
    assert short.status_code == 400
    nobody = await local_api.post(
        f"{URL}/{review}/escalate", json={"escalateTo": "the-boss", "reason": "needs a decision now"}
    )
    assert nobody.status_code == 400
    # runbook 5.1 steps 1 and 5
    assert (await local_api.get(f"{URL}?slaBreached=true")).status_code == 200
    performance = await local_api.get("/api/v1/outreach/analytics/sla-performance")
    assert performance.status_code == 200
    assert performance.json()["byPriority"]["MEDIUM"]["total"] == 1


# ---------------------------------------------------------------------------------------------
# Roles and tenancy


async def test_viewer_cannot_change_anything(api: Any, tenant: Any, viewer: dict[str, str]) -> None:
    lead = await warm_lead(tenant)
    review = await open_for(lead, await inbound(lead, "x"))
    user = await add_user(tenant, "ana@ferma.ro")
    assert (await api.get(f"{URL}/{review}", headers=viewer)).status_code == 200
    for path, body in (
        ("assign", {"userId": str(user)}),
        ("start", None),
        ("resolve", {"action": "IGNORE"}),
        ("escalate", {"escalateTo": "manager", "reason": "needs a manager now"}),
    ):
        response = await api.post(f"{URL}/{review}/{path}", json=body, headers=viewer)
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "FORBIDDEN"
    assert (await review_row(review)).status == ReviewStatus.PENDING


async def test_another_tenant_sees_nothing(api: Any, tenant: Any, other_tenant: Any, make_token: Any) -> None:
    from cerniq.models.enums import Role

    lead = await warm_lead(tenant)
    review = await open_for(lead, await inbound(lead, "x"))
    stranger = await make_token(other_tenant, Role.ADMIN, "stranger")
    listed = (await api.get(URL, headers=stranger)).json()
    assert listed["reviews"] == [] and listed["counts"]["total"] == 0
    assert (await api.get(f"{URL}/{review}", headers=stranger)).status_code == 404
    for path, body in (("resolve", {"action": "IGNORE"}), ("start", None)):
        assert (await api.post(f"{URL}/{review}/{path}", json=body, headers=stranger)).status_code == 404
    assert (await review_row(review)).status == ReviewStatus.PENDING


async def test_sla_performance_figures(
    api: Any, tenant: Any, viewer: dict[str, str], operator: dict[str, str]
) -> None:
    lead = await warm_lead(tenant)
    fast = await open_for(lead, await inbound(lead, "a"), priority=ReviewPriority.URGENT)
    slow = await open_for(lead, await inbound(lead, "b"), priority=ReviewPriority.URGENT)
    await open_for(lead, await inbound(lead, "c"), priority=ReviewPriority.LOW)
    for review in (fast, slow):
        await api.post(f"{URL}/{review}/resolve", json={"action": "IGNORE"}, headers=operator)
    async with transaction() as session:  # the slow one was answered 90 minutes after it came in
        await session.execute(
            update(HumanReview)
            .where(HumanReview.id == slow)
            .values(
                created_at=HumanReview.resolved_at - timedelta(minutes=90),
                sla_due_at=HumanReview.resolved_at - timedelta(minutes=30),
            )
        )
    body = (await api.get("/api/v1/outreach/analytics/sla-performance?days=7", headers=viewer)).json()
    urgent = body["byPriority"]["URGENT"]
    assert urgent["total"] == 2 and urgent["resolved"] == 2 and urgent["breached"] == 1
    assert urgent["breachRate"] == 0.5
    assert urgent["withinSlaPercent"] == 50.0
    assert urgent["p90ResolutionMinutes"] > 60
    assert urgent["slaMinutes"] == 60
    assert body["byPriority"]["LOW"]["total"] == 1 and body["byPriority"]["LOW"]["resolved"] == 0
    assert body["overall"]["total"] == 3
    assert (
        await api.get("/api/v1/outreach/analytics/sla-performance?days=0", headers=viewer)
    ).status_code == 400
