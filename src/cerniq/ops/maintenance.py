"""Weekly maintenance (runbook 10.1) as one call: ``cerniq maintenance weekly``, also scheduled
Sunday 02:00 Europe/Bucharest on ``maintenance:weekly``.

1. archive ``gold_communication_log`` rows older than ``archive_after`` (90 days) into
   ``gold_communication_log_archive``: batches of 5,000 ids in id order, each batch one
   transaction (INSERT ... SELECT the ids, DELETE the same ids, both counts checked; a mismatch
   aborts that batch and stops the run, so a row is always in exactly one of the two tables);
2. ``VACUUM ANALYZE`` of the log, its archive and ``gold_lead_journey``;
3. completed jobs older than ``completed_job_retention`` (7 days) removed from every queue;
4. every ``bull:dlq:*`` list trimmed to ``dlq_max_length`` (1,000) newest entries;
5. raw webhook payloads past their retention pruned (the webhooks service does it);
6. a health report written to ``data_dir/reports/weekly-report-YYYYMMDD.txt``.

Running it twice changes nothing the second time (no old rows are left, the rest is idempotent).
Conversations stay readable: :func:`conversation` reads the live log and the archive together.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, literal, select, text, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.config import Settings, get_settings
from cerniq.errors import CerniqError
from cerniq.kit.clock import utcnow
from cerniq.kit.db import get_engine, transaction
from cerniq.logging import get_logger
from cerniq.models import GoldCommunicationLog, GoldCommunicationLogArchive

ARCHIVE_BATCH = 5000
VACUUM_TABLES = ("gold_communication_log", "gold_communication_log_archive", "gold_lead_journey")


class ArchiveMismatch(CerniqError):
    status_code = 409
    code = "ARCHIVE_MISMATCH"


@dataclass
class ArchiveResult:
    cutoff: str
    archived: int = 0
    batches: int = 0
    remaining_old: int = 0


@dataclass
class WeeklyReport:
    started_at: str
    archive: ArchiveResult
    vacuumed: list[str] = field(default_factory=list)
    completed_jobs_removed: int = 0
    dlq_removed: int = 0
    webhook_payloads_pruned: int = 0
    report_path: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


log = get_logger("cerniq.ops.maintenance")

_ARCHIVE_COLUMNS = ", ".join(c.name for c in GoldCommunicationLog.__table__.columns)


async def old_rows(session: AsyncSession, cutoff: datetime) -> int:
    stmt = (
        select(func.count()).select_from(GoldCommunicationLog).where(GoldCommunicationLog.created_at < cutoff)
    )
    return int((await session.execute(stmt)).scalar_one())


async def archive_batch(session: AsyncSession, cutoff: datetime, batch: int = ARCHIVE_BATCH) -> int:
    """Move up to ``batch`` rows older than ``cutoff`` (lowest ids first); returns how many.

    Raises :class:`ArchiveMismatch` (the caller's transaction then rolls back) when the archive
    did not receive exactly the selected rows or the delete did not remove exactly them."""
    ids = list(
        (
            await session.execute(
                select(GoldCommunicationLog.id)
                .where(GoldCommunicationLog.created_at < cutoff)
                .order_by(GoldCommunicationLog.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    if not ids:
        return 0
    inserted = await session.execute(
        text(
            f"INSERT INTO gold_communication_log_archive ({_ARCHIVE_COLUMNS}) "
            f"SELECT {_ARCHIVE_COLUMNS} FROM gold_communication_log WHERE id = ANY(:ids) "
            "ON CONFLICT (id) DO NOTHING"
        ),
        {"ids": ids},
    )
    in_archive = int(
        (
            await session.execute(
                select(func.count())
                .select_from(GoldCommunicationLogArchive)
                .where(GoldCommunicationLogArchive.id.in_(ids))
            )
        ).scalar_one()
    )
    if in_archive != len(ids):
        raise ArchiveMismatch(
            "archive batch incomplete: rows selected and rows in the archive differ",
            details={"selected": len(ids), "in_archive": in_archive, "inserted": inserted.rowcount},  # type: ignore[attr-defined]
        )
    deleted = await session.execute(
        text("DELETE FROM gold_communication_log WHERE id = ANY(:ids)"), {"ids": ids}
    )
    if deleted.rowcount != len(ids):  # type: ignore[attr-defined]
        raise ArchiveMismatch(
            "archive batch: rows deleted and rows archived differ",
            details={"selected": len(ids), "deleted": deleted.rowcount},  # type: ignore[attr-defined]
        )
    return len(ids)


async def archive_old_messages(
    settings: Settings | None = None, *, now: datetime | None = None, batch: int = ARCHIVE_BATCH
) -> ArchiveResult:
    """Archive every row older than ``archive_after`` in batches, one transaction each."""
    settings = settings or get_settings()
    cutoff = (now or utcnow()) - settings.archive_after
    result = ArchiveResult(cutoff=cutoff.isoformat())
    while True:
        async with transaction() as session:
            moved = await archive_batch(session, cutoff, batch)
        if not moved:
            break
        result.archived += moved
        result.batches += 1
        log.info("maintenance.archived_batch", rows=moved, total=result.archived)
    async with transaction() as session:
        result.remaining_old = await old_rows(session, cutoff)
    return result


async def vacuum_analyze(tables: tuple[str, ...] = VACUUM_TABLES) -> list[str]:
    """``VACUUM ANALYZE`` (outside a transaction, as PostgreSQL requires)."""
    async with get_engine().connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in tables:
            await auto.execute(text(f'VACUUM ANALYZE "{table}"'))
    return list(tables)


async def clean_completed_jobs(settings: Settings) -> int:
    """Completed jobs older than ``completed_job_retention`` removed from every queue."""
    from cerniq.ops import queue_admin

    async with transaction() as session:
        names = await queue_admin.queue_names(session, None)
    age = int(settings.completed_job_retention.total_seconds())
    removed = 0
    for name in names:
        removed += int((await queue_admin.clean(name, "completed", age_seconds=age))["removed"])
    return removed


async def trim_dlqs(keep: int) -> int:
    """Trim every ``bull:dlq:*`` list to its ``keep`` newest entries; returns entries removed."""
    from cerniq.kit.redis import get_queue_redis

    redis = get_queue_redis()
    removed = 0
    async for key in redis.scan_iter(match="bull:dlq:*"):
        if await redis.type(key) != "list":
            continue
        before = int(await redis.llen(key))
        await redis.ltrim(key, 0, keep - 1)
        removed += max(before - keep, 0)
    return removed


async def conversation(
    session: AsyncSession,
    journey_id: uuid.UUID,
    *,
    tenant_id: uuid.UUID | None = None,
    include_archive: bool = True,
) -> list[dict[str, Any]]:
    """Every message of a lead, live and archived, oldest first (``archived`` tells which)."""
    cols = ("id", "channel", "direction", "status", "origin", "content", "subject", "created_at", "sent_at")

    def part(table: Any, archived: bool) -> Any:
        stmt = select(
            *(getattr(table, c) for c in cols),
            literal(archived).label("archived"),
        )
        stmt = stmt.where(table.lead_journey_id == journey_id)
        if tenant_id is not None:
            stmt = stmt.where(table.tenant_id == tenant_id)
        return stmt

    parts = [part(GoldCommunicationLog, False)]
    if include_archive:
        parts.append(part(GoldCommunicationLogArchive, True))
    merged = union_all(*parts).subquery()
    rows = (await session.execute(select(merged).order_by(merged.c.created_at, merged.c.id))).mappings().all()
    out = []
    for row in rows:
        item = dict(row)
        for key in ("channel", "direction", "status"):
            value = item[key]
            item[key] = getattr(value, "value", value)
        item["id"] = str(item["id"])
        for key in ("created_at", "sent_at"):
            item[key] = item[key].isoformat() if item[key] else None
        out.append(item)
    return out


async def health_report_text(settings: Settings) -> str:
    """The weekly health report: leads, messages, phones, queues, DLQ, archive, alerts, backups."""
    from cerniq.models import Alert, GoldLeadJourney, WaPhoneNumber
    from cerniq.models.enums import AlertStatus
    from cerniq.ops import backup, queue_admin
    from cerniq.worker import dlq

    now = utcnow()
    week = now - timedelta(days=7)
    lines = [f"CERNIQ weekly health report — {datetime.now(settings.tz):%Y-%m-%d %H:%M %Z}", ""]
    async with transaction() as session:
        states = (
            await session.execute(
                select(GoldLeadJourney.current_state, func.count()).group_by(GoldLeadJourney.current_state)
            )
        ).all()
        lines.append("Leads by state:")
        lines += [f"  {getattr(s, 'value', s)}: {n}" for s, n in sorted(states, key=lambda r: str(r[0]))] or [
            "  none"
        ]
        sent = (
            await session.execute(
                select(GoldCommunicationLog.channel, GoldCommunicationLog.status, func.count())
                .where(GoldCommunicationLog.created_at >= week)
                .group_by(GoldCommunicationLog.channel, GoldCommunicationLog.status)
            )
        ).all()
        lines += ["", "Messages in the last 7 days (channel / status):"]
        lines += [
            f"  {c.value} {s.value}: {n}" for c, s, n in sorted(sent, key=lambda r: (str(r[0]), str(r[1])))
        ] or ["  none"]
        phones = (
            await session.execute(select(WaPhoneNumber.status, func.count()).group_by(WaPhoneNumber.status))
        ).all()
        lines += ["", "Phones by status:"]
        lines += [f"  {s.value}: {n}" for s, n in phones] or ["  none"]
        live = int(
            (await session.execute(select(func.count()).select_from(GoldCommunicationLog))).scalar_one()
        )
        archived = int(
            (
                await session.execute(select(func.count()).select_from(GoldCommunicationLogArchive))
            ).scalar_one()
        )
        pending = await old_rows(session, now - settings.archive_after)
        open_alerts = int(
            (
                await session.execute(select(func.count()).where(Alert.status != AlertStatus.RESOLVED))
            ).scalar_one()
        )
        health = await queue_admin.health(session, None)
    lines += ["", f"Communication log: {live} live, {archived} archived, {pending} pending archive"]
    failed = sum(q["failed"] for q in health["queues"].values())
    waiting = sum(q["waiting"] for q in health["queues"].values())
    lines += [f"Queues: {len(health['queues'])} queues, {waiting} waiting, {failed} failed"]
    lines += [f"DLQ entries: {await dlq.length()}"]
    lines += [f"Open alerts: {open_alerts}"]
    lines += [f"Latest backup: {backup.latest_day(settings) or 'none'}"]
    return "\n".join(lines) + "\n"


def report_path(settings: Settings, when: datetime | None = None) -> Path:
    stamp = (when or datetime.now(settings.tz)).strftime("%Y%m%d")
    return Path(settings.data_dir) / "reports" / f"weekly-report-{stamp}.txt"


async def write_health_report(settings: Settings) -> Path:
    path = report_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(await health_report_text(settings), encoding="utf-8")
    return path


async def weekly(
    settings: Settings | None = None, *, actor: str = "system", now: datetime | None = None
) -> WeeklyReport:
    """Runbook 10.1, every step, in order (see the module doc)."""
    from cerniq.auth.principal import Principal
    from cerniq.auth.service import record_audit
    from cerniq.models import Tenant
    from cerniq.models.enums import Role
    from cerniq.webhooks.service import prune_payloads

    settings = settings or get_settings()
    report = WeeklyReport(
        started_at=utcnow().isoformat(), archive=await archive_old_messages(settings, now=now)
    )
    report.vacuumed = await vacuum_analyze()
    report.completed_jobs_removed = await clean_completed_jobs(settings)
    report.dlq_removed = await trim_dlqs(settings.dlq_max_length)
    report.webhook_payloads_pruned = await prune_payloads(settings.webhook_payload_retention)
    report.report_path = str(await write_health_report(settings))
    async with transaction() as session:
        for tid in (await session.execute(select(Tenant.id))).scalars().all():
            principal = Principal(
                tenant_id=tid, role=Role.ADMIN, actor_type="system", actor_id=actor, actor_label=actor
            )
            await record_audit(
                session,
                principal,
                "maintenance.weekly",
                entity_type="system",
                entity_id="maintenance",
                after=report.as_dict(),
            )
    log.info("maintenance.weekly_done", **{k: v for k, v in report.as_dict().items() if k != "archive"})
    return report
