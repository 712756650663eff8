"""Operations jobs: the alert monitor, every minute on ``monitor:alerts``.

One tick checks the conditions watched by polling (DLQ overflow, queue backlog and stalls,
degraded phone pool) and resolves those that cleared, re-opens alerts whose silence ended, and
escalates unacknowledged HIGH/CRITICAL alerts (L2 after 30 min, L3 after 2 h).
"""

from __future__ import annotations

from typing import Any

from cerniq.ops import monitor
from cerniq.worker import names
from cerniq.worker.registry import JobContext, schedule, task


@task(names.MONITOR_ALERTS)
async def alerts_tick(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the alert conditions, expire silences, escalate (cron every minute)."""
    return await monitor.tick(ctx.settings)


schedule(names.MONITOR_ALERTS, "* * * * *", job_name="alerts")

from cerniq.ops import tasks_maintenance  # noqa: E402, F401
