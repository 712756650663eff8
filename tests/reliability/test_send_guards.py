"""What a send job re-checks just before the vendor call: business hours, the emergency stop,
human takeover; and the order of a phone queue (follow-ups before new contacts)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from cerniq.config import get_settings
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.messaging import whatsapp
from cerniq.messaging.dispatch import dispatch
from cerniq.messaging.vendors import close_vendors
from cerniq.models import GoldLeadJourney, SystemState
from cerniq.models.enums import MessageStatus
from cerniq.worker.names import phone_queue
from cerniq.worker.queues import get_queue
from cerniq.worker.runner import WorkerProcess
from tests.fixtures.outreach import add_leads, add_phones, add_sequence, count_messages, wait_for
from tests.reliability.conftest import (
    delayed_until_ms,
    job_state,
    journey,
    mark_sent,
    queue_wa,
    row,
    sent_messages,
)

pytestmark = pytest.mark.reliability
BUCHAREST = ZoneInfo("Europe/Bucharest")


@pytest_asyncio.fixture(loop_scope="session")
async def start_worker(sandbox: Any) -> AsyncIterator[Any]:
    """Start a phone worker when the test is ready (after it changed settings or queued jobs)."""
    started: list[WorkerProcess] = []

    async def start() -> WorkerProcess:
        get_settings.cache_clear()
        process = WorkerProcess(
            get_settings(),
            queues=["phones"],
            lock_duration_ms=5000,
            stalled_interval_ms=2000,
            grace_seconds=5,
        )
        await process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        await process.stop()
    await close_vendors()
    whatsapp.set_clock(None)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BUCHAREST)


CLOSED = [
    ("weekday 07:00", local(2026, 12, 2, 7, 0), local(2026, 12, 2, 9, 0)),
    ("weekday 19:00", local(2026, 12, 2, 19, 0), local(2026, 12, 3, 9, 0)),
    ("Saturday", local(2026, 12, 5, 12, 0), local(2026, 12, 7, 9, 0)),
    ("Easter Monday 2026", local(2026, 4, 13, 12, 0), local(2026, 4, 14, 9, 0)),
    ("1 December", local(2026, 12, 1, 12, 0), local(2026, 12, 2, 9, 0)),
]


async def test_outside_business_hours_a_send_waits_for_the_next_opening_and_is_never_dropped(
    tenant: Any, sandbox: Any, start_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERNIQ_BUSINESS_HOURS_ALWAYS_OPEN", "false")
    (phone,) = await add_phones(tenant, 1)
    leads = await add_leads(tenant, len(CLOSED))
    await start_worker()
    waiting = []
    for (name, at, opening), lead in zip(CLOSED, leads, strict=True):
        whatsapp.set_clock(lambda at=at: at)
        message_id = await queue_wa(lead, phone)

        async def delayed(message_id: Any = message_id) -> bool:
            return await job_state(phone, message_id) == "delayed"

        await wait_for(delayed, timeout=10)
        due = await delayed_until_ms(phone, message_id)
        assert due is not None
        waited = due / 1000 - utcnow().timestamp()
        expected = (opening - at).total_seconds()
        assert abs(waited - expected) < 10, (name, waited, expected)
        assert (await row(message_id)).status == MessageStatus.QUEUED, name
        waiting.append(message_id)
    assert sent_messages(sandbox) == []

    # at the opening they all go out
    whatsapp.set_clock(lambda: local(2026, 12, 2, 10, 0))
    for message_id in waiting:
        job = await get_queue(phone_queue(phone)).getJob(f"wa-{message_id}")
        await job.promote()

    async def all_sent() -> bool:
        return await count_messages(status=MessageStatus.SENT) == len(CLOSED)

    await wait_for(all_sent, timeout=20)
    assert len(sent_messages(sandbox)) == len(CLOSED)


async def test_emergency_stop_skips_a_waiting_job_and_dispatch_queues_nothing(
    tenant: Any, sandbox: Any, start_worker: Any
) -> None:
    (phone,) = await add_phones(tenant, 1)
    await add_sequence(tenant)
    first, *_others = await add_leads(tenant, 4)
    message_id = await queue_wa(first, phone)  # already waiting on the phone queue
    async with transaction() as session:
        session.add(SystemState(key="emergency_stop", value={"active": True, "reason": "test", "by": "ops"}))
    assert await job_state(phone, message_id) in ("waiting", "prioritized")
    await start_worker()

    async def skipped() -> bool:
        return (await row(message_id)).status == MessageStatus.SKIPPED

    await wait_for(skipped, timeout=15)
    assert (await row(message_id)).error_code == "EMERGENCY_STOP"
    assert (await row(message_id)).quota_cost == 0
    assert (await journey(first)).next_action_at is not None  # due again once the stop is lifted
    report = await dispatch()
    assert report.stopped and report.whatsapp == 0
    assert await count_messages() == 1
    assert sent_messages(sandbox) == []


async def test_a_lead_taken_over_after_its_followup_was_queued_receives_nothing(
    tenant: Any, sandbox: Any, start_worker: Any
) -> None:
    (phone,) = await add_phones(tenant, 1)
    (lead,) = await add_leads(tenant, 1)
    earlier = await queue_wa(lead, phone, origin="OPERATOR")
    await mark_sent(earlier)
    followup = await queue_wa(lead, phone, new_contact=False)
    async with transaction() as session:
        found = await session.get(GoldLeadJourney, lead)
        assert found is not None
        found.is_human_controlled = True
    await start_worker()

    async def skipped() -> bool:
        return (await row(followup)).status == MessageStatus.SKIPPED

    await wait_for(skipped, timeout=15)
    assert (await row(followup)).error_code == "HUMAN_TAKEOVER"
    assert sent_messages(sandbox) == []


async def test_followups_go_before_new_contacts_on_a_phone_queue(
    tenant: Any, sandbox: Any, start_worker: Any
) -> None:
    (phone,) = await add_phones(tenant, 1)
    talked, fresh_a, fresh_b = await add_leads(tenant, 3)
    earlier = await queue_wa(talked, phone, origin="OPERATOR")
    await mark_sent(earlier)
    new_a = await queue_wa(fresh_a, phone, new_contact=True)
    new_b = await queue_wa(fresh_b, phone, new_contact=True)
    followup = await queue_wa(talked, phone, new_contact=False)  # queued last
    await start_worker()

    async def all_sent() -> bool:
        return all([(await row(m)).status == MessageStatus.SENT for m in (new_a, new_b, followup)])

    await wait_for(all_sent, timeout=20)
    order = [m["recipient_phone"] for m in sent_messages(sandbox)]
    talked_phone = (await journey(talked)).mobile_e164
    assert order[0] == talked_phone
    assert (await row(followup)).quota_cost == 0
    assert (await row(new_a)).quota_cost == 1
