"""Emergency stop and resume (runbook 7) with a real worker, the sandbox and the CLI/scripts."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cerniq.config import get_settings
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.messaging.dispatch import dispatch
from cerniq.models import Alert, AuditEntry, GoldCommunicationLog, OutreachSequence, WaPhoneNumber
from cerniq.models.enums import AlertStatus, MessageStatus, PhoneStatus, Role
from cerniq.ops import queue_admin
from cerniq.ops.system_state import EMERGENCY_STOP_KEY
from cerniq.worker.names import DISPATCH
from cerniq.worker.queues import get_queue
from tests.fixtures.outreach import add_leads, add_phones, add_sequence, count_messages, wait_for
from tests.messaging.conftest import sandbox, sandbox_server, sent_messages  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("cerniq"))
STOP_NOTICE = "🚨 EMERGENCY STOP: Outreach system halted. Reason: legal hold on all outreach"


@pytest.fixture
def slack(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811
    monkeypatch.setenv("CERNIQ_SLACK_WEBHOOK_URL", sandbox.url("slack") + "/services/T000/B000/ops")
    monkeypatch.setenv("CERNIQ_ALERT_EMAIL_BACKEND", "log")
    get_settings.cache_clear()
    return sandbox


def slack_texts(sandbox: Any) -> list[str]:  # noqa: F811
    return [m["text"] for m in sandbox.control("GET", "/_control/slack/messages")]


async def _rows() -> list[GoldCommunicationLog]:
    async with transaction() as session:
        return list((await session.execute(select(GoldCommunicationLog))).scalars())


async def _phones() -> dict[str, WaPhoneNumber]:
    async with transaction() as session:
        return {p.id: p for p in (await session.execute(select(WaPhoneNumber))).scalars()}


async def test_after_an_emergency_stop_nothing_waiting_reaches_the_vendor_and_resume_restores_phones(
    api: Any, admin_headers: dict[str, str], tenant: Any, slack: Any
) -> None:
    await add_phones(tenant, 2)
    sequence_id = await add_sequence(tenant)
    await add_leads(tenant, 4)
    report = await dispatch()
    assert report.whatsapp == 4
    rows = await _rows()
    by_phone = {p: [r.id for r in rows if r.phone_id == p] for p in ("phone_01", "phone_02")}
    assert all(by_phone.values())  # both phones have messages waiting on their queues
    counts = await queue_admin.counts_many(["q:wa:phone_01"])
    assert counts["q:wa:phone_01"]["waiting"] == len(by_phone["phone_01"])

    stopped = await api.post(
        "/api/admin/emergency/stop", json={"reason": "legal hold on all outreach"}, headers=admin_headers
    )
    assert stopped.status_code == 200, stopped.text
    body = stopped.json()
    assert body["active"] is True
    assert body["newlyPausedPhones"] == ["phone_01", "phone_02"]
    assert [s["id"] for s in body["sequencesDeactivated"]] == [str(sequence_id)]

    state = (await api.get("/api/admin/emergency", headers=admin_headers)).json()
    assert state["active"] is True and state["reason"] == "legal hold on all outreach"
    phones = (await api.get("/api/v1/outreach/phones", headers=admin_headers)).json()["phones"]
    assert {(p["id"], p["status"], p["statusReason"]) for p in phones} == {
        ("phone_01", "PAUSED", "EMERGENCY_STOP"),
        ("phone_02", "PAUSED", "EMERGENCY_STOP"),
    }
    assert await get_redis().get("phone:status:phone_01") == "PAUSED"
    async with transaction() as session:
        sequence = await session.get(OutreachSequence, sequence_id)
        assert sequence is not None and sequence.is_active is False
    assert await get_queue(DISPATCH).isPaused()
    assert await get_queue("q:wa:phone_01").isPaused()
    assert await get_queue("q:wa:phone_02").isPaused()
    assert await get_redis().exists(EMERGENCY_STOP_KEY)
    assert STOP_NOTICE in slack_texts(slack)
    assert (await dispatch()).stopped is True

    # a worker starts; phone_02's queue is resumed behind the system's back (a host that missed
    # the pause): its jobs run, and still nothing reaches the vendor
    from cerniq.messaging.vendors import close_vendors
    from cerniq.worker.runner import WorkerProcess

    worker = WorkerProcess(get_settings(), lock_duration_ms=5000, stalled_interval_ms=2000, grace_seconds=5)
    await worker.start()
    try:
        await get_queue("q:wa:phone_02").resume()

        async def phone_02_skipped() -> bool:
            rows = [r for r in await _rows() if r.phone_id == "phone_02"]
            return all(r.status == MessageStatus.SKIPPED for r in rows)

        await wait_for(phone_02_skipped)
        assert {r.error_code for r in await _rows() if r.phone_id == "phone_02"} == {"EMERGENCY_STOP"}
        # phone_01's jobs are still waiting on its paused queue, their rows QUEUED
        waiting = await queue_admin.list_jobs("q:wa:phone_01", "waiting")
        assert sorted(j["id"] for j in waiting) == sorted(f"wa-{m}" for m in by_phone["phone_01"])
        assert {r.status for r in await _rows() if r.phone_id == "phone_01"} == {MessageStatus.QUEUED}
        assert sent_messages(slack) == []

        resumed = await api.post(
            "/api/admin/emergency/resume",
            json={"confirm": True, "pauseBetweenSeconds": 0},
            headers=admin_headers,
        )
        assert resumed.status_code == 200, resumed.text
        result = resumed.json()
        assert [(p["phoneId"], p["status"], p["resumed"]) for p in result["phones"]] == [
            ("phone_01", "ACTIVE", True),
            ("phone_02", "ACTIVE", True),
        ]
        assert result["message"] == "Sequences must be manually reactivated"
        assert [s["id"] for s in result["sequencesToReactivate"]] == [str(sequence_id)]

        async def phone_01_sent() -> bool:
            return await count_messages(status=MessageStatus.SENT) == len(by_phone["phone_01"])

        await wait_for(phone_01_sent)
        assert len(sent_messages(slack)) == len(by_phone["phone_01"])
    finally:
        await worker.stop()
        await close_vendors()

    assert {p.status for p in (await _phones()).values()} == {PhoneStatus.ACTIVE}
    async with transaction() as session:
        sequence = await session.get(OutreachSequence, sequence_id)
        assert sequence is not None and sequence.is_active is False  # reactivated by hand only
        alert = (
            await session.execute(select(Alert).where(Alert.alert_type == "emergency:stop"))
        ).scalar_one()
        audit = (await session.execute(select(AuditEntry.action))).scalars().all()
    assert alert.status == AlertStatus.RESOLVED
    assert not await get_queue(DISPATCH).isPaused()
    assert not await get_redis().exists(EMERGENCY_STOP_KEY)
    assert slack_texts(slack)[-1] == "✅ Outreach system resumed"
    assert slack_texts(slack).count(STOP_NOTICE) == 1
    assert audit.count("emergency.stop") == 1 and audit.count("emergency.resume") == 1
    assert audit.count("phone.status") == 4  # two pauses, two resumes
    assert not (await api.get("/api/admin/emergency", headers=admin_headers)).json()["active"]


async def test_only_admins_stop_and_resume_needs_a_confirmation(
    api: Any, tenant: Any, make_token: Any, admin_headers: dict[str, str]
) -> None:
    for role in (Role.VIEWER, Role.OPERATOR):
        headers = await make_token(tenant, role, role.value)
        denied = await api.post("/api/admin/emergency/stop", json={"reason": "because"}, headers=headers)
        assert denied.status_code == 403
        assert (await api.get("/api/admin/emergency", headers=headers)).json()["active"] is False
    short = await api.post("/api/admin/emergency/stop", json={"reason": "x"}, headers=admin_headers)
    assert short.status_code == 400
    assert (await api.post("/api/admin/emergency/stop", json={}, headers=admin_headers)).status_code == 400
    not_stopped = await api.post("/api/admin/emergency/resume", json={"confirm": True}, headers=admin_headers)
    assert not_stopped.status_code == 409
    assert not_stopped.json()["error"]["code"] == "EMERGENCY_STOP_NOT_ACTIVE"

    await add_phones(tenant, 1)
    assert (
        await api.post("/api/admin/emergency/stop", json={"reason": "bug"}, headers=admin_headers)
    ).status_code == 200
    again = await api.post("/api/admin/emergency/stop", json={"reason": "second try"}, headers=admin_headers)
    assert again.json()["alreadyActive"] is True
    assert again.json()["reason"] == "bug"
    unconfirmed = await api.post(
        "/api/admin/emergency/resume", json={"confirm": False}, headers=admin_headers
    )
    assert unconfirmed.status_code == 400
    assert unconfirmed.json()["error"]["code"] == "CONFIRMATION_REQUIRED"
    assert (await api.get("/api/admin/emergency", headers=admin_headers)).json()["active"] is True


async def _run(*argv: str, stdin: str = "") -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200", "CERNIQ_BIN": CLI},
        cwd=str(ROOT),
    )
    out, _ = await proc.communicate(stdin.encode())
    return int(proc.returncode or 0), out.decode()


async def test_scripts_and_cli_follow_the_runbook(tenant: Any, slack: Any) -> None:
    await add_phones(tenant, 2)
    await add_sequence(tenant)

    code, out = await _run("bash", "scripts/emergency-stop.sh", "security incident")
    assert code == 0, out
    assert "!!! EMERGENCY STOP INITIATED !!!" in out
    assert "Reason: security incident" in out
    assert "=== System Stopped ===" in out
    assert "To resume, run: ./scripts/emergency-resume.sh" in out
    assert {p.status for p in (await _phones()).values()} == {PhoneStatus.PAUSED}
    assert "🚨 EMERGENCY STOP: Outreach system halted. Reason: security incident" in slack_texts(slack)
    async with transaction() as session:
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "emergency.stop"))
        ).scalar_one()
    assert audit.actor_type == "cli" and audit.reason == "security incident"

    code, out = await _run("bash", "scripts/emergency-resume.sh", stdin="no\n")
    assert code == 1
    assert "Resume cancelled" in out
    assert {p.status for p in (await _phones()).values()} == {PhoneStatus.PAUSED}

    code, out = await _run(CLI, "emergency", "resume", "--pause", "0", stdin="yes\n")
    assert code == 0, out
    assert "Has the issue been resolved? (yes/no)" in out
    assert "phone phone_01 (Cerniq Sales 1): ACTIVE" in out
    assert "phone phone_02 (Cerniq Sales 2): ACTIVE" in out
    assert "Sequences must be manually reactivated" in out
    assert {p.status for p in (await _phones()).values()} == {PhoneStatus.ACTIVE}
    assert slack_texts(slack)[-1] == "✅ Outreach system resumed"
