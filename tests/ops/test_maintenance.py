"""Weekly maintenance (runbook 10.1): exactly the old rows are archived, nothing is lost,
conversations stay readable, and a second run changes nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cerniq.config import get_settings
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_queue_redis
from cerniq.models import GoldCommunicationLog, GoldCommunicationLogArchive
from cerniq.models.enums import Channel, Direction, MessageStatus
from cerniq.ops import maintenance
from cerniq.worker import registry
from cerniq.worker.names import DLQ_KEY, MAINTENANCE_WEEKLY
from tests.fixtures.outreach import add_leads


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CERNIQ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CERNIQ_BACKUPS_DIR", str(tmp_path / "backups"))
    get_settings.cache_clear()
    return tmp_path / "data"


async def add_messages(tenant: Any, journey_id: uuid.UUID, ages_days: list[int]) -> list[uuid.UUID]:
    now = utcnow()
    async with transaction() as session:
        rows = [
            GoldCommunicationLog(
                tenant_id=tenant.id,
                lead_journey_id=journey_id,
                channel=Channel.WHATSAPP,
                direction=Direction.OUTBOUND if n % 2 == 0 else Direction.INBOUND,
                status=MessageStatus.SENT,
                content=f"mesaj {n} ({age} zile)",
                created_at=now - timedelta(days=age, minutes=n),
            )
            for n, age in enumerate(ages_days)
        ]
        session.add_all(rows)
        await session.flush()
        return [r.id for r in rows]


async def ids_in(model: Any) -> set[uuid.UUID]:
    async with transaction() as session:
        return set((await session.execute(select(model.id))).scalars().all())


async def test_weekly_archives_exactly_the_old_rows_and_a_second_run_changes_nothing(
    tenant: Any, data_dir: Path
) -> None:
    (journey,) = await add_leads(tenant, 1)
    (other,) = await add_leads(tenant, 1, start=2)
    old = await add_messages(tenant, journey, [91, 120, 400, 95, 200])
    old += await add_messages(tenant, other, [100, 365])
    recent = await add_messages(tenant, journey, [89, 10, 0])
    async with transaction() as session:
        before_content = {
            r.id: r.content for r in (await session.execute(select(GoldCommunicationLog))).scalars().all()
        }

    first = await maintenance.archive_old_messages(batch=3)  # small batches: 7 rows in 3
    assert first.archived == 7
    assert first.batches == 3
    assert first.remaining_old == 0
    assert await ids_in(GoldCommunicationLogArchive) == set(old)
    assert await ids_in(GoldCommunicationLog) == set(recent)
    async with transaction() as session:
        archived = (await session.execute(select(GoldCommunicationLogArchive))).scalars().all()
        assert {r.id: r.content for r in archived} == {i: before_content[i] for i in old}  # verbatim
        convo = await maintenance.conversation(session, journey, tenant_id=tenant.id)
    assert {m["id"] for m in convo} == {str(i) for i in old[:5] + recent}
    assert len(convo) == 8
    assert sum(1 for m in convo if m["archived"]) == 5
    assert [m["created_at"] for m in convo] == sorted(m["created_at"] for m in convo)  # oldest first

    report = await maintenance.weekly()
    assert report.archive.archived == 0  # nothing old was left
    assert await ids_in(GoldCommunicationLogArchive) == set(old)
    assert await ids_in(GoldCommunicationLog) == set(recent)
    again = await maintenance.weekly()
    assert again.archive.archived == 0
    assert await ids_in(GoldCommunicationLogArchive) == set(old)
    assert await ids_in(GoldCommunicationLog) == set(recent)


async def test_weekly_trims_the_dlq_cleans_and_writes_the_health_report(tenant: Any, data_dir: Path) -> None:
    (journey,) = await add_leads(tenant, 1)
    await add_messages(tenant, journey, [120, 3])
    redis = get_queue_redis()
    await redis.rpush(DLQ_KEY, *[f'{{"n": {n}}}' for n in range(1005)])
    report = await maintenance.weekly()
    assert report.archive.archived == 1
    assert await redis.llen(DLQ_KEY) == 1000
    assert report.dlq_removed == 5
    assert await redis.lindex(DLQ_KEY, 0) == '{"n": 0}'  # the newest (head) entries are kept
    assert "gold_communication_log" in report.vacuumed
    path = Path(report.report_path or "")
    assert path.parent == data_dir / "reports"
    assert path.name.startswith("weekly-report-")
    text = path.read_text()
    assert "1 live, 1 archived, 0 pending archive" in text
    assert "DLQ entries: 1000" in text
    async with transaction() as session:
        from cerniq.models import AuditEntry

        n = (
            await session.execute(select(func.count()).where(AuditEntry.action == "maintenance.weekly"))
        ).scalar_one()
    assert n == 1


def test_weekly_is_scheduled_sunday_0200_bucharest() -> None:
    registry.load_all_tasks()
    specs = sorted(
        (s.job_name, s.pattern, s.tz) for s in registry.schedules() if s.queue == MAINTENANCE_WEEKLY
    )
    assert specs == [
        ("backup", "30 1 * * *", "Europe/Bucharest"),
        ("weekly", "0 2 * * 0", "Europe/Bucharest"),
    ]
    assert registry.find_handler(MAINTENANCE_WEEKLY, "weekly") is not None
    assert registry.find_handler(MAINTENANCE_WEEKLY, "backup") is not None
