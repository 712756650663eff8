"""Quota operations (runbook §3, §8): ``cerniq quota show|reset|resync`` and the 00:00 job."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.models import WaQuotaUsage
from cerniq.models.enums import AlertSeverity, AlertStatus, MessageStatus
from cerniq.quota import service
from cerniq.quota.guardian import QuotaGuardian, followup_key, quota_key, reservations_key
from cerniq.quota.tasks import reset_job
from cerniq.worker import names, registry
from tests.fixtures.outreach import add_leads, add_phones
from tests.phones.support import add_message, alerts_of, audit_rows, cli, incidents_of, open_alert, run_job


@pytest.fixture(autouse=True)
def _private_data_dir(data_dir: Path) -> Path:
    return data_dir


def guardian() -> QuotaGuardian:
    return QuotaGuardian(get_redis())


async def spend(phone_id: str, day: date, row_id: uuid.UUID, cost: int) -> None:
    """Reserve quota for a row, as the send path does before it calls the vendor."""
    result = await guardian().reserve(
        phone_id=phone_id, day=day, reservation_id=str(row_id), cost=cost, limit=200, followup_cap=500
    )
    assert result.allowed


async def ledger_row(
    tenant: Any, lead: uuid.UUID, phone_id: str, day: date | None, cost: int, status: MessageStatus
) -> uuid.UUID:
    """A ledger row whose reservation Redis holds (unless its status says it holds none)."""
    row = await add_message(tenant, lead, phone_id, cost=cost, day=day, status=status)
    if day is not None and status not in (MessageStatus.SKIPPED, MessageStatus.FAILED):
        await spend(phone_id, day, row, cost)
    return row


async def test_reset_saves_the_three_keys_then_zeroes_the_counter(tenant: Any, data_dir: Path) -> None:
    await add_phones(tenant, 2)
    first, second = await add_leads(tenant, 2)
    day = service.today()
    new_row = await ledger_row(tenant, first, "phone_01", day, 1, MessageStatus.SENT)
    followup_row = await ledger_row(tenant, second, "phone_01", day, 0, MessageStatus.SENT)
    await get_redis().set(quota_key("phone_01", day), 57, ex=172800)  # the miscount
    await get_redis().set(quota_key("phone_02", day), 12, ex=172800)

    result = await cli("quota", "reset", "phone_01", "--reason", "bug: follow-ups counted as new", "--yes")

    assert result.code == 0, result.output
    key = quota_key("phone_01", day)
    assert f"{key}: 57 -> 0 (EX 172800)" in result.output
    assert await get_redis().get(key) == "0"
    assert 172000 < await get_redis().ttl(key) <= 172800
    # follow-ups and reservations stay: a retried send still does not pay twice
    assert await get_redis().get(followup_key("phone_01", day)) == "1"
    assert len(await guardian().reservations("phone_01", day)) == 2
    assert await get_redis().get(quota_key("phone_02", day)) == "12"
    (audit,) = await audit_rows("quota.reset")
    assert audit.actor_type == "cli" and audit.reason == "bug: follow-ups counted as new"
    assert audit.before == {
        "date": day.isoformat(),
        "counter": 57,
        "followups": 1,
        "reservations": {str(new_row): 1, str(followup_row): 0},
    }
    assert audit.after is not None and audit.after["counter"] == 0
    incident = (await incidents_of("phone_01"))[-1]
    assert incident.kind == "QUOTA_RESET" and incident.details["before"]["counter"] == 57
    log = (data_dir / "logs" / "quota-resets.log").read_text()
    assert "Phone phone_01 manual quota reset" in log and "Reason: bug: follow-ups counted as new" in log


def test_reset_refuses_without_a_reason_or_with_a_bad_date() -> None:
    from cerniq.cli.main import root

    runner = CliRunner()
    result = runner.invoke(root, ["quota", "reset", "phone_01", "--yes"])
    assert result.exit_code == 2
    assert "--reason" in result.output
    result = runner.invoke(root, ["quota", "show", "--date", "2026-13-01"])
    assert result.exit_code == 2
    assert "not a date" in result.output


async def test_reset_of_an_unknown_phone_changes_nothing(tenant: Any) -> None:
    await add_phones(tenant, 1)
    result = await cli("quota", "reset", "phone_07", "--reason", "bug", "--yes")
    assert result.code == 2
    assert "NOT_FOUND" in result.output
    assert await audit_rows("quota.reset") == []


async def test_resync_rebuilds_counters_exactly_from_the_ledger_after_flushall(tenant: Any) -> None:
    await add_phones(tenant, 3)
    leads = await add_leads(tenant, 9)
    day = service.today()
    yesterday = day - timedelta(days=1)
    sending = await ledger_row(tenant, leads[0], "phone_01", day, 1, MessageStatus.SENDING)
    await ledger_row(tenant, leads[1], "phone_01", day, 1, MessageStatus.SENT)
    await ledger_row(tenant, leads[2], "phone_01", day, 1, MessageStatus.AMBIGUOUS)
    followup = await ledger_row(tenant, leads[3], "phone_01", day, 0, MessageStatus.DELIVERED)
    await ledger_row(tenant, leads[4], "phone_01", day, 0, MessageStatus.SENT)
    await ledger_row(tenant, leads[5], "phone_01", day, 0, MessageStatus.SKIPPED)  # released
    await ledger_row(tenant, leads[6], "phone_01", None, 0, MessageStatus.FAILED)  # released
    await ledger_row(tenant, leads[7], "phone_02", day, 1, MessageStatus.READ)
    await ledger_row(tenant, leads[8], "phone_02", yesterday, 1, MessageStatus.SENT)
    expected = {
        "phone_01": (await guardian().usage("phone_01", day), await guardian().followups("phone_01", day)),
        "phone_02": (await guardian().usage("phone_02", day), await guardian().followups("phone_02", day)),
    }
    assert expected == {"phone_01": (3, 2), "phone_02": (1, 0)}
    reservations = await guardian().reservations("phone_01", day)

    await get_redis().flushall()  # runbook 8.2: Redis lost everything
    result = await cli("quota", "resync")

    assert result.code == 0, result.output
    assert "3 phone(s) resynced" in result.output
    assert await guardian().usage("phone_01", day) == 3
    assert await guardian().followups("phone_01", day) == 2
    assert await guardian().reservations("phone_01", day) == reservations
    assert await guardian().usage("phone_02", day) == 1
    assert await get_redis().get(quota_key("phone_03", day)) == "0"
    for key in (quota_key("phone_01", day), followup_key("phone_01", day), reservations_key("phone_01", day)):
        assert 172000 < await get_redis().ttl(key) <= 172800
    assert await get_redis().get(quota_key("phone_02", yesterday)) is None  # only the day asked for
    # a retried row is still recognised: it does not pay twice
    again = await guardian().reserve(
        phone_id="phone_01", day=day, reservation_id=str(sending), cost=1, limit=200, followup_cap=500
    )
    assert (again.reason, again.used) == ("ALREADY_RESERVED", 3)
    again = await guardian().reserve(
        phone_id="phone_01", day=day, reservation_id=str(followup), cost=0, limit=200, followup_cap=500
    )
    assert (again.reason, again.followups_used) == ("ALREADY_RESERVED", 2)
    (audit,) = await audit_rows("quota.resync")
    assert audit.before == {"phone_01": 0, "phone_02": 0, "phone_03": 0}
    assert audit.after == {"phone_01": 3, "phone_02": 1, "phone_03": 0}


async def test_resync_keeps_in_flight_reservations_and_drops_stale_ones(tenant: Any) -> None:
    await add_phones(tenant, 1)
    first, second = await add_leads(tenant, 2)
    day = service.today()
    sent = await ledger_row(tenant, first, "phone_01", day, 1, MessageStatus.SENT)
    # reserved by a send whose transaction has not committed yet: the row still reads QUEUED
    in_flight = await add_message(
        tenant, second, "phone_01", status=MessageStatus.QUEUED, origin="AUTOMATION"
    )
    await spend("phone_01", day, in_flight, 1)
    await spend("phone_01", day, uuid.uuid4(), 1)  # a reservation no row explains
    await get_redis().set(quota_key("phone_01", day), 9)

    async with transaction() as session:
        changes = await service.resync_day(session, day)

    assert changes == {"phone_01": (9, 2)}
    assert await guardian().reservations("phone_01", day) == {str(sent): 1, str(in_flight): 1}


async def test_the_midnight_job_closes_yesterday_once_and_flags_a_mismatch(tenant: Any) -> None:
    registry.load_all_tasks()
    (spec,) = [s for s in registry.schedules() if s.queue == names.QUOTA_RESET]
    assert (spec.pattern, spec.job_name, spec.tz) == ("0 0 * * *", "reset", "Europe/Bucharest")
    await add_phones(tenant, 3)
    leads = await add_leads(tenant, 4)
    yesterday = service.yesterday()
    await ledger_row(tenant, leads[0], "phone_01", yesterday, 1, MessageStatus.READ)
    await ledger_row(tenant, leads[1], "phone_01", yesterday, 1, MessageStatus.SENT)
    await ledger_row(tenant, leads[2], "phone_01", yesterday, 0, MessageStatus.DELIVERED)
    await ledger_row(tenant, leads[3], "phone_02", yesterday, 1, MessageStatus.SENT)
    await get_redis().set(quota_key("phone_02", yesterday), 3)  # the counter ran away from the ledger
    today_keys = f"quota:wa:*:{service.today().isoformat()}"
    await get_redis().delete(*await get_redis().keys(today_keys))  # midnight: the new day has no keys yet

    result = await run_job(reset_job, names.QUOTA_RESET)

    assert result["date"] == yesterday.isoformat()
    assert result["mismatches"] == ["phone_02"]
    assert result["todayKeysCreated"] == ["phone_01", "phone_02", "phone_03"]
    rows = await usage_rows(yesterday)
    assert sorted(rows) == ["phone_01", "phone_02", "phone_03"]
    one = rows["phone_01"]
    assert (one.new_contacts_sent, one.followups_sent, one.total_sent) == (2, 1, 3)
    assert (one.quota_limit, one.quota_remaining, one.redis_count, one.ledger_count) == (200, 198, 2, 2)
    assert one.mismatch is False
    assert one.first_message_at is not None and one.last_message_at is not None
    assert one.first_message_at <= one.last_message_at
    two = rows["phone_02"]
    assert (two.redis_count, two.ledger_count, two.mismatch, two.new_contacts_sent) == (3, 1, True, 3)
    three = rows["phone_03"]
    assert (three.total_sent, three.mismatch, three.first_message_at) == (0, False, None)
    alert = await open_alert("quota:mismatch", "phone_02")
    assert alert is not None and alert.severity == AlertSeverity.MEDIUM
    assert alert.details["redisCount"] == 3 and alert.details["ledgerCount"] == 1
    # runbook 3.2 step 2 reads the rows with SQL
    async with transaction() as session:
        found = await session.execute(
            text(f"SELECT * FROM wa_quota_usage WHERE usage_date = '{yesterday.isoformat()}'")
        )
        assert len(found.all()) == 3
    # runbook 1.1 step 3: one key per phone for today
    assert len(await get_redis().keys(today_keys)) == 3

    again = await run_job(reset_job, names.QUOTA_RESET)  # twice: nothing changes

    assert again["mismatches"] == ["phone_02"] and again["todayKeysCreated"] == []
    rows_again = await usage_rows(yesterday)
    assert {k: snapshot(v) for k, v in rows_again.items()} == {k: snapshot(v) for k, v in rows.items()}
    (alert,) = await alerts_of("quota:mismatch", "phone_02")
    assert alert.occurrences == 1

    # after a resync of that day the rerun finds them equal and the alert resolves
    async with transaction() as session:
        await service.resync_day(session, yesterday)
    await run_job(reset_job, names.QUOTA_RESET, {"date": yesterday.isoformat()})
    assert (await usage_rows(yesterday))["phone_02"].mismatch is False
    (alert,) = await alerts_of("quota:mismatch", "phone_02")
    assert alert.status == AlertStatus.RESOLVED


async def usage_rows(day: date) -> dict[str, WaQuotaUsage]:
    async with transaction() as session:
        rows = await session.execute(select(WaQuotaUsage).where(WaQuotaUsage.usage_date == day))
        return {r.phone_id: r for r in rows.scalars()}


def snapshot(row: WaQuotaUsage) -> tuple[Any, ...]:
    return (
        row.id,
        row.new_contacts_sent,
        row.followups_sent,
        row.total_sent,
        row.quota_limit,
        row.quota_remaining,
        row.redis_count,
        row.ledger_count,
        row.mismatch,
        row.first_message_at,
        row.last_message_at,
    )


async def test_quota_show_puts_redis_next_to_the_ledger(tenant: Any) -> None:
    await add_phones(tenant, 2)
    (lead,) = await add_leads(tenant, 1)
    day = service.today()
    await ledger_row(tenant, lead, "phone_01", day, 1, MessageStatus.SENT)
    await get_redis().set(quota_key("phone_02", day), 5)

    result = await cli("quota", "show")

    assert result.code == 0, result.output
    lines = {
        line.split()[1]: line for line in result.stdout.splitlines() if line.strip().startswith("│ phone_")
    }
    assert "MISMATCH" in lines["phone_02"] and "MISMATCH" not in lines["phone_01"]
    assert " ok " in lines["phone_01"]
    assert "6 / 400 new contacts used" in result.stdout

    result = await cli("quota", "show", "--json")
    body = json.loads(result.stdout)
    assert body["date"] == day.isoformat()
    assert [(p["phoneId"], p["used"], p["ledgerNewContacts"], p["mismatch"]) for p in body["phones"]] == [
        ("phone_01", 1, 1, False),
        ("phone_02", 5, 0, True),
    ]
