"""Group commit: calls made at the same time in one event loop run as one batch.

The send path runs one job per phone at a time, and a worker process serves many phones, so at
any moment many jobs of one process want the same short transaction (lock the row, mark it
SENDING; lock the row, record it SENT). :class:`GroupCommit` lets each of them ``await
submit(item)`` as if it ran alone, while the items that arrive together, or while the previous
batch was running, are handed to one ``run_batch`` call: one transaction and a few set-based
statements instead of one transaction and a dozen round trips per item. Under a light load a
batch holds one item and costs what the single call did.

A batch that raises is retried one item at a time with ``run_one``, so one bad item fails only
its own caller. A caller that is cancelled while waiting does not cancel the batch: its item is
still carried out (the send path relies on that: its rows end in a consistent state either way).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 64


class GroupCommit(Generic[T, R]):
    """Coalesces concurrent ``submit`` calls of one event loop into ``run_batch`` calls.

    ``run_batch(items)`` returns one result per item, in order. ``run_one(item)`` handles an
    item alone when its batch failed.
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        run_one: Callable[[T], Awaitable[R]],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run_batch = run_batch
        self._run_one = run_one
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0
        """Batches run so far (for tests and benchmarks)."""
        self.items = 0
        """Items carried out so far."""

    async def submit(self, item: T) -> R:
        """Carry out ``item`` with whatever else is submitted meanwhile; its result."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests): nothing of the old one survives
            self._loop, self._pending, self._drainer = loop, [], None
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)  # let the callers woken by the same event join the batch
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._carry_out(batch)
        finally:
            self._drainer = None

    async def _carry_out(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.batches += 1
        self.items += len(batch)
        try:
            results = await self._run_batch([item for item, _ in batch])
        except Exception:
            for item, future in batch:
                await self._one(item, future)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _one(self, item: T, future: asyncio.Future[R]) -> None:
        try:
            result = await self._run_one(item)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)
