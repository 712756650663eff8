"""Phone actions over HTTP, with the runbook's curl lines (local-operator mode, no body, no auth)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cerniq.config import get_settings
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.messaging.dispatch import dispatch
from cerniq.models import GoldCommunicationLog, GoldCompany, GoldLeadJourney, SystemState, WaQuotaUsage
from cerniq.models.enums import Direction, LeadState, MessageStatus, PhoneStatus, Role
from cerniq.quota import service as quota
from cerniq.worker.queues import get_queue
from tests.fixtures.outreach import add_leads, add_phones, add_sequence, count_messages, wait_for
from tests.messaging.conftest import sent_messages
from tests.phones.support import (
    add_message,
    assign,
    audit_rows,
    incidents_of,
    journeys,
    number_of,
    open_alert,
    phone_row,
    run_health_job,
    set_account,
)

PHONES = "/api/v1/outreach/phones"


@pytest.fixture(autouse=True)
def _private_data_dir(data_dir: Path) -> Path:
    return data_dir


@pytest.fixture
def runbook_api(local_api: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``curl http://localhost:64000/...`` on the box: local-operator mode, no token."""
    monkeypatch.setenv("CERNIQ_LOCAL_OPERATOR_MODE", "true")
    get_settings.cache_clear()
    return local_api


@pytest.fixture
def closed_today(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Business hours closed all day today (only another weekday is a business day)."""
    monkeypatch.setenv("CERNIQ_BUSINESS_HOURS_ALWAYS_OPEN", "false")
    weekday = BusinessClock.from_settings(get_settings()).local(utcnow()).weekday()
    monkeypatch.setenv("CERNIQ_BUSINESS_DAYS", json.dumps([(weekday + 3) % 7]))
    get_settings.cache_clear()


async def test_reconnect_rechecks_the_account_and_says_to_scan_the_qr_code(
    tenant: Any, sandbox: Any, runbook_api: Any
) -> None:
    await add_phones(tenant, 2)
    set_account(sandbox, number_of(1), "disconnected")
    await run_health_job()
    assert (await phone_row("phone_01")).status == PhoneStatus.OFFLINE

    response = await runbook_api.post(f"{PHONES}/phone_01/reconnect")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "RECONNECTING"
    assert body["connected"] is False
    assert "scan the QR code in the TimelinesAI app" in body["instructions"]
    assert await get_redis().get("phone:status:phone_01") == "RECONNECTING"
    kinds = [i.kind for i in await incidents_of("phone_01")]
    assert kinds[-2:] == ["RECONNECTING", "RECONNECT_REQUESTED"]
    (audit,) = await audit_rows("phone.reconnect")
    assert audit.actor_type == "local" and audit.after == {"status": "RECONNECTING", "connected": False}

    # while the operator re-links, the monitor leaves it RECONNECTING
    await run_health_job()
    assert (await phone_row("phone_01")).status == PhoneStatus.RECONNECTING

    set_account(sandbox, number_of(1), "connected")  # the QR code was scanned
    response = await runbook_api.post(f"{PHONES}/phone_01/reconnect")

    assert response.status_code == 200
    assert response.json() == {
        "id": "phone_01",
        "status": "ACTIVE",
        "previousStatus": "RECONNECTING",
        "connected": True,
        "instructions": None,
    }
    assert await open_alert("phone:offline", "phone_01") is None
    assert (await runbook_api.get(f"{PHONES}/phone_01")).json()["status"] == "ACTIVE"


async def test_resume_needs_a_connected_account_and_releases_waiting_messages(
    tenant: Any, sandbox: Any, runbook_api: Any, make_token: Any, api: Any
) -> None:
    await add_phones(tenant, 2)
    operator = await make_token(tenant, Role.OPERATOR)
    response = await api.post(
        f"{PHONES}/phone_01/pause", json={"reason": "prea multe mesaje"}, headers=operator
    )
    assert response.status_code == 200 and response.json()["status"] == "PAUSED"
    assert await get_redis().get("phone:status:phone_01") == "PAUSED"
    # a message waiting in the phone's queue (the send job delays itself while the phone is paused)
    queue = get_queue("q:wa:phone_01")
    await queue.add("send", {"messageId": str(uuid.uuid4())}, {"jobId": "wa-waiting", "delay": 3_600_000})
    assert await queue.getJobState("wa-waiting") == "delayed"

    set_account(sandbox, number_of(1), "disconnected")
    response = await runbook_api.post(f"{PHONES}/phone_01/resume")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "PHONE_DISCONNECTED"
    assert "QR code" in response.json()["error"]["message"]
    assert (await phone_row("phone_01")).status == PhoneStatus.PAUSED

    set_account(sandbox, number_of(1), "connected")
    response = await runbook_api.post(f"{PHONES}/phone_01/resume")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ACTIVE" and response.json()["previousStatus"] == "PAUSED"
    assert await get_redis().get("phone:status:phone_01") == "ACTIVE"
    assert await queue.getJobState("wa-waiting") == "waiting"  # goes now
    (audit,) = await audit_rows("phone.resume")
    assert audit.before == {"status": "PAUSED"}

    # runbook 2.2: a banned phone is never resumed nor reconnected
    response = await runbook_api.post(f"{PHONES}/phone_02/ban", json={"reason": "blocked by WhatsApp"})
    assert response.status_code == 200 and response.json()["status"] == "BANNED"
    for action in ("resume", "reconnect"):
        response = await runbook_api.post(f"{PHONES}/phone_02/{action}")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "PHONE_BANNED"
    assert (await phone_row("phone_02")).status == PhoneStatus.BANNED


async def test_reassign_leads_frees_cold_and_contacted_leads_for_the_next_dispatch(
    tenant: Any, sandbox: Any, runbook_api: Any
) -> None:
    await add_phones(tenant, 2)
    await add_sequence(tenant)
    cold, contacted, human, warm, queued = await add_leads(tenant, 5)
    later = utcnow() + timedelta(days=2)
    await assign(cold, "phone_01", next_action_at=later)
    await assign(
        contacted, "phone_01", current_state=LeadState.CONTACTED_WA, wa_chat_id="1001", next_action_at=later
    )
    await assign(
        human, "phone_01", current_state=LeadState.CONTACTED_WA, is_human_controlled=True, next_action_at=None
    )
    await assign(warm, "phone_01", current_state=LeadState.WARM_REPLY, wa_chat_id="1003")
    await assign(queued, "phone_01", next_action_at=None)
    waiting = await add_message(tenant, queued, "phone_01", status=MessageStatus.QUEUED, origin="AUTOMATION")
    set_account(sandbox, number_of(1), "disconnected")
    await run_health_job()

    response = await runbook_api.post(f"{PHONES}/phone_01/reassign-leads")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reassigned"] == 4
    assert body["messagesSkipped"] == 1
    rows = await journeys([cold, contacted, human, warm, queued])
    for lead in (cold, contacted, human, queued):
        assert rows[lead].assigned_phone_id is None and rows[lead].wa_chat_id is None
    assert rows[warm].assigned_phone_id == "phone_01" and rows[warm].wa_chat_id == "1003"
    now = utcnow()
    assert rows[cold].next_action_at is not None and rows[cold].next_action_at <= now
    assert rows[queued].next_action_at is not None and rows[queued].next_action_at <= now
    assert rows[contacted].next_action_at == later  # its follow-up keeps its time
    assert rows[human].next_action_at is None  # a human has it
    async with transaction() as session:
        message = await session.get(GoldCommunicationLog, waiting)
        assert message is not None
        assert message.status == MessageStatus.SKIPPED and message.error_code == "PHONE_REASSIGNED"
    assert [i.kind for i in await incidents_of("phone_01")][-1] == "LEADS_REASSIGNED"

    report = await dispatch()

    assert report.whatsapp == 2
    rows = await journeys([cold, queued])
    assert {rows[cold].assigned_phone_id, rows[queued].assigned_phone_id} == {"phone_02"}
    assert await count_messages(phone_id="phone_02", status=MessageStatus.QUEUED) == 2


async def test_pause_all_and_resume_all_as_in_the_emergency_scripts(
    tenant: Any, sandbox: Any, runbook_api: Any
) -> None:
    await add_phones(tenant, 3)
    set_account(sandbox, number_of(3), "disconnected")
    await run_health_job()

    response = await runbook_api.post("/api/admin/phones/pause-all")

    assert response.status_code == 200, response.text
    assert response.json()["paused"] == ["phone_01", "phone_02"]
    for n, status in ((1, "PAUSED"), (2, "PAUSED"), (3, "OFFLINE")):
        assert (await phone_row(f"phone_0{n}")).status == PhoneStatus(status)
        assert await get_redis().get(f"phone:status:phone_0{n}") == status
    assert len(await audit_rows("phones.pause_all")) == 1

    # runbook 7.2 step 5: resume phones one by one
    listed = (await runbook_api.get(PHONES)).json()["phones"]
    codes = {p["id"]: (await runbook_api.post(f"{PHONES}/{p['id']}/resume")).status_code for p in listed}
    assert codes == {"phone_01": 200, "phone_02": 200, "phone_03": 409}

    await runbook_api.post("/api/admin/phones/pause-all", json={"reason": "drill"})
    response = await runbook_api.post("/api/admin/phones/resume-all")
    assert response.status_code == 200
    assert response.json()["resumed"] == ["phone_01", "phone_02"]
    assert (await phone_row("phone_03")).status == PhoneStatus.OFFLINE


async def test_health_check_endpoint_returns_the_report(tenant: Any, sandbox: Any, runbook_api: Any) -> None:
    await add_phones(tenant, 2)
    set_account(sandbox, number_of(2), "disconnected")

    response = await runbook_api.post("/api/admin/phones/health-check")

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["timelinesai"]["ok"] is True
    assert report["summary"]["active"] == 1 and report["summary"]["enabled"] == 2
    assert [(p["id"], p["status"], p["action"]) for p in report["phones"]] == [
        ("phone_01", "ACTIVE", None),
        ("phone_02", "OFFLINE", "offline"),
    ]
    assert len(await audit_rows("phones.health_check")) == 1


async def test_test_send_reaches_the_number_outside_business_hours(
    tenant: Any, closed_today: None, worker: Any, sandbox: Any, runbook_api: Any
) -> None:
    await add_phones(tenant, 2)

    response = await runbook_api.post(
        "/api/v1/outreach/test/send", json={"phoneId": "phone_02", "testNumber": "+40722999001"}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "QUEUED" and uuid.UUID(body["messageId"])

    async def sent(n: int) -> bool:
        return await count_messages(status=MessageStatus.SENT, origin="TEST") == n

    await wait_for(lambda: sent(1))
    (message,) = sent_messages(sandbox, phone="+40722999001")
    assert message["account_phone"] == number_of(2)

    response = await runbook_api.post(
        "/api/v1/outreach/test/send",
        json={"phoneId": "phone_02", "testNumber": "0722 999 001", "text": "Al doilea test"},
    )
    assert response.status_code == 200
    await wait_for(lambda: sent(2))
    assert [m["text"] for m in sent_messages(sandbox, phone="+40722999001")][-1] == "Al doilea test"
    async with transaction() as session:
        companies = (
            (await session.execute(select(GoldCompany).where(GoldCompany.cui == "TEST-40722999001")))
            .scalars()
            .all()
        )
        assert len(companies) == 1 and companies[0].is_agricultural is False
        journey = (
            await session.execute(select(GoldLeadJourney).where(GoldLeadJourney.lead_id == companies[0].id))
        ).scalar_one()
    assert journey.tags == ["test"] and journey.next_action_at is None and journey.is_human_controlled
    assert (await dispatch()).claimed == 0  # the test recipient is never contacted on its own
    assert len(await audit_rows("phone.test_send")) == 2


async def test_test_send_respects_the_emergency_stop_and_phone_state(
    tenant: Any, sandbox: Any, runbook_api: Any
) -> None:
    await add_phones(tenant, 2)
    await runbook_api.post(f"{PHONES}/phone_01/pause", json={"reason": "x"})
    response = await runbook_api.post(
        "/api/v1/outreach/test/send", json={"phoneId": "phone_01", "testNumber": "+40722999001"}
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "PHONE_NOT_ACTIVE"

    async with transaction() as session:
        session.add(SystemState(key="emergency_stop", value={"active": True, "reason": "drill"}))
    response = await runbook_api.post(
        "/api/v1/outreach/test/send", json={"phoneId": "phone_02", "testNumber": "+40722999001"}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "EMERGENCY_STOP_ACTIVE"
    assert await count_messages() == 0


async def test_roles_and_tenants(
    tenant: Any, other_tenant: Any, make_token: Any, api: Any, sandbox: Any
) -> None:
    await add_phones(tenant, 1)
    viewer = await make_token(tenant, Role.VIEWER)
    operator = await make_token(tenant, Role.OPERATOR)
    stranger = await make_token(other_tenant, Role.ADMIN)
    for action in ("reconnect", "resume", "pause", "reassign-leads", "ban"):
        response = await api.post(f"{PHONES}/phone_01/{action}", json={"reason": "because"}, headers=viewer)
        assert response.status_code == 403, action
        assert response.json()["error"]["code"] == "FORBIDDEN"
    for path in (
        "/api/admin/phones/health-check",
        "/api/admin/phones/pause-all",
        "/api/admin/phones/resume-all",
    ):
        assert (await api.post(path, headers=operator)).status_code == 403
    assert (
        await api.post(f"{PHONES}/phone_01/ban", json={"reason": "because"}, headers=operator)
    ).status_code == 403
    response = await api.post(
        "/api/v1/outreach/test/send",
        json={"phoneId": "phone_01", "testNumber": "+40722999001"},
        headers=operator,
    )
    assert response.status_code == 403
    assert (await api.get(f"{PHONES}/phone_01/incidents", headers=viewer)).status_code == 200
    assert (
        await api.get("/api/v1/outreach/analytics/phones/phone_01/history", headers=viewer)
    ).status_code == 200
    assert (await api.post(f"{PHONES}/phone_01/reconnect")).status_code == 401

    # another tenant's phone does not exist for this caller
    for action in ("reconnect", "resume", "pause", "reassign-leads", "ban"):
        response = await api.post(f"{PHONES}/phone_01/{action}", json={"reason": "because"}, headers=stranger)
        assert response.status_code == 404, action
    assert (await api.get(f"{PHONES}/phone_01/incidents", headers=stranger)).status_code == 404
    assert (
        await api.get("/api/v1/outreach/analytics/phones/phone_01/history", headers=stranger)
    ).status_code == 404
    response = await api.post(
        "/api/v1/outreach/test/send",
        json={"phoneId": "phone_01", "testNumber": "+40722999001"},
        headers=stranger,
    )
    assert response.status_code == 404
    assert (await api.post("/api/admin/phones/pause-all", headers=stranger)).json()["paused"] == []
    assert (await api.post("/api/admin/phones/health-check", headers=stranger)).json()["phones"] == []
    assert (await phone_row("phone_01")).status == PhoneStatus.ACTIVE


async def test_bad_input_is_a_clear_4xx(tenant: Any, sandbox: Any, runbook_api: Any) -> None:
    await add_phones(tenant, 1)
    cases = [
        ("post", f"{PHONES}/phone_01/ban", None, 400),
        ("post", f"{PHONES}/phone_01/ban", {"reason": ""}, 400),
        ("post", f"{PHONES}/phone_01/pause", {"reason": 5}, 400),
        ("post", f"{PHONES}/phone_01/pause", {"why": "x"}, 400),
        ("post", "/api/v1/outreach/test/send", {"phoneId": "phone_01", "testNumber": "not a number"}, 400),
        ("post", "/api/v1/outreach/test/send", {"phoneId": "phone_01"}, 400),
        ("post", "/api/v1/outreach/test/send", {"phoneId": "phone_09", "testNumber": "+40722999001"}, 404),
        ("post", f"{PHONES}/phone_09/reconnect", None, 404),
        ("get", "/api/v1/outreach/analytics/phones/phone_01/history?days=0", None, 400),
        ("get", "/api/v1/outreach/analytics/phones/phone_01/history?days=91", None, 400),
        ("get", "/api/v1/outreach/analytics/phones/phone_01/history?days=week", None, 400),
    ]
    for method, path, body, status in cases:
        kwargs = {"json": body} if body is not None else {}
        response = await getattr(runbook_api, method)(path, **kwargs)
        assert response.status_code == status, (path, body, response.text)
        assert response.json()["error"]["code"] and response.json()["error"]["message"]
    assert (await phone_row("phone_01")).status == PhoneStatus.ACTIVE


async def test_ban_writes_the_incident_log_the_runbook_greps(
    tenant: Any, sandbox: Any, runbook_api: Any, data_dir: Path
) -> None:
    await add_phones(tenant, 2)
    response = await runbook_api.post(f"{PHONES}/phone_01/ban", json={"reason": "403 blocked by WhatsApp"})
    assert response.status_code == 200
    assert await open_alert("phone:banned", "phone_01") is not None

    response = await runbook_api.get(f"{PHONES}/phone_01/incidents")

    assert response.status_code == 200
    assert response.json()["incidents"][0]["kind"] == "BANNED"
    assert response.json()["incidents"][0]["reason"] == "403 blocked by WhatsApp"
    log = (data_dir / "logs" / "phone-incidents.log").read_text()
    assert "Phone phone_01 banned. Reason: 403 blocked by WhatsApp" in log


async def test_phone_history_has_one_entry_per_day(tenant: Any, sandbox: Any, runbook_api: Any) -> None:
    await add_phones(tenant, 2)
    first, second, third = await add_leads(tenant, 3)
    today = quota.today()
    yesterday = today - timedelta(days=1)
    await add_message(tenant, first, "phone_01", cost=1, day=today, status=MessageStatus.READ)
    await add_message(tenant, second, "phone_01", cost=1, day=today, status=MessageStatus.DELIVERED)
    await add_message(tenant, first, "phone_01", cost=0, day=today, status=MessageStatus.SENT)
    await add_message(tenant, third, "phone_01", status=MessageStatus.FAILED)
    await add_message(tenant, first, "phone_01", direction=Direction.INBOUND, status=MessageStatus.RECEIVED)
    await add_message(
        tenant,
        second,
        "phone_01",
        cost=1,
        day=yesterday,
        status=MessageStatus.SENT,
        sent_at=utcnow() - timedelta(days=1),
    )
    await add_message(tenant, third, "phone_02", cost=1, day=today, status=MessageStatus.SENT)
    async with transaction() as session:
        session.add(
            WaQuotaUsage(
                tenant_id=tenant.id, phone_id="phone_01", usage_date=yesterday, quota_limit=150, total_sent=1
            )
        )

    response = await runbook_api.get("/api/v1/outreach/analytics/phones/phone_01/history?days=7")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["phoneId"] == "phone_01"
    stats = body["dailyStats"]
    assert [s["date"] for s in stats] == [(today - timedelta(days=6 - i)).isoformat() for i in range(7)]
    keys = {
        "date",
        "newContacts",
        "followUps",
        "totalSent",
        "delivered",
        "read",
        "replies",
        "failed",
        "quotaLimit",
    }
    assert all(keys <= set(s) for s in stats)
    assert {k: stats[-1][k] for k in keys - {"date"}} == {
        "newContacts": 2,
        "followUps": 1,
        "totalSent": 3,
        "delivered": 2,
        "read": 1,
        "replies": 1,
        "failed": 1,
        "quotaLimit": 200,
    }
    assert (stats[-2]["newContacts"], stats[-2]["totalSent"], stats[-2]["quotaLimit"]) == (1, 1, 150)
    assert all(s["totalSent"] == 0 and s["quotaLimit"] == 200 for s in stats[:-2])

    long = (await runbook_api.get("/api/v1/outreach/analytics/phones/phone_01/history?days=90")).json()
    assert len(long["dailyStats"]) == 90
    default = (await runbook_api.get("/api/v1/outreach/analytics/phones/phone_01/history")).json()
    assert len(default["dailyStats"]) == 7
    async with transaction() as session:
        assert (await session.execute(select(func.count()).select_from(WaQuotaUsage))).scalar_one() == 1
