"""The phone health monitor (runbook 2.1) and the account webhook events, against the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.models import WaPhoneNumber
from cerniq.models.enums import AlertSeverity, AlertStatus, PhoneStatus
from cerniq.phones import service as phones
from cerniq.phones.health import check_phones, handle_account_event
from cerniq.phones.tasks import enabled_phone_queues
from cerniq.quota import service as quota
from cerniq.worker import names, registry
from tests.fixtures.outreach import add_phones
from tests.phones.support import (
    alerts_of,
    cli,
    incidents_of,
    number_of,
    open_alert,
    phone_row,
    run_health_job,
    set_account,
)


@pytest.fixture(autouse=True)
def _private_data_dir(data_dir: Path) -> Path:
    return data_dir


async def test_the_monitor_is_scheduled_every_ten_minutes() -> None:
    registry.load_all_tasks()
    (spec,) = [s for s in registry.schedules() if s.queue == names.MONITOR_PHONES]
    assert spec.pattern == "*/10 * * * *"
    assert registry.find_handler(names.MONITOR_PHONES, spec.job_name) is not None


async def test_a_disconnected_phone_goes_offline_with_an_alert_and_comes_back(
    tenant: Any, sandbox: Any, data_dir: Path
) -> None:
    await add_phones(tenant, 2)
    set_account(sandbox, number_of(1), "disconnected")

    result = await run_health_job()

    assert result["timelinesaiOk"] is True
    assert [c["id"] for c in result["changed"]] == ["phone_01"]
    phone = await phone_row("phone_01")
    assert phone.status == PhoneStatus.OFFLINE
    assert phone.is_online is False
    assert phone.last_health_check_at is not None
    assert (await phone_row("phone_02")).status == PhoneStatus.ACTIVE
    assert await get_redis().get("phone:status:phone_01") == "OFFLINE"
    alert = await open_alert("phone:offline", "phone_01")
    assert alert is not None and alert.severity == AlertSeverity.HIGH
    assert await open_alert("phone:offline", "phone_02") is None
    assert [i.kind for i in await incidents_of("phone_01")][-1] == "OFFLINE"
    log = (data_dir / "logs" / "phone-incidents.log").read_text()
    assert "Phone phone_01 went offline. Reason: TimelinesAI account disconnected" in log

    # a second check while still disconnected changes nothing and raises no second alert
    await run_health_job()
    assert len(await alerts_of("phone:offline", "phone_01")) == 1

    set_account(sandbox, number_of(1), "connected")
    result = await run_health_job()

    assert [c["action"] for c in result["changed"]] == ["reconnected"]
    phone = await phone_row("phone_01")
    assert phone.status == PhoneStatus.ACTIVE and phone.is_online is True
    assert await get_redis().get("phone:status:phone_01") == "ACTIVE"
    (resolved,) = await alerts_of("phone:offline", "phone_01")
    assert resolved.status == AlertStatus.RESOLVED


async def test_paused_and_banned_phones_are_never_revived(tenant: Any, sandbox: Any) -> None:
    await add_phones(tenant, 3)
    async with transaction() as session:
        phone = await session.get(WaPhoneNumber, "phone_01")
        assert phone is not None
        await phones.change_status(session, phone, PhoneStatus.PAUSED, reason="operator", actor="test")
    # runbook 2.2 step 2, by SQL: the monitor mirrors it to Redis
    async with transaction() as session:
        await session.execute(
            text(
                "UPDATE wa_phone_numbers SET status = 'BANNED', status_changed_at = NOW() "
                "WHERE id = 'phone_02'"
            )
        )
    assert await get_redis().get("phone:status:phone_02") == "ACTIVE"

    result = await run_health_job()

    assert result["changed"] == []
    assert (await phone_row("phone_01")).status == PhoneStatus.PAUSED
    assert (await phone_row("phone_02")).status == PhoneStatus.BANNED
    assert await get_redis().get("phone:status:phone_02") == "BANNED"
    assert "phone_02" in result["mirrorFixed"]

    # disconnected accounts do not move them either, nor does a later reconnection
    set_account(sandbox, number_of(1), "disconnected")
    set_account(sandbox, number_of(2), "banned")
    await run_health_job()
    set_account(sandbox, number_of(1), "connected")
    set_account(sandbox, number_of(2), "connected")
    await run_health_job()
    assert (await phone_row("phone_01")).status == PhoneStatus.PAUSED
    assert (await phone_row("phone_02")).status == PhoneStatus.BANNED
    assert await alerts_of("phone:offline") == []


async def test_a_timelinesai_outage_raises_timelinesai_down_and_it_resolves_itself(
    tenant: Any, sandbox: Any
) -> None:
    await add_phones(tenant, 2)
    sandbox.control(
        "POST", "/_control/timelinesai/faults", {"mode": "http_503", "target": "read", "count": 10}
    )

    result = await run_health_job()

    assert result["timelinesaiOk"] is False
    alert = await open_alert("timelinesai:down")
    assert alert is not None
    assert alert.severity == AlertSeverity.CRITICAL
    # an outage says nothing about the phones: they keep their status
    assert (await phone_row("phone_01")).status == PhoneStatus.ACTIVE
    assert await alerts_of("phone:offline") == []

    sandbox.control("DELETE", "/_control/timelinesai/faults")
    result = await run_health_job()

    assert result["timelinesaiOk"] is True
    assert await open_alert("timelinesai:down") is None
    (resolved,) = await alerts_of("timelinesai:down")
    assert resolved.status == AlertStatus.RESOLVED


async def test_one_failed_call_is_not_an_outage(tenant: Any, sandbox: Any) -> None:
    await add_phones(tenant, 1)
    sandbox.control(
        "POST", "/_control/timelinesai/faults", {"mode": "http_502", "target": "read", "count": 1}
    )
    result = await run_health_job()
    assert result["timelinesaiOk"] is True
    assert await alerts_of("timelinesai:down") == []


async def test_pipeline_degraded_while_fewer_than_half_the_phones_are_active(
    tenant: Any, sandbox: Any
) -> None:
    await add_phones(tenant, 4)
    for n in (1, 2, 3):
        set_account(sandbox, number_of(n), "disconnected")

    await run_health_job()

    alert = await open_alert("pipeline:degraded")
    assert alert is not None and alert.tenant_id == tenant.id
    assert alert.details["active"] == 1 and alert.details["enabled"] == 4

    set_account(sandbox, number_of(1), "connected")
    await run_health_job()  # 2 of 4: half, no longer degraded
    assert await open_alert("pipeline:degraded") is None


async def test_a_phone_inserted_with_the_runbook_sql_gets_its_redis_keys(tenant: Any, sandbox: Any) -> None:
    # runbook 2.3 step 1: the account exists in TimelinesAI first
    set_account(sandbox, "+40712345678", "connected")
    async with transaction() as session:
        await session.execute(
            text(
                """
  INSERT INTO wa_phone_numbers (
    tenant_id, phone_number, phone_label, timelinesai_account_id,
    status, daily_quota_limit, is_enabled
  ) VALUES (
    :tenant, '+40712345678', 'Sales 21', '40712345678@s.whatsapp.net',
    'ACTIVE', 200, true
  )
"""
            ),
            {"tenant": str(tenant.id)},
        )
    assert "q:wa:phone_01" in await enabled_phone_queues()  # the worker's lease loop serves it
    day = quota.today().isoformat()
    assert await get_redis().keys(f"quota:wa:*:{day}") == []

    result = await run_health_job()

    assert result["quotaKeysCreated"] == ["phone_01"]
    assert await get_redis().get("phone:status:phone_01") == "ACTIVE"
    assert await get_redis().get(f"quota:wa:phone_01:{day}") == "0"
    assert 172000 < await get_redis().ttl(f"quota:wa:phone_01:{day}") <= 172800
    # the runbook's morning check counts one key per phone
    assert len(await get_redis().keys(f"quota:wa:*:{day}")) == 1
    phone = await phone_row("phone_01")
    assert phone.status == PhoneStatus.ACTIVE and phone.last_health_check_at is not None


async def test_the_mirror_is_rebuilt_after_redis_loses_it_and_counters_are_never_overwritten(
    tenant: Any, sandbox: Any
) -> None:
    await add_phones(tenant, 3)
    day = quota.today().isoformat()
    await get_redis().set(f"quota:wa:phone_01:{day}", 42)
    await get_redis().delete("phone:status:phone_02", "phone:status:phone_03", f"quota:wa:phone_03:{day}")

    async with transaction() as session:
        report = await check_phones(session, tenant_id=tenant.id)

    assert sorted(report.mirror_fixed) == ["phone_02", "phone_03"]
    assert report.quota_keys_created == ["phone_03"]
    for n in (1, 2, 3):
        assert await get_redis().get(f"phone:status:phone_0{n}") == "ACTIVE"
    assert await get_redis().get(f"quota:wa:phone_01:{day}") == "42"


async def test_account_webhook_events_move_the_phone(tenant: Any, other_tenant: Any, data_dir: Path) -> None:
    await add_phones(tenant, 2)
    payload = {"event_type": "whatsapp:account:disconnected", "whatsapp_account": {"phone": number_of(1)}}

    async with transaction() as session:
        outcome = await handle_account_event(
            session, account_phone=number_of(1), event_type="whatsapp:account:disconnected", payload=payload
        )
    assert outcome == "phone_01:offline"
    assert (await phone_row("phone_01")).status == PhoneStatus.OFFLINE
    assert await get_redis().get("phone:status:phone_01") == "OFFLINE"
    assert await open_alert("phone:offline", "phone_01") is not None

    async with transaction() as session:
        outcome = await handle_account_event(
            session, account_phone="0700 000 001", event_type="whatsapp:account:connected", payload={}
        )
    assert outcome == "phone_01:reconnected"
    assert (await phone_row("phone_01")).status == PhoneStatus.ACTIVE
    assert await open_alert("phone:offline", "phone_01") is None

    async with transaction() as session:
        outcome = await handle_account_event(
            session, account_phone=number_of(2), event_type="whatsapp:account:suspended", payload={}
        )
        assert outcome == "phone_02:offline"
        phone = await session.get(WaPhoneNumber, "phone_02")
        assert phone is not None
        await phones.change_status(session, phone, PhoneStatus.PAUSED, reason="operator", actor="test")
    async with transaction() as session:
        outcome = await handle_account_event(
            session, account_phone=number_of(2), event_type="whatsapp:account:resumed", payload={}
        )
    assert outcome == "phone_02:unchanged"  # PAUSED is an operator's decision
    assert (await phone_row("phone_02")).status == PhoneStatus.PAUSED

    async with transaction() as session:
        assert (
            await handle_account_event(
                session,
                account_phone="",
                event_type="whatsapp:account:disconnected",
                payload={"whatsapp_account": {"phone": "+40799999999"}},
            )
            == "unknown_phone"
        )
        assert (
            await handle_account_event(
                session, account_phone=number_of(1), event_type="message:new", payload={}
            )
            == "ignored"
        )
        # another tenant's webhook never touches this tenant's phone
        assert (
            await handle_account_event(
                session,
                account_phone=number_of(1),
                event_type="whatsapp:account:disconnected",
                payload={},
                tenant_id=other_tenant.id,
            )
            == "unknown_phone"
        )
    assert (await phone_row("phone_01")).status == PhoneStatus.ACTIVE


async def test_the_phones_cli_runs_the_same_procedures(tenant: Any, sandbox: Any, data_dir: Path) -> None:
    await add_phones(tenant, 2)
    set_account(sandbox, number_of(2), "disconnected")

    result = await cli("phones", "health-check")

    assert result.code == 0, result.output
    assert "TimelinesAI: ok" in result.output
    assert "1/2 enabled phones ACTIVE" in result.output
    assert (await phone_row("phone_02")).status == PhoneStatus.OFFLINE

    result = await cli("phones", "reconnect", "phone_02")
    assert result.code == 0, result.output
    assert "OFFLINE -> RECONNECTING" in result.output and "scan the QR code" in result.output

    result = await cli("phones", "incidents")
    assert result.code == 0, result.output
    for expected in ("OFFLINE", "RECONNECTING", "RECONNECT_REQUESTED", "monitor:phone:health"):
        assert expected in result.output
    log = (data_dir / "logs" / "phone-incidents.log").read_text()
    assert "Phone phone_02 reconnect requested (OFFLINE -> RECONNECTING, connected=False)" in log
