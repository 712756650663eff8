"""GroupCommit: concurrent calls run as one batch; a failing batch fails only its bad item."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from cerniq.kit.batching import GroupCommit


async def test_calls_made_together_run_as_one_batch_and_later_ones_as_the_next() -> None:
    seen: list[list[int]] = []

    async def run_batch(items: Sequence[int]) -> list[int]:
        seen.append(list(items))
        await asyncio.sleep(0.01)  # calls arriving meanwhile wait for the next batch
        return [i * 10 for i in items]

    async def run_one(item: int) -> int:
        raise AssertionError("no batch failed")

    group: GroupCommit[int, int] = GroupCommit(run_batch, run_one)

    async def late(item: int) -> int:
        await asyncio.sleep(0.005)
        return await group.submit(item)

    results = await asyncio.gather(group.submit(1), group.submit(2), group.submit(3), late(4), late(5))
    assert results == [10, 20, 30, 40, 50]
    assert seen == [[1, 2, 3], [4, 5]]
    assert (group.batches, group.items) == (2, 5)


async def test_a_failed_batch_is_retried_one_item_at_a_time() -> None:
    async def run_batch(items: Sequence[int]) -> list[int]:
        if 13 in items:
            raise RuntimeError("one bad item spoils the batch")
        return list(items)

    async def run_one(item: int) -> int:
        if item == 13:
            raise ValueError("13 is bad")
        return -item

    group: GroupCommit[int, int] = GroupCommit(run_batch, run_one)
    results = await asyncio.gather(*(group.submit(i) for i in (1, 13, 2)), return_exceptions=True)
    assert results[0] == -1 and results[2] == -2
    assert isinstance(results[1], ValueError)


async def test_a_cancelled_caller_does_not_cancel_its_batch() -> None:
    done: list[int] = []

    async def run_batch(items: Sequence[int]) -> list[None]:
        await asyncio.sleep(0.02)
        done.extend(items)
        return [None] * len(items)

    async def run_one(item: int) -> None:
        return None

    group: GroupCommit[int, None] = GroupCommit(run_batch, run_one)
    caller = asyncio.ensure_future(group.submit(7))
    await asyncio.sleep(0.005)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.sleep(0.05)
    assert done == [7]  # carried out all the same


def test_max_batch_must_be_positive() -> None:
    async def run(items: Sequence[int]) -> list[int]:
        return list(items)

    async def one(item: int) -> int:
        return item

    with pytest.raises(ValueError, match="max_batch"):
        GroupCommit(run, one, max_batch=0)
