"""The daily checklists of runbook 1.1 (morning, 09:00) and 1.2 (evening, 18:00) as checks.

Each runbook line is one :class:`Check` with a status (``ok`` / ``warn`` / ``fail``) and a
one-line finding; ``cerniq check morning|evening`` prints them and exits 1 when any needs
attention. The data are the same the runbook's curl / psql / redis-cli lines read.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select

from cerniq.config import Settings, get_settings
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.models import GoldCommunicationLog, HumanReview, WaPhoneNumber
from cerniq.models.enums import PhoneStatus, ReviewStatus

OK, WARN, FAIL = "ok", "warn", "fail"
OPEN_REVIEWS = (ReviewStatus.PENDING, ReviewStatus.ASSIGNED, ReviewStatus.IN_PROGRESS, ReviewStatus.ESCALATED)
DISK_WARN, DISK_FAIL = 0.80, 0.90


@dataclass
class Check:
    name: str
    status: str
    finding: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def needs_attention(checks: list[Check]) -> bool:
    return any(c.status != OK for c in checks)


async def _phones(session: Any, tenant_id: uuid.UUID) -> list[WaPhoneNumber]:
    stmt = select(WaPhoneNumber).where(WaPhoneNumber.tenant_id == tenant_id).order_by(WaPhoneNumber.id)
    return list((await session.execute(stmt)).scalars().all())


async def check_phones(tenant_id: uuid.UUID) -> Check:
    async with transaction() as session:
        phones = await _phones(session, tenant_id)
    if not phones:
        return Check("phones", WARN, "no phones registered")
    down = [f"{p.phone_label} {p.status.value}" for p in phones if p.status != PhoneStatus.ACTIVE]
    bad = [p for p in phones if p.status in (PhoneStatus.BANNED, PhoneStatus.OFFLINE)]
    if not down:
        return Check("phones", OK, f"{len(phones)}/{len(phones)} phones ACTIVE")
    status = FAIL if bad else WARN
    return Check(
        "phones", status, f"{len(phones) - len(down)}/{len(phones)} ACTIVE; not active: {', '.join(down)}"
    )


async def check_quota_keys(tenant_id: uuid.UUID) -> Check:
    from cerniq.quota import service as quota_service
    from cerniq.quota.guardian import quota_key

    day = quota_service.today()
    async with transaction() as session:
        phones = [
            p for p in await _phones(session, tenant_id) if p.is_enabled and p.status == PhoneStatus.ACTIVE
        ]
    if not phones:
        return Check("quota keys", OK, "no active phones")
    redis = get_redis()
    missing = [p.id for p in phones if not await redis.exists(quota_key(p.id, day))]
    if missing:
        return Check(
            "quota keys",
            WARN,
            f"{len(phones) - len(missing)}/{len(phones)} quota:wa:*:{day} keys; missing {', '.join(missing)} "
            "(cerniq quota resync)",
        )
    return Check("quota keys", OK, f"{len(phones)} quota keys for {day}")


async def check_phone_mirrors(tenant_id: uuid.UUID) -> Check:
    from cerniq.phones.service import status_key

    async with transaction() as session:
        phones = await _phones(session, tenant_id)
    redis = get_redis()
    wrong = []
    for p in phones:
        mirror = await redis.get(status_key(p.id))
        if mirror != p.status.value:
            wrong.append(f"{p.id}={mirror or 'missing'} (db {p.status.value})")
    if wrong:
        return Check("phone status keys", WARN, f"mirror differs: {', '.join(wrong)} (cerniq recover redis)")
    return Check("phone status keys", OK, f"{len(phones)} phone:status keys match the database")


async def check_queues(tenant_id: uuid.UUID) -> Check:
    from cerniq.ops import queue_admin

    async with transaction() as session:
        health = await queue_admin.health(session, tenant_id)
    queues = health["queues"]
    failed = {n: q["failed"] for n, q in queues.items() if q["failed"]}
    paused = [n for n, q in queues.items() if q["paused"]]
    waiting = sum(q["waiting"] for q in queues.values())
    active = sum(q["active"] for q in queues.values())
    finding = f"{len(queues)} queues: {waiting} waiting, {active} active, {sum(failed.values())} failed"
    if paused:
        finding += f"; paused: {', '.join(paused)}"
    return Check("queues", WARN if failed or paused else OK, finding)


async def check_pending_reviews(tenant_id: uuid.UUID) -> Check:
    async with transaction() as session:
        rows = (
            await session.execute(
                select(HumanReview.priority, func.count())
                .where(HumanReview.tenant_id == tenant_id, HumanReview.status.in_(OPEN_REVIEWS))
                .group_by(HumanReview.priority)
            )
        ).all()
    counts = {p.value: int(n) for p, n in rows}
    total = sum(counts.values())
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
    return Check("pending reviews", OK, f"{total} open ({detail})")


async def check_sla_breaches(tenant_id: uuid.UUID, since: timedelta = timedelta(hours=16)) -> Check:
    async with transaction() as session:
        n = int(
            (
                await session.execute(
                    select(func.count()).where(
                        HumanReview.tenant_id == tenant_id, HumanReview.sla_breached_at >= utcnow() - since
                    )
                )
            ).scalar_one()
        )
    hours = int(since.total_seconds() // 3600)
    return Check("SLA breaches", WARN if n else OK, f"{n} review SLA breaches in the last {hours} h")


async def check_sla_risk(tenant_id: uuid.UUID) -> Check:
    async with transaction() as session:
        n = int(
            (
                await session.execute(
                    select(func.count()).where(
                        HumanReview.tenant_id == tenant_id,
                        HumanReview.status.in_(OPEN_REVIEWS),
                        or_(HumanReview.sla_breached.is_(True), HumanReview.sla_due_at < utcnow()),
                    )
                )
            ).scalar_one()
        )
    return Check("reviews at SLA risk", WARN if n else OK, f"{n} open reviews breached or past their SLA")


async def check_metrics(tenant_id: uuid.UUID, *, yesterday: bool) -> Check:
    from cerniq.analytics import service

    day = service.today() - timedelta(days=1 if yesterday else 0)
    async with transaction() as session:
        values, computed_at = await service.figures(session, tenant_id, day)
    s = service.stats_view(values)
    finding = (
        f"{day}: contacted {s['leadsContacted']}, replied {s['leadsReplied']} "
        f"({s['leadsPositiveReplies']} positive), "
        f"converted {s['leadsConverted']}, WhatsApp {s['waNewContactsSent']}+{s['waFollowupsSent']}, "
        f"cold email {s['emailColdSent']}, reviews resolved {s['reviewsResolved']}"
    )
    name = "yesterday's metrics" if yesterday else "today's performance"
    if yesterday and computed_at is None:
        return Check(name, WARN, finding + " (not rolled up: is the maintenance:daily:stats job running?)")
    return Check(name, OK, finding)


async def check_quota_usage(tenant_id: uuid.UUID) -> Check:
    from cerniq.quota import service as quota_service

    async with transaction() as session:
        rows = await quota_service.day_report(session, quota_service.today(), tenant_id)
    used = sum(r.used or 0 for r in rows)
    limit = sum(r.limit for r in rows)
    return Check("quota usage", OK, f"{used} / {limit} new contacts used today")


def check_disk(settings: Settings) -> Check:
    worst: tuple[float, str] = (0.0, "")
    parts = []
    for label, path in (("data", Path(settings.data_dir)), ("backups", Path(settings.backups_dir))):
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        usage = shutil.disk_usage(probe)
        frac = usage.used / usage.total if usage.total else 0.0
        parts.append(f"{label} {frac:.0%} used ({usage.free // 2**30} GiB free)")
        worst = max(worst, (frac, label))
    status = FAIL if worst[0] >= DISK_FAIL else WARN if worst[0] >= DISK_WARN else OK
    return Check("disk", status, "; ".join(parts))


async def check_failed_jobs(tenant_id: uuid.UUID) -> Check:
    from cerniq.ops import queue_admin
    from cerniq.worker import dlq

    async with transaction() as session:
        health = await queue_admin.health(session, tenant_id)
    failed = sum(q["failed"] for q in health["queues"].values())
    dead = await dlq.length()
    return Check(
        "failed jobs", WARN if failed or dead else OK, f"{failed} failed jobs, {dead} in bull:dlq:outreach"
    )


async def check_archive_backlog(settings: Settings) -> Check:
    cutoff = utcnow() - settings.archive_after
    async with transaction() as session:
        n = int(
            (
                await session.execute(select(func.count()).where(GoldCommunicationLog.created_at < cutoff))
            ).scalar_one()
        )
    days = settings.archive_after.days
    if n:
        return Check(
            "archive backlog", WARN, f"{n} messages older than {days} days (cerniq maintenance weekly)"
        )
    return Check("archive backlog", OK, f"no messages older than {days} days")


def check_backup(settings: Settings) -> Check:
    from cerniq.ops import backup

    day = backup.business_today(settings)
    dump = backup.day_dir(day, settings) / backup.DUMP_NAME
    if dump.is_file() and dump.stat().st_size > 0:
        return Check("today's backup", OK, f"{dump} ({dump.stat().st_size} bytes)")
    return Check("today's backup", FAIL, f"backup not found at {dump} (cerniq backup create)")


async def morning(tenant_id: uuid.UUID, settings: Settings | None = None) -> list[Check]:
    """Runbook 1.1: phones, quota keys, queues, reviews, overnight SLA breaches, yesterday's
    metrics, disk, per-phone Redis status."""
    settings = settings or get_settings()
    return [
        await check_phones(tenant_id),
        await check_quota_keys(tenant_id),
        await check_queues(tenant_id),
        await check_pending_reviews(tenant_id),
        await check_sla_breaches(tenant_id),
        await check_metrics(tenant_id, yesterday=True),
        check_disk(settings),
        await check_phone_mirrors(tenant_id),
    ]


async def evening(tenant_id: uuid.UUID, settings: Settings | None = None) -> list[Check]:
    """Runbook 1.2: today's performance, quota usage, reviews at SLA risk, failed jobs, archive
    backlog, today's backup."""
    settings = settings or get_settings()
    return [
        await check_metrics(tenant_id, yesterday=False),
        await check_quota_usage(tenant_id),
        await check_sla_risk(tenant_id),
        await check_failed_jobs(tenant_id),
        await check_archive_backlog(settings),
        check_backup(settings),
    ]


def render(title: str, checks: list[Check]) -> str:
    marks = {OK: "OK  ", WARN: "WARN", FAIL: "FAIL"}
    lines = [f"=== CERNIQ {title} check ==="]
    lines += [f"[{marks[c.status]}] {c.name}: {c.finding}" for c in checks]
    bad = [c for c in checks if c.status != OK]
    lines.append(f"=== {len(bad)} item(s) need attention ===" if bad else "=== all clear ===")
    return "\n".join(lines)
