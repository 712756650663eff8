"""The send jobs a worker runs at the same time share their transactions (group commit): the
rows come out exactly as one job at a time would leave them, and what is not the plain case
takes the whole procedure alone."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from cerniq.config import get_settings
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.messaging.dispatch import dispatch
from cerniq.messaging.whatsapp import (
    PREPARE_BATCHES,
    SENT_BATCHES,
    PrepareRequest,
    SentRecord,
    _record_sent_many,
)
from cerniq.models import (
    GoldCommunicationLog,
    GoldLeadJourney,
    LeadStateHistory,
    OutreachTemplate,
    SequenceEnrollment,
    WaPhoneNumber,
)
from cerniq.models.enums import LeadState, MessageStatus, PhoneStatus
from cerniq.quota.guardian import QuotaGuardian
from tests.fixtures.outreach import add_leads, add_phones, add_sequence


async def _queued(tenant: Any, count: int) -> list[GoldCommunicationLog]:
    """``count`` leads dispatched to ``count`` phones (one each): their QUEUED rows."""
    await add_phones(tenant, count)
    await add_sequence(tenant)
    await add_leads(tenant, count)
    assert (await dispatch()).whatsapp == count
    async with transaction() as session:
        query = select(GoldCommunicationLog).order_by(GoldCommunicationLog.phone_id)
        return list((await session.execute(query)).scalars())


def _request(message: GoldCommunicationLog) -> PrepareRequest:
    return PrepareRequest(message.id, BusinessClock.from_settings(get_settings()), jitter_on=False)


async def _used_today(phone_ids: list[str]) -> dict[str, int]:
    day = BusinessClock.from_settings(get_settings()).business_day(utcnow())
    return await QuotaGuardian(get_redis()).usage_many(phone_ids, day)


async def test_concurrent_jobs_are_marked_sending_and_recorded_sent_in_one_transaction_each(
    tenant: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("CERNIQ_BUSINESS_HOURS_ALWAYS_OPEN", "true")
    get_settings.cache_clear()
    queued = await _queued(tenant, 3)
    phones = [str(m.phone_id) for m in queued]

    batches = PREPARE_BATCHES.batches
    prepared = await asyncio.gather(*(PREPARE_BATCHES.submit(_request(m)) for m in queued))
    assert PREPARE_BATCHES.batches == batches + 1  # the three jobs shared one transaction
    for message, result in zip(queued, prepared, strict=True):
        assert isinstance(result, tuple)
        sent_row, mobile, account_phone, chat, _day = result
        assert sent_row.id == message.id and chat is None
        assert mobile.startswith("+40722") and account_phone.startswith("+407")
    async with transaction() as session:
        rows = (await session.execute(select(GoldCommunicationLog))).scalars().all()
    assert {r.status for r in rows} == {MessageStatus.SENDING}
    assert {r.quota_cost for r in rows} == {1}  # new contacts: each holds its reservation
    assert await _used_today(phones) == dict.fromkeys(phones, 1)

    records = [
        SentRecord(m.id, uid=f"uid-{n}", chat_id=500 + n, sent_at=utcnow()) for n, m in enumerate(queued)
    ]
    batches = SENT_BATCHES.batches
    await asyncio.gather(*(SENT_BATCHES.submit(r) for r in records))
    assert SENT_BATCHES.batches == batches + 1
    await _assert_recorded_once(queued)

    # A repeated record (a retried job) changes nothing: no second count, no second history row.
    await _record_sent_many(records)
    await _assert_recorded_once(queued)


async def _assert_recorded_once(queued: list[GoldCommunicationLog]) -> None:
    async with transaction() as session:
        rows = {r.id: r for r in (await session.execute(select(GoldCommunicationLog))).scalars()}
        journeys = (await session.execute(select(GoldLeadJourney))).scalars().all()
        history = (await session.execute(select(LeadStateHistory))).scalars().all()
        phones = (await session.execute(select(WaPhoneNumber))).scalars().all()
        template = (
            await session.execute(select(OutreachTemplate).where(OutreachTemplate.name == "Prim contact"))
        ).scalar_one()
        enrollments = (await session.execute(select(SequenceEnrollment))).scalars().all()
        chats = {
            r.lead_journey_id: r.thread_id
            for r in (await session.execute(select(GoldCommunicationLog))).scalars()
        }
    for n, message in enumerate(queued):
        row = rows[message.id]
        assert row.status == MessageStatus.SENT
        assert (row.external_message_id, row.thread_id) == (f"uid-{n}", str(500 + n))
        assert row.sent_at is not None
    for journey in journeys:
        assert journey.current_state == LeadState.CONTACTED_WA
        assert journey.messages_sent == 1
        assert journey.first_contact_at is not None
        assert journey.wa_chat_id == chats[journey.id]
        assert journey.next_action_at is not None  # the follow-up step is scheduled
    assert (
        sorted((h.from_state, h.to_state) for h in history) == [(LeadState.COLD, LeadState.CONTACTED_WA)] * 3
    )
    assert [p.total_messages_sent for p in phones] == [1, 1, 1]
    assert template.times_used == 3
    assert [(e.current_step, e.messages_sent) for e in enrollments] == [(1, 1)] * 3


async def test_a_row_that_is_not_the_plain_case_is_left_to_its_own_job(tenant: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("CERNIQ_BUSINESS_HOURS_ALWAYS_OPEN", "true")
    get_settings.cache_clear()
    queued = await _queued(tenant, 4)
    plain, taken_over, paused_phone, plain_too = queued
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, taken_over.lead_journey_id)
        phone = await session.get(WaPhoneNumber, paused_phone.phone_id)
        assert journey is not None and phone is not None
        journey.is_human_controlled = True
        phone.status = PhoneStatus.PAUSED

    # The plain row also asked twice in the batch (a stalled job run again): only one goes on.
    requests = [_request(m) for m in queued] + [_request(plain)]
    prepared = await asyncio.gather(*(PREPARE_BATCHES.submit(r) for r in requests))
    assert [isinstance(p, tuple) for p in prepared] == [True, False, False, True, False]
    assert prepared[1] is None and prepared[2] is None and prepared[4] is None

    async with transaction() as session:
        statuses = dict(
            (await session.execute(select(GoldCommunicationLog.id, GoldCommunicationLog.status))).all()
        )
        reserved = (
            await session.execute(select(func.count()).where(GoldCommunicationLog.quota_cost == 1))
        ).scalar_one()
    assert statuses[plain.id] == statuses[plain_too.id] == MessageStatus.SENDING
    # The others were not touched: their own job decides (skip, wait for the phone) as before.
    assert statuses[taken_over.id] == statuses[paused_phone.id] == MessageStatus.QUEUED
    assert reserved == 2
    used = await _used_today([str(m.phone_id) for m in queued])
    assert used == {
        str(plain.phone_id): 1,
        str(taken_over.phone_id): 0,
        str(paused_phone.phone_id): 0,
        str(plain_too.phone_id): 1,
    }


async def test_each_phone_sends_through_its_own_connection_pool(monkeypatch: Any) -> None:
    from cerniq.messaging.vendors import close_vendors, whatsapp

    monkeypatch.setenv("CERNIQ_TIMELINESAI_API_TOKEN", "sandbox-timelinesai-token")
    get_settings.cache_clear()
    try:
        assert whatsapp() is whatsapp()
        assert whatsapp(lane="wa-01") is whatsapp(lane="wa-01")
        assert whatsapp(lane="wa-01") is not whatsapp(lane="wa-02")
        assert whatsapp(lane="wa-01") is not whatsapp()
    finally:
        await close_vendors()
