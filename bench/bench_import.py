"""Lead CSV import throughput: rows per second for a realistic 100,000-row file.

    python bench/bench_import.py [--rows 100000] [--bad 0.02] [--batch 2000]
                                 [--url postgresql+asyncpg://postgres@127.0.0.1:5432/cerniq_bench]

Generates a CSV like an Etapa 1 export (Romanian company names, the 42 counties, valid CUIs with
correct check digits, mobile numbers in the ways people type them, some landlines, contact names,
consent flags), with ``--bad`` of the rows broken (bad check digit, missing CUI or name, bad phone
or email with no other channel) and 1% repeating an earlier CUI. It then measures, on a fresh
database migrated to head:

- baseline 1: PostgreSQL ``COPY`` of the same file into a temporary all-text table (the floor
  for getting the bytes into the server: no validation, no indexes, no constraints);
- baseline 2: the same companies, contacts, journeys and history rows written from that table
  by four set-based ``INSERT ... SELECT`` statements (rolled back, then vacuumed): what the
  schema's indexes and foreign keys cost with no Python and no round trips at all;
- parse + validate only (no database), to show the share of Python work;
- ``cerniq leads import`` as the service runs it: first import (inserts) and a re-import of the
  same file (all merges);

and prints rows/s, times and the ratio to the baseline. It asserts nothing about time. The
benchmark database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cerniq.leads.importer import ImportReport

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/cerniq_bench"

COUNTIES = {
    "Alba": ["Alba Iulia", "Aiud", "Blaj", "Sebeș"],
    "Arad": ["Arad", "Lipova", "Pecica", "Sântana"],
    "Argeș": ["Pitești", "Mioveni", "Curtea de Argeș"],
    "Bacău": ["Bacău", "Onești", "Moinești"],
    "Bihor": ["Oradea", "Salonta", "Marghita", "Beiuș"],
    "Bistrița-Năsăud": ["Bistrița", "Beclean", "Năsăud"],
    "Botoșani": ["Botoșani", "Dorohoi", "Săveni"],
    "Brașov": ["Brașov", "Făgăraș", "Codlea"],
    "Brăila": ["Brăila", "Ianca", "Însurăței"],
    "București": ["București"],
    "Buzău": ["Buzău", "Râmnicu Sărat", "Pogoanele"],
    "Caraș-Severin": ["Reșița", "Caransebeș", "Oravița"],
    "Călărași": ["Călărași", "Oltenița", "Lehliu Gară"],
    "Cluj": ["Cluj-Napoca", "Turda", "Dej", "Câmpia Turzii"],
    "Constanța": ["Constanța", "Medgidia", "Mangalia", "Cernavodă"],
    "Covasna": ["Sfântu Gheorghe", "Târgu Secuiesc"],
    "Dâmbovița": ["Târgoviște", "Moreni", "Găești"],
    "Dolj": ["Craiova", "Băilești", "Calafat", "Segarcea"],
    "Galați": ["Galați", "Tecuci", "Târgu Bujor"],
    "Giurgiu": ["Giurgiu", "Bolintin-Vale", "Mihăilești"],
    "Gorj": ["Târgu Jiu", "Motru", "Rovinari"],
    "Harghita": ["Miercurea Ciuc", "Odorheiu Secuiesc"],
    "Hunedoara": ["Deva", "Hunedoara", "Orăștie"],
    "Ialomița": ["Slobozia", "Fetești", "Urziceni", "Țăndărei"],
    "Iași": ["Iași", "Pașcani", "Hârlău", "Târgu Frumos"],
    "Ilfov": ["Buftea", "Otopeni", "Voluntari"],
    "Maramureș": ["Baia Mare", "Sighetu Marmației"],
    "Mehedinți": ["Drobeta-Turnu Severin", "Strehaia"],
    "Mureș": ["Târgu Mureș", "Reghin", "Luduș"],
    "Neamț": ["Piatra Neamț", "Roman", "Târgu Neamț"],
    "Olt": ["Slatina", "Caracal", "Corabia", "Balș"],
    "Prahova": ["Ploiești", "Câmpina", "Mizil", "Urlați"],
    "Satu Mare": ["Satu Mare", "Carei", "Tășnad"],
    "Sălaj": ["Zalău", "Șimleu Silvaniei"],
    "Sibiu": ["Sibiu", "Mediaș", "Agnita"],
    "Suceava": ["Suceava", "Fălticeni", "Rădăuți"],
    "Teleorman": ["Alexandria", "Roșiori de Vede", "Turnu Măgurele"],
    "Timiș": ["Timișoara", "Lugoj", "Jimbolia", "Sânnicolau Mare"],
    "Tulcea": ["Tulcea", "Babadag", "Măcin"],
    "Vaslui": ["Vaslui", "Bârlad", "Huși"],
    "Vâlcea": ["Râmnicu Vâlcea", "Drăgășani"],
    "Vrancea": ["Focșani", "Adjud", "Panciu"],
}
KINDS = ["Agro", "Ferma", "Agricola", "Cereale", "Legume", "Zootehnia", "Pomicola", "Vița", "Bio", "Apicola"]
NAMES = ["Câmpia", "Dunărea", "Mureșul", "Bărăganul", "Spicul", "Holda", "Livada", "Prutul", "Someșul", "Olt"]
FORMS = ["SRL", "SRL", "SRL", "SA", "SCA", "SRL-D", "II", "PFA"]
FIRST = ["Ion", "Maria", "Gheorghe", "Elena", "Vasile", "Ana", "Constantin", "Ioana", "Mihai", "Andreea"]
LAST = ["Popescu", "Ionescu", "Popa", "Stan", "Dumitru", "Stoica", "Gheorghe", "Matei", "Ciobanu", "Rusu"]
ROLES = ["Administrator", "Director", "Inginer agronom", "Manager", "Contabil"]
CAEN = ["0111", "0113", "0121", "0124", "0141", "0146", "0150", "0161"]
KEY = (7, 5, 3, 2, 1, 7, 5, 3, 2)
HEADER = [
    "denumire",
    "cui",
    "judet",
    "localitate",
    "cod_caen",
    "email",
    "telefon",
    "prenume",
    "nume",
    "functie",
    "consent_whatsapp",
    "is_agricultural",
]


def with_check_digit(body: int) -> str:
    digits = str(body).rjust(9, "0")
    total = sum(int(d) * k for d, k in zip(digits, KEY, strict=True))
    return f"{body}{total * 10 % 11 % 10}"


LANDLINE_PREFIXES = ["21", "256", "264", "232", "251", "241", "268", "244", "257", "259"]


def landline(rng: random.Random) -> str:
    prefix = rng.choice(LANDLINE_PREFIXES)
    digits = f"{rng.randrange(10 ** (9 - len(prefix))):0{9 - len(prefix)}d}"
    return f"0{prefix} {digits[:3]} {digits[3:]}"


def mobile(rng: random.Random) -> str:
    number = f"7{rng.choice('234567')}{rng.randrange(10)}{rng.randrange(1_000_000):06d}"
    style = rng.random()
    if style < 0.5:
        return f"0{number[:3]} {number[3:6]} {number[6:]}"
    if style < 0.7:
        return f"0{number}"
    if style < 0.9:
        return f"+40 {number[:3]} {number[3:6]} {number[6:]}"
    return f"0040{number}"


def generate(path: Path, rows: int, bad: float, seed: int = 7) -> int:
    """Write the CSV; returns how many rows were made bad on purpose."""
    rng = random.Random(seed)
    counties = list(COUNTIES)
    body = 10_000_000
    cuis: list[str] = []
    broken = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(rows):
            body += rng.randrange(1, 50)
            cui = with_check_digit(body)
            if cuis and rng.random() < 0.01:
                cui = rng.choice(cuis)  # the same company again (merged)
            else:
                cuis.append(cui)
            county = counties[n % len(counties)]
            name = f"{rng.choice(KINDS)} {rng.choice(NAMES)} {county.split('-')[0]} {n} {rng.choice(FORMS)}"
            slug = name.lower().replace(" ", "").encode("ascii", "ignore").decode()[:30]
            email = f"contact@{slug}.ro" if rng.random() < 0.8 else ""
            phone = mobile(rng) if rng.random() < 0.9 else landline(rng)
            first, last = rng.choice(FIRST), rng.choice(LAST)
            row = [
                name,
                f"RO{cui}" if rng.random() < 0.3 else cui,
                county,
                rng.choice(COUNTIES[county]),
                rng.choice(CAEN),
                email,
                phone,
                first,
                last,
                rng.choice(ROLES),
                rng.choice(["da", "nu", ""]),
                "true",
            ]
            if rng.random() < bad:
                broken += 1
                fault = rng.randrange(5)
                if fault == 0:
                    row[1] = str(int(cui[:-1] + str((int(cui[-1]) + 1) % 10)))  # wrong check digit
                elif fault == 1:
                    row[1] = ""
                elif fault == 2:
                    row[0] = ""
                elif fault == 3:
                    row[5], row[6] = "", "12345"
                else:
                    row[5], row[6] = "nu-e-email", ""
            writer.writerow(row)
    return broken


_FLOOR_SQL = (
    # The same rows written set-based from the COPY table: no validation, no client round trips.
    """
    INSERT INTO gold_companies (tenant_id, cui, denumire, judet, localitate, cod_caen,
        email_principal, telefon_principal, is_agricultural)
    SELECT DISTINCT ON (r.k) $1::uuid, r.k, r.denumire, r.judet, r.localitate, r.cod_caen,
        nullif(r.email, ''), r.telefon, true
    FROM (SELECT regexp_replace(cui, '^RO', '') AS k, * FROM bench_raw
          WHERE cui <> '' AND denumire <> '') r
    ON CONFLICT DO NOTHING
    """,
    """
    INSERT INTO gold_contacts (tenant_id, company_id, prenume, nume, full_name, functie, email, phone,
        whatsapp_number, is_primary)
    SELECT $1::uuid, c.id, r.prenume, r.nume, r.prenume || ' ' || r.nume, r.functie, nullif(r.email, ''),
        r.telefon, r.telefon, true
    FROM gold_companies c
    JOIN (SELECT DISTINCT ON (k) regexp_replace(cui, '^RO', '') AS k, * FROM bench_raw) r ON r.k = c.cui
    WHERE c.tenant_id = $1::uuid
    """,
    """
    INSERT INTO gold_lead_journey (tenant_id, lead_id, email, mobile_e164, next_action_at)
    SELECT $1::uuid, c.id, c.email_principal, c.telefon_principal, now()
    FROM gold_companies c WHERE c.tenant_id = $1::uuid
    """,
    """
    INSERT INTO lead_state_history (tenant_id, lead_journey_id, to_state, trigger)
    SELECT $1::uuid, id, 'COLD', 'IMPORT' FROM gold_lead_journey WHERE tenant_id = $1::uuid
    """,
)


async def baselines(url: str, path: Path) -> tuple[float, float]:
    """COPY into a temp text table, then the set-based SQL floor (rolled back, then vacuumed)."""
    import asyncpg  # type: ignore[import-untyped]

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        columns = ", ".join(f"{c} text" for c in HEADER)
        await conn.execute(f"CREATE TEMP TABLE bench_raw ({columns})")
        start = time.perf_counter()
        await conn.copy_to_table("bench_raw", source=str(path), format="csv", header=True)
        copy_s = time.perf_counter() - start

        transaction = conn.transaction()
        await transaction.start()
        tenant = await conn.fetchval(
            "INSERT INTO tenants (slug, name) VALUES ('bench-floor', 'floor') RETURNING id"
        )
        start = time.perf_counter()
        for statement in _FLOOR_SQL:
            await conn.execute(statement, tenant)
        floor_s = time.perf_counter() - start
        await transaction.rollback()
        await conn.execute(
            "VACUUM ANALYZE gold_companies, gold_contacts, gold_lead_journey, lead_state_history"
        )
        return copy_s, floor_s
    finally:
        await conn.close()


def parse_only(path: Path) -> tuple[float, int]:
    from cerniq.leads.importer import CsvReader, validate_row

    start = time.perf_counter()
    good = 0
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in CsvReader(handle):
            if validate_row(row)[0] is not None:
                good += 1
    return time.perf_counter() - start, good


async def run_import(path: Path, batch: int) -> ImportReport:
    from cerniq.auth import service as auth
    from cerniq.kit.db import dispose_engines, transaction
    from cerniq.leads import service
    from cerniq.leads.importer import CsvReader

    async with transaction() as session:
        tenant = await auth.ensure_tenant(session, "bench")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            async with transaction() as session:
                return await service.import_leads(
                    session, tenant.id, CsvReader(handle), principal=None, source=path.name, batch_size=batch
                )
    finally:
        await dispose_engines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--bad", type=float, default=0.02, help="share of broken rows")
    parser.add_argument("--batch", type=int, default=2000, help="rows per database batch")
    parser.add_argument("--url", default=os.environ.get("CERNIQ_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()

    os.environ["CERNIQ_DATABASE_URL"] = args.url
    os.environ.setdefault("CERNIQ_LOG_LEVEL", "WARNING")
    from cerniq.kit.migrate import scratch_database

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leads_100k.csv"
        start = time.perf_counter()
        broken = generate(path, args.rows, args.bad)
        size_mb = path.stat().st_size / 1e6
        took = time.perf_counter() - start
        print(f"generated {args.rows:,} rows ({broken:,} bad, {size_mb:.1f} MB) in {took:.1f} s")

        with scratch_database(args.url, keep=args.keep):
            copy_s, floor_s = asyncio.run(baselines(args.url, path))
            parse_s, good = parse_only(path)
            first_start = time.perf_counter()
            first = asyncio.run(run_import(path, args.batch))
            first_s = time.perf_counter() - first_start
            again_start = time.perf_counter()
            again = asyncio.run(run_import(path, args.batch))
            again_s = time.perf_counter() - again_start

    rows = args.rows

    def line(label: str, seconds: float) -> None:
        print(f"  {label:<46} {seconds:>7.2f}s {rows / seconds:>12,.0f}  {seconds / copy_s:.1f}x")

    print()
    print(f"  {'measurement':<46} {'time':>8} {'rows/s':>12}  ratio to COPY")
    line("baseline: COPY into a temp text table", copy_s)
    line("baseline: same writes as set-based SQL", floor_s)
    line("parse + validate only (no database)", parse_s)
    line("import (new tenant: inserts)", first_s)
    line("re-import of the same file (all merges)", again_s)
    print()
    for label, r in (("first", first), ("again", again)):
        print(
            f"  {label}: rows={r.rows:,} created={r.created:,} merged={r.merged:,} "
            f"skipped={r.skipped:,} contacts={r.contacts_created:,} journeys={r.journeys_created:,} "
            f"warnings={r.warning_count:,}"
        )
    print(f"  valid rows by parse-only: {good:,}; rows broken on purpose: {broken:,}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
