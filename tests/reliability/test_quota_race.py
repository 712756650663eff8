"""Q1: 20 workers race for the last new contact of a phone (199 of 200 used)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

from cerniq.config import get_settings
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.redis import get_redis
from cerniq.models.enums import MessageStatus
from cerniq.quota.guardian import QuotaGuardian
from cerniq.worker.names import phone_queue
from cerniq.worker.queues import make_worker
from cerniq.worker.runner import WorkerProcess, build_processor
from tests.fixtures.outreach import add_leads, add_phones, wait_for
from tests.reliability.conftest import (
    counters,
    delayed_until_ms,
    job_state,
    ledger,
    queue_wa,
    rows,
    sent_messages,
    today,
)

pytestmark = pytest.mark.reliability


async def _twenty_queued(tenant: Any) -> tuple[str, list[Any]]:
    (phone,) = await add_phones(tenant, 1, quota=200)
    await QuotaGuardian(get_redis()).set_usage(phone, today(), 199)
    leads = await add_leads(tenant, 20)
    ids = [await queue_wa(lead, phone) for lead in leads]
    return phone, ids


async def _assert_one_sent_nineteen_wait(sandbox: Any, phone: str, ids: list[Any]) -> None:
    async def settled() -> bool:
        states = [await job_state(phone, i) for i in ids]
        return states.count("delayed") == 19 and states.count("completed") == 1

    await wait_for(settled, timeout=25)
    assert len(sent_messages(sandbox)) == 1
    assert (await counters([phone]))[phone] == 200
    assert (await ledger()).get(phone, 0) == 1  # the one new contact spent today by a row
    statuses = [r.status for r in await rows()]
    assert statuses.count(MessageStatus.SENT) == 1
    assert statuses.count(MessageStatus.QUEUED) == 19
    # the 19 wait for tomorrow's opening (the phone has no quota left and there is no other phone)
    clock = BusinessClock.from_settings(get_settings())
    tomorrow = clock.next_opening(clock.local_midnight_after(utcnow()))
    for message_id in ids:
        due = await delayed_until_ms(phone, message_id)
        if due is not None:
            assert datetime.fromtimestamp(due / 1000, tz=tomorrow.tzinfo) >= tomorrow.replace(microsecond=0)


async def test_twenty_worker_processes_race_for_the_last_new_contact(tenant: Any, sandbox: Any) -> None:
    phone, ids = await _twenty_queued(tenant)
    settings = get_settings()
    workers = [
        WorkerProcess(settings, queues=["phones"], lock_duration_ms=5000, stalled_interval_ms=2000)
        for _ in range(20)
    ]
    await asyncio.gather(*(w.start() for w in workers))
    try:
        assert sum(1 for w in workers if w.phone_workers) == 1  # one lease holder for the phone
        await _assert_one_sent_nineteen_wait(sandbox, phone, ids)
    finally:
        await asyncio.gather(*(w.stop() for w in workers))


async def test_twenty_concurrent_send_jobs_without_the_lease(tenant: Any, sandbox: Any) -> None:
    """No lease, no global concurrency: the Lua reservation alone keeps the phone at 200."""
    phone, ids = await _twenty_queued(tenant)
    queue = phone_queue(phone)
    inner = build_processor(queue, get_settings())
    running = 0
    most = 0

    async def counting(job: Any, token: str) -> Any:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.05)  # let every fetched job reach the reservation together
            return await inner(job, token)
        finally:
            running -= 1

    from cerniq.worker import registry

    registry.load_all_tasks()
    worker = make_worker(queue, counting, concurrency=20, lock_duration_ms=5000, stalled_interval_ms=2000)
    try:
        await _assert_one_sent_nineteen_wait(sandbox, phone, ids)
    finally:
        await worker.close()
    assert most >= 10  # the jobs really ran side by side


async def test_over_quota_new_contacts_move_to_a_phone_with_quota_and_are_sent_once(
    tenant: Any, sandbox: Any, phone_worker: Any
) -> None:
    """The phone filled up after dispatch promised it more: the extra new contacts move to the
    other phone; the old jobs end without sending."""
    first, second = await add_phones(tenant, 2, quota=200)
    await QuotaGuardian(get_redis()).set_usage(first, today(), 199)
    leads = await add_leads(tenant, 4)
    ids = [await queue_wa(lead, first) for lead in leads]

    async def all_sent() -> bool:
        return [r.status for r in await rows()].count(MessageStatus.SENT) == 4

    await wait_for(all_sent, timeout=25)
    messages = sent_messages(sandbox)
    assert len(messages) == 4
    assert len({m["recipient_phone"] for m in messages}) == 4
    by_account = sorted(m["account_phone"] for m in messages)
    assert by_account == ["+40700000001"] + ["+40700000002"] * 3
    assert await counters([first, second]) == {first: 200, second: 3}
    assert await ledger() == {first: 1, second: 3}
    moved = [r for r in await rows() if r.phone_id == second]
    assert {r.id for r in moved} <= set(ids) and len(moved) == 3
