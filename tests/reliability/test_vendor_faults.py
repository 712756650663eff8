"""R7, D2, D3, Q2, Q4: lost responses, transient errors and invalid recipients at the vendor."""

from __future__ import annotations

from typing import Any

import pytest

from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.models import GoldLeadJourney
from cerniq.models.enums import MessageStatus
from cerniq.webhooks.delivery import poll_delivery_status
from cerniq.worker.names import phone_queue
from cerniq.worker.queues import get_queue
from tests.fixtures.outreach import add_leads, add_phones, wait_for
from tests.reliability.conftest import (
    counters,
    delayed_until_ms,
    journey,
    ledger,
    queue_wa,
    row,
    sent_messages,
)

pytestmark = pytest.mark.reliability

ACCOUNT = "+40700000001"


def fault(sandbox: Any, mode: str, count: int = 1, **extra: Any) -> None:
    sandbox.control(
        "POST",
        "/_control/timelinesai/faults",
        json={"mode": mode, "count": count, "account_phone": ACCOUNT, **extra},
    )


async def _one_queued(tenant: Any) -> tuple[str, Any, Any]:
    (phone,) = await add_phones(tenant, 1)
    (lead,) = await add_leads(tenant, 1)
    return phone, lead, await queue_wa(lead, phone)


async def _sent(message_id: Any) -> bool:
    return (await row(message_id)).status == MessageStatus.SENT


async def test_dropped_response_is_resolved_by_lookup_not_resent(
    tenant: Any, sandbox: Any, phone_worker: Any
) -> None:
    fault(sandbox, "drop_after_accept")
    phone, _lead, message_id = await _one_queued(tenant)

    await wait_for(lambda: _sent(message_id), timeout=20)
    messages = sent_messages(sandbox)
    assert len(messages) == 1
    sent = await row(message_id)
    assert sent.external_message_id == messages[0]["uid"]  # the vendor's uid, found by the lookup
    assert sent.error_code == "RESOLVED_AFTER_AMBIGUITY"
    assert sent.quota_cost == 1
    assert (await counters([phone]))[phone] == 1 == (await ledger())[phone]


async def test_timeout_where_the_vendor_never_took_it_is_sent_once_after_the_grace(
    tenant: Any, sandbox: Any, phone_worker: Any
) -> None:
    fault(sandbox, "timeout")  # held 3 s then 504, nothing recorded; our client gives up at 1.5 s
    phone, _lead, message_id = await _one_queued(tenant)

    async def ambiguous() -> bool:
        return (await row(message_id)).status == MessageStatus.AMBIGUOUS

    await wait_for(ambiguous, timeout=10)
    assert sent_messages(sandbox) == []
    assert (await counters([phone]))[phone] == 1  # an ambiguous send keeps its reservation

    await wait_for(lambda: _sent(message_id), timeout=20)
    messages = sent_messages(sandbox)
    assert len(messages) == 1
    assert (await row(message_id)).external_message_id == messages[0]["uid"]
    assert (await counters([phone]))[phone] == 1 == (await ledger())[phone]


async def test_429_and_503_are_retried_honouring_retry_after_and_charged_once(
    tenant: Any, sandbox: Any, phone_worker: Any
) -> None:
    fault(sandbox, "http_429", count=2, retry_after=0.3)
    fault(sandbox, "http_503", count=1, retry_after=0.3)
    phone, _lead, message_id = await _one_queued(tenant)

    await wait_for(lambda: _sent(message_id), timeout=20)
    assert len(sent_messages(sandbox)) == 1
    sent = await row(message_id)
    assert sent.retry_count == 3
    assert sent.quota_cost == 1
    assert (await counters([phone]))[phone] == 1 == (await ledger())[phone]


async def test_503_without_retry_after_backs_off_releases_quota_and_is_not_lost(
    tenant: Any, sandbox: Any, phone_worker: Any
) -> None:
    fault(sandbox, "http_503")
    phone, _lead, message_id = await _one_queued(tenant)

    async def backing_off() -> bool:
        return (await row(message_id)).error_code == "VENDOR_TRANSIENT"

    await wait_for(backing_off, timeout=10)
    waiting = await row(message_id)
    assert waiting.status == MessageStatus.QUEUED
    assert (await counters([phone]))[phone] == 0  # the vendor did not take it: quota given back
    due = await delayed_until_ms(phone, message_id)
    assert due is not None
    wait_s = due / 1000 - utcnow().timestamp()
    assert 5 < wait_s < 13  # 10 s backoff with jitter

    job = await get_queue(phone_queue(phone)).getJob(f"wa-{message_id}")
    await job.promote()
    await wait_for(lambda: _sent(message_id), timeout=15)
    assert len(sent_messages(sandbox)) == 1
    assert (await counters([phone]))[phone] == 1 == (await ledger())[phone]


async def test_number_not_on_whatsapp_fails_releases_quota_and_flags_the_lead(
    tenant: Any, sandbox: Any, phone_worker: Any
) -> None:
    sandbox.control("POST", "/_control/timelinesai/config", json={"status_delays": {"sent": 0}})
    (phone,) = await add_phones(tenant, 1)
    (lead,) = await add_leads(tenant, 1)
    async with transaction() as session:
        found = await session.get(GoldLeadJourney, lead)
        assert found is not None
        found.mobile_e164 = "+40722100000"  # the sandbox's "not on WhatsApp" numbers end 0000
    message_id = await queue_wa(lead, phone)
    # the vendor takes it (one call per send); the failure shows on the message afterwards
    await wait_for(lambda: _sent(message_id), timeout=15)
    assert (await counters([phone]))[phone] == 1 == (await ledger())[phone]

    report = await poll_delivery_status()
    assert report.failed == 1
    failed_row = await row(message_id)
    assert failed_row.status == MessageStatus.FAILED
    assert failed_row.error_code == "INVALID_RECIPIENT"
    assert failed_row.quota_cost == 0
    assert (await journey(lead)).whatsapp_invalid is True
    assert (await counters([phone]))[phone] == 0
    assert (await ledger()).get(phone, 0) == 0
    assert len(sent_messages(sandbox)) == 1


async def test_malformed_number_is_refused_fails_without_retry_and_flags_the_lead(
    tenant: Any, sandbox: Any, phone_worker: Any
) -> None:
    (phone,) = await add_phones(tenant, 1)
    (lead,) = await add_leads(tenant, 1)
    async with transaction() as session:
        found = await session.get(GoldLeadJourney, lead)
        assert found is not None
        found.mobile_e164 = "+123"  # the vendor answers 400 "Invalid phone number format"
    message_id = await queue_wa(lead, phone)

    async def failed() -> bool:
        return (await row(message_id)).status == MessageStatus.FAILED

    await wait_for(failed, timeout=15)
    failed_row = await row(message_id)
    assert failed_row.error_code == "INVALID_RECIPIENT"
    assert failed_row.retry_count == 0
    assert sent_messages(sandbox) == []
    assert (await journey(lead)).whatsapp_invalid is True
    assert (await counters([phone]))[phone] == 0
    assert await get_queue(phone_queue(phone)).getJobState(f"wa-{message_id}") == "completed"


async def test_transient_failures_on_every_attempt_fail_the_row_and_reschedule_the_lead(
    tenant: Any, sandbox: Any, monkeypatch: Any
) -> None:
    from cerniq.config import get_settings
    from cerniq.messaging.vendors import close_vendors
    from cerniq.worker.runner import WorkerProcess

    monkeypatch.setenv("CERNIQ_SEND_MAX_ATTEMPTS", "2")
    get_settings.cache_clear()
    fault(sandbox, "http_503", count=2, retry_after=0.2)
    phone, lead, message_id = await _one_queued(tenant)
    process = WorkerProcess(
        get_settings(), queues=["phones"], lock_duration_ms=5000, stalled_interval_ms=2000
    )
    await process.start()
    try:

        async def failed() -> bool:
            return (await row(message_id)).status == MessageStatus.FAILED

        await wait_for(failed, timeout=15)
    finally:
        await process.stop()
        await close_vendors()
    final = await row(message_id)
    assert final.error_code == "VENDOR_TRANSIENT"
    assert final.retry_count == 2
    assert sent_messages(sandbox) == []
    assert (await counters([phone]))[phone] == 0
    due = (await journey(lead)).next_action_at
    assert due is not None and due > utcnow()  # not stranded: dispatch picks it up again later
