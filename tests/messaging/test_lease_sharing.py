"""Several worker processes share the phone queues out evenly, and take over a stopped one's."""

from __future__ import annotations

from typing import Any

from cerniq.config import get_settings
from cerniq.worker.runner import WorkerProcess
from tests.fixtures.outreach import add_phones, wait_for


async def test_two_workers_split_the_phones_and_one_takes_all_when_the_other_stops(
    tenant: Any, sandbox: Any
) -> None:
    await add_phones(tenant, 4)
    first = WorkerProcess(get_settings(), grace_seconds=5)
    second = WorkerProcess(get_settings(), grace_seconds=5)
    await first.start()
    try:

        async def first_has_all() -> bool:
            return len(first.phone_workers) == 4

        await wait_for(first_has_all, timeout=20)
        await second.start()

        async def split() -> bool:
            return len(first.phone_workers) == 2 and len(second.phone_workers) == 2

        await wait_for(split, timeout=30)
        assert set(first.phone_workers).isdisjoint(second.phone_workers)

        await second.stop()

        async def back_to_one() -> bool:
            return len(first.phone_workers) == 4

        await wait_for(back_to_one, timeout=30)
    finally:
        await first.stop()
        if second.phone_workers:
            await second.stop()
