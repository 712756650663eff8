"""Phone queue leases among several worker processes (in one test process, real Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cerniq.config import get_settings
from cerniq.kit.redis import get_queue_redis
from cerniq.worker.runner import WorkerProcess, lease_key
from tests.fixtures.outreach import add_phones

pytestmark = pytest.mark.asyncio(loop_scope="session")

QUEUES = [f"q:wa:phone_{i:02d}" for i in range(1, 7)]


async def _owners() -> dict[str, str | None]:
    values = await get_queue_redis().mget([lease_key(q) for q in QUEUES])
    return dict(zip(QUEUES, values, strict=True))


async def _wait_all_leased(timeout: float = 20.0) -> dict[str, str | None]:
    deadline = asyncio.get_running_loop().time() + timeout
    owners = await _owners()
    while not all(owners.values()) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        owners = await _owners()
    return owners


def _worker(**kwargs: Any) -> WorkerProcess:
    return WorkerProcess(get_settings(), run_scheduler=False, grace_seconds=2, **kwargs)


async def test_processes_given_their_phone_queues_take_all_of_them(tenant: Any) -> None:
    await add_phones(tenant, 6)
    first = _worker(queues=QUEUES[0::2])
    second = _worker(queues=QUEUES[1::2])
    await first.start()
    await second.start()
    try:
        owners = await _wait_all_leased()
        assert all(owners.values()), f"phone queues left without a worker: {owners}"
        assert {q for q, o in owners.items() if o == first.id} == set(QUEUES[0::2])
        assert {q for q, o in owners.items() if o == second.id} == set(QUEUES[1::2])
    finally:
        await first.stop()
        await second.stop()


async def test_processes_serving_every_phone_share_them_evenly(tenant: Any) -> None:
    await add_phones(tenant, 6)
    first = _worker()
    await first.start()
    second = _worker()
    try:
        owners = await _wait_all_leased()
        assert set(owners.values()) == {first.id}  # alone, it serves every phone
        await second.start()
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            owners = await _owners()
            mine = sum(1 for o in owners.values() if o == first.id)
            if all(owners.values()) and mine == 3:
                break
            await asyncio.sleep(0.3)
        assert all(owners.values()), f"phone queues left without a worker: {owners}"
        assert sorted(owners.values()).count(first.id) == 3
        assert sorted(owners.values()).count(second.id) == 3
    finally:
        await second.stop()
        await first.stop()
