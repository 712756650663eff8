"""Lead list search with and without the trigram indexes of migration 0002.

    python bench/bench_lead_search.py [--leads 200000] [--repeat 5] [--plans]
                                      [--url postgresql+asyncpg://postgres@127.0.0.1:5432/cerniq_bench_search]

Creates a fresh database migrated to head, generates ``--leads`` companies with journeys (names,
CUIs, emails and mobile numbers in one tenant, with set-based SQL), ANALYZEs, then times the
console's list query (one page of 25 plus the total count, exactly as
``cerniq.leads.service.list_leads`` runs it) for a few searches a user types: part of a
company name, a CUI, a phone number as people write it, an email. Each search is timed with
the indexes, then again inside a transaction that drops the trigram indexes (rolled back).
``--plans`` prints the EXPLAIN ANALYZE of the count query for both. It asserts nothing about
time. The database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/cerniq_bench_search"

TRIGRAM_INDEXES = (
    "ix_gold_companies_denumire_trgm",
    "ix_gold_companies_cui_trgm",
    "ix_gold_companies_email_trgm",
    "ix_gold_companies_telefon_trgm",
    "ix_gold_lead_journey_email_trgm",
    "ix_gold_lead_journey_mobile_trgm",
)

SEARCHES = (
    ("name", "Cereale 1234"),
    ("cui", "30012345"),
    ("phone", "0722 012 345"),
    ("email", "office12345@"),
    ("no match", "inexistent"),
)

GENERATE = """
WITH c AS (
    INSERT INTO gold_companies (tenant_id, cui, denumire, judet, localitate, email_principal,
        telefon_principal, is_agricultural)
    SELECT CAST(:tenant AS uuid), (30000000 + n)::text,
        (ARRAY['Agro', 'Ferma', 'Cereale', 'Bio', 'Legume'])[1 + n % 5] || ' ' || n ||
            (ARRAY[' SRL', ' SA', ' PFA', ' II'])[1 + n % 4],
        (ARRAY['Timiș', 'Arad', 'Dolj', 'Iași', 'Cluj'])[1 + n % 5], 'Localitate ' || (n % 300),
        'office' || n || '@firma' || n || '.ro', '+40256' || lpad((n % 1000000)::text, 6, '0'), true
    FROM generate_series(1, :count) AS n
    RETURNING id, cui
)
INSERT INTO gold_lead_journey (tenant_id, lead_id, email, mobile_e164, current_state)
SELECT CAST(:tenant AS uuid), c.id, 'office' || (c.cui::bigint - 30000000) || '@firma' ||
        (c.cui::bigint - 30000000) || '.ro',
    '+40722' || lpad(((c.cui::bigint - 30000000) % 1000000)::text, 6, '0'), 'COLD'
FROM c
"""


async def run(args: argparse.Namespace) -> None:
    from sqlalchemy import func, select, text
    from sqlalchemy.dialects import postgresql

    from cerniq.auth import service as auth_service
    from cerniq.kit.db import transaction
    from cerniq.kit.pagination import PageParams
    from cerniq.leads import repository
    from cerniq.leads import service as leads_service
    from cerniq.leads.repository import LeadFilters
    from cerniq.models import GoldLeadJourney

    async with transaction() as session:
        tenant = await auth_service.ensure_tenant(session, "bench", "Bench")
        started = time.perf_counter()
        await session.execute(text(GENERATE), {"tenant": str(tenant.id), "count": args.leads})
    print(f"generated {args.leads:,} leads in {time.perf_counter() - started:.1f} s")
    async with transaction() as session:
        await session.execute(text("ANALYZE gold_companies"))
        await session.execute(text("ANALYZE gold_lead_journey"))

    async def timed(session: Any, term: str) -> tuple[float, int]:
        times = []
        total = 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            listing = await leads_service.list_leads(
                session, tenant.id, LeadFilters(search=term), PageParams(page=1, limit=25)
            )
            times.append((time.perf_counter() - t0) * 1000)
            total = listing["meta"]["total"]
        return statistics.median(times), total

    async def plan(session: Any, term: str) -> str:
        conditions = repository._filter_conditions(tenant.id, LeadFilters(search=term))
        query = select(func.count()).select_from(GoldLeadJourney).where(*conditions)
        sql = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        explain = f"EXPLAIN (ANALYZE, COSTS OFF) {sql}".replace("%%", "%")  # pyformat escaping
        rows = await session.execute(text(explain))
        return "\n".join("    " + r[0] for r in rows)

    results: dict[str, dict[str, tuple[float, int]]] = {}
    for label, term in SEARCHES:
        async with transaction() as session:
            results.setdefault(label, {})["with"] = await timed(session, term)
            if args.plans:
                print(f"\n--- {label} {term!r}, with the trigram indexes:\n{await plan(session, term)}")
    for label, term in SEARCHES:
        async with transaction() as session:
            for name in TRIGRAM_INDEXES:
                await session.execute(text(f"DROP INDEX {name}"))
            results[label]["without"] = await timed(session, term)
            if args.plans:
                print(f"\n--- {label} {term!r}, without:\n{await plan(session, term)}")
            await session.rollback()  # the indexes come back

    print(f"\nmedian of {args.repeat} runs, one page of 25 plus the count, {args.leads:,} leads")
    print(f"{'search':<10} {'term':<14} {'matches':>8} {'with index':>12} {'without':>10} {'ratio':>7}")
    for label, term in SEARCHES:
        (with_ms, total), (without_ms, _) = results[label]["with"], results[label]["without"]
        ratio = without_ms / with_ms if with_ms else float("nan")
        print(f"{label:<10} {term:<14} {total:>8} {with_ms:>10.1f} ms {without_ms:>7.1f} ms {ratio:>6.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--plans", action="store_true", help="print EXPLAIN ANALYZE of the count query")
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
