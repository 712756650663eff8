"""The WhatsApp send path end to end: dispatch, the phone queue, the sandbox over HTTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.messaging.dispatch import dispatch
from cerniq.models import GoldCommunicationLog, GoldLeadJourney, LeadStateHistory
from cerniq.models.enums import LeadState, MessageStatus
from cerniq.webhooks.delivery import poll_delivery_status
from tests.fixtures.outreach import add_leads, add_phones, add_sequence, count_messages, wait_for
from tests.messaging.conftest import sent_messages


async def test_a_cold_lead_is_contacted_once_and_moves_to_contacted_wa(
    tenant: Any, sandbox: Any, worker: Any
) -> None:
    await add_phones(tenant, 2)
    await add_sequence(tenant)
    (lead,) = await add_leads(tenant, 1)

    report = await dispatch()
    assert report.whatsapp == 1

    async def sent() -> bool:
        return await count_messages(status=MessageStatus.SENT) == 1

    await wait_for(sent)
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
        row = (await session.execute(select(GoldCommunicationLog))).scalar_one()
        history = (await session.execute(select(LeadStateHistory))).scalars().all()
    assert journey is not None
    assert journey.current_state == LeadState.CONTACTED_WA
    assert journey.assigned_phone_id == row.phone_id
    assert journey.next_action_at is not None  # the follow-up step is scheduled
    assert row.quota_cost == 1
    assert row.external_message_id
    assert row.thread_id is None  # one vendor call per send: the chat comes later
    assert [(h.from_state, h.to_state) for h in history] == [(LeadState.COLD, LeadState.CONTACTED_WA)]
    messages = sent_messages(sandbox)
    assert len(messages) == 1
    assert "Agro Ferma 1 SRL" in messages[0]["text"]

    # dispatch again: nothing is due, nothing is sent twice
    again = await dispatch()
    assert again.claimed == 0

    # the first delivery poll records the chat on the row and on the lead
    await poll_delivery_status()
    async with transaction() as session:
        polled = await session.get(GoldCommunicationLog, row.id)
        journey = await session.get(GoldLeadJourney, lead)
    assert polled is not None and journey is not None
    assert polled.thread_id and polled.thread_id == journey.wa_chat_id
    assert polled.thread_id == str(messages[0]["chat_id"])


async def test_dispatch_spreads_new_contacts_and_respects_the_quota(
    tenant: Any, sandbox: Any, worker: Any
) -> None:
    await add_phones(tenant, 2, quota=3)
    await add_sequence(tenant)
    await add_leads(tenant, 10)
    report = await dispatch()
    assert report.whatsapp == 6
    assert report.waiting_quota == 4

    async def all_sent() -> bool:
        return await count_messages(status=MessageStatus.SENT) == 6

    await wait_for(all_sent)
    per_phone: dict[str, int] = {}
    for message in sent_messages(sandbox):
        per_phone[message["account_phone"]] = per_phone.get(message["account_phone"], 0) + 1
    assert sorted(per_phone.values()) == [3, 3]
    async with transaction() as session:
        alerts = (await session.execute(select(GoldLeadJourney.next_action_at))).scalars().all()
    assert len(alerts) == 10


async def test_a_number_failed_as_not_on_whatsapp_takes_the_email_route_at_once(
    tenant: Any, sandbox: Any, worker: Any
) -> None:
    sandbox.control("POST", "/_control/timelinesai/config", json={"status_delays": {"sent": 0}})
    await add_phones(tenant, 1)
    await add_sequence(tenant, delay_hours=72)
    (lead,) = await add_leads(tenant, 1, start=10000, email=True)  # +40722010000: not on WhatsApp

    assert (await dispatch()).whatsapp == 1

    async def sent() -> bool:
        return await count_messages(status=MessageStatus.SENT) == 1

    await wait_for(sent)
    async with transaction() as session:
        waiting = await session.get(GoldLeadJourney, lead)
    assert waiting is not None and waiting.next_action_at is not None
    assert waiting.next_action_at > utcnow() + timedelta(hours=71)  # the WhatsApp follow-up

    report = await poll_delivery_status()
    assert report.failed == 1
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
        row = (await session.execute(select(GoldCommunicationLog))).scalar_one()
    assert journey is not None
    assert row.status == MessageStatus.FAILED and row.error_code == "INVALID_RECIPIENT"
    assert row.quota_cost == 0
    assert journey.whatsapp_invalid
    # no three days' wait for a WhatsApp follow-up that cannot arrive: the next step goes by email
    again = await dispatch()
    assert (again.whatsapp, again.email) == (0, 1)
