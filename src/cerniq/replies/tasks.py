"""Reply jobs: the triage of every inbound message (``ai:sentiment:analyze``)."""

from __future__ import annotations

import uuid
from typing import Any

from cerniq.replies import service
from cerniq.worker import names
from cerniq.worker.registry import JobContext, task


@task(names.AI_SENTIMENT, job_name="analyze", concurrency=5)
async def analyze_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Analyse one inbound row and act on it: opt-out, reschedule, close, review or AI answer."""
    return await service.triage(uuid.UUID(str(data["messageId"])), ctx.settings)
