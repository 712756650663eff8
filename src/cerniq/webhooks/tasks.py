"""Webhook jobs: processing of stored deliveries, the lost-job sweeper, payload retention and
the WhatsApp delivery-status poll."""

from __future__ import annotations

import uuid
from typing import Any

from cerniq.webhooks import delivery, service
from cerniq.webhooks.registry import PROVIDERS
from cerniq.worker.registry import JobContext, schedule, task

#: Housekeeping of the webhook store (sweeper every minute, retention nightly).
MAINTENANCE_WEBHOOKS = "maintenance:webhooks"
#: Polling of WhatsApp delivery / read status (TimelinesAI pushes none).
MONITOR_WA_DELIVERY = "monitor:wa:delivery"


async def process_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """``process`` jobs of ``webhook:{provider}:ingest``: act on one stored delivery."""
    outcome = await service.process_event(uuid.UUID(str(data["eventId"])), final_attempt=ctx.is_last_attempt)
    return {"outcome": outcome}


for _provider in PROVIDERS:
    task(service.ingest_queue(_provider), job_name="process", concurrency=5)(process_job)


@task(MAINTENANCE_WEBHOOKS, job_name="sweep")
async def sweep_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Re-enqueue RECEIVED deliveries whose processing job was lost (older than a minute)."""
    return await service.sweep()


@task(MAINTENANCE_WEBHOOKS, job_name="prune")
async def prune_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Replace payloads older than ``webhook_payload_retention`` with ``{"pruned": true}``."""
    return {"pruned": await service.prune_payloads(ctx.settings.webhook_payload_retention)}


@task(MONITOR_WA_DELIVERY, job_name="poll")
async def poll_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Move our WhatsApp messages to DELIVERED / READ / FAILED from ``GET /messages/{uid}``."""
    report = await delivery.poll_delivery_status(limit=int(data.get("limit") or delivery.POLL_BATCH))
    return report.as_dict()


schedule(MAINTENANCE_WEBHOOKS, "* * * * *", job_name="sweep")
schedule(MAINTENANCE_WEBHOOKS, "30 3 * * *", job_name="prune")
schedule(MONITOR_WA_DELIVERY, "*/2 * * * *", job_name="poll")
