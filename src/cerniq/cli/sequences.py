"""``cerniq sequences list|show|enroll|pause|resume|seed-defaults``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from cerniq.cli.common import console, print_json, resolve_tenant_id, run

sequences_app = typer.Typer(
    help="Follow-up sequences: list, inspect, enroll leads, pause and resume, default content.",
    no_args_is_help=True,
)

TenantOption = Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")]
ReasonOption = Annotated[str | None, typer.Option(help="Why (kept in the audit log)")]


def _row(table: Table, *values: object) -> None:
    table.add_row(*(Text("" if v is None else str(v)) for v in values))


_print_json = print_json


def _principal(tenant_id: Any) -> Any:
    from cerniq.auth.principal import system_principal

    return system_principal(tenant_id, "cli")


def read_lead_ids(value: str) -> list[str]:
    """Lead ids from a file (one per line, or a CSV whose ``leadId``/``id`` column or first
    column holds them) or from a comma-separated list."""
    path = Path(value)
    if not path.is_file():
        return [part.strip() for part in value.split(",") if part.strip()]
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    for name in ("leadid", "lead_id", "journeyid", "journey_id", "id"):
        if name in header:
            index = header.index(name)
            return [row[index].strip() for row in rows[1:] if len(row) > index and row[index].strip()]
    return [row[0].strip() for row in rows if row[0].strip()]


@sequences_app.command("list")
def list_cmd(
    all_: Annotated[bool, typer.Option("--all", help="Include deleted sequences")] = False,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """List sequences with their steps and enrollment counts."""
    from cerniq.kit.db import transaction
    from cerniq.kit.pagination import PageParams
    from cerniq.sequences import service

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            return await service.list_view(
                session, tenant_id, PageParams(page=1, limit=100), include_archived=all_
            )

    result = run(action)
    if as_json:
        _print_json(result)
        return
    table = Table(
        "id", "name", "status", "default", "channel", "steps", "enrolled", "active", "completed", "replied"
    )
    for s in result["data"]:
        _row(
            table,
            s["id"],
            s["name"],
            s["status"] if s["isActive"] or s["status"] != "ACTIVE" else "INACTIVE",
            "yes" if s["isDefault"] else "",
            s["primaryChannel"],
            " ".join(step["delayLabel"] for step in s["steps"]),
            s["counts"]["enrolled"],
            s["counts"]["active"],
            s["counts"]["completed"],
            s["counts"]["replied"],
        )
    console.print(table)


@sequences_app.command("show")
def show_cmd(
    sequence: Annotated[str, typer.Argument(help="Sequence id or code")],
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a sequence: steps, enrollments by status, messages per step, replies."""
    from cerniq.kit.db import transaction
    from cerniq.sequences import service

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            row = await service.resolve_sequence(session, tenant_id, sequence)
            return await service.detail_view(session, tenant_id, row.id)

    view = run(action)
    if as_json:
        _print_json(view)
        return
    flags = [
        "active" if view["isActive"] else "INACTIVE",
        "default" if view["isDefault"] else "",
        "business hours" if view["respectBusinessHours"] else "any time",
        "stops on reply" if view["stopOnReply"] else "continues after a reply",
    ]
    console.print(Text(f"{view['name']}  ({view['status']}, id {view['id']})", style="bold"))
    console.print(Text(", ".join(f for f in flags if f)))
    steps = Table("step", "delay", "channel", "template", "skip if replied", "skip if opened")
    for s in view["steps"]:
        _row(
            steps,
            s["stepNumber"],
            s["delayLabel"],
            s["channel"],
            s["templateName"],
            "yes" if s["skipIfReplied"] else "",
            "yes" if s["skipIfOpened"] else "",
        )
    console.print(steps)
    stats = view["stats"]
    console.print(
        f"enrollments {stats['enrollments']}: active {stats['active']}, completed {stats['completed']}, "
        f"stopped {stats['stopped']} {stats['stoppedByReason'] or ''}"
    )
    console.print(
        f"replies {stats['replies']} ({stats['replyRate'] * 100:.1f} % of contacted), "
        f"conversions {stats['conversions']}, average steps done {stats['avgStepsCompleted']}"
    )
    sent = Table("step", "sent", "queued", "failed", "skipped")
    for m in stats["messagesPerStep"]:
        _row(sent, m["step"], m["sent"], m["queued"], m["failed"], m["skipped"])
    console.print(sent)


@sequences_app.command("enroll")
def enroll_cmd(
    sequence: Annotated[str, typer.Argument(help="Sequence id or code")],
    leads: Annotated[
        str, typer.Option("--leads", help="A file of lead ids (one per line or CSV), or id,id,...")
    ],
    start_step: Annotated[int, typer.Option("--start-step", min=1, max=10)] = 1,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enroll leads; prints who was enrolled and why others were skipped."""
    from cerniq.kit.db import transaction
    from cerniq.sequences import service

    ids = read_lead_ids(leads)
    if not ids:
        raise typer.BadParameter("no lead ids given", param_hint="--leads")

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        total: dict[str, Any] = {"enrolled": 0, "skipped": [], "errors": [], "enrollments": []}
        for start in range(0, len(ids), 1000):
            async with transaction() as session:
                row = await service.resolve_sequence(session, tenant_id, sequence)
                part = await service.enroll_leads(
                    session, _principal(tenant_id), row.id, ids[start : start + 1000], start_step=start_step
                )
            total["sequenceId"] = part["sequenceId"]
            total["enrolled"] += part["enrolled"]
            for key in ("skipped", "errors", "enrollments"):
                total[key].extend(part[key])
        return total

    result = run(action)
    if as_json:
        _print_json(result)
        return
    console.print(
        f"enrolled {result['enrolled']}, skipped {len(result['skipped'])}, errors {len(result['errors'])}"
    )
    if result["skipped"] or result["errors"]:
        table = Table("lead", "reason")
        for item in [*result["skipped"], *result["errors"]]:
            _row(table, item["leadId"], item["reason"])
        console.print(table)


@sequences_app.command("pause")
def pause_cmd(
    sequence: Annotated[str, typer.Argument(help="Sequence id or code")],
    reason: ReasonOption = None,
    tenant: TenantOption = None,
) -> None:
    """Stop sending for a sequence; enrolled leads keep their place."""
    from cerniq.kit.db import transaction
    from cerniq.sequences import service

    async def action() -> str:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            row = await service.resolve_sequence(session, tenant_id, sequence)
            await service.pause_sequence(session, _principal(tenant_id), row.id, reason=reason)
            return row.name

    console.print(f"paused {run(action)}")


@sequences_app.command("resume")
def resume_cmd(
    sequence: Annotated[str, typer.Argument(help="Sequence id or code")],
    reason: ReasonOption = None,
    tenant: TenantOption = None,
) -> None:
    """Reactivate a sequence (after an emergency resume, sequences are reactivated one by one)."""
    from cerniq.kit.db import transaction
    from cerniq.sequences import service

    async def action() -> tuple[str, int]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            row = await service.resolve_sequence(session, tenant_id, sequence)
            _, due = await service.resume_sequence(session, _principal(tenant_id), row.id, reason=reason)
            return row.name, due

    name, due = run(action)
    console.print(f"resumed {name}; {due} leads due again")


@sequences_app.command("seed-defaults")
def seed_defaults_cmd(tenant: TenantOption = None) -> None:
    """Create the default Romanian templates and sequences where missing (idempotent)."""
    from cerniq.kit.db import transaction
    from cerniq.sequences import service

    async def action() -> tuple[str, bool, list[str]]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            sequence, made = await service.ensure_default_content(session, tenant_id)
            return sequence.name, sequence.is_default, [t.name for t in made]

    name, is_default, names = run(action)
    console.print(f"sequence {name}{' (default)' if is_default else ''}; templates: {', '.join(names)}")


def register(root: typer.Typer) -> None:
    root.add_typer(sequences_app, name="sequences")
