"""Alerts (runbook 9): dedup, notifications (Slack at the sandbox, email through the log
backend), escalation, silences, the monitor's conditions and auto-resolution, the API, deploy/."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select, update

from cerniq.auth import service as auth
from cerniq.config import get_settings
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.models import Alert, AuditEntry
from cerniq.models.enums import AlertSeverity, AlertStatus, Role
from cerniq.ops import alerts, monitor
from cerniq.worker import dlq
from cerniq.worker.enqueue import enqueue
from cerniq.worker.names import MAINTENANCE_STATS
from cerniq.worker.queues import get_queue
from tests.messaging.conftest import sandbox, sandbox_server  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def slack(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811
    """Alerts post to the sandbox's Slack incoming webhook; email uses the log backend."""
    monkeypatch.setenv("CERNIQ_SLACK_WEBHOOK_URL", sandbox.url("slack") + "/services/T000/B000/alerts")
    monkeypatch.setenv("CERNIQ_ALERT_EMAIL_BACKEND", "log")
    get_settings.cache_clear()
    return sandbox


def slack_texts(sandbox: Any) -> list[str]:  # noqa: F811
    return [m["text"] for m in sandbox.control("GET", "/_control/slack/messages")]


async def add_user(tenant: Any, email: str, team_role: str) -> None:
    async with transaction() as session:
        await auth.create_user(
            session,
            tenant_id=tenant.id,
            email=email,
            display_name=None,
            role=Role.OPERATOR,
            password=None,
            team_role=team_role,
        )


async def trigger(alert_type: str, **kwargs: Any) -> uuid.UUID:
    async with transaction() as session:
        alert = await alerts.trigger(session, alert_type, **kwargs)
        return alert.id


async def load(alert_id: uuid.UUID) -> Alert:
    async with transaction() as session:
        alert = await session.get(Alert, alert_id)
        assert alert is not None
        return alert


async def age(alert_id: uuid.UUID, by: timedelta) -> None:
    async with transaction() as session:
        await session.execute(update(Alert).where(Alert.id == alert_id).values(first_seen_at=utcnow() - by))


def emails(alert: Alert) -> list[dict[str, Any]]:
    return [n for n in alert.details.get("notifications", []) if n["channel"] == "email"]


async def test_a_second_identical_alert_does_not_notify_twice(tenant: Any, slack: Any) -> None:
    await add_user(tenant, "oncall@ferma.ro", "on_call")
    first = await trigger(
        "phone:offline", subject="phone_01", tenant_id=tenant.id, message="Cerniq Sales 1 is disconnected"
    )
    second = await trigger(
        "phone:offline", subject="phone_01", tenant_id=tenant.id, message="Cerniq Sales 1 is disconnected"
    )
    assert first == second
    texts = slack_texts(slack)
    assert len(texts) == 1
    assert "[HIGH] Phone offline: phone_01" in texts[0]
    assert "within 15 min" in texts[0] and "runbook 2.1" in texts[0]

    alert = await load(first)
    assert alert.occurrences == 2
    assert alert.status == AlertStatus.OPEN
    sent = emails(alert)
    assert len(sent) == 1
    assert sent[0]["backend"] == "log" and sent[0]["to"] == ["oncall@ferma.ro"]
    assert sent[0]["levelName"] == "L1 on-call"
    assert alert.last_notified_at is not None

    # the condition clears, then comes back: that is a new alert, announced again
    async with transaction() as session:
        assert (
            await alerts.resolve_condition(session, "phone:offline", subject="phone_01", tenant_id=tenant.id)
            == 1
        )
    third = await trigger("phone:offline", subject="phone_01", tenant_id=tenant.id)
    assert third != first
    assert len(slack_texts(slack)) == 2

    # a MEDIUM alert goes to Slack only, never to the on-call's inbox
    medium = await trigger("sla:breach", subject="review-1", tenant_id=tenant.id)
    assert len(slack_texts(slack)) == 3
    assert emails(await load(medium)) == []


async def test_unacknowledged_high_alert_escalates_to_team_lead_then_manager(tenant: Any, slack: Any) -> None:
    await add_user(tenant, "oncall@ferma.ro", "on_call")
    await add_user(tenant, "lead@ferma.ro", "team_lead")
    await add_user(tenant, "boss@ferma.ro", "manager")
    alert_id = await trigger("phone:offline", subject="phone_02", tenant_id=tenant.id)
    acked_id = await trigger("phone:banned", subject="phone_03", tenant_id=tenant.id)
    async with transaction() as session:
        await alerts.acknowledge(session, _principal(tenant), acked_id)

    assert await monitor.escalate() == []
    assert (await load(alert_id)).escalation_level == 1

    await age(alert_id, timedelta(minutes=31))
    await age(acked_id, timedelta(hours=3))
    escalated = await monitor.escalate()
    assert [(e["alertId"], e["level"]) for e in escalated] == [(str(alert_id), 2)]
    alert = await load(alert_id)
    assert alert.escalation_level == 2
    assert alert.escalated_at is not None
    lead_mail = emails(alert)[-1]
    assert lead_mail["to"] == ["lead@ferma.ro"] and lead_mail["level"] == 2
    assert "Escalated to L2 team lead" in lead_mail["subject"]
    assert any("Escalated to L2 team lead" in t for t in slack_texts(slack))
    assert await monitor.escalate() == []  # once per level

    await age(alert_id, timedelta(hours=2, minutes=1))
    escalated = await monitor.escalate()
    assert [e["level"] for e in escalated] == [3]
    alert = await load(alert_id)
    assert alert.escalation_level == 3
    assert emails(alert)[-1]["to"] == ["boss@ferma.ro"]

    acked = await load(acked_id)
    assert acked.status == AlertStatus.ACKNOWLEDGED
    assert acked.escalation_level == 1
    assert len(emails(acked)) == 1  # only the L1 page when it opened


async def test_silence_holds_notifications_and_escalation_until_it_ends(
    api: Any, tenant: Any, make_token: Any, slack: Any
) -> None:
    operator = await make_token(tenant, Role.OPERATOR, "operator")
    alert_id = await trigger("dlq:overflow", message="150 entries")
    assert len(slack_texts(slack)) == 1

    bad = await api.post(
        f"/api/v1/outreach/alerts/{alert_id}/silence",
        json={"until": "2020-01-01T00:00:00Z", "reason": "known issue"},
        headers=operator,
    )
    assert bad.status_code == 400
    neither = await api.post(
        f"/api/v1/outreach/alerts/{alert_id}/silence", json={"reason": "known issue"}, headers=operator
    )
    assert neither.status_code == 400

    silenced = await api.post(
        f"/api/v1/outreach/alerts/{alert_id}/silence",
        json={"minutes": 60, "reason": "vendor incident, fix in progress"},
        headers=operator,
    )
    assert silenced.status_code == 200, silenced.text
    assert silenced.json()["status"] == "SILENCED"
    assert silenced.json()["silencedUntil"] is not None

    await trigger("dlq:overflow", message="160 entries")  # still the same alert, silently
    await age(alert_id, timedelta(hours=1))
    assert await monitor.escalate() == []
    assert len(slack_texts(slack)) == 1
    alert = await load(alert_id)
    assert alert.occurrences == 2 and alert.status == AlertStatus.SILENCED

    assert await monitor.expire_silences() == []
    async with transaction() as session:
        await session.execute(
            update(Alert).where(Alert.id == alert_id).values(silenced_until=utcnow() - timedelta(seconds=1))
        )
    assert await monitor.expire_silences() == [alert_id]
    alert = await load(alert_id)
    assert alert.status == AlertStatus.OPEN
    assert alert.silenced_until is None
    texts = slack_texts(slack)
    assert len(texts) == 2 and "Still open after its silence" in texts[1]
    # the escalation clock restarted when the silence ended
    assert await monitor.escalate() == []


async def test_monitor_raises_and_auto_resolves_queue_and_dlq_conditions(
    tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERNIQ_ALERT_BACKLOG_THRESHOLD", "2")
    get_settings.cache_clear()
    for n in range(101):
        await dlq.push(queue=MAINTENANCE_STATS, job_id=f"d-{n}", name="x", reason="boom", attempts=3, data={})
    for n in range(3):
        await enqueue(MAINTENANCE_STATS, "stats", {"n": n}, job_id=f"stats-{n}")

    summary = await monitor.evaluate()
    assert "dlq:overflow" in summary["triggered"]
    # just started waiting: neither a backlog nor a stall yet
    assert not any(t.startswith("queue:") for t in summary["triggered"])

    now = time.time()
    redis = get_redis()
    await redis.hset(monitor.BACKLOG_SINCE, MAINTENANCE_STATS, f"{now - 11 * 60:.3f}")
    await redis.hset(monitor.WAITING_SINCE, MAINTENANCE_STATS, f"{now - 6 * 60:.3f}")
    summary = await monitor.evaluate()
    assert f"queue:backlog:{MAINTENANCE_STATS}" in summary["triggered"]
    assert f"queue:stalled:{MAINTENANCE_STATS}" in summary["triggered"]

    async with transaction() as session:
        rows = list((await session.execute(select(Alert).order_by(Alert.alert_type))).scalars())
    by_type = {a.alert_type: a for a in rows}
    assert set(by_type) == {"dlq:overflow", "queue:backlog", "queue:stalled"}
    assert by_type["dlq:overflow"].severity == AlertSeverity.HIGH
    assert by_type["dlq:overflow"].occurrences == 2  # one alert, seen twice
    assert by_type["queue:stalled"].subject == MAINTENANCE_STATS
    assert by_type["queue:backlog"].severity == AlertSeverity.MEDIUM

    await dlq.trim(50)
    await get_queue(MAINTENANCE_STATS).drain()
    summary = await monitor.evaluate()
    assert summary["triggered"] == []
    async with transaction() as session:
        statuses = {
            a.alert_type: (a.status, a.resolved_by) for a in (await session.execute(select(Alert))).scalars()
        }
    assert statuses == {
        "dlq:overflow": (AlertStatus.RESOLVED, "auto"),
        "queue:backlog": (AlertStatus.RESOLVED, "auto"),
        "queue:stalled": (AlertStatus.RESOLVED, "auto"),
    }


async def test_pipeline_degraded_when_fewer_than_half_the_phones_are_active(
    api: Any, admin_headers: Any
) -> None:
    for n in (1, 2, 3):
        created = await api.post(
            "/api/v1/outreach/phones",
            json={"phoneNumber": f"+4070000000{n}", "label": f"S{n}"},
            headers=admin_headers,
        )
        assert created.status_code == 201
    for phone in ("phone_01", "phone_02"):
        await api.patch(f"/api/v1/outreach/phones/{phone}", json={"status": "PAUSED"}, headers=admin_headers)
    await monitor.evaluate()
    redis = get_redis()
    fields = await redis.hgetall(monitor.DEGRADED_SINCE)
    assert len(fields) == 1
    (field,) = fields
    await redis.hset(monitor.DEGRADED_SINCE, field, f"{time.time() - 6 * 60:.3f}")
    summary = await monitor.evaluate()
    assert f"pipeline:degraded:{field}" in summary["triggered"]
    listed = (await api.get("/api/v1/outreach/alerts?type=pipeline:degraded", headers=admin_headers)).json()
    assert listed["alerts"][0]["message"] == "only 1 of 3 phones are ACTIVE"

    await api.patch("/api/v1/outreach/phones/phone_01", json={"status": "ACTIVE"}, headers=admin_headers)
    await monitor.evaluate()
    listed = (await api.get("/api/v1/outreach/alerts?type=pipeline:degraded", headers=admin_headers)).json()
    assert listed["alerts"] == []


async def test_alerts_api_lists_acknowledges_and_resolves_within_the_tenant(
    api: Any, tenant: Any, other_tenant: Any, make_token: Any
) -> None:
    viewer = await make_token(tenant, Role.VIEWER, "viewer")
    operator = await make_token(tenant, Role.OPERATOR, "operator")
    own = await trigger("phone:banned", subject="phone_01", tenant_id=tenant.id, message="banned")
    install_wide = await trigger("queue:stalled", subject="q:email:cold", message="stalled")
    foreign = await trigger("phone:offline", subject="phone_09", tenant_id=other_tenant.id)

    listed = (await api.get("/api/v1/outreach/alerts", headers=viewer)).json()
    assert [a["id"] for a in listed["alerts"]] == [str(own), str(install_wide)]  # CRITICAL first
    assert listed["alerts"][0]["severity"] == "CRITICAL"
    assert listed["alerts"][0]["responseMinutes"] == 0
    assert listed["counts"]["open"] == 2
    assert listed["counts"]["bySeverity"]["CRITICAL"] == 1

    assert (await api.post(f"/api/v1/outreach/alerts/{own}/acknowledge", headers=viewer)).status_code == 403
    assert (
        await api.post(f"/api/v1/outreach/alerts/{foreign}/acknowledge", headers=operator)
    ).status_code == 404
    acked = await api.post(
        f"/api/v1/outreach/alerts/{own}/acknowledge", json={"note": "replacing the phone"}, headers=operator
    )
    assert acked.status_code == 200
    assert acked.json()["status"] == "ACKNOWLEDGED"
    assert acked.json()["acknowledgedBy"] == "token:operator"
    assert (await api.get("/api/v1/outreach/alerts?status=ACKNOWLEDGED", headers=viewer)).json()["meta"][
        "total"
    ] == 1

    resolved = await api.post(f"/api/v1/outreach/alerts/{own}/resolve", headers=operator)
    assert resolved.json()["status"] == "RESOLVED"
    assert (await api.post(f"/api/v1/outreach/alerts/{own}/acknowledge", headers=operator)).status_code == 409
    open_now = (await api.get("/api/v1/outreach/alerts", headers=viewer)).json()
    assert [a["id"] for a in open_now["alerts"]] == [str(install_wide)]
    history = (await api.get("/api/v1/outreach/alerts/history?days=1", headers=viewer)).json()
    assert {a["id"] for a in history["alerts"]} == {str(own), str(install_wide)}
    assert (await api.get("/api/v1/outreach/alerts?status=nope", headers=viewer)).status_code == 400
    matrix = (await api.get("/api/v1/outreach/alerts/matrix", headers=viewer)).json()
    assert {"type": "dlq:overflow", "severity": "HIGH", "responseMinutes": 15}.items() <= next(
        m for m in matrix["alerts"] if m["type"] == "dlq:overflow"
    ).items()

    async with transaction() as session:
        actions = (
            (await session.execute(select(AuditEntry.action).order_by(AuditEntry.created_at))).scalars().all()
        )
    assert actions == ["alert.acknowledge", "alert.resolve"]


def _principal(tenant: Any) -> Any:
    from cerniq.auth.principal import Principal

    return Principal(
        tenant_id=tenant.id, role=Role.OPERATOR, actor_type="user", actor_id="u", actor_label="ana"
    )


def _metric_names(exposition: str) -> set[str]:
    return set(re.findall(r"^# TYPE (\S+) ", exposition, flags=re.M))


def _referenced(expr: str) -> set[str]:
    return set(re.findall(r"\b(cerniq_[a-z_]+)", expr))


def _base(name: str) -> str:
    return re.sub(r"_(bucket|count|sum|created|total)$", "", name)


async def test_prometheus_rules_and_grafana_dashboard_use_metrics_we_export(
    api: Any, admin_headers: dict[str, str]
) -> None:
    await api.post(
        "/api/v1/outreach/phones", json={"phoneNumber": "+40700000001", "label": "S1"}, headers=admin_headers
    )
    await trigger("dlq:overflow", message="150")
    exposition = (await api.get("/metrics")).text
    assert 'cerniq_phone_status{phone_id="phone_01",status="ACTIVE"} 1.0' in exposition
    assert 'cerniq_queue_depth{queue="q:wa:phone_01",state="waiting"} 0.0' in exposition
    assert 'cerniq_alerts_open{alert_type="dlq:overflow",severity="HIGH"} 1.0' in exposition
    assert 'cerniq_wa_quota_limit{phone_id="phone_01"} 200.0' in exposition
    exported = {_base(n) for n in _metric_names(exposition)}

    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    names_in_rules: set[str] = set()
    alert_labels: set[str] = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"low", "medium", "high", "critical"}
            assert rule["annotations"]["summary"]
            names_in_rules |= _referenced(rule["expr"])
            alert_labels.add(rule["labels"].get("alert_type", ""))
    assert names_in_rules, "the rules reference our metrics"
    assert {_base(n) for n in names_in_rules} <= exported
    for kind in alerts.MATRIX:
        assert kind in alert_labels, f"no Prometheus rule for {kind}"

    dashboard = json.loads((ROOT / "deploy/grafana/cerniq-outreach.json").read_text())
    titles = {p["title"] for p in dashboard["panels"]}
    assert {"Sent today", "Replies today", "Reply rate", "Pending reviews", "Quota per phone"} <= titles
    assert {"Messages by channel", "Queue depth", "Open alerts"} <= titles
    exprs = {t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])}
    assert {_base(n) for e in exprs for n in _referenced(e)} <= exported
