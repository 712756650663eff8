"""Migration hygiene (reliability checklist O2, O3): one head, date-prefixed files, a clean
upgrade -> downgrade -> upgrade round trip, models in sync with the migrated schema, and
concurrent upgrades that serialize instead of colliding. Each test gets its own database."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CheckConstraint, DefaultClause, Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

import cerniq.kit.migrate as migrate
from cerniq.cli.db import app as db_cli
from cerniq.config import Settings
from cerniq.kit.migrate import (
    alembic_config,
    downgrade_database,
    drop_database,
    ensure_database_exists,
    head_revision,
    to_sync_url,
    upgrade_database,
)
from cerniq.models import Base

FILENAME = re.compile(r"\d{4}_\d{2}_\d{2}_\d{4}_[a-z0-9_]+\.py")
# Defaults that differ on every evaluation; Alembic's compare evaluates defaults, so these
# two are compared by their SQL text instead.
VOLATILE_DEFAULTS = {("tenants", "webhook_token"), ("wa_phone_numbers", "id")}


def scratch_url() -> str:
    base = make_url(Settings().database_url)
    return to_sync_url(base.set(database=f"cerniq_mig_{uuid.uuid4().hex[:12]}"))


@pytest.fixture
def db_url() -> Iterator[str]:
    url = scratch_url()
    assert ensure_database_exists(url) is True
    assert ensure_database_exists(url) is False  # idempotent
    yield url
    drop_database(url)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_engine(db_url, poolclass=NullPool)
    yield eng
    eng.dispose()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def public_objects(engine: Engine) -> dict[str, set[str]]:
    with engine.connect() as conn:
        relations = conn.execute(
            text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S', 'v', 'm')"
            )
        ).scalars()
        types = conn.execute(
            text(
                "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE n.nspname = 'public' AND t.typtype = 'e'"
            )
        ).scalars()
        return {"relations": set(relations), "enum_types": set(types)}


def normalize_sql(sql: str) -> str:
    return re.sub(r"[\s()]", "", re.sub(r"::[a-z_ ]+", "", sql.lower())).strip("'")


def test_single_head_and_linear_history() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [head_revision()]
    revisions = list(script.walk_revisions())
    assert revisions[-1].down_revision is None
    for rev in revisions:
        assert not rev.is_merge_point, f"{rev.revision} merges branches"


def test_revision_files_are_date_prefixed() -> None:
    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    versions = Path(script.versions)
    files = sorted(p.name for p in versions.glob("*.py"))
    assert files, "no revision files"
    for name in files:
        assert FILENAME.fullmatch(name), f"{name} does not match YYYY_MM_DD_HHMM_slug.py"
    # Every revision lives in one of those files, the head included.
    paths = {Path(rev.path).name for rev in script.walk_revisions()}
    assert paths == set(files)
    head = script.get_revision(head_revision())
    assert head is not None
    assert FILENAME.fullmatch(Path(head.path).name)
    # And new revisions will be named the same way.
    template = config.get_main_option("file_template")
    assert template is not None
    rendered = template % {"year": 2027, "month": 1, "day": 2, "hour": 3, "minute": 4, "slug": "add_x"}
    assert rendered == "2027_01_02_0304_add_x"


def test_upgrade_downgrade_upgrade_round_trip(db_url: str, engine: Engine) -> None:
    upgrade_database(db_url)
    assert current_revision(engine) == head_revision()
    migrated = public_objects(engine)
    assert set(Base.metadata.tables) <= migrated["relations"]
    assert "wa_phone_numbers_id_seq" in migrated["relations"]
    assert "current_state_enum" in migrated["enum_types"]

    downgrade_database("base", db_url)
    assert current_revision(engine) is None
    # Nothing left behind but Alembic's own bookkeeping table.
    assert public_objects(engine) == {"relations": {"alembic_version"}, "enum_types": set()}

    upgrade_database(db_url)
    assert current_revision(engine) == head_revision()
    assert public_objects(engine) == migrated


def test_models_match_migrated_schema(db_url: str, engine: Engine) -> None:
    upgrade_database(db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(context, Base.metadata)

    def is_volatile_default(change: Any) -> bool:
        return (
            isinstance(change, list)
            and len(change) == 1
            and change[0][0] == "modify_default"
            and (change[0][2], change[0][3]) in VOLATILE_DEFAULTS
        )

    assert [c for c in diff if not is_volatile_default(c)] == []

    inspector = inspect(engine)
    for table_name, column in VOLATILE_DEFAULTS:
        reflected = {c["name"]: c for c in inspector.get_columns(table_name)}[column]["default"]
        server_default = Base.metadata.tables[table_name].c[column].server_default
        assert reflected is not None
        assert isinstance(server_default, DefaultClause)
        expected = str(server_default.arg)
        assert normalize_sql(reflected) == normalize_sql(expected), (table_name, column)

    # Alembic does not compare CHECK constraints: compare their names here.
    for table in Base.metadata.sorted_tables:
        model_checks = {c.name for c in table.constraints if isinstance(c, CheckConstraint) and c.name}
        db_checks = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert db_checks == model_checks, table.name


def test_archive_has_the_log_columns_in_the_same_order(db_url: str, engine: Engine) -> None:
    upgrade_database(db_url)
    inspector = inspect(engine)

    def columns(table: str) -> list[tuple[str, str, bool]]:
        return [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)]

    assert columns("gold_communication_log") == columns("gold_communication_log_archive")
    model_log = [c.name for c in Base.metadata.tables["gold_communication_log"].c]
    assert [c[0] for c in columns("gold_communication_log")] == model_log
    # The archive accepts anything: no foreign keys, no unique constraints.
    assert inspector.get_foreign_keys("gold_communication_log_archive") == []
    assert inspector.get_unique_constraints("gold_communication_log_archive") == []


def test_concurrent_upgrades_serialize(db_url: str, engine: Engine) -> None:
    """Two processes upgrading a fresh database at once (two pods starting): without the
    advisory lock the second would fail creating the types the first is creating; with it, it
    waits and then finds the work done."""
    code = (
        "import logging, sys; logging.basicConfig(level=logging.INFO); "
        "from cerniq.kit.migrate import upgrade_database; upgrade_database(sys.argv[1])"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, db_url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    # One of them ran the migration, the other found nothing to do.
    assert sum("Running upgrade" in out for out in outputs) == 1, outputs
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1


def test_ddl_gives_up_instead_of_queueing_behind_traffic(db_url: str, engine: Engine) -> None:
    """A long transaction holds a lock on a table the migration must alter: the migration
    aborts after lock_timeout, rolls back whole, and the schema stays where it was."""
    upgrade_database(db_url)
    config = alembic_config(db_url)
    config.attributes["lock_timeout"] = "1s"
    with engine.connect() as traffic:
        traffic.execute(text("LOCK TABLE tenants IN ACCESS SHARE MODE"))
        started = time.monotonic()
        with pytest.raises(OperationalError, match="lock timeout"):
            command.downgrade(config, "base")
        assert time.monotonic() - started < 30
        traffic.rollback()
    assert current_revision(engine) == head_revision()
    assert "tenants" in public_objects(engine)["relations"]


def test_migration_waits_for_a_running_migration(db_url: str, engine: Engine) -> None:
    """The advisory lock wait itself is not cut short by lock_timeout."""
    config = alembic_config(db_url)
    config.attributes["lock_timeout"] = "1s"
    with engine.connect() as other:
        other.execute(text(f"SELECT pg_advisory_xact_lock({migrate.MIGRATION_LOCK_ID})"))
        done = threading.Event()

        def upgrade() -> None:
            command.upgrade(config, "head")
            done.set()

        thread = threading.Thread(target=upgrade)
        thread.start()
        assert not done.wait(2.5), "the upgrade ran while another migration held the lock"
        other.rollback()
    thread.join(timeout=120)
    assert done.is_set()
    assert current_revision(engine) == head_revision()


def test_cli_commands() -> None:
    url = scratch_url()
    runner = CliRunner()
    try:
        result = runner.invoke(db_cli, ["upgrade", "--url", url])
        assert result.exit_code == 0, result.output
        assert "created the database" in result.output
        assert f"{head_revision()} (head)" in result.output

        result = runner.invoke(db_cli, ["current", "--url", url])
        assert result.exit_code == 0, result.output
        assert f"{head_revision()} (head)" in result.output

        result = runner.invoke(db_cli, ["heads"])
        assert result.exit_code == 0, result.output
        assert f"{head_revision()} (head)" in result.output

        result = runner.invoke(db_cli, ["downgrade", "--url", url])
        assert result.exit_code != 0  # the revision is required

        result = runner.invoke(db_cli, ["downgrade", "nonexistent", "--url", url])
        assert result.exit_code == 1
        assert "error:" in result.output

        result = runner.invoke(db_cli, ["downgrade", "base", "--url", url])
        assert result.exit_code == 0, result.output
        result = runner.invoke(db_cli, ["current", "--url", url])
        assert result.exit_code == 0
        assert "(head)" not in result.output
    finally:
        drop_database(url)


def test_alembic_config_is_found_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    config = alembic_config()
    assert Path(config.get_main_option("script_location") or "") == repo / "migrations"

    # Installed elsewhere (no checkout next to the package): the current directory is used.
    monkeypatch.setattr(migrate, "_SOURCE_ROOT", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError):
        alembic_config()
    monkeypatch.chdir(repo)
    assert Path(alembic_config().get_main_option("script_location") or "") == repo / "migrations"


def test_url_override_keeps_percent_signs() -> None:
    url = "postgresql+asyncpg://user:p%40ss@db.example:5432/cerniq"
    config = alembic_config(url)
    assert (
        config.get_main_option("sqlalchemy.url") == "postgresql+psycopg://user:p%40ss@db.example:5432/cerniq"
    )
