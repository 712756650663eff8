"""The quota ledger's reads and the delivery poll's pick, with and without their indexes
(migrations 0007 and 0008).

    python bench/bench_quota_ledger.py [--messages 1000000] [--leads 50000] [--repeat 5] [--plans]
                                       [--url postgresql+asyncpg://postgres@127.0.0.1:5432/cerniq_bench_ledger]

Creates a fresh database migrated to head, generates ``--leads`` leads, 20 phones and
``--messages`` messages over 90 days with set-based SQL (two thirds WhatsApp, four fifths of
those outbound and holding a quota day, three sevenths of those new contacts), ANALYZEs, then
times the ledger reads exactly as ``cerniq.messaging.repository`` runs them: one phone's new
contacts of a day (the first reservation of each phone's day checks it before sending), every
phone's new contacts and follow-ups of a day (the midnight reset, ``cerniq quota resync``), and
the rows holding a reservation (the reservation hashes rebuilt); and the delivery poll's pick
of 200 open WhatsApp messages of the last three days (``cerniq.webhooks.repository
.messages_to_poll``; older WhatsApp messages are READ, emails stay SENT as unopened ones do, a
tenth of the recent WhatsApp ones have no chat yet). Each is timed with the indexes, then again
inside a transaction that drops them (rolled back). ``--plans`` prints the EXPLAIN ANALYZE of
one phone's count for both. It asserts nothing about time. The database is dropped
at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/cerniq_bench_ledger"
INDEXES = ("ix_gold_communication_log_quota_day", "ix_gold_communication_log_wa_open")
DAYS = 90

LEADS = """
WITH c AS (
    INSERT INTO gold_companies (tenant_id, cui, denumire, is_agricultural)
    SELECT CAST(:tenant AS uuid), (30000000 + n)::text, 'Agro ' || n || ' SRL', true
    FROM generate_series(1, :count) AS n
    RETURNING id, cui
)
INSERT INTO gold_lead_journey (tenant_id, lead_id, mobile_e164, current_state)
SELECT CAST(:tenant AS uuid), c.id, '+40722' || lpad(((c.cui::bigint - 30000000) % 1000000)::text, 6, '0'),
    'CONTACTED_WA'
FROM c
"""

PHONES = """
INSERT INTO wa_phone_numbers (id, tenant_id, phone_number, phone_label, status)
SELECT 'phone_' || lpad(p::text, 2, '0'), CAST(:tenant AS uuid), '+407000000' || lpad(p::text, 2, '0'),
    'Telefon ' || p, 'ACTIVE'
FROM generate_series(1, 20) AS p
"""

MESSAGES = """
WITH j AS (SELECT array_agg(id) AS ids FROM gold_lead_journey),
m AS (
    -- the day from n, everything else from k = n / days, so that every day has the whole mix
    SELECT n, n / :days AS k, (CAST(:today AS date) - (n % :days)) AS day,
        CASE WHEN (n / :days) % 3 <> 0 THEN 'WHATSAPP' ELSE 'EMAIL_WARM' END AS channel,
        CASE WHEN (n / :days) % 5 <> 0 THEN 'OUTBOUND' ELSE 'INBOUND' END AS direction
    FROM generate_series(1, :count) AS n
)
INSERT INTO gold_communication_log (tenant_id, lead_journey_id, channel, direction, status, origin,
    content, phone_id, quota_cost, quota_date, external_message_id, thread_id, sent_at,
    status_updated_at, created_at, updated_at)
SELECT CAST(:tenant AS uuid), j.ids[1 + m.n % array_length(j.ids, 1)],
    CAST(m.channel AS channel_enum), CAST(m.direction AS message_direction_enum),
    CAST(CASE WHEN m.direction = 'INBOUND' THEN 'RECEIVED' WHEN m.channel <> 'WHATSAPP' THEN 'SENT'
              WHEN m.day < CAST(:today AS date) - 3 THEN 'READ'
              WHEN m.k % 2 = 0 THEN 'SENT' ELSE 'DELIVERED' END AS message_status_enum),
    'AUTOMATION', 'Bună ziua! Mesaj ' || m.n,
    CASE WHEN m.channel = 'WHATSAPP' THEN 'phone_' || lpad((1 + m.k % 20)::text, 2, '0') END,
    CASE WHEN m.channel = 'WHATSAPP' AND m.direction = 'OUTBOUND' AND m.k % 7 < 3 THEN 1 ELSE 0 END,
    CASE WHEN m.channel = 'WHATSAPP' AND m.direction = 'OUTBOUND' THEN m.day END,
    'uid-' || m.n, CASE WHEN m.k % 10 <> 0 OR m.channel <> 'WHATSAPP' THEN 'chat-' || m.k END,
    m.day + time '10:00', m.day + time '10:00', m.day + time '10:00', m.day + time '10:00'
FROM m, j
ORDER BY m.day, m.n  -- written in time order, as a live table is: a day's rows lie together
"""


async def run(args: argparse.Namespace) -> None:
    from sqlalchemy import text

    from cerniq.auth import service as auth_service
    from cerniq.kit.clock import utcnow
    from cerniq.kit.db import transaction
    from cerniq.messaging import repository
    from cerniq.webhooks import repository as webhooks_repository

    async with transaction() as session:
        tenant = await auth_service.ensure_tenant(session, "bench", "Bench")
        started = time.perf_counter()
        params = {"tenant": str(tenant.id)}
        await session.execute(text(LEADS), {**params, "count": args.leads})
        await session.execute(text(PHONES), params)
    async with transaction() as session:
        today = date.today()
        await session.execute(
            text(MESSAGES), {**params, "count": args.messages, "days": DAYS, "today": today}
        )
    elapsed = time.perf_counter() - started
    print(f"generated {args.leads:,} leads and {args.messages:,} messages in {elapsed:.1f} s")
    async with transaction() as session:
        for table in ("gold_communication_log", "gold_lead_journey", "wa_phone_numbers"):
            await session.execute(text(f"ANALYZE {table}"))

    day = today - timedelta(days=1)
    reads: list[tuple[str, Callable[[Any], Awaitable[Any]]]] = [
        ("one phone's new contacts", lambda s: repository.ledger_count(s, "phone_07", day, exclude=None)),
        ("every phone's new contacts", lambda s: repository.ledger_counts(s, day)),
        ("every phone's follow-ups", lambda s: repository.followup_counts(s, day)),
        ("rows holding a reservation", lambda s: repository.reserved_ids(s, day)),
        (
            "the delivery poll's pick",
            lambda s: webhooks_repository.messages_to_poll(s, since=utcnow() - timedelta(days=3), limit=200),
        ),
    ]

    async def timed(session: Any, read: Callable[[Any], Awaitable[Any]]) -> float:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            await read(session)
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)

    async def plan(session: Any) -> str:
        rows = await session.execute(
            text(
                "EXPLAIN (ANALYZE, COSTS OFF) SELECT count(*) FROM gold_communication_log"
                " WHERE phone_id = 'phone_07' AND quota_cost = 1 AND quota_date = :day"
                " AND channel = 'WHATSAPP'"
            ),
            {"day": day},
        )
        return "\n".join("    " + r[0] for r in rows)

    results: dict[str, dict[str, float]] = {}
    async with transaction() as session:
        for label, read in reads:
            results.setdefault(label, {})["with"] = await timed(session, read)
        if args.plans:
            print(f"\n--- one phone's new contacts, with the index:\n{await plan(session)}")
    async with transaction() as session:
        for index in INDEXES:
            await session.execute(text(f"DROP INDEX {index}"))
        for label, read in reads:
            results[label]["without"] = await timed(session, read)
        if args.plans:
            print(f"\n--- without:\n{await plan(session)}")
        await session.rollback()  # the indexes come back

    print(f"\nmedian of {args.repeat} runs, {args.messages:,} messages over {DAYS} days, one day asked for")
    print(f"{'read':<28} {'with indexes':>12} {'without':>12} {'ratio':>7}")
    for label, _ in reads:
        with_ms, without_ms = results[label]["with"], results[label]["without"]
        ratio = without_ms / with_ms if with_ms else float("nan")
        print(f"{label:<28} {with_ms:>9.2f} ms {without_ms:>9.2f} ms {ratio:>6.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--leads", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--plans", action="store_true", help="print EXPLAIN ANALYZE of one phone's count")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--url", default=os.environ.get("CERNIQ_BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    os.environ["CERNIQ_DATABASE_URL"] = args.url
    os.environ.setdefault("CERNIQ_LOG_LEVEL", "WARNING")
    from cerniq.kit.migrate import scratch_database

    with scratch_database(args.url, keep=args.keep):
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
