"""Schema migrations, run programmatically (the ``cerniq db`` commands, the demo, the tests).

The Alembic environment lives in the repository (``alembic.ini`` and ``migrations/``);
:func:`alembic_config` finds it next to the source tree, or in the current directory.
Concurrent upgrades (two pods starting at once) serialize on a PostgreSQL advisory lock taken by
``migrations/env.py``; DDL then gives up after ``lock_timeout`` instead of queueing behind live
traffic.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from cerniq.config import Settings

# Key of the transaction-level advisory lock every migration run holds ("cerniqmg" in ASCII).
MIGRATION_LOCK_ID = 0x636572_6E69716D67
# How long one DDL statement may wait for a table lock before the migration aborts.
MIGRATION_LOCK_TIMEOUT = "5s"

_SOURCE_ROOT = Path(__file__).resolve().parents[3]


def find_alembic_ini() -> Path:
    """The repository's ``alembic.ini``: next to ``src/`` when running from a checkout or an
    editable install, else in the current directory."""
    for root in (_SOURCE_ROOT, Path.cwd()):
        candidate = root / "alembic.ini"
        if candidate.is_file() and (root / "migrations" / "env.py").is_file():
            return candidate
    raise FileNotFoundError(
        "alembic.ini with a migrations/ directory not found next to the cerniq sources or in the "
        f"current directory ({Path.cwd()}); run from the repository root"
    )


def to_sync_url(url: str | URL) -> str:
    """The same database as a psycopg (sync) SQLAlchemy URL, whatever driver ``url`` names."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string(hide_password=True)}")
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` for this repository's migrations, optionally for database ``url``
    (otherwise ``CERNIQ_DATABASE_URL`` through Settings). It leaves the caller's logging alone."""
    ini = find_alembic_ini()
    # stdout is bound at call time so captured output (tests, CliRunner) sees Alembic's prints.
    config = Config(str(ini), stdout=sys.stdout)
    config.set_main_option("script_location", str(ini.parent / "migrations"))
    config.attributes["configure_logger"] = False
    if url is not None:
        # ConfigParser interpolates '%', which URL-encoded passwords contain.
        config.set_main_option("sqlalchemy.url", to_sync_url(url).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The single head revision of the migration scripts."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"expected one migration head, found {heads}")
    return heads[0]


def upgrade_database(url: str | None = None, revision: str = "head") -> None:
    """Upgrade the database (``url``, else the configured one) to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade_database(revision: str, url: str | None = None) -> None:
    """Downgrade the database (``url``, else the configured one) to ``revision``."""
    command.downgrade(alembic_config(url), revision)


def _server_url(url: str | None) -> tuple[URL, str]:
    target = make_url(to_sync_url(url or Settings().database_url))
    name = target.database
    if not name:
        raise ValueError("the database URL names no database")
    return target.set(database="postgres"), name


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def ensure_database_exists(url: str | None = None) -> bool:
    """Create the database ``url`` names if it does not exist (connecting to the server's
    ``postgres`` database). Returns True when it was created now."""
    server, name = _server_url(url)
    engine = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists:
                return False
            try:
                conn.execute(text(f"CREATE DATABASE {_quote_ident(name)}"))
            except DBAPIError as exc:
                # Another process created it between our check and our CREATE.
                if getattr(exc.orig, "sqlstate", None) == "42P04":
                    return False
                raise
            return True
    finally:
        engine.dispose()


def drop_database(url: str) -> None:
    """Drop the database ``url`` names if it exists, closing its connections (tests, demo reset)."""
    server, name = _server_url(url)
    engine = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)"))
    finally:
        engine.dispose()


@contextmanager
def scratch_database(url: str, *, keep: bool = False) -> Iterator[str]:
    """A fresh database at ``url`` migrated to head for the block (benchmarks): whatever was there
    is dropped first, and the database is dropped afterwards unless ``keep``."""
    drop_database(url)
    ensure_database_exists(url)
    upgrade_database(url)
    try:
        yield url
    finally:
        if not keep:
            drop_database(url)
