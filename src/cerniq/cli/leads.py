"""``cerniq leads import|list|show``: CSV import with a progress bar, and a look at leads."""

from __future__ import annotations

import csv
import getpass
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from cerniq.cli.common import console, resolve_tenant_id, run

leads_app = typer.Typer(
    help="Leads: import a CSV of companies, list and inspect leads.", no_args_is_help=True
)

ERRORS_SHOWN = 50


def _add_row(table: Table, *values: object) -> None:
    """Add a row of plain text: imported data is never read as Rich markup."""
    table.add_row(*(Text("" if v is None else str(v)) for v in values))


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


@leads_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file")],
    tenant: Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and count; write nothing")] = False,
    errors_csv: Annotated[
        Path | None, typer.Option("--errors-csv", help="Write every failed row (line, field, reason) here")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=100, max=50_000, help="Rows per database batch")] = 2000,
) -> None:
    """Import companies and contacts from a CSV (UTF-8, comma or semicolon separated).

    Good rows are imported even when others fail; failed rows are listed with their line
    number. Exits 1 if any row failed, 0 otherwise (2 if the file cannot be read at all)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cerniq.auth.principal import Principal
    from cerniq.kit.db import transaction
    from cerniq.leads import service
    from cerniq.leads.importer import CsvReader, ImportReport
    from cerniq.models.enums import Role

    total = max(_count_lines(file) - 1, 1)
    user = getpass.getuser()

    async def action() -> ImportReport:
        tenant_id = await resolve_tenant_id(tenant)
        principal = Principal(
            tenant_id=tenant_id, role=Role.ADMIN, actor_type="cli", actor_id=user, actor_label=user
        )
        with (
            file.open(encoding="utf-8-sig", newline="") as handle,
            Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress,
        ):
            task = progress.add_task("dry run" if dry_run else "importing", total=total)

            def on_progress(rows_done: int) -> None:
                progress.update(task, completed=min(rows_done, total))

            async with transaction() as session:
                reader = CsvReader(handle)
                return await service.import_leads(
                    session,
                    tenant_id,
                    reader,
                    principal=principal,
                    source=file.name,
                    dry_run=dry_run,
                    batch_size=batch_size,
                    on_progress=on_progress,
                )

    report = run(action)
    _print_report(report)
    if errors_csv is not None:
        with errors_csv.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "field", "reason", "value"])
            for issue in report.errors:
                writer.writerow([issue.line, issue.field or "", issue.reason, issue.value or ""])
        console.print(f"all {len(report.errors)} error(s) written to {errors_csv}")
    if report.failed:
        raise typer.Exit(1)


def _print_report(report: Any) -> None:
    title = "Import (dry run: nothing written)" if report.dry_run else "Import"
    summary = Table(title=title, show_header=False)
    for label, value in (
        ("rows", report.rows),
        ("companies created", report.created),
        ("merged into existing", report.merged),
        ("skipped (errors)", report.skipped),
        ("contacts created", report.contacts_created),
        ("contacts updated", report.contacts_updated),
        ("journeys created (COLD)", report.journeys_created),
        ("warnings", report.warning_count),
        ("time", f"{report.duration_ms / 1000:.1f} s"),
    ):
        _add_row(summary, label, str(value))
    console.print(summary)
    if report.errors:
        table = Table("line", "field", "reason", "value", title=f"Failed rows ({report.skipped})")
        for issue in report.errors[:ERRORS_SHOWN]:
            _add_row(table, str(issue.line), issue.field or "", issue.reason, issue.value or "")
        console.print(table)
        if len(report.errors) > ERRORS_SHOWN:
            console.print(
                f"... and {len(report.errors) - ERRORS_SHOWN} more; use --errors-csv FILE to get them all"
            )
    if report.warnings:
        shown = report.warnings[:10]
        console.print(f"[yellow]{report.warning_count} warning(s)[/yellow], first {len(shown)}:")
        for issue in shown:
            field = f" ({issue.field})" if issue.field else ""
            console.print(escape(f"  line {issue.line}: {issue.reason}{field}"))


@leads_app.command("list")
def list_cmd(
    state: Annotated[
        str | None, typer.Option(help="State(s), comma separated, e.g. COLD,CONTACTED_WA")
    ] = None,
    search: Annotated[str | None, typer.Option(help="Company name, CUI, email or phone")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many")] = 20,
    page: Annotated[int, typer.Option(min=1)] = 1,
    tenant: Annotated[str | None, typer.Option(help="Tenant slug")] = None,
) -> None:
    """List leads, next action first."""
    from cerniq.kit.db import transaction
    from cerniq.kit.pagination import PageParams
    from cerniq.leads import service
    from cerniq.leads.repository import LeadFilters

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        filters = LeadFilters(states=service.parse_states(state), search=search)
        async with transaction() as session:
            return await service.list_leads(session, tenant_id, filters, PageParams(page=page, limit=limit))

    result = run(action)
    meta = result["meta"]
    table = Table(
        "id",
        "company",
        "CUI",
        "județ",
        "state",
        "phone",
        "next action",
        "replies",
        title=(
            f"Leads: page {meta['page']}/{max(meta['pages'], 1)} of {meta['total']}"
            if meta["totalExact"]
            else f"Leads: page {meta['page']} of more than {meta['total']}"
        ),
    )
    for item in result["data"]:
        company = item["company"]
        _add_row(
            table,
            item["id"],
            company["denumire"],
            company["cui"],
            company["judet"] or "",
            item["currentState"],
            (item["assignedPhone"] or {}).get("id", ""),
            (item["nextActionAt"] or "-")[:19],
            str(item["replyCount"]),
        )
    console.print(table)


@leads_app.command("show")
def show_cmd(
    lead_id: Annotated[str, typer.Argument(help="Lead (journey) id, or its company id")],
    tenant: Annotated[str | None, typer.Option(help="Tenant slug")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON")] = False,
) -> None:
    """Show one lead: state, company, contacts, recent messages and state history."""
    from cerniq.kit.db import transaction
    from cerniq.leads import service

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            return await service.lead_detail(session, tenant_id, lead_id)

    lead = run(action)
    if as_json:
        console.print_json(json.dumps(lead, ensure_ascii=False))
        return
    company = lead["company"] or {}
    phone = lead["assignedPhone"]
    info = Table(show_header=False, title=escape(f"{company.get('denumire')} (CUI {company.get('cui')})"))
    for label, value in (
        ("lead id", lead["id"]),
        ("company id", lead["leadId"]),
        ("state", lead["currentState"]),
        ("previous state", lead["previousState"]),
        ("email", lead["email"]),
        ("mobile", lead["mobileE164"]),
        ("phone", f"{phone['id']} {phone['phoneNumber']} ({phone['status']})" if phone else None),
        ("human controlled", lead["isHumanControlled"]),
        ("needs review", lead["requiresHumanReview"]),
        ("next action", lead["nextActionAt"]),
        ("sentiment", lead["sentimentScore"]),
        ("replies", lead["replyCount"]),
        ("județ / localitate", f"{company.get('judet') or ''} / {company.get('localitate') or ''}"),
    ):
        _add_row(info, label, "-" if value is None else str(value))
    console.print(info)
    if lead["contacts"]:
        contacts = Table("name", "function", "email", "phone", "WhatsApp", title="Contacts")
        for c in lead["contacts"]:
            _add_row(
                contacts,
                c["fullName"] or "",
                c["functie"] or "",
                c["email"] or "",
                c["phone"] or "",
                c["whatsappNumber"] or "",
            )
        console.print(contacts)
    if lead["communications"]:
        messages = Table("at", "channel", "dir", "status", "preview", title="Recent messages")
        for m in lead["communications"][:10]:
            _add_row(
                messages,
                m["createdAt"][:19],
                m["channel"],
                m["direction"],
                m["status"],
                (m["contentPreview"] or "")[:60],
            )
        console.print(messages)
    if lead["stateHistory"]:
        history = Table("at", "from", "to", "trigger", "actor", "reason", title="State history")
        for h in lead["stateHistory"]:
            _add_row(
                history,
                h["at"][:19],
                h["fromState"] or "-",
                h["toState"],
                h["trigger"],
                h["actor"] or "",
                h["reason"] or "",
            )
        console.print(history)


def register(root: typer.Typer) -> None:
    root.add_typer(leads_app, name="leads")
