"""Phone jobs. Registers the source of phone queues the worker runner serves."""

from __future__ import annotations

from cerniq.kit.db import transaction
from cerniq.phones import repository
from cerniq.worker.names import phone_queue
from cerniq.worker.runner import set_phone_queue_source


async def enabled_phone_queues() -> list[str]:
    """``q:wa:phone_NN`` of every enabled phone, read fresh from PostgreSQL each lease round."""
    async with transaction() as session:
        return [phone_queue(pid) for pid in await repository.all_phone_ids(session, enabled_only=True)]


set_phone_queue_source(enabled_phone_queues)
