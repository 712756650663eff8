"""The quota guardian against real Redis (DB 9, flushed around every test).

Races run both as coroutines on one client and as separate OS processes, each with its own
connection: the Lua script, not the caller, is what keeps the counter from overshooting.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta
from multiprocessing.queues import Queue as MPQueue
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest
import pytest_asyncio
import redis
from redis.asyncio import Redis

from cerniq.config import Settings
from cerniq.quota import (
    QuotaGuardian,
    ReservationRequest,
    followup_key,
    jitter_delay,
    quota_key,
    reservations_key,
)
from tests.conftest import REDIS_BASE

# the test session's private redis-server (tests/conftest.py), DB 9
REDIS_URL = f"{REDIS_BASE}/9"
DAY = date(2026, 11, 26)
PHONE = "phone_01"
KEY = "quota:wa:phone_01:2026-11-26"
TTL = 172_800


@pytest.fixture
def sync_redis() -> Iterator[redis.Redis]:
    client: redis.Redis = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest_asyncio.fixture(loop_scope="session")
async def r() -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(REDIS_URL, decode_responses=True)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def guardian(r: Redis) -> QuotaGuardian:
    return QuotaGuardian(r)


async def reserve(g: QuotaGuardian, rid: str, *, cost: int = 1, limit: int = 200, cap: int = 500) -> Any:
    return await g.reserve(
        phone_id=PHONE, day=DAY, reservation_id=rid, cost=cost, limit=limit, followup_cap=cap
    )


# --- keys the runbook reads --------------------------------------------------------------


def test_key_format() -> None:
    assert quota_key("phone_01", DAY) == KEY
    assert followup_key("phone_01", DAY) == "quota:fu:wa:phone_01:2026-11-26"
    assert reservations_key("phone_01", DAY) == "quota:res:wa:phone_01:2026-11-26"


async def test_runbook_reads_the_counter_and_counts_only_it(guardian: QuotaGuardian, r: Redis) -> None:
    assert (await reserve(guardian, "new-1")).allowed
    assert (await reserve(guardian, "fu-1", cost=0)).allowed
    # redis-cli GET "quota:wa:phone_01:$(date +%Y-%m-%d)" -> plain integer string
    assert await r.get(KEY) == "1"
    # redis-cli KEYS "quota:wa:*:$(date +%Y-%m-%d)" | wc -l -> one key per phone
    assert await r.keys("quota:wa:*:2026-11-26") == [KEY]
    assert sorted(await r.keys("*")) == [
        "quota:fu:wa:phone_01:2026-11-26",
        "quota:res:wa:phone_01:2026-11-26",
        KEY,
    ]


async def test_every_key_has_the_48h_ttl(guardian: QuotaGuardian, r: Redis) -> None:
    await reserve(guardian, "new-1")
    await reserve(guardian, "fu-1", cost=0)
    for key in (KEY, followup_key(PHONE, DAY), reservations_key(PHONE, DAY)):
        assert 172_000 <= await r.ttl(key) <= TTL, key


async def test_counter_set_by_runbook_commands_is_honoured(guardian: QuotaGuardian, r: Redis) -> None:
    # Runbook 2.3: redis-cli SET "quota:wa:{phone_id}:$(date +%Y-%m-%d)" "0" EX 172800
    await r.set(KEY, "0", ex=TTL)
    assert (await reserve(guardian, "a")).used == 1
    # Runbook 3.3 manual reset: SET "0" then EXPIRE 172800
    await r.set(KEY, "199")
    await r.expire(KEY, TTL)
    first = await reserve(guardian, "b")
    assert (first.allowed, first.used, first.remaining) == (True, 200, 0)
    refused = await reserve(guardian, "c")
    assert (refused.allowed, refused.reason, refused.used) == (False, "QUOTA_EXCEEDED", 200)
    await r.set(KEY, "0")
    await r.expire(KEY, TTL)
    assert (await reserve(guardian, "c")).used == 1


# --- reserve ---------------------------------------------------------------------------


async def test_new_contact_increments(guardian: QuotaGuardian) -> None:
    await guardian.set_usage(PHONE, DAY, 50)
    res = await reserve(guardian, "row-1")
    assert res.allowed
    assert res.reason == "QUOTA_OK"
    assert (res.used, res.limit, res.remaining, res.cost_applied) == (51, 200, 149, 1)
    assert await guardian.usage(PHONE, DAY) == 51


async def test_limit_is_never_exceeded(guardian: QuotaGuardian, r: Redis) -> None:
    await guardian.set_usage(PHONE, DAY, 200)
    res = await reserve(guardian, "row-1")
    assert not res.allowed
    assert res.reason == "QUOTA_EXCEEDED"
    assert (res.used, res.remaining, res.cost_applied) == (200, 0, 0)
    assert await r.get(KEY) == "200"
    assert await guardian.reservations(PHONE, DAY) == {}


async def test_same_reservation_id_spends_once(guardian: QuotaGuardian, r: Redis) -> None:
    await guardian.set_usage(PHONE, DAY, 199)
    first = await reserve(guardian, "wa-row-1")
    retry = await reserve(guardian, "wa-row-1")
    assert (first.allowed, first.reason, first.cost_applied) == (True, "QUOTA_OK", 1)
    # a retry at the limit is still allowed: it was paid for
    assert (retry.allowed, retry.reason, retry.cost_applied) == (True, "ALREADY_RESERVED", 0)
    assert retry.used == 200
    assert await r.get(KEY) == "200"
    assert await guardian.reservations(PHONE, DAY) == {"wa-row-1": 1}


async def test_follow_up_at_full_quota_does_not_touch_the_counter(guardian: QuotaGuardian, r: Redis) -> None:
    await guardian.set_usage(PHONE, DAY, 200)
    res = await reserve(guardian, "fu-1", cost=0)
    assert (res.allowed, res.reason, res.cost_applied) == (True, "QUOTA_OK", 0)
    assert (res.used, res.followups_used) == (200, 1)
    assert await r.get(KEY) == "200"
    assert await guardian.followups(PHONE, DAY) == 1


async def test_follow_up_cap(guardian: QuotaGuardian) -> None:
    await guardian.set_usage(PHONE, DAY, 200)
    for i in range(3):
        assert (await reserve(guardian, f"fu-{i}", cost=0, cap=3)).allowed
    over = await reserve(guardian, "fu-3", cost=0, cap=3)
    assert (over.allowed, over.reason, over.followups_used) == (False, "FOLLOWUP_CAP_EXCEEDED", 3)
    # an earlier follow-up retried is still fine
    assert (await reserve(guardian, "fu-0", cost=0, cap=3)).reason == "ALREADY_RESERVED"
    # a definite failure gives a slot back
    assert await guardian.release(phone_id=PHONE, day=DAY, reservation_id="fu-1")
    assert (await reserve(guardian, "fu-3", cost=0, cap=3)).allowed
    assert await guardian.followups(PHONE, DAY) == 3
    assert await guardian.usage(PHONE, DAY) == 200


async def test_days_and_phones_are_separate(guardian: QuotaGuardian) -> None:
    await guardian.set_usage(PHONE, DAY, 200)
    assert not (await reserve(guardian, "x")).allowed
    tomorrow = DAY + timedelta(days=1)
    res = await guardian.reserve(
        phone_id=PHONE, day=tomorrow, reservation_id="x", cost=1, limit=200, followup_cap=500
    )
    assert (res.allowed, res.used) == (True, 1)
    other = await guardian.reserve(
        phone_id="phone_02", day=DAY, reservation_id="x", cost=1, limit=200, followup_cap=500
    )
    assert (other.allowed, other.used) == (True, 1)
    assert await guardian.usage_many(["phone_01", "phone_02", "phone_03"], DAY) == {
        "phone_01": 200,
        "phone_02": 1,
        "phone_03": 0,
    }
    assert await guardian.usage_many([], DAY) == {}


async def test_usage_and_reserved_says_which_rows_already_hold_quota(guardian: QuotaGuardian) -> None:
    for rid, cost in (("a", 1), ("b", 1), ("f", 0)):
        await guardian.reserve(
            phone_id=PHONE, day=DAY, reservation_id=rid, cost=cost, limit=200, followup_cap=500
        )
    used, reserved = await guardian.usage_and_reserved(
        [PHONE, "phone_02"], DAY, {PHONE: ["a", "c", "f"], "phone_02": ["b"], "phone_03": []}
    )
    assert used == {PHONE: 2, "phone_02": 0}
    assert reserved == {"a", "f"}  # "b" is reserved on phone_01, not on phone_02
    assert await guardian.usage_and_reserved([], DAY, {}) == ({}, set())


async def test_reserve_many_matches_reserve_in_order(guardian: QuotaGuardian, r: Redis) -> None:
    await guardian.set_usage(PHONE, DAY, 198)

    def req(rid: str, cost: int = 1, phone: str = PHONE) -> ReservationRequest:
        return ReservationRequest(phone, DAY, rid, cost, 200, 500)

    results = await guardian.reserve_many(
        [req("a"), req("a"), req("b"), req("c"), req("fu", cost=0), req("d", phone="phone_02")]
    )
    assert [(res.allowed, res.reason, res.used) for res in results] == [
        (True, "QUOTA_OK", 199),
        (True, "ALREADY_RESERVED", 199),
        (True, "QUOTA_OK", 200),
        (False, "QUOTA_EXCEEDED", 200),
        (True, "QUOTA_OK", 200),
        (True, "QUOTA_OK", 1),
    ]
    assert results[4].followups_used == 1
    assert await r.get(KEY) == "200"
    assert await guardian.reserve_many([]) == []
    with pytest.raises(ValueError, match="cost"):
        await guardian.reserve_many([req("e", cost=5)])
    assert await guardian.reservations(PHONE, DAY) == {"a": 1, "b": 1, "fu": 0}


# --- release ---------------------------------------------------------------------------


async def test_release_after_reserve_restores(guardian: QuotaGuardian, r: Redis) -> None:
    await guardian.set_usage(PHONE, DAY, 199)
    assert (await reserve(guardian, "row-1")).used == 200
    assert await guardian.release(phone_id=PHONE, day=DAY, reservation_id="row-1") is True
    assert await r.get(KEY) == "199"
    assert await guardian.reservations(PHONE, DAY) == {}
    assert 172_000 <= await r.ttl(KEY) <= TTL
    # released twice: nothing more to give back
    assert await guardian.release(phone_id=PHONE, day=DAY, reservation_id="row-1") is False
    assert await r.get(KEY) == "199"
    # after a release, the same id reserves (and spends) again
    again = await reserve(guardian, "row-1")
    assert (again.reason, again.used) == ("QUOTA_OK", 200)


async def test_release_of_unknown_is_a_no_op(guardian: QuotaGuardian, r: Redis) -> None:
    await guardian.set_usage(PHONE, DAY, 42)
    assert await guardian.release(phone_id=PHONE, day=DAY, reservation_id="never") is False
    assert await r.get(KEY) == "42"
    # nothing at all for that day: no key gets created
    assert await guardian.release(phone_id=PHONE, day=date(2026, 1, 5), reservation_id="never") is False
    assert await r.keys("*2026-01-05") == []


async def test_release_never_goes_below_zero(guardian: QuotaGuardian, r: Redis) -> None:
    await reserve(guardian, "row-1")
    await guardian.set_usage(PHONE, DAY, 0)  # e.g. a manual reset in between
    assert await guardian.release(phone_id=PHONE, day=DAY, reservation_id="row-1") is True
    assert await r.get(KEY) == "0"


# --- races -----------------------------------------------------------------------------


async def test_twenty_concurrent_coroutines_at_199(guardian: QuotaGuardian, r: Redis) -> None:
    await guardian.set_usage(PHONE, DAY, 199)
    results = await asyncio.gather(*(reserve(guardian, f"lead-{i}") for i in range(20)))
    allowed = [res for res in results if res.allowed]
    assert len(allowed) == 1
    assert allowed[0].used == 200
    assert {res.reason for res in results if not res.allowed} == {"QUOTA_EXCEEDED"}
    assert await r.get(KEY) == "200"
    assert len(await guardian.reservations(PHONE, DAY)) == 1


async def test_concurrent_retries_of_one_reservation_spend_once(guardian: QuotaGuardian) -> None:
    results = await asyncio.gather(*(reserve(guardian, "wa-row-7") for _ in range(20)))
    assert all(res.allowed for res in results)
    assert sorted(res.reason for res in results).count("QUOTA_OK") == 1
    assert await guardian.usage(PHONE, DAY) == 1


async def test_many_clients_many_slots(r: Redis) -> None:
    # 10 clients (separate pools), 60 contenders, 10 slots left.
    clients: list[Redis] = [Redis.from_url(REDIS_URL, decode_responses=True) for _ in range(10)]
    try:
        guardians = [QuotaGuardian(c) for c in clients]
        await guardians[0].set_usage(PHONE, DAY, 190)
        results = await asyncio.gather(
            *(reserve(guardians[i % 10], f"lead-{i}") for i in range(60)),
        )
        assert sum(res.allowed for res in results) == 10
        assert await r.get(KEY) == "200"
    finally:
        for c in clients:
            await c.aclose()


def _reserve_in_process(index: int, barrier: Barrier, out: MPQueue[tuple[int, bool, str]]) -> None:
    """Child process body: its own client, wait for everyone, then reserve once."""

    async def run() -> tuple[bool, str]:
        client: Redis = Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            g = QuotaGuardian(client)
            await g.usage(PHONE, DAY)  # connect and warm up before the race starts
            await asyncio.to_thread(barrier.wait, 60)
            res = await g.reserve(
                phone_id=PHONE, day=DAY, reservation_id=f"proc-{index}", cost=1, limit=200, followup_cap=500
            )
            return res.allowed, res.reason
        finally:
            await client.aclose()

    allowed, reason = asyncio.run(run())
    out.put((index, allowed, reason))


def test_twenty_processes_at_199(sync_redis: redis.Redis) -> None:
    sync_redis.set(KEY, "199", ex=TTL)
    ctx = multiprocessing.get_context("spawn")
    n = 20
    barrier = ctx.Barrier(n)
    out: MPQueue[tuple[int, bool, str]] = ctx.Queue()
    procs = [ctx.Process(target=_reserve_in_process, args=(i, barrier, out)) for i in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in range(n)]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    allowed = [r for r in results if r[1]]
    assert len(allowed) == 1, results
    assert {reason for _i, ok, reason in results if not ok} == {"QUOTA_EXCEEDED"}
    assert sync_redis.get(KEY) == "200"
    assert sync_redis.hgetall(reservations_key(PHONE, DAY)) == {f"proc-{allowed[0][0]}": "1"}


# --- reads and admin -------------------------------------------------------------------


async def test_set_usage_sets_ttl_and_clear_day_deletes_all(guardian: QuotaGuardian, r: Redis) -> None:
    await guardian.set_usage(PHONE, DAY, 17)
    assert await r.get(KEY) == "17"
    assert 172_000 <= await r.ttl(KEY) <= TTL
    await reserve(guardian, "a")
    await reserve(guardian, "b", cost=0)
    assert await guardian.reservations(PHONE, DAY) == {"a": 1, "b": 0}
    assert await guardian.clear_day(PHONE, DAY) == 3
    assert await r.keys("*") == []
    assert await guardian.usage(PHONE, DAY) == 0
    assert await guardian.followups(PHONE, DAY) == 0
    with pytest.raises(ValueError, match="negative"):
        await guardian.set_usage(PHONE, DAY, -1)


async def test_works_without_decoded_responses(r: Redis) -> None:
    raw: Redis = Redis.from_url(REDIS_URL)
    try:
        g = QuotaGuardian(raw, ttl_seconds=600)
        res = await reserve(g, "row-1")
        assert (res.allowed, res.reason, res.used) == (True, "QUOTA_OK", 1)
        assert (await reserve(g, "row-1")).reason == "ALREADY_RESERVED"
        assert await g.reservations(PHONE, DAY) == {"row-1": 1}
        assert await g.usage_many([PHONE], DAY) == {PHONE: 1}
        assert 0 < await r.ttl(KEY) <= 600
    finally:
        await raw.aclose()


async def test_invalid_arguments(guardian: QuotaGuardian) -> None:
    with pytest.raises(ValueError, match="cost"):
        await reserve(guardian, "x", cost=2)
    with pytest.raises(ValueError, match="empty"):
        await reserve(guardian, "")
    with pytest.raises(TypeError, match="date"):
        await guardian.usage(PHONE, datetime(2026, 11, 26, 10, 0))
    with pytest.raises(ValueError, match="phone"):
        await guardian.usage("phone:01", DAY)
    with pytest.raises(ValueError, match="ttl"):
        QuotaGuardian(guardian._redis, ttl_seconds=0)


# --- jitter ----------------------------------------------------------------------------


def _settings(base: float, spread: float) -> Settings:
    return Settings(
        _env_file=None,
        jitter_base=timedelta(seconds=base),
        jitter_spread=timedelta(seconds=spread),
    )


def test_jitter_within_bounds_and_reproducible() -> None:
    settings = _settings(30, 120)
    delays = [jitter_delay(settings) for _ in range(500)]
    assert all(timedelta(seconds=30) <= d <= timedelta(seconds=150) for d in delays)
    assert len(set(delays)) > 400  # actually random
    seeded = [jitter_delay(settings, random.Random(7)) for _ in range(3)]
    assert seeded[0] == seeded[1] == seeded[2]


def test_jitter_zero() -> None:
    assert jitter_delay(_settings(0, 0)) == timedelta(0)
    assert jitter_delay(_settings(30, 0)) == timedelta(seconds=30)
    assert timedelta(0) <= jitter_delay(_settings(0, 5)) <= timedelta(seconds=5)


async def test_reserve_many_over_several_calls_and_a_flushed_script(
    guardian: QuotaGuardian, r: Redis
) -> None:
    from cerniq.quota.guardian import BATCH

    phones = [PHONE, "phone_02", "phone_03"]
    requests = [ReservationRequest(phones[i % 3], DAY, f"r{i}", 1, 140, 500) for i in range(2 * BATCH + 50)]
    first = await guardian.reserve_many(requests[:BATCH])
    await r.script_flush()  # Redis lost its scripts (a restart): the next call loads it again
    rest = await guardian.reserve_many(requests[BATCH:] + requests[:3])
    results = first + rest
    allowed = [res for res in results[: len(requests)] if res.allowed]
    assert len(allowed) == 3 * 140  # each phone stops at its limit, whatever the call it falls in
    assert {res.reason for res in results[: len(requests)] if not res.allowed} == {"QUOTA_EXCEEDED"}
    assert [res.reason for res in results[len(requests) :]] == ["ALREADY_RESERVED"] * 3
    assert await guardian.usage_many(phones, DAY) == {p: 140 for p in phones}
    with pytest.raises(ValueError, match="spaces"):
        await guardian.reserve_many([ReservationRequest(PHONE, DAY, "two words", 1, 150, 500)])
