"""Alembic environment: online migrations over psycopg, serialized across processes.

The database is, in order: a connection a caller put in ``config.attributes["connection"]``,
``-x url=...``, the ``sqlalchemy.url`` option a caller set, or ``CERNIQ_DATABASE_URL``.
Every run holds a transaction-level advisory lock, so two processes upgrading at once take
turns (the second finds the work done), and sets ``lock_timeout`` so a DDL statement that would
queue behind live traffic fails fast instead of blocking it.
"""

from __future__ import annotations

import re
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, create_engine, pool, text

import cerniq.models
from cerniq.config import Settings
from cerniq.kit.migrate import MIGRATION_LOCK_ID, MIGRATION_LOCK_TIMEOUT, to_sync_url

config = context.config

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = cerniq.models.Base.metadata

LOCK_SQL = f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"


def timeout_sql() -> str:
    """``SET LOCAL lock_timeout``: the default, or ``-x lock_timeout=2s`` / a caller's attribute."""
    value = (
        config.attributes.get("lock_timeout")
        or context.get_x_argument(as_dictionary=True).get("lock_timeout")
        or MIGRATION_LOCK_TIMEOUT
    )
    if not re.fullmatch(r"\d+(ms|s|min)?", str(value)):
        raise ValueError(f"lock_timeout must look like 5s, 500ms or 1min, not {value!r}")
    return f"SET LOCAL lock_timeout = '{value}'"


def database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    return to_sync_url(url or Settings().sync_database_url)


def run_migrations_offline() -> None:
    """Emit the SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        compare_type=True,
    )
    with context.begin_transaction():
        context.execute(LOCK_SQL)
        context.execute(timeout_sql())
        context.run_migrations()


def run_with_connection(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        # Lock first: waiting for another migration run is expected and must not time out.
        connection.execute(text(LOCK_SQL))
        connection.execute(text(timeout_sql()))
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with_connection(connection)
        return
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            run_with_connection(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
