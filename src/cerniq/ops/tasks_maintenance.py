"""Maintenance jobs: the weekly maintenance (Sunday 02:00 Europe/Bucharest, runbook 10.1).

Imported from :mod:`cerniq.ops.tasks` so the worker discovers it.
"""

from __future__ import annotations

from typing import Any

from cerniq.ops import maintenance
from cerniq.worker import names
from cerniq.worker.registry import JobContext, schedule, task


@task(names.MAINTENANCE_WEEKLY, job_name="weekly")
async def weekly_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Archive, vacuum, clean completed jobs, trim DLQs, prune payloads, write the report."""
    return (await maintenance.weekly(ctx.settings, actor="scheduler")).as_dict()


schedule(names.MAINTENANCE_WEEKLY, "0 2 * * 0", job_name="weekly", tz="Europe/Bucharest")
