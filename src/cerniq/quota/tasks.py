"""Quota jobs: ``quota:guardian:reset`` at 00:00 Europe/Bucharest."""

from __future__ import annotations

from datetime import date
from typing import Any

from cerniq.kit.db import transaction
from cerniq.quota import service
from cerniq.worker import names
from cerniq.worker.registry import JobContext, schedule, task


@task(names.QUOTA_RESET, job_name="reset")
async def reset_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Close YESTERDAY's business day (or ``data["date"]``, YYYY-MM-DD): one ``wa_quota_usage``
    row per phone with the Redis counters and the ledger count, ``mismatch`` and a
    ``quota:mismatch`` alert where they differ. Idempotent (UPSERT on (phone_id, usage_date)).

    Nothing is reset: quota keys are per business day (``quota:wa:{phone}:{YYYY-MM-DD}``) and
    expire after 48 h, so a new day starts from a new key. The job also creates today's zero
    key for every enabled ACTIVE phone, so the runbook's morning check (``redis-cli KEYS
    "quota:wa:*:$(date +%Y-%m-%d)" | wc -l``) counts one key per phone.
    """
    day = date.fromisoformat(str(data["date"])) if data.get("date") else service.yesterday()
    async with transaction() as session:
        report = await service.close_day(session, day)
        active = await service.active_phone_ids(session)
    report["todayKeysCreated"] = await service.ensure_zero_keys(active, service.today())
    if report["mismatches"]:
        ctx.log.warning("quota.mismatch", date=report["date"], phones=report["mismatches"])
    return report


schedule(names.QUOTA_RESET, "0 0 * * *", job_name="reset", tz="Europe/Bucharest")
