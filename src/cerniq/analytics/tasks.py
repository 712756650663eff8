"""Analytics jobs: the ``outreach_daily_stats`` roll-up, every 15 minutes for today and at 00:10
(Europe/Bucharest) for yesterday, so the closed day is final."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cerniq.analytics import service
from cerniq.kit.db import transaction
from cerniq.worker import names
from cerniq.worker.registry import JobContext, schedule, task


@task(names.MAINTENANCE_STATS, job_name="daily-stats")
async def rollup_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Roll up today (``{"day": "yesterday"}``: yesterday) for every tenant."""
    day = service.today()
    if data.get("day") == "yesterday":
        day -= timedelta(days=1)
    async with transaction() as session:
        tenants = await service.rollup_all(session, day)
    return {"day": day.isoformat(), "tenants": tenants}


schedule(
    names.MAINTENANCE_STATS, "*/15 * * * *", job_name="daily-stats", scheduler_id="cron-daily-stats-today"
)
schedule(
    names.MAINTENANCE_STATS,
    "10 0 * * *",
    job_name="daily-stats",
    data={"day": "yesterday"},
    tz="Europe/Bucharest",
    scheduler_id="cron-daily-stats-yesterday",
)
