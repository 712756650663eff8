"""The outbox relay: PostgreSQL rows are the truth, jobs are transport.

A QUEUED / SENDING / AMBIGUOUS row whose job is gone (the process died between commit and
push, Redis lost its data, an operator deleted a queue key) is enqueued again under the same
job id. A job that still exists is left alone, so running the relay twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.messaging import repository
from cerniq.messaging.service import job_for
from cerniq.models import GoldCommunicationLog
from cerniq.models.enums import MessageStatus
from cerniq.worker.enqueue import submit
from cerniq.worker.queues import get_queue

LIVE_STATES = {"waiting", "active", "delayed", "prioritized", "waiting-children", "paused"}


@dataclass
class RelayReport:
    checked: int = 0
    requeued: int = 0


async def relay(*, older_than: timedelta = timedelta(seconds=60), everything: bool = False) -> RelayReport:
    """Re-enqueue in-flight rows without a live job. ``everything`` ignores the age (recovery)."""
    report = RelayReport()
    after = None
    cutoff = utcnow() - older_than
    while True:
        async with transaction() as session:
            if everything:
                rows = await repository.all_in_flight(session, after_id=after, limit=500)
            else:
                rows = await repository.stale_in_flight(session, older_than=cutoff, limit=500)
            new_contacts = {
                r.id
                for r in rows
                if not await repository.had_whatsapp_contact(session, r.lead_journey_id, exclude=r.id)
            }
        if not rows:
            break
        for row in rows:
            report.checked += 1
            if await ensure_job(row, new_contact=row.id in new_contacts):
                report.requeued += 1
        if not everything or len(rows) < 500:
            break
        after = rows[-1].id
    return report


async def ensure_job(row: GoldCommunicationLog, *, new_contact: bool) -> bool:
    """Make sure ``row`` has a live job; returns True when one had to be added."""
    if row.status not in repository.IN_FLIGHT or (row.phone_id is None and row.channel.value == "WHATSAPP"):
        return False
    request = job_for(row, new_contact=new_contact and row.status == MessageStatus.QUEUED)
    queue = get_queue(request.queue)
    assert request.job_id is not None
    state = await queue.getJobState(request.job_id)
    if state in LIVE_STATES:
        return False
    if state != "unknown":
        await queue.remove(request.job_id)  # completed/failed while the row is still in flight
    else:
        job = await queue.getJob(request.job_id)
        if job is not None:
            await queue.remove(request.job_id)  # an orphan hash (its list was deleted by hand)
    request.run_at = None
    await submit(request)
    return True
