"""Review jobs: the SLA monitor every minute and Slack notice retries."""

from __future__ import annotations

from typing import Any

from cerniq.reviews import notify
from cerniq.reviews.service import check_slas
from cerniq.worker import names
from cerniq.worker.registry import JobContext, schedule, task


@task(names.HUMAN_SLA, job_name="sla-check")
async def sla_check_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Flag reviews past their SLA, alert and escalate (runbook 5.1)."""
    report = await check_slas()
    return report.as_dict()


@task(names.HUMAN_NOTIFY, job_name="slack")
async def slack_retry_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Post a review notice that failed the first time; raising makes BullMQ retry it."""
    posted = await notify.post_slack(str(data["text"]))
    return {"posted": posted, "key": data.get("key")}


schedule(names.HUMAN_SLA, "* * * * *", job_name="sla-check")
