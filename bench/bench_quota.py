"""Quota guardian throughput: reservations per second from one Python process.

    python bench/bench_quota.py [--n 20000] [--batch 100] [--rounds 3] [--uvloop]
                                [--url redis://127.0.0.1:6379/9]

Measures ``QuotaGuardian`` (one EVALSHA of ``reserve.lua`` per reservation, distinct
reservation ids, cost 1, spread over 20 phones) three ways:

- sequential: ``await reserve(...)`` one after another (one request in flight);
- concurrent: ``asyncio.gather`` of ``reserve`` over batches of ``--batch`` (many in flight on
  the client's connection pool);
- batched: ``reserve_many`` over batches of ``--batch`` (one script call per batch; each
  reservation keeps the semantics of ``reserve``, the batch is atomic as a whole);
- batched, 2 in flight: the same with two batches at once, so Python prepares one while Redis
  runs the other.

The baseline is measured in the same run, on the same server and database, interleaved with
the Python rounds so both see the same machine load: ``redis-benchmark -n N -P 1 -q`` on a
trivial ``EVALSHA`` of ``return 1`` (``-c 1`` to pair with the sequential figure, the default
50 clients to pair with the others), and ``reserve.lua`` itself under ``redis-benchmark`` as
the server-side ceiling of our script. Each figure is the best of ``--rounds``. It prints
figures and ratios (target: Python at >= 50% of the raw baseline) and asserts nothing about
time. Every key it creates in the benchmark database is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import date
from importlib import resources
from urllib.parse import urlparse

from redis.asyncio import Redis

from cerniq.quota import QuotaGuardian, Reservation, ReservationRequest

DAY = date(2099, 1, 1)  # far from any real business day: never collides with live keys
PHONES = [f"bench_{i:02d}" for i in range(1, 21)]
BASELINE_PHONE = "bbench"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="reservations per measurement")
    parser.add_argument("--batch", type=int, default=100, help="batch size (concurrent and pipelined)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each figure is the best")
    parser.add_argument("--url", default="redis://127.0.0.1:6379/9", help="Redis URL (DB 9 by default)")
    parser.add_argument("--uvloop", action="store_true", help="run the event loop on uvloop")
    return parser.parse_args()


async def cleanup(redis: Redis) -> int:
    """Delete every key this benchmark created (and nothing else)."""
    deleted = 0
    for pattern in ("quota:*:bench_*", f"quota:*:{BASELINE_PHONE}:*"):
        keys = [k async for k in redis.scan_iter(match=pattern, count=1000)]
        for i in range(0, len(keys), 500):
            deleted += int(await redis.delete(*keys[i : i + 500]))
    return deleted


async def timed(n: int, body: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await body()
    return n / (time.perf_counter() - start)


class PythonBench:
    """The three ways of calling the guardian, each returning reservations per second."""

    def __init__(self, redis: Redis, n: int, batch: int) -> None:
        self.redis = redis
        self.guardian = QuotaGuardian(redis)
        self.n = n
        self.batch = batch
        self.round = 0

    def request(self, tag: str, i: int) -> ReservationRequest:
        return ReservationRequest(
            phone_id=PHONES[i % len(PHONES)],
            day=DAY,
            reservation_id=f"{tag}-{self.round}-{i}",
            cost=1,
            limit=10 * self.n,
            followup_cap=0,
        )

    async def reserve(self, tag: str, i: int) -> Reservation:
        req = self.request(tag, i)
        return await self.guardian.reserve(
            phone_id=req.phone_id,
            day=req.day,
            reservation_id=req.reservation_id,
            cost=req.cost,
            limit=req.limit,
            followup_cap=req.followup_cap,
        )

    async def warm_up(self) -> None:
        for i in range(300):  # script loaded, connections open
            await self.reserve("warm", i)
        await asyncio.gather(*(self.reserve("warm", 1000 + i) for i in range(self.batch)))
        await cleanup(self.redis)

    async def sequential(self) -> float:
        async def body() -> None:
            for i in range(self.n):
                assert (await self.reserve("seq", i)).allowed

        return await self._measure(body)

    async def concurrent(self) -> float:
        async def body() -> None:
            for lo in range(0, self.n, self.batch):
                hi = min(self.n, lo + self.batch)
                results = await asyncio.gather(*(self.reserve("con", i) for i in range(lo, hi)))
                assert all(res.allowed for res in results)

        return await self._measure(body)

    async def pipelined(self) -> float:
        async def body() -> None:
            for lo in range(0, self.n, self.batch):
                hi = min(self.n, lo + self.batch)
                results = await self.guardian.reserve_many([self.request("pipe", i) for i in range(lo, hi)])
                assert all(res.allowed for res in results)

        return await self._measure(body)

    async def overlapped(self, inflight: int = 2) -> float:
        """``reserve_many`` with ``inflight`` batches at once: Python builds the next batch while
        Redis runs the current one (each batch on its own pooled connection)."""

        async def body() -> None:
            starts = list(range(0, self.n, self.batch))
            for k in range(0, len(starts), inflight):
                groups = [
                    [self.request("over", i) for i in range(lo, min(self.n, lo + self.batch))]
                    for lo in starts[k : k + inflight]
                ]
                results = await asyncio.gather(*(self.guardian.reserve_many(g) for g in groups))
                assert all(res.allowed for batch in results for res in batch)

        return await self._measure(body)

    async def _measure(self, body: Callable[[], Awaitable[None]]) -> float:
        rate = await timed(self.n, body)
        await cleanup(self.redis)
        return rate


def redis_benchmark(url: str, n: int, clients: int, *command: str) -> float:
    """Requests/s reported by ``redis-benchmark -n N -c C -P 1 -q`` for ``command``."""
    parsed = urlparse(url)
    db = int((parsed.path or "/0").lstrip("/") or 0)
    argv = ["redis-benchmark", "-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 6379)]
    argv += ["--dbnum", str(db), "-n", str(n), "-c", str(clients), "-P", "1", "-q"]
    if parsed.password:
        argv += ["-a", parsed.password, "--no-auth-warning"]
    if any("__rand_int__" in part for part in command):
        argv += ["-r", "100000000"]
    out = subprocess.run([*argv, *command], capture_output=True, text=True, check=True).stdout
    # "-q" prints progress lines separated by \r, then "<name>: 123456.79 requests per second, ..."
    rates = re.findall(r"([\d.]+) requests per second", out)
    if not rates:
        raise RuntimeError(f"could not read redis-benchmark output: {out!r}")
    return float(rates[-1])


async def main(args: argparse.Namespace) -> int:
    if shutil.which("redis-benchmark") is None:
        print("redis-benchmark not found on PATH (apt-get install redis-tools)", file=sys.stderr)
        return 2
    redis = Redis.from_url(args.url, decode_responses=True)
    try:
        info = await redis.info("server")
        loop = "uvloop" if args.uvloop else "asyncio"
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(
            f"Redis {info.get('redis_version')} at {args.url}; Python {sys.version.split()[0]} on {loop}; "
            f"n={args.n}, batch={args.batch}, best of {args.rounds}; load average {load:.2f} "
            f"on {os.cpu_count()} CPUs\n"
        )
        await cleanup(redis)
        trivial = str(await redis.script_load("return 1"))
        reserve_src = resources.files("cerniq.quota").joinpath("reserve.lua").read_text(encoding="utf-8")
        reserve_sha = str(await redis.script_load(reserve_src))
        base_keys = [f"quota:{kind}{BASELINE_PHONE}:{DAY}" for kind in ("wa:", "fu:wa:", "res:wa:")]

        bench = PythonBench(redis, args.n, args.batch)
        await bench.warm_up()
        figures: dict[str, list[float]] = {}
        names = {
            "seq": "Python  reserve, sequential awaits",
            "con": f"Python  reserve, asyncio.gather batches of {args.batch}",
            "pipe": f"Python  reserve_many, batches of {args.batch}",
            "over": f"Python  reserve_many, batches of {args.batch}, 2 in flight",
            "c1": "redis-benchmark EVALSHA <return 1> 0, -c 1",
            "c50": "redis-benchmark EVALSHA <return 1> 0, -c 50",
            "lua": "redis-benchmark EVALSHA <reserve.lua>, -c 50",
        }
        for rnd in range(args.rounds):
            bench.round = rnd
            measured = {
                "seq": await bench.sequential(),
                "c1": redis_benchmark(args.url, args.n, 1, "EVALSHA", trivial, "0"),
                "con": await bench.concurrent(),
                "c50": redis_benchmark(args.url, args.n, 50, "EVALSHA", trivial, "0"),
                "pipe": await bench.pipelined(),
                "over": await bench.overlapped(),
                "lua": redis_benchmark(
                    args.url,
                    args.n,
                    50,
                    "EVALSHA",
                    reserve_sha,
                    "3",
                    *base_keys,
                    "rid-__rand_int__",
                    "1",
                    "1000000000",
                    "0",
                    "172800",
                ),
            }
            await cleanup(redis)
            for key, value in measured.items():
                figures.setdefault(key, []).append(value)
            print(f"round {rnd + 1}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in measured.items()))

        best = {key: max(values) for key, values in figures.items()}
        print("\nReservations (or requests) per second, best of the rounds:")
        for key, label in names.items():
            print(f"  {label:<55} {best[key]:>10,.0f} /s")
        print("\nRatios, Python / raw baseline (target >= 50%):")
        print(f"  sequential  vs EVALSHA -c 1         {best['seq'] / best['c1']:7.1%}")
        print(f"  concurrent  vs EVALSHA -c 50        {best['con'] / best['c50']:7.1%}")
        print(f"  pipelined   vs EVALSHA -c 50        {best['pipe'] / best['c50']:7.1%}")
        print(f"  pipelined   vs reserve.lua -c 50    {best['pipe'] / best['lua']:7.1%}")
        print(f"  2 in flight vs EVALSHA -c 50        {best['over'] / best['c50']:7.1%}")
        print(f"  2 in flight vs reserve.lua -c 50    {best['over'] / best['lua']:7.1%}")
    finally:
        removed = await cleanup(redis)
        if removed:
            print(f"(cleaned {removed} leftover keys)")
        await redis.aclose()
    return 0


if __name__ == "__main__":
    cli = parse_args()
    if cli.uvloop:
        import uvloop

        sys.exit(uvloop.run(main(cli)))
    sys.exit(asyncio.run(main(cli)))
