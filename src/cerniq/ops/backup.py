"""Database backups (runbook 8.1): ``cerniq backup create|verify|restore|list``.

Layout: ``backups_dir/daily/YYYY-MM-DD/cerniq.dump`` (``pg_dump`` custom format) next to a
``manifest.json`` holding the exact row count of every table and the Alembic revision, and a
``backups_dir/daily/latest`` symlink to the newest day (the runbook restores ``latest``).

The counts and the dump come from the same snapshot: a REPEATABLE READ transaction exports its
snapshot, counts every table, and ``pg_dump --snapshot`` dumps exactly what it saw, so a verify
(restore into a scratch database ``cerniq_verify_<random>``, count, compare, drop) is exact even
while workers keep writing.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from cerniq.config import Settings, get_settings
from cerniq.errors import CerniqError

DUMP_NAME = "cerniq.dump"
MANIFEST_NAME = "manifest.json"

_COUNTS_SQL = """
SELECT c.relname,
       (xpath('/row/n/text()',
              query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname),
                           false, true, '')))[1]::text::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""

RESTORE_ORDER = (
    "1. stop the workers (nothing may write while the database is replaced)",
    "2. cerniq backup restore --date YYYY-MM-DD --yes",
    "3. verify the counts (printed below; psql -c 'SELECT COUNT(*) FROM gold_lead_journey')",
    "4. cerniq recover redis (quota counters, phone status, lost jobs, schedules)",
    "5. start the workers and watch the queues drain",
)


class BackupError(CerniqError):
    status_code = 409
    code = "BACKUP_FAILED"


class BackupNotFound(CerniqError):
    status_code = 404
    code = "BACKUP_NOT_FOUND"


@dataclass
class BackupResult:
    day: str
    path: str
    size_bytes: int
    revision: str | None
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class VerifyResult:
    day: str
    ok: bool
    scratch_database: str
    mismatches: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    tables: int = 0


def pg_binary(name: str) -> str:
    """``pg_dump`` / ``pg_restore`` / ``psql``: on PATH, else the newest /usr/lib/postgresql."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        if os.access(candidate, os.X_OK):
            return candidate
    raise BackupError(f"{name} not found (install the PostgreSQL client tools)", code="PG_TOOL_MISSING")


def libpq_url(settings: Settings | None = None) -> str:
    """The database URL for libpq (no ``+asyncpg``; ``?host=/socket`` works as is)."""
    return (settings or get_settings()).libpq_database_url


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def day_dir(day: date | str, settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return Path(settings.backups_dir) / "daily" / str(day)


def business_today(settings: Settings | None = None) -> date:
    settings = settings or get_settings()
    return datetime.now(settings.tz).date()


def _revision(conn: psycopg.Connection[Any]) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except psycopg.Error:
        conn.rollback()
        return None
    return str(row[0]) if row else None


def table_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return {str(name): int(n) for name, n in conn.execute(_COUNTS_SQL).fetchall()}


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BackupError(
            f"{Path(cmd[0]).name} failed: {proc.stderr.strip()[-800:]}", details={"rc": proc.returncode}
        )


def create_backup(day: date | None = None, settings: Settings | None = None) -> BackupResult:
    """Dump the database into ``daily/<day>/cerniq.dump`` with its manifest (overwrites that day)."""
    settings = settings or get_settings()
    day = day or business_today(settings)
    url = libpq_url(settings)
    target = day_dir(day, settings)
    target.mkdir(parents=True, exist_ok=True)
    partial = target / (DUMP_NAME + ".partial")
    with psycopg.connect(url) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert snapshot is not None
        counts = table_counts(conn)
        revision = _revision(conn)
        _run([pg_binary("pg_dump"), "-Fc", f"--snapshot={snapshot[0]}", "-f", str(partial), "-d", url])
        conn.rollback()
    dump = target / DUMP_NAME
    partial.replace(dump)
    manifest = {
        "day": str(day),
        "created_at": datetime.now(settings.tz).isoformat(),
        "database": database_name(url),
        "alembic_revision": revision,
        "dump": DUMP_NAME,
        "size_bytes": dump.stat().st_size,
        "counts": counts,
    }
    (target / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    latest = target.parent / "latest"
    if latest.is_symlink() or not latest.exists():
        tmp = target.parent / ".latest.tmp"
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(str(day))
        tmp.replace(latest)
    return BackupResult(str(day), str(dump), dump.stat().st_size, revision, counts)


def list_backups(settings: Settings | None = None) -> list[dict[str, Any]]:
    root = Path((settings or get_settings()).backups_dir) / "daily"
    out: list[dict[str, Any]] = []
    if not root.is_dir():
        return out
    for entry in sorted(root.iterdir()):
        if entry.is_symlink() or not entry.is_dir():
            continue
        manifest = read_manifest(entry.name, settings, missing_ok=True)
        dump = entry / DUMP_NAME
        out.append(
            {
                "day": entry.name,
                "dump": dump.is_file(),
                "size_bytes": dump.stat().st_size if dump.is_file() else 0,
                "revision": (manifest or {}).get("alembic_revision"),
            }
        )
    return out


def latest_day(settings: Settings | None = None) -> str | None:
    days = [b["day"] for b in list_backups(settings) if b["dump"]]
    return days[-1] if days else None


def read_manifest(
    day: date | str, settings: Settings | None = None, *, missing_ok: bool = False
) -> dict[str, Any] | None:
    path = day_dir(day, settings) / MANIFEST_NAME
    if not path.is_file():
        if missing_ok:
            return None
        raise BackupNotFound(f"no backup manifest for {day} at {path}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _resolve(day: date | str | None, settings: Settings) -> tuple[str, Path]:
    chosen = str(day) if day else latest_day(settings)
    if chosen is None:
        raise BackupNotFound(f"no backups under {Path(settings.backups_dir) / 'daily'}")
    dump = day_dir(chosen, settings) / DUMP_NAME
    if not dump.is_file():
        raise BackupNotFound(f"no backup for {chosen} at {dump}")
    return chosen, dump


def compare(expected: dict[str, int], actual: dict[str, int]) -> dict[str, tuple[int, int | None]]:
    return {t: (n, actual.get(t)) for t, n in expected.items() if actual.get(t) != n}


def verify_backup(day: date | str | None = None, settings: Settings | None = None) -> VerifyResult:
    """Restore the backup into a scratch database, compare its counts with the manifest, drop it."""
    settings = settings or get_settings()
    chosen, dump = _resolve(day, settings)
    manifest = read_manifest(chosen, settings)
    assert manifest is not None
    url = libpq_url(settings)
    scratch = f"cerniq_verify_{secrets.token_hex(4)}"
    scratch_url = with_database(url, scratch)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    try:
        _run(
            [
                pg_binary("pg_restore"),
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "-d",
                scratch_url,
                str(dump),
            ]
        )
        with psycopg.connect(scratch_url) as conn:
            actual = table_counts(conn)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
    expected = {str(k): int(v) for k, v in manifest["counts"].items()}
    mismatches = compare(expected, actual)
    return VerifyResult(chosen, not mismatches, scratch, mismatches, len(expected))


def restore_backup(day: date | str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """Replace the database's contents with the backup (``pg_restore --clean``), then compare
    the restored counts with the manifest. Stops nothing: the caller stops the workers first."""
    settings = settings or get_settings()
    chosen, dump = _resolve(day, settings)
    manifest = read_manifest(chosen, settings)
    assert manifest is not None
    url = libpq_url(settings)
    _run(
        [
            pg_binary("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            "-d",
            url,
            str(dump),
        ]
    )
    with psycopg.connect(url) as conn:
        actual = table_counts(conn)
    expected = {str(k): int(v) for k, v in manifest["counts"].items()}
    mismatches = compare(expected, actual)
    return {"day": chosen, "ok": not mismatches, "mismatches": mismatches, "counts": actual}
