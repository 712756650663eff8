"""W1, W2, W3: ``cerniq worker`` processes SIGKILLed or SIGTERMed while a send is in flight."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from cerniq.models.enums import MessageStatus
from tests.fixtures.outreach import add_leads, add_phones, wait_for
from tests.reliability.conftest import (
    WorkerProcesses,
    counters,
    lease_holder,
    ledger,
    queue_wa,
    row,
    sent_messages,
)

pytestmark = pytest.mark.reliability

ACCOUNT = "+40700000001"


async def _holds_lease(phone: str, pid: int) -> bool:
    holder = await lease_holder(phone)
    return holder is not None and f"-{pid}-" in holder


async def _two_workers(procs: WorkerProcesses, phone: str) -> tuple[Any, Any]:
    """The first worker holds the phone's lease; the second waits to take over."""
    first = procs.start()
    await wait_for(lambda: _holds_lease(phone, first.pid), timeout=20)
    second = procs.start()
    return first, second


async def _done(message_id: Any) -> bool:
    return (await row(message_id)).status in (MessageStatus.SENT, MessageStatus.FAILED)


@pytest.mark.parametrize("mode", ["hang_after_accept", "timeout"])
async def test_sigkill_mid_send_then_takeover_sends_at_most_once(
    tenant: Any, sandbox: Any, worker_processes: WorkerProcesses, mode: str
) -> None:
    (phone,) = await add_phones(tenant, 1)
    (lead,) = await add_leads(tenant, 1)
    first, second = await _two_workers(worker_processes, phone)
    # hang_after_accept: the vendor took it and never answers; timeout: it never took it.
    sandbox.control(
        "POST",
        "/_control/timelinesai/faults",
        json={"mode": mode, "count": 1, "account_phone": ACCOUNT, "delay": 30},
    )
    message_id = await queue_wa(lead, phone)

    async def in_flight() -> bool:
        return (await row(message_id)).status == MessageStatus.SENDING

    await wait_for(in_flight, timeout=20)
    if mode == "hang_after_accept":
        await wait_for(lambda: _async_true(len(sent_messages(sandbox)) == 1), timeout=5)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)

    await wait_for(lambda: _done(message_id), timeout=40)
    final = await row(message_id)
    messages = sent_messages(sandbox)
    assert len(messages) == 1  # at most once, and here exactly once
    assert final.status == MessageStatus.SENT
    assert final.external_message_id == messages[0]["uid"]
    assert (await counters([phone]))[phone] == 1 == (await ledger())[phone]
    assert second.poll() is None  # the survivor is still serving


async def _async_true(value: bool) -> bool:
    return value


async def test_sigterm_lets_the_in_flight_send_finish_and_exits_0(
    tenant: Any, sandbox: Any, worker_processes: WorkerProcesses
) -> None:
    (phone,) = await add_phones(tenant, 1)
    leads = await add_leads(tenant, 3)
    proc = worker_processes.start(grace=10)
    await wait_for(lambda: _holds_lease(phone, proc.pid), timeout=20)
    # the vendor takes a second to answer (under the client's 1.5 s timeout)
    sandbox.control(
        "POST",
        "/_control/timelinesai/faults",
        json={"mode": "hang_after_accept", "count": 1, "account_phone": ACCOUNT, "delay": 1.0},
    )
    first = await queue_wa(leads[0], phone)

    async def in_flight() -> bool:
        return (await row(first)).status == MessageStatus.SENDING

    await wait_for(in_flight, timeout=20)
    later = [await queue_wa(lead, phone) for lead in leads[1:]]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert (await row(first)).status == MessageStatus.SENT
    # nothing is lost: what was not started is still QUEUED with its job, for the next worker
    # no new fetch after SIGTERM: the others are still QUEUED, their jobs waiting for a worker
    assert [(await row(m)).status for m in later] == [MessageStatus.QUEUED] * 2
    assert len(sent_messages(sandbox)) == 1
    # the next worker (here in this process, to keep the test short) sends the rest
    from cerniq.config import get_settings
    from cerniq.messaging.vendors import close_vendors
    from cerniq.worker.runner import WorkerProcess

    replacement = WorkerProcess(get_settings(), queues=["phones"], lock_duration_ms=5000)
    await replacement.start()
    try:
        await wait_for(lambda: _all_sent([first, *later]), timeout=30)
    finally:
        await replacement.stop()
        await close_vendors()
    assert len(sent_messages(sandbox)) == 3


async def _all_sent(ids: list[Any]) -> bool:
    return all([(await row(m)).status == MessageStatus.SENT for m in ids])


async def test_sigkill_while_many_phones_send_together_sends_each_message_at_most_once(
    tenant: Any, sandbox: Any, worker_processes: WorkerProcesses
) -> None:
    """The phones of a worker share their transactions (group commit): a kill while a batch is
    in flight on every phone still sends each message once and spends each quota once."""
    phones = await add_phones(tenant, 6)
    leads = await add_leads(tenant, 18)
    ids = [await queue_wa(lead, phones[n % 6]) for n, lead in enumerate(leads)]
    # The first send of every phone is taken by the vendor and never answered.
    sandbox.control(
        "POST",
        "/_control/timelinesai/faults",
        json={"mode": "hang_after_accept", "count": 6, "delay": 30},
    )
    first = worker_processes.start()

    async def every_phone_in_flight() -> bool:
        statuses = [(await row(m)).status for m in ids]
        return statuses.count(MessageStatus.SENDING) == 6 and len(sent_messages(sandbox)) == 6

    await wait_for(every_phone_in_flight, timeout=30)
    second = worker_processes.start()
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)

    async def all_done() -> bool:
        return all([await _done(m) for m in ids])

    await wait_for(all_done, timeout=60)
    messages = sent_messages(sandbox)
    assert len(messages) == 18
    assert len({m["recipient_phone"] for m in messages}) == 18  # nobody got a message twice
    final = [await row(m) for m in ids]
    assert {r.status for r in final} == {MessageStatus.SENT}
    assert {r.external_message_id for r in final} == {m["uid"] for m in messages}
    assert await counters(phones) == dict.fromkeys(phones, 3) == await ledger()
    assert second.poll() is None
