"""End-to-end WhatsApp send throughput: dispatch, phone queues, the sandbox over HTTP.

    python bench/bench_send.py [--n 4000] [--phones 20] [--quota 200] [--workers 1,2]
                               [--pg postgresql+asyncpg://postgres@127.0.0.1:5432] [--skip-baseline]

Set-up of its own: a scratch database ``cerniq_bench_<pid>`` (created, migrated, dropped at the
end), a private ``redis-server`` on a free port, and the provider sandbox as a separate process
(``cerniq sandbox``: rate limit off, reply probability 0). Jitter is 0 and business hours always
open. ``--n`` due new-contact leads over ``--phones`` phones (quota ``--quota`` each; the default
4000 = 20 x 200, every phone's full day).

Measured per worker count (``cerniq worker`` subprocesses, the phone queues split between them):
dispatch time (claim, render, write the QUEUED rows, enqueue), and the time until every row is
SENT with the lead moved and its follow-up scheduled, from the start of the dispatch; sends/s;
and the CPU each send cost (from /proc): the worker processes, the sandbox, the dispatch (this
process), and the rest of the machine (PostgreSQL, Redis, anything else running). The machine
figure bounds the rate: no send path is faster than cores x 1000 / (CPU ms per send).

Baselines in the same run, on the same machine: the raw sandbox (``--n`` sequential
``POST /messages`` with the TimelinesAI client alone, then one send at a time per phone for
every phone at once, through one connection pool and through a pool per phone as the send
path does), and BullMQ no-op jobs (``--n`` jobs over ``--phones`` queues, concurrency 1 each,
one process), so the figures say how far the send path is from its transport. Prints figures;
asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CERNIQ = str(Path(sys.executable).parent / "cerniq")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--n", type=int, default=4000, help="due new-contact leads")
    parser.add_argument("--phones", type=int, default=20, help="phones (sandbox accounts)")
    parser.add_argument("--quota", type=int, default=200, help="daily new-contact quota per phone")
    parser.add_argument("--workers", default="1,2", help="worker process counts to measure")
    parser.add_argument(
        "--pg", default=os.environ.get("CERNIQ_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--skip-baseline", action="store_true", help="only the send path")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for all SENT")
    return parser.parse_args()


TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def machine_cpu() -> float:
    """CPU seconds used by the whole machine so far, every core (idle and iowait excluded)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Services:
    """A private redis-server and the sandbox process; stopped at the end."""

    def __init__(self, phones: int) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        redis_bin = shutil.which("redis-server")
        if redis_bin is None:
            raise SystemExit("redis-server is needed (apt-get install redis-server)")
        self.redis_port = free_port()
        self.redis_dir = tempfile.mkdtemp(prefix="cerniq-bench-redis-")
        self._spawn(
            [
                redis_bin,
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.redis_dir,
                "--maxmemory-policy",
                "noeviction",
            ]
        )
        wait_port(self.redis_port)
        self.sandbox_port = free_port()
        self._spawn(
            [
                *(CERNIQ, "sandbox", "--port", str(self.sandbox_port), "--accounts", str(phones)),
                *("--reply-probability", "0", "--no-rate-limit", "--log-level", "warning"),
            ]
        )
        wait_port(self.sandbox_port, timeout=90)

    def _spawn(self, cmd: list[str]) -> None:
        self.procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(self.redis_dir, ignore_errors=True)


def configure_env(args: argparse.Namespace, services: Services, db_url: str) -> None:
    args.sandbox_pid = services.procs[-1].pid
    os.environ.update(
        {
            "CERNIQ_ENV": "test",
            "CERNIQ_DATABASE_URL": db_url,
            "CERNIQ_REDIS_URL": f"redis://127.0.0.1:{services.redis_port}/0",
            "CERNIQ_QUEUE_REDIS_DB": "2",
            "CERNIQ_JITTER_BASE": "0",
            "CERNIQ_JITTER_SPREAD": "0",
            "CERNIQ_BUSINESS_HOURS_ALWAYS_OPEN": "true",
            "CERNIQ_TIMELINESAI_BASE_URL": f"http://127.0.0.1:{services.sandbox_port}/timelinesai",
            "CERNIQ_TIMELINESAI_API_TOKEN": "sandbox-timelinesai-token",
            "CERNIQ_TIMELINESAI_TIMEOUT": "30",
            "CERNIQ_LOG_LEVEL": "WARNING",
            "CERNIQ_LOG_JSON": "false",
            "CERNIQ_DISPATCH_BATCH_SIZE": "500",
            "CERNIQ_DB_POOL_SIZE": "20",
        }
    )


# --- seeding --------------------------------------------------------------------------------


async def reset_and_seed(args: argparse.Namespace) -> None:
    """Empty every table, flush Redis, reset the sandbox, then seed tenant, phones, sequence, leads."""
    import uuid

    from sqlalchemy import insert

    from cerniq.auth import service as auth
    from cerniq.auth.principal import system_principal
    from cerniq.kit.clock import utcnow
    from cerniq.kit.db import get_engine, transaction
    from cerniq.kit.redis import get_queue_redis, get_redis
    from cerniq.models import (
        Base,
        GoldCompany,
        GoldLeadJourney,
        OutreachSequence,
        OutreachSequenceStep,
        OutreachTemplate,
    )
    from cerniq.models.enums import Channel, LeadState
    from cerniq.phones import service as phones

    statements = ";".join(f'DELETE FROM "{t.name}"' for t in reversed(Base.metadata.sorted_tables))
    async with get_engine().begin() as conn:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.execute(
            statements + ";ALTER SEQUENCE wa_phone_numbers_id_seq RESTART WITH 1"
        )
    await get_redis().flushall()
    await get_queue_redis().flushdb()
    import httpx

    async with httpx.AsyncClient(
        base_url=os.environ["CERNIQ_TIMELINESAI_BASE_URL"].rsplit("/", 1)[0]
    ) as client:
        (await client.post("/_control/reset")).raise_for_status()

    async with transaction() as session:
        tenant = await auth.ensure_tenant(session, "default", "Agro Bench")
        for i in range(1, args.phones + 1):
            await phones.create_phone(
                session,
                system_principal(tenant.id),
                phone_number=f"+407{i:08d}",
                label=f"Bench {i}",
                timelinesai_account_id=f"407{i:08d}@s.whatsapp.net",
                daily_quota_limit=args.quota,
                priority=i,
            )
        first = OutreachTemplate(
            tenant_id=tenant.id,
            name="Prim contact",
            channel=Channel.WHATSAPP,
            content="{Bună ziua|Salut}, {{contactName|}} de la {{companyName}}! Vă scriu din partea Cerniq.",
        )
        followup = OutreachTemplate(
            tenant_id=tenant.id,
            name="Revenire",
            channel=Channel.WHATSAPP,
            content="Revin pentru {{companyName}}.",
        )
        session.add_all([first, followup])
        await session.flush()
        sequence = OutreachSequence(tenant_id=tenant.id, name="WA", is_default=True, is_active=True)
        session.add(sequence)
        await session.flush()
        for n, template in ((1, first), (2, followup)):
            session.add(
                OutreachSequenceStep(
                    tenant_id=tenant.id,
                    sequence_id=sequence.id,
                    step_number=n,
                    delay_hours=0 if n == 1 else 72,
                    channel=Channel.WHATSAPP,
                    template_id=template.id,
                )
            )
        company_ids = [uuid.uuid4() for _ in range(args.n)]
        await session.execute(
            insert(GoldCompany),
            [
                {
                    "id": cid,
                    "tenant_id": tenant.id,
                    "denumire": f"Agro Ferma {n} SRL",
                    "cui": str(20_000_000 + n),
                    "judet": "Timiș",
                    "localitate": "Lugoj",
                    "is_agricultural": True,
                }
                for n, cid in enumerate(company_ids, start=1)
            ],
        )
        due = utcnow()
        await session.execute(
            insert(GoldLeadJourney),
            [
                {
                    "id": uuid.uuid4(),
                    "tenant_id": tenant.id,
                    "lead_id": cid,
                    "mobile_e164": f"+40723{n:06d}",
                    "current_state": LeadState.COLD,
                    "next_action_at": due,
                }
                for n, cid in enumerate(company_ids, start=1)
            ],
        )


async def count_sent() -> int:
    from sqlalchemy import func, select

    from cerniq.kit.db import transaction
    from cerniq.models import GoldCommunicationLog
    from cerniq.models.enums import MessageStatus

    async with transaction() as session:
        query = select(func.count()).where(GoldCommunicationLog.status == MessageStatus.SENT)
        return int((await session.execute(query)).scalar_one())


# --- the send path --------------------------------------------------------------------------


def start_workers(count: int, phones: int) -> list[subprocess.Popen[bytes]]:
    """``count`` worker processes, the phone queues split evenly between them."""
    ids = [f"q:wa:phone_{i:02d}" for i in range(1, phones + 1)]
    procs = []
    for k in range(count):
        mine = ids[k::count]
        procs.append(
            subprocess.Popen(
                [CERNIQ, "worker", "--queues", ",".join(mine), "--grace", "5"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return procs


async def wait_leases(phones: int, timeout: float = 60.0) -> None:
    from cerniq.kit.redis import get_queue_redis

    keys = [f"cerniq:lease:q:wa:phone_{i:02d}" for i in range(1, phones + 1)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(await get_queue_redis().mget(keys)):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the workers did not take every phone's lease")


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


async def measure_send_path(args: argparse.Namespace, workers: int) -> dict[str, float]:
    from cerniq.messaging.dispatch import dispatch

    await reset_and_seed(args)
    procs = start_workers(workers, args.phones)
    try:
        await wait_leases(args.phones)
        cpu_before = (
            sum(process_cpu(p.pid) for p in procs),
            process_cpu(args.sandbox_pid),
            process_cpu(os.getpid()),
            machine_cpu(),
        )
        started = time.perf_counter()
        report = await dispatch()
        dispatched = time.perf_counter()
        if report.whatsapp != args.n:
            print(f"  warning: dispatch queued {report.whatsapp} of {args.n}: {report.as_dict()}")
        deadline = started + args.timeout
        sent = 0
        while time.perf_counter() < deadline:
            sent = await count_sent()
            if sent >= report.whatsapp:
                break
            await asyncio.sleep(0.05)
        finished = time.perf_counter()
        cpu_after = (
            sum(process_cpu(p.pid) for p in procs),
            process_cpu(args.sandbox_pid),
            process_cpu(os.getpid()),
            machine_cpu(),
        )
    finally:
        stop_workers(procs)
    per_send = [1000 * (b - a) / max(sent, 1) for a, b in zip(cpu_before, cpu_after, strict=True)]
    return {
        "dispatch_s": dispatched - started,
        "total_s": finished - started,
        "sent": float(sent),
        "rate": sent / (finished - started),
        "cpu_workers_ms": per_send[0],
        "cpu_sandbox_ms": per_send[1],
        "cpu_dispatch_ms": per_send[2],
        "cpu_machine_ms": per_send[3],
    }


# --- baselines ------------------------------------------------------------------------------


async def baseline_sandbox(args: argparse.Namespace) -> dict[str, float]:
    from cerniq.providers.timelinesai.client import TimelinesAIClient

    def client() -> TimelinesAIClient:
        return TimelinesAIClient(
            token="sandbox-timelinesai-token", base_url=os.environ["CERNIQ_TIMELINESAI_BASE_URL"], timeout=30
        )

    shared = client()
    lanes = [client() for _ in range(args.phones)]
    out: dict[str, float] = {}
    try:
        started = time.perf_counter()
        for i in range(args.n):
            await shared.send_to_phone(
                account_phone=f"+407{(i % args.phones) + 1:08d}",
                phone=f"+40724{i:06d}",
                text=f"Bună ziua {i}",
            )
        out["sequential"] = args.n / (time.perf_counter() - started)

        async def lane(k: int, sender: TimelinesAIClient, prefix: str) -> None:
            for i in range(k, args.n, args.phones):  # one phone: one send at a time
                await sender.send_to_phone(
                    account_phone=f"+407{k + 1:08d}", phone=f"{prefix}{i:06d}", text=f"Salut {i}"
                )

        started = time.perf_counter()
        await asyncio.gather(*(lane(k, shared, "+40725") for k in range(args.phones)))
        out["concurrent"] = args.n / (time.perf_counter() - started)
        started = time.perf_counter()
        await asyncio.gather(*(lane(k, lanes[k], "+40726") for k in range(args.phones)))
        out["lanes"] = args.n / (time.perf_counter() - started)
    finally:
        for sender in (shared, *lanes):
            await sender.aclose()
    return out


async def baseline_bullmq(args: argparse.Namespace) -> float:
    from cerniq.kit.redis import get_queue_redis
    from cerniq.worker.queues import get_queue, make_worker

    await get_queue_redis().flushdb()
    names = [f"bench:noop:{i:02d}" for i in range(1, args.phones + 1)]
    done = 0
    finished = asyncio.Event()

    async def noop(job: Any, token: str) -> None:
        nonlocal done
        done += 1
        if done >= args.n:
            finished.set()

    for k, name in enumerate(names):
        count = len(range(k, args.n, len(names)))
        await get_queue(name).addBulk([{"name": "noop", "data": {"i": i}, "opts": {}} for i in range(count)])
    started = time.perf_counter()
    workers = [make_worker(name, noop, concurrency=1) for name in names]
    try:
        await asyncio.wait_for(finished.wait(), timeout=args.timeout)
        elapsed = time.perf_counter() - started
    finally:
        await asyncio.gather(*(w.close() for w in workers))
    return args.n / elapsed


async def run(args: argparse.Namespace) -> None:
    from cerniq.kit.db import dispose_engines
    from cerniq.kit.redis import close_redis
    from cerniq.messaging.vendors import close_vendors
    from cerniq.worker.queues import close_queues

    try:
        print(f"cerniq send path: {args.n} new contacts, {args.phones} phones, quota {args.quota}, jitter 0")
        if not args.skip_baseline:
            sandbox = await baseline_sandbox(args)
            print(f"  baseline sandbox POST /messages: {sandbox['sequential']:8.0f}/s sequential")
            concurrent, lanes = sandbox["concurrent"], sandbox["lanes"]
            print(
                f"  baseline sandbox POST /messages: {concurrent:8.0f}/s with {args.phones} in flight"
                " through one connection pool"
            )
            print(
                f"  baseline sandbox POST /messages: {lanes:8.0f}/s with {args.phones} in flight,"
                " a pool per phone (as the send path)"
            )
            noop = await baseline_bullmq(args)
            print(f"  baseline bullmq no-op jobs     : {noop:8.0f}/s ({args.phones} queues, concurrency 1)")
        for count in [int(c) for c in args.workers.split(",") if c.strip()]:
            result = await measure_send_path(args, count)
            print(
                f"  {count} worker process(es): dispatch {result['dispatch_s']:6.2f} s,"
                f" all {int(result['sent'])} SENT after {result['total_s']:6.2f} s"
                f" -> {result['rate']:7.0f} sends/s"
            )
            rest = result["cpu_machine_ms"] - result["cpu_workers_ms"] - result["cpu_sandbox_ms"]
            rest -= result["cpu_dispatch_ms"]
            cores = os.cpu_count() or 1
            ceiling = 1000 * cores / max(result["cpu_machine_ms"], 0.001)
            print(
                f"      CPU per send: workers {result['cpu_workers_ms']:.2f} ms, sandbox"
                f" {result['cpu_sandbox_ms']:.2f} ms, dispatch {result['cpu_dispatch_ms']:.2f} ms,"
                f" the rest (PostgreSQL, Redis, other load) {rest:.2f} ms;"
                f" machine {result['cpu_machine_ms']:.2f} ms"
                f" -> at most {cores} x 1000 / {result['cpu_machine_ms']:.2f}"
                f" = {ceiling:.0f} sends/s here"
            )
    finally:
        await close_vendors()
        await close_queues()
        await close_redis()
        await dispose_engines()


def main() -> None:
    args = parse_args()
    services = Services(args.phones)
    db_url = f"{args.pg}/cerniq_bench_{os.getpid()}"
    try:
        configure_env(args, services, db_url)
        from cerniq.kit.migrate import scratch_database

        with scratch_database(db_url):
            asyncio.run(run(args))
    finally:
        services.stop()


if __name__ == "__main__":
    main()
