"""Jobs of the send path: per-phone sends, dispatch, the outbox relay."""

from __future__ import annotations

from typing import Any

from cerniq.config import get_settings
from cerniq.messaging import relay
from cerniq.messaging.dispatch import dispatch
from cerniq.messaging.whatsapp import send_job
from cerniq.worker import names
from cerniq.worker.registry import JobContext, schedule, task

task("q:wa:*", job_name="send")(send_job)


@task(names.DISPATCH)
async def dispatch_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Claim due leads and queue their messages (cron every 5 minutes, and on demand)."""
    report = await dispatch(ctx.settings)
    return report.as_dict()


@task(names.MAINTENANCE_OUTBOX)
async def relay_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Re-enqueue in-flight messages whose job was lost."""
    report = await relay.relay(older_than=ctx.settings.outbox_relay_after)
    return {"checked": report.checked, "requeued": report.requeued}


schedule(names.DISPATCH, get_settings().dispatch_cron, job_name="dispatch")
schedule(names.MAINTENANCE_OUTBOX, "* * * * *", job_name="relay")
