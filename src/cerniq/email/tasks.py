"""Jobs of the email channels: cold and warm sends, the hourly analytics fetch, the breaker."""

from __future__ import annotations

from typing import Any

from cerniq.email.breaker import run_breaker
from cerniq.email.campaigns import fetch_analytics
from cerniq.email.cold import cold_send_job
from cerniq.email.config import email_settings
from cerniq.email.warm import warm_send_job
from cerniq.worker import names
from cerniq.worker.registry import JobContext, schedule, task

#: The hourly Instantly analytics fetch (status and counters, then the breaker).
EMAIL_ANALYTICS = "email:cold:analytics"

task(names.EMAIL_COLD, job_name="send", concurrency=4)(cold_send_job)
task(names.EMAIL_WARM, job_name="send", concurrency=8)(warm_send_job)


@task(EMAIL_ANALYTICS, job_name="fetch")
async def analytics_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Mirror every campaign's status and counters from Instantly, then run the breaker."""
    return await fetch_analytics()


@task(names.MONITOR_EMAIL, job_name="check")
async def deliverability_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """The deliverability breaker over every campaign, sending domain and phone."""
    return await run_breaker()


schedule(EMAIL_ANALYTICS, email_settings().email_analytics_cron, job_name="fetch")
schedule(names.MONITOR_EMAIL, email_settings().email_deliverability_cron, job_name="check")
