"""``cerniq backup create|verify|restore|list``: runbook 8.1 as commands."""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

import typer

from cerniq.cli.common import console, err_console

backup_app = typer.Typer(
    help="Database backups: create, verify (scratch restore), restore.", no_args_is_help=True
)

DateOption = Annotated[
    str | None, typer.Option("--date", help="Backup day YYYY-MM-DD (default: today / latest)")
]


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint="--date") from None


def _guard(action: Any) -> Any:
    from cerniq.errors import CerniqError

    try:
        return action()
    except CerniqError as exc:
        err_console.print(f"[red]{exc.error_code}[/red]: {exc.message}")
        raise typer.Exit(2) from exc


def _audit(action: str, details: dict[str, Any]) -> None:
    from cerniq.cli.common import run

    async def write() -> None:
        from sqlalchemy import select

        from cerniq.auth.principal import Principal
        from cerniq.auth.service import record_audit
        from cerniq.kit.db import transaction
        from cerniq.models import Tenant
        from cerniq.models.enums import Role

        user = getpass.getuser()
        async with transaction() as session:
            for tid in (await session.execute(select(Tenant.id))).scalars().all():
                principal = Principal(
                    tenant_id=tid, role=Role.ADMIN, actor_type="cli", actor_id=user, actor_label=user
                )
                await record_audit(
                    session,
                    principal,
                    action,
                    entity_type="backup",
                    entity_id=details.get("day"),
                    after=details,
                )

    run(write)


@backup_app.command("create")
def create_cmd(date_: DateOption = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """pg_dump (custom format) into backups/daily/YYYY-MM-DD/cerniq.dump + manifest.json."""
    from cerniq.ops import backup

    result = _guard(lambda: backup.create_backup(_day(date_)))
    _audit("backup.create", {"day": result.day, "path": result.path, "size_bytes": result.size_bytes})
    if as_json:
        console.print_json(json.dumps(asdict(result)))
        return
    console.print(
        f"backup {result.day}: {result.path} ({result.size_bytes} bytes, revision {result.revision})"
    )
    console.print(f"{len(result.counts)} tables, {sum(result.counts.values())} rows")


@backup_app.command("verify")
def verify_cmd(date_: DateOption = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Restore into a scratch database, compare row counts with the manifest, drop it."""
    from cerniq.ops import backup

    result = _guard(lambda: backup.verify_backup(_day(date_)))
    if as_json:
        console.print_json(json.dumps(asdict(result)))
    elif result.ok:
        console.print(f"backup {result.day}: OK, {result.tables} tables match the manifest")
    else:
        console.print(f"[red]backup {result.day}: MISMATCH[/red]")
        for table, (expected, actual) in result.mismatches.items():
            console.print(f"  {table}: manifest {expected}, restored {actual}")
    if not result.ok:
        raise typer.Exit(1)


@backup_app.command("restore")
def restore_cmd(
    date_: DateOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Really replace the database's contents")] = False,
) -> None:
    """Replace the database with a backup (pg_restore --clean). Stop the workers first."""
    from cerniq.ops import backup

    console.print("Runbook 8.1 order:")
    for line in backup.RESTORE_ORDER:
        console.print(f"  {line}")
    if not yes:
        err_console.print("[red]refusing to restore without --yes[/red] (this replaces the database)")
        raise typer.Exit(2)
    result = _guard(lambda: backup.restore_backup(_day(date_)))
    _audit("backup.restore", {"day": result["day"], "ok": result["ok"]})
    for table in ("gold_lead_journey", "gold_communication_log"):
        console.print(f"{table}: {result['counts'].get(table)}")
    if result["ok"]:
        console.print(f"restored {result['day']}: counts match the manifest. Next: cerniq recover redis")
    else:
        console.print(f"[red]restored {result['day']} but counts differ:[/red] {result['mismatches']}")
        raise typer.Exit(1)


@backup_app.command("list")
def list_cmd() -> None:
    """The backups on disk."""
    from cerniq.ops import backup

    for entry in backup.list_backups():
        console.print(f"{entry['day']}  {entry['size_bytes']:>12} bytes  revision {entry['revision']}")


def register(root: typer.Typer) -> None:
    root.add_typer(backup_app, name="backup")
