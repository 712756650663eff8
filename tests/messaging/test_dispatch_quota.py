"""Dispatch promises exactly the quota the phones have left, across its batches and while the
phone queues are already reserving quota for rows dispatched a moment earlier."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from cerniq.config import get_settings
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.messaging.dispatch import dispatch
from cerniq.models import GoldCommunicationLog
from cerniq.models.enums import MessageStatus
from cerniq.quota.guardian import QuotaGuardian
from tests.fixtures.outreach import add_leads, add_phones, add_sequence, count_messages

PHONES, QUOTA = 3, 4


@pytest.fixture(autouse=True)
def _always_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERNIQ_BUSINESS_HOURS_ALWAYS_OPEN", "true")
    get_settings.cache_clear()


async def _per_phone() -> dict[str, int]:
    async with transaction() as session:
        rows = (await session.execute(select(GoldCommunicationLog.phone_id))).scalars().all()
    counts: dict[str, int] = {}
    for phone in rows:
        assert phone is not None
        counts[phone] = counts.get(phone, 0) + 1
    return counts


async def test_every_unit_of_quota_is_promised_across_batches(tenant: Any) -> None:
    await add_phones(tenant, PHONES, quota=QUOTA)
    await add_sequence(tenant)
    await add_leads(tenant, PHONES * QUOTA + 1)

    report = await dispatch(batch_size=5)

    assert report.whatsapp == PHONES * QUOTA
    assert report.waiting_quota == 1
    assert report.batches == 3
    assert sorted((await _per_phone()).values()) == [QUOTA] * PHONES


async def test_a_row_reserved_but_still_queued_is_counted_once(tenant: Any) -> None:
    """A phone's job reserves the quota in Redis and only then commits the row as SENDING: a
    dispatch reading in between must not count that row both as spent and as promised."""
    await add_phones(tenant, PHONES, quota=QUOTA)
    await add_sequence(tenant)
    await add_leads(tenant, PHONES * QUOTA + 1)

    first = await dispatch(batch_size=5, max_batches=1)
    assert first.whatsapp == 5
    async with transaction() as session:
        queued = (await session.execute(select(GoldCommunicationLog))).scalars().all()
    assert {m.status for m in queued} == {MessageStatus.QUEUED}
    # the send job of two of the rows has reserved (Redis) but not yet committed SENDING
    day = BusinessClock.from_settings(get_settings()).business_day(utcnow())
    guardian = QuotaGuardian(get_redis())
    for message in queued[:2]:
        assert message.phone_id is not None
        reservation = await guardian.reserve(
            phone_id=message.phone_id,
            day=day,
            reservation_id=str(message.id),
            cost=1,
            limit=QUOTA,
            followup_cap=500,
        )
        assert reservation.allowed

    rest = await dispatch(batch_size=5)

    assert rest.whatsapp == PHONES * QUOTA - 5
    assert rest.waiting_quota == 1
    assert await count_messages(status=MessageStatus.QUEUED) == PHONES * QUOTA
    assert sorted((await _per_phone()).values()) == [QUOTA] * PHONES
