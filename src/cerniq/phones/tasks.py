"""Phone jobs: the source of the phone queues the worker runner serves, and the health monitor."""

from __future__ import annotations

from typing import Any

from cerniq.kit.db import transaction
from cerniq.phones import repository
from cerniq.phones.health import check_phones
from cerniq.worker import names
from cerniq.worker.names import phone_queue
from cerniq.worker.registry import JobContext, schedule, task
from cerniq.worker.runner import set_phone_queue_source


async def enabled_phone_queues() -> list[str]:
    """``q:wa:phone_NN`` of every enabled phone, read fresh from PostgreSQL each lease round."""
    async with transaction() as session:
        return [phone_queue(pid) for pid in await repository.all_phone_ids(session, enabled_only=True)]


set_phone_queue_source(enabled_phone_queues)


@task(names.MONITOR_PHONES, job_name="check")
async def phone_health_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """``monitor:phone:health`` (every 10 minutes, and on demand): every phone of every tenant
    against TimelinesAI (:func:`cerniq.phones.health.check_phones`)."""
    async with transaction() as session:
        report = await check_phones(session)
    if not report.vendor_ok:
        ctx.log.warning("phones.health.vendor_down", error=report.vendor_error)
    return {
        "checkedAt": report.checked_at.isoformat(),
        "timelinesaiOk": report.vendor_ok,
        "summary": report.summary(),
        "changed": [p.as_dict() for p in report.phones if p.action],
        "mirrorFixed": report.mirror_fixed,
        "quotaKeysCreated": report.quota_keys_created,
    }


schedule(names.MONITOR_PHONES, "*/10 * * * *", job_name="check")
