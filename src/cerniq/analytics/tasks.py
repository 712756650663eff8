"""Analytics jobs: the ``outreach_daily_stats`` roll-up, every minute for today and at 00:10
(Europe/Bucharest) for yesterday, so the closed day is final; the 00:10 run also rolls up any
closed day of the last ``BACKFILL_DAYS`` without a row or breakdowns (after an upgrade, or a
night the job did not run); every minute, the counts of ``analytics.snapshots``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cerniq.analytics import repository, service, snapshots
from cerniq.kit.db import transaction
from cerniq.worker import names
from cerniq.worker.registry import JobContext, schedule, task

BACKFILL_DAYS = 92  # the console's longest analytics range


@task(names.MAINTENANCE_STATS, job_name="daily-stats")
async def rollup_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Roll up today (``{"day": "yesterday"}``: yesterday) for every tenant."""
    day = service.today()
    if data.get("day") == "yesterday":
        day -= timedelta(days=1)
    filled = 0
    async with transaction() as session:
        tenants = await service.rollup_all(session, day)
        if data.get("day") == "yesterday":
            for tenant_id in await repository.tenant_ids(session):
                first = day - timedelta(days=BACKFILL_DAYS - 1)
                filled += len(await service.backfill(session, tenant_id, first, day))
    return {"day": day.isoformat(), "tenants": tenants, "backfilled": filled}


@task(names.MAINTENANCE_STATS, job_name="snapshots")
async def snapshots_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Take the counts the dashboard and the sequence list show (``analytics.snapshots``)."""
    async with transaction() as session:
        return {"tenants": await snapshots.refresh(session)}


schedule(names.MAINTENANCE_STATS, "* * * * *", job_name="snapshots", scheduler_id="cron-snapshots")
schedule(names.MAINTENANCE_STATS, "* * * * *", job_name="daily-stats", scheduler_id="cron-daily-stats-today")
schedule(
    names.MAINTENANCE_STATS,
    "10 0 * * *",
    job_name="daily-stats",
    data={"day": "yesterday"},
    tz="Europe/Bucharest",
    scheduler_id="cron-daily-stats-yesterday",
)
