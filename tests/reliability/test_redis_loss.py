"""R5: Redis loses everything (FLUSHALL) mid-run; the relay and the quota resync rebuild it from
PostgreSQL. Nothing queued is lost, nothing is sent twice, the counters equal the ledger."""

from __future__ import annotations

import collections
from typing import Any

import pytest

from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.messaging import repository
from cerniq.messaging.dispatch import dispatch
from cerniq.messaging.relay import relay
from cerniq.models.enums import MessageStatus
from cerniq.quota.guardian import quota_key
from tests.fixtures.outreach import add_leads, add_phones, add_sequence, count_messages, wait_for
from tests.reliability.conftest import counters, ledger, sent_messages, today

pytestmark = pytest.mark.reliability

_RAISE_TO = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', 172800)
end
return current
"""


async def resync_quota() -> None:
    """The quota service's resync when it is there; else the ledger, applied without ever
    lowering a counter a send raised meanwhile."""
    try:
        from cerniq.quota.service import resync_day  # type: ignore[attr-defined]
    except ImportError:
        resync_day = None
    async with transaction() as session:
        if resync_day is not None:
            await resync_day(session, today())
            return
        # TODO: drop this fallback once cerniq.quota.service.resync_day has landed.
        counts = await repository.ledger_counts(session, today())
    for phone, count in counts.items():
        await get_redis().eval(_RAISE_TO, 1, quota_key(phone, today()), count)


async def test_flushall_mid_run_then_relay_and_resync_lose_nothing_and_send_nothing_twice(
    tenant: Any, sandbox: Any, phone_worker: Any
) -> None:
    phones = await add_phones(tenant, 3)
    await add_sequence(tenant)
    await add_leads(tenant, 30)
    # every send takes 0.3 s at the vendor, so the flush lands in the middle of the run
    sandbox.control(
        "POST", "/_control/timelinesai/faults", json={"mode": "hang_after_accept", "count": 30, "delay": 0.3}
    )
    report = await dispatch()
    assert report.whatsapp == 30

    async def some_sent() -> bool:
        return await count_messages(status=MessageStatus.SENT) >= 6

    await wait_for(some_sent, timeout=20)
    await get_redis().flushall()  # both the status/quota DB and the queue DB
    assert await count_messages(status=MessageStatus.SENT) < 30

    result = await relay(everything=True)
    assert result.requeued > 0
    await resync_quota()

    async def all_sent() -> bool:
        return await count_messages(status=MessageStatus.SENT) == 30

    await wait_for(all_sent, timeout=40)
    per_lead = collections.Counter(m["recipient_phone"] for m in sent_messages(sandbox))
    assert len(per_lead) == 30
    assert set(per_lead.values()) == {1}  # nobody got a second message
    assert await count_messages() == 30  # no row lost, none duplicated
    assert await counters(phones) == {p: (await ledger()).get(p, 0) for p in phones}
    assert sum((await ledger()).values()) == 30
