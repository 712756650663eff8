"""T1, T5, T6: enqueue inside a rolled-back transaction, concurrent dispatchers (tasks and
processes), one in-flight automated message per lead, two schedulers ticking at once."""

from __future__ import annotations

import asyncio
import collections
import json
import subprocess
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cerniq.kit.db import transaction
from cerniq.messaging.dispatch import dispatch
from cerniq.messaging.service import AUTOMATION, queue_message
from cerniq.models import GoldCommunicationLog, GoldLeadJourney
from cerniq.models.enums import Channel
from cerniq.worker import names
from cerniq.worker.names import phone_queue
from cerniq.worker.queues import get_queue
from cerniq.worker.runner import WorkerProcess
from tests.fixtures.outreach import add_leads, add_phones, add_sequence, count_messages
from tests.reliability.conftest import CERNIQ

pytestmark = pytest.mark.reliability


async def _jobs(queue: str) -> int:
    counts = await get_queue(queue).getJobCounts(
        "waiting", "active", "delayed", "prioritized", "completed", "failed"
    )
    return sum(int(v) for v in counts.values())


async def _one_row_per_lead(expected: int) -> None:
    async with transaction() as session:
        leads = list((await session.execute(select(GoldCommunicationLog.lead_journey_id))).scalars())
    assert len(leads) == expected
    assert set(collections.Counter(leads).values()) == {1}


async def test_enqueue_in_a_rolled_back_transaction_runs_nothing(tenant: Any) -> None:
    (phone,) = await add_phones(tenant, 1)
    (lead,) = await add_leads(tenant, 1)

    async def queue_then_fail() -> None:
        async with transaction() as session:
            journey = await session.get(GoldLeadJourney, lead)
            assert journey is not None
            await queue_message(
                session,
                journey,
                channel=Channel.WHATSAPP,
                content="Bună ziua!",
                origin=AUTOMATION,
                phone_id=phone,
            )
            raise RuntimeError("the request failed after queueing")

    with pytest.raises(RuntimeError):
        await queue_then_fail()
    assert await count_messages() == 0
    assert await _jobs(phone_queue(phone)) == 0


async def test_two_dispatches_in_one_process_queue_each_lead_once(tenant: Any, sandbox: Any) -> None:
    phones = await add_phones(tenant, 2)
    await add_sequence(tenant)
    await add_leads(tenant, 60)
    first, second = await asyncio.gather(dispatch(batch_size=7), dispatch(batch_size=7))
    assert first.whatsapp + second.whatsapp == 60
    assert first.whatsapp > 0 and second.whatsapp > 0  # they really ran side by side
    await _one_row_per_lead(60)
    assert sum([await _jobs(phone_queue(p)) for p in phones]) == 60


async def test_two_dispatch_processes_queue_each_lead_once(tenant: Any, sandbox: Any) -> None:
    phones = await add_phones(tenant, 2)
    await add_sequence(tenant)
    await add_leads(tenant, 80)
    procs = [
        subprocess.Popen([CERNIQ, "dispatch", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()[-2000:]
        reports.append(json.loads(out.decode().strip().splitlines()[-1]))
    assert sum(r["queuedWhatsapp"] for r in reports) == 80
    await _one_row_per_lead(80)
    assert sum([await _jobs(phone_queue(p)) for p in phones]) == 80


async def test_a_lead_never_has_two_automated_messages_in_flight(tenant: Any) -> None:
    (phone,) = await add_phones(tenant, 1)
    (lead,) = await add_leads(tenant, 1)
    gate = asyncio.Event()

    async def queue_one(text: str) -> None:
        async with transaction() as session:
            journey = await session.get(GoldLeadJourney, lead)
            assert journey is not None
            await queue_message(
                session, journey, channel=Channel.WHATSAPP, content=text, origin=AUTOMATION, phone_id=phone
            )
            await gate.wait()

    tasks = [asyncio.create_task(queue_one("unu")), asyncio.create_task(queue_one("doi"))]
    await asyncio.sleep(0.3)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(1 for r in results if isinstance(r, IntegrityError)) == 1
    assert await count_messages() == 1
    assert await _jobs(phone_queue(phone)) == 1


async def test_two_workers_upserting_schedules_make_one_job_per_tick(sandbox: Any) -> None:
    queues = [names.DISPATCH, names.MAINTENANCE_OUTBOX]
    workers = [WorkerProcess(queues=queues, serve_phones=False) for _ in range(2)]
    await asyncio.gather(*(w.start() for w in workers))
    try:
        await asyncio.gather(*(w.upsert_schedules() for w in workers))  # and once more each
        for queue in queues:
            schedulers = await get_queue(queue).getJobSchedulers()
            assert len(schedulers) == 1, queue
            delayed = await get_queue(queue).getJobCounts("delayed", "waiting", "active")
            assert int(delayed["delayed"]) + int(delayed["waiting"]) + int(delayed["active"]) == 1, queue
    finally:
        await asyncio.gather(*(w.stop() for w in workers))
