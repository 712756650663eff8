"""Delivered / read / failed of our WhatsApp messages, polled from the sandbox (no webhook exists)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.messaging.service import AUTOMATION
from cerniq.models import GoldCommunicationLog
from cerniq.models.enums import Channel, Direction, MessageStatus
from cerniq.providers.timelinesai.client import TimelinesAIClient
from cerniq.webhooks.delivery import poll_delivery_status
from tests.fixtures.outreach import add_leads, add_phones
from tests.webhooks.fixtures import journey_of


async def sent_row(tenant: Any, journey_id: uuid.UUID, uid: str, *, days_ago: float = 0) -> uuid.UUID:
    """A SENT WhatsApp row of ours whose vendor uid is ``uid``."""
    async with transaction() as session:
        row = GoldCommunicationLog(
            id=uuid.uuid4(),
            tenant_id=tenant.id,
            lead_journey_id=journey_id,
            channel=Channel.WHATSAPP,
            direction=Direction.OUTBOUND,
            status=MessageStatus.SENT,
            origin=AUTOMATION,
            content="Bună ziua!",
            external_message_id=uid,
            phone_id="phone_01",
            sent_at=utcnow() - timedelta(days=days_ago),
        )
        session.add(row)
        return row.id


async def status_of(row_id: uuid.UUID) -> GoldCommunicationLog:
    async with transaction() as session:
        row = await session.get(GoldCommunicationLog, row_id)
        assert row is not None
        return row


async def test_polling_moves_messages_to_delivered_read_or_failed(wh_sandbox: Any, tenant: Any) -> None:
    await add_phones(tenant, 1)
    # leads 1-3 on valid numbers; +40722010000 matches the sandbox's "not on WhatsApp" pattern
    leads = await add_leads(tenant, 3, start=1) + await add_leads(tenant, 1, start=10000)
    async with TimelinesAIClient(
        token="sandbox-timelinesai-token", base_url=wh_sandbox.timelinesai_url
    ) as vendor:
        read_uid = await vendor.send_to_phone(
            account_phone="+40700000001", phone="+40722000001", text="Salut 1"
        )
        old_uid = await vendor.send_to_phone(
            account_phone="+40700000001", phone="+40722000003", text="Salut 3"
        )
        failing_uid = await vendor.send_to_phone(
            account_phone="+40700000001", phone="+40722010000", text="Salut"
        )
        # the next message is delivered but not read for a long while
        wh_sandbox.control("POST", "/_control/timelinesai/config", {"status_delays": {"read": 3600}})
        unread_uid = await vendor.send_to_phone(
            account_phone="+40700000001", phone="+40722000002", text="Salut 2"
        )
    await asyncio.sleep(0.3)  # the sandbox moves statuses by age (sent 0.05 s, delivered 0.1 s)

    read_row = await sent_row(tenant, leads[0], read_uid)
    unread_row = await sent_row(tenant, leads[1], unread_uid)
    old_row = await sent_row(tenant, leads[2], old_uid, days_ago=4)  # outside the three-day window
    failing_row = await sent_row(tenant, leads[3], failing_uid)

    report = await poll_delivery_status()
    assert (report.checked, report.read, report.delivered, report.failed) == (3, 1, 1, 1)

    read = await status_of(read_row)
    assert read.status == MessageStatus.READ and read.read_at is not None and read.delivered_at is not None
    assert read.thread_id  # the send answered with the uid only; the poll learnt the chat
    unread = await status_of(unread_row)
    assert unread.status == MessageStatus.DELIVERED and unread.read_at is None
    failed = await status_of(failing_row)
    assert failed.status == MessageStatus.FAILED
    assert failed.error_message == "Phone number is not registered on WhatsApp"
    assert (await journey_of(leads[3])).whatsapp_invalid  # the next step takes another route
    assert (await status_of(old_row)).status == MessageStatus.SENT

    # the next run checks what is still open (the unread one) and changes nothing else
    again = await poll_delivery_status()
    assert (again.checked, again.read, again.delivered, again.failed) == (1, 0, 0, 0)
    assert (await status_of(unread_row)).status == MessageStatus.DELIVERED


async def test_a_run_is_bounded(wh_sandbox: Any, tenant: Any) -> None:
    await add_phones(tenant, 1)
    leads = await add_leads(tenant, 5)
    async with TimelinesAIClient(
        token="sandbox-timelinesai-token", base_url=wh_sandbox.timelinesai_url
    ) as vendor:
        for n, lead in enumerate(leads, start=1):
            uid = await vendor.send_to_phone(
                account_phone="+40700000001", phone=f"+40722{n:06d}", text="Salut"
            )
            await sent_row(tenant, lead, uid)
    await asyncio.sleep(0.3)
    first = await poll_delivery_status(limit=2)
    assert first.checked == 2 and first.read == 2
    second = await poll_delivery_status(limit=2)
    assert second.checked == 2 and second.read == 2  # the next two, not the same ones again
    third = await poll_delivery_status(limit=2)
    assert third.checked == 1 and third.read == 1


async def test_a_new_message_is_checked_before_those_checked_long_ago(wh_sandbox: Any, tenant: Any) -> None:
    await add_phones(tenant, 1)
    leads = await add_leads(tenant, 3)
    uids = []
    async with TimelinesAIClient(
        token="sandbox-timelinesai-token", base_url=wh_sandbox.timelinesai_url
    ) as vendor:
        for n in range(1, 4):
            uids.append(
                await vendor.send_to_phone(account_phone="+40700000001", phone=f"+40722{n:06d}", text="Salut")
            )
    await asyncio.sleep(0.3)
    # two messages of yesterday, their chat known, last checked a day ago; one sent just now
    old = [await sent_row(tenant, leads[n], uids[n], days_ago=1) for n in range(2)]
    new = await sent_row(tenant, leads[2], uids[2])
    async with transaction() as session:
        for row_id in old:
            row = await session.get(GoldCommunicationLog, row_id)
            assert row is not None
            row.thread_id, row.status_updated_at = "1", utcnow() - timedelta(days=1)
        fresh = await session.get(GoldCommunicationLog, new)
        assert fresh is not None
        fresh.status_updated_at = utcnow()

    report = await poll_delivery_status(limit=2)
    assert report.checked == 2
    assert (await status_of(new)).thread_id  # checked at once: its chat is known now
    waiting = [await status_of(row_id) for row_id in old]
    assert sum(r.status == MessageStatus.SENT for r in waiting) == 1  # the other waits its turn
