"""Disaster recovery end to end (runbook 8): backups that restore, and Redis rebuilt from
PostgreSQL after a FLUSHALL in the middle of a send run."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cerniq.config import get_settings
from cerniq.kit.db import dispose_engines, transaction
from cerniq.kit.redis import get_redis
from cerniq.messaging.dispatch import dispatch
from cerniq.models import AuditEntry, GoldLeadJourney
from cerniq.models.enums import MessageStatus, PhoneStatus
from cerniq.ops import backup
from cerniq.ops.recovery import recover_redis
from cerniq.phones.service import status_key
from cerniq.worker import names
from cerniq.worker.queues import get_queue
from tests.fixtures.outreach import add_leads, add_phones, add_sequence, count_messages, wait_for
from tests.reliability.conftest import counters, ledger, phone_worker, sandbox, sandbox_server, sent_messages

__all__ = ["phone_worker", "sandbox", "sandbox_server"]


@pytest.fixture
def backups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CERNIQ_BACKUPS_DIR", str(tmp_path / "backups"))
    get_settings.cache_clear()
    return tmp_path / "backups"


async def journeys() -> int:
    async with transaction() as session:
        return int((await session.execute(select(func.count()).select_from(GoldLeadJourney))).scalar_one())


async def test_backup_create_writes_dump_and_manifest_and_verify_restores_it(
    tenant: Any, backups: Path
) -> None:
    await add_leads(tenant, 7)
    result = backup.create_backup()
    day_dir = backups / "daily" / result.day
    assert (day_dir / "cerniq.dump").stat().st_size > 0
    manifest = json.loads((day_dir / "manifest.json").read_text())
    assert manifest["counts"]["gold_lead_journey"] == 7
    assert manifest["counts"]["gold_companies"] == 7
    assert manifest["alembic_revision"]
    assert (backups / "daily" / "latest" / "cerniq.dump").is_file()  # runbook 8.1 path

    verified = backup.verify_backup()
    assert verified.ok, verified.mismatches
    assert verified.tables == len(manifest["counts"])

    # a manifest that does not match what the dump holds is reported
    manifest["counts"]["gold_lead_journey"] = 8
    (day_dir / "manifest.json").write_text(json.dumps(manifest))
    bad = backup.verify_backup(result.day)
    assert not bad.ok
    assert bad.mismatches == {"gold_lead_journey": (8, 7)}


async def test_restore_brings_back_the_backed_up_rows(tenant: Any, backups: Path) -> None:
    await add_leads(tenant, 5)
    made = backup.create_backup()
    await add_leads(tenant, 3, start=100)  # written after the backup: gone after the restore
    assert await journeys() == 8
    await dispose_engines()  # nothing of ours may hold a connection into the tables
    restored = backup.restore_backup(made.day)
    await dispose_engines()  # the types were recreated: new connections
    assert restored["ok"], restored["mismatches"]
    assert await journeys() == 5


def test_restore_refuses_without_yes_and_prints_the_runbook_order(backups: Path) -> None:
    from cerniq.cli.main import root as app

    out = CliRunner().invoke(app, ["backup", "restore"])
    assert out.exit_code == 2
    assert "cerniq recover redis" in out.output
    assert "refusing" in out.output


async def test_verify_without_backups_is_a_clear_error(backups: Path) -> None:
    with pytest.raises(backup.BackupNotFound):
        backup.verify_backup()


async def test_flushall_mid_run_then_recover_redis_loses_nothing_and_sends_nothing_twice(
    tenant: Any, sandbox: Any, phone_worker: Any
) -> None:
    phones = await add_phones(tenant, 3)
    await add_sequence(tenant)
    await add_leads(tenant, 30)
    sandbox.control(
        "POST", "/_control/timelinesai/faults", json={"mode": "hang_after_accept", "count": 30, "delay": 0.3}
    )
    report = await dispatch()
    assert report.whatsapp == 30

    async def some_sent() -> bool:
        return await count_messages(status=MessageStatus.SENT) >= 6

    await wait_for(some_sent, timeout=20)
    await get_redis().flushall()  # Redis lost everything: counters, mirrors, queues
    assert await count_messages(status=MessageStatus.SENT) < 30

    result = await recover_redis(actor="test")
    assert result.messages_requeued > 0
    assert result.phone_status_keys == 3
    assert result.schedules > 0
    assert result.dispatch_job is not None
    for phone in phones:
        assert await get_redis().get(status_key(phone)) in (
            PhoneStatus.ACTIVE.value,
            PhoneStatus.ACTIVE.value.encode(),
        )
    # due follow-ups: one dispatch job waits for the orchestrator
    assert await get_queue(names.DISPATCH).getJobState(result.dispatch_job) in ("waiting", "prioritized")

    async def all_sent() -> bool:
        return await count_messages(status=MessageStatus.SENT) == 30

    await wait_for(all_sent, timeout=40)
    per_lead = collections.Counter(m["recipient_phone"] for m in sent_messages(sandbox))
    assert len(per_lead) == 30  # no lead lost
    assert set(per_lead.values()) == {1}  # nobody got a second message
    assert await count_messages() == 30
    assert await counters(phones) == {p: (await ledger()).get(p, 0) for p in phones}
    assert sum((await ledger()).values()) == 30

    # running it again changes nothing
    again = await recover_redis(actor="test")
    assert again.messages_requeued == 0
    assert again.quota_counters == result.quota_counters | {p: (await ledger()).get(p, 0) for p in phones}
    async with transaction() as session:
        audits = (
            await session.execute(select(func.count()).where(AuditEntry.action == "recover.redis"))
        ).scalar_one()
    assert audits == 2
