"""Maintenance jobs: the weekly maintenance (Sunday 02:00 Europe/Bucharest, runbook 10.1) and
the nightly database backup (01:30 Europe/Bucharest, runbook 8.1: ``backups/daily/YYYY-MM-DD``).

Imported from :mod:`cerniq.ops.tasks` so the worker discovers it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cerniq.ops import backup, maintenance
from cerniq.worker import names
from cerniq.worker.registry import JobContext, schedule, task


@task(names.MAINTENANCE_WEEKLY, job_name="weekly")
async def weekly_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Archive, vacuum, clean completed jobs, trim DLQs, prune payloads, write the report."""
    return (await maintenance.weekly(ctx.settings, actor="scheduler")).as_dict()


schedule(names.MAINTENANCE_WEEKLY, "0 2 * * 0", job_name="weekly", tz="Europe/Bucharest")


@task(names.MAINTENANCE_WEEKLY, job_name="backup")
async def backup_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """``pg_dump`` into today's backup directory with its manifest (same as ``cerniq backup create``)."""
    result = await asyncio.to_thread(backup.create_backup, None, ctx.settings)
    return {"day": result.day, "path": result.path, "sizeBytes": result.size_bytes}


schedule(names.MAINTENANCE_WEEKLY, "30 1 * * *", job_name="backup", tz="Europe/Bucharest")
