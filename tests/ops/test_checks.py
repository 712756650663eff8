"""Runbook 1.1 / 1.2 as ``cerniq check morning|evening``: each line a check, exit 1 when
something needs attention."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from cerniq.config import get_settings
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_queue_redis, get_redis
from cerniq.models import GoldCommunicationLog, WaPhoneNumber
from cerniq.models.enums import Channel, Direction, MessageStatus, PhoneStatus
from cerniq.ops import backup, checks
from cerniq.ops.recovery import recover_redis
from cerniq.worker.names import DLQ_KEY
from tests.fixtures.outreach import add_leads, add_phones

CERNIQ = str(Path(sys.executable).parent / "cerniq")


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CERNIQ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CERNIQ_BACKUPS_DIR", str(tmp_path / "backups"))
    get_settings.cache_clear()
    return tmp_path


def fake_backup() -> None:
    target = backup.day_dir(backup.business_today())
    target.mkdir(parents=True)
    (target / backup.DUMP_NAME).write_bytes(b"PGDMP")


def by_name(found: list[checks.Check]) -> dict[str, checks.Check]:
    return {c.name: c for c in found}


async def test_evening_all_clear_then_each_problem_is_flagged(tenant: Any, dirs: Path) -> None:
    await add_phones(tenant, 2)
    fake_backup()
    found = by_name(await checks.evening(tenant.id))
    assert {n: c.status for n, c in found.items()} == {
        "today's performance": "ok",
        "quota usage": "ok",
        "reviews at SLA risk": "ok",
        "failed jobs": "ok",
        "archive backlog": "ok",
        "today's backup": "ok",
    }
    assert not checks.needs_attention(list(found.values()))

    (journey,) = await add_leads(tenant, 1)
    async with transaction() as session:
        session.add(
            GoldCommunicationLog(
                tenant_id=tenant.id,
                lead_journey_id=journey,
                channel=Channel.WHATSAPP,
                direction=Direction.OUTBOUND,
                status=MessageStatus.SENT,
                created_at=utcnow() - timedelta(days=100),
            )
        )
    await get_queue_redis().lpush(DLQ_KEY, '{"queue": "q:wa:phone_01", "jobId": "wa-x"}')
    (backup.day_dir(backup.business_today()) / backup.DUMP_NAME).unlink()
    found = by_name(await checks.evening(tenant.id))
    assert (
        found["archive backlog"].status == "warn"
        and "1 messages older than 90 days" in found["archive backlog"].finding
    )
    assert found["failed jobs"].status == "warn" and "1 in bull:dlq:outreach" in found["failed jobs"].finding
    assert found["today's backup"].status == "fail"
    assert "3 item(s) need attention" in checks.render("evening", list(found.values()))


async def test_morning_flags_offline_phones_missing_quota_keys_and_stale_mirrors(
    tenant: Any, dirs: Path
) -> None:
    phones = await add_phones(tenant, 3)
    found = by_name(await checks.morning(tenant.id))
    assert found["phones"].status == "ok"
    assert found["quota keys"].status == "ok"
    await get_redis().flushall()  # Redis lost its data: both flagged
    found = by_name(await checks.morning(tenant.id))
    assert found["quota keys"].status == "warn"
    assert found["phone status keys"].status == "warn"
    await recover_redis(actor="test", dispatch=False)
    found = by_name(await checks.morning(tenant.id))
    assert found["quota keys"].status == "ok"
    assert found["phone status keys"].status == "ok"

    async with transaction() as session:
        await session.execute(
            update(WaPhoneNumber).where(WaPhoneNumber.id == phones[1]).values(status=PhoneStatus.OFFLINE)
        )
    found = by_name(await checks.morning(tenant.id))
    assert found["phones"].status == "fail"
    assert "2/3 ACTIVE" in found["phones"].finding
    assert found["phone status keys"].status == "warn"  # the mirror still says ACTIVE
    assert found["yesterday's metrics"].status == "warn"  # never rolled up


async def test_cli_exits_1_and_prints_json_when_something_needs_attention(tenant: Any, dirs: Path) -> None:
    await add_phones(tenant, 1)
    env = dict(os.environ)
    proc = subprocess.run(
        [CERNIQ, "check", "evening", "--json", "--no-report"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    body = json.loads(proc.stdout)
    assert body["needsAttention"] is True
    assert {c["name"]: c["status"] for c in body["checks"]}["today's backup"] == "fail"

    fake_backup()
    proc = subprocess.run([CERNIQ, "check", "evening"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all clear" in proc.stdout
    assert "Cerniq daily report" in proc.stdout
