"""``cerniq templates list|show|preview|lint``: message templates from the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from cerniq.cli.common import console, err_console, print_json, resolve_tenant_id, run

templates_app = typer.Typer(
    help="Message templates: list, inspect, preview for a lead, lint a text file.", no_args_is_help=True
)

TenantOption = Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")]


def _row(table: Table, *values: object) -> None:
    table.add_row(*(Text("" if v is None else str(v)) for v in values))


_print_json = print_json


def _print_issues(issues: list[dict[str, Any]]) -> None:
    for issue in issues:
        where = f"{issue['field']} {issue['line']}:{issue['column']}" if issue.get("line") else issue["field"]
        colour = "red" if issue["severity"] == "error" else "yellow"
        console.print(
            Text.assemble(
                (f"{issue['severity']:7}", colour), f" {where}  {issue['code']}: {issue['message']}"
            )
        )


@templates_app.command("list")
def list_cmd(
    channel: Annotated[str | None, typer.Option(help="WHATSAPP, EMAIL_COLD, EMAIL_WARM or EMAIL")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include deactivated templates")] = False,
    search: Annotated[str | None, typer.Option(help="Text in the name, code or content")] = None,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """List templates with their version and results."""
    from cerniq.kit.db import transaction
    from cerniq.kit.pagination import PageParams
    from cerniq.templates import service

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            return await service.list_view(
                session,
                tenant_id,
                PageParams(page=1, limit=100),
                channel=channel,
                is_active=None if all_ else True,
                search=search,
            )

    result = run(action)
    if as_json:
        _print_json(result)
        return
    table = Table("id", "code", "name", "channel", "ver", "active", "approved", "sent", "reply %", "A/B")
    for t in result["data"]:
        _row(
            table,
            t["id"],
            t["code"] or "",
            t["name"],
            t["channel"],
            t["currentVersion"],
            "yes" if t["isActive"] else "no",
            "yes" if t["isApproved"] else "no",
            t["stats"]["timesUsed"],
            f"{t['stats']['replyRate'] * 100:.1f}",
            t["abVariants"] or "",
        )
    console.print(table)
    console.print(f"{result['meta']['total']} templates")


@templates_app.command("show")
def show_cmd(
    template: Annotated[str, typer.Argument(help="Template id or code")],
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a template: its text, variables, versions and per-variant results."""
    from cerniq.kit.db import transaction
    from cerniq.templates import service

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            row = await service.resolve_template(session, tenant_id, template)
            return await service.detail_view(session, tenant_id, row.id)

    view = run(action)
    if as_json:
        _print_json(view)
        return
    console.print(
        Text(f"{view['name']}  ({view['channel']}, v{view['currentVersion']}, id {view['id']})", style="bold")
    )
    if view["subject"]:
        console.print(Text(f"subject: {view['subject']}"))
    console.print(Text(view["content"]))
    console.print(
        Text("variables: " + ", ".join(v["name"] + ("" if v["required"] else "?") for v in view["variables"]))
    )
    stats = view["stats"]
    console.print(
        f"sent {stats['timesUsed']}, replies {stats['replies']} ({stats['replyRate'] * 100:.1f} %), "
        f"positive {stats['positiveReplies']}"
    )
    table = Table("variant", "version", "weight %", "sent", "replies", "positive")
    for v in view["variants"]:
        _row(
            table,
            v["label"] + (" (current)" if v["isControl"] else ""),
            v["versionNumber"],
            v["weight"],
            v["stats"]["timesUsed"],
            v["stats"]["replies"],
            v["stats"]["positiveReplies"],
        )
    console.print(table)
    history = Table("version", "label", "created", "by", "notes")
    for v in view["versions"]:
        _row(history, v["versionNumber"], v["label"], v["createdAt"], v["createdBy"], v["changeNotes"])
    console.print(history)
    if view["usedBy"]:
        console.print(
            "used by: " + ", ".join(f"{u['sequenceName']} step {u['stepNumber']}" for u in view["usedBy"])
        )


def _parse_vars(values: list[str]) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{item!r}: use NAME=VALUE", param_hint="--var")
        out[name.strip()] = value
    return out


@templates_app.command("preview")
def preview_cmd(
    template: Annotated[str, typer.Argument(help="Template id or code")],
    lead: Annotated[
        str | None, typer.Option("--lead", help="Render for this lead (journey or company id)")
    ] = None,
    var: Annotated[
        list[str] | None, typer.Option("--var", help="NAME=VALUE, repeatable; wins over the lead's")
    ] = None,
    seed: Annotated[str | None, typer.Option(help="Same seed, same text")] = None,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Render a template as a lead would receive it. Exits 1 when variables are missing."""
    from cerniq.kit.db import transaction
    from cerniq.templates import service

    personalization = _parse_vars(var or [])

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            row = await service.resolve_template(session, tenant_id, template)
            return await service.preview(
                session, tenant_id, row.id, personalization=personalization, lead_id=lead, seed=seed
            )

    result = run(action)
    if as_json:
        _print_json(result)
    else:
        if result["subject"]:
            console.print(Text(f"subject: {result['subject']}", style="bold"))
        console.print(Text(result["preview"]))
        console.print(
            f"[dim]variant {result['spintaxVariant'] or '-'} of {result['variantCount']}, "
            f"{result['length']} characters[/dim]"
        )
        if result["missingVariables"]:
            err_console.print(
                Text("missing variables: " + ", ".join(result["missingVariables"]), style="red")
            )
        _print_issues(result["lint"])
    if result["missingVariables"]:
        raise typer.Exit(1)


@templates_app.command("lint")
def lint_cmd(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="A text file ('-' not accepted)"),
    ],
    channel: Annotated[str, typer.Option(help="WHATSAPP, EMAIL_COLD, EMAIL_WARM or EMAIL")] = "WHATSAPP",
    first_message: Annotated[
        bool, typer.Option("--first-message", help="Also check for links (first WhatsApp message)")
    ] = False,
    subject: Annotated[str | None, typer.Option(help="Lint this subject too")] = None,
    as_json: JsonOption = False,
) -> None:
    """Lint a template text as saving it would. Exits 1 when it would be refused."""
    from cerniq.templates import service

    content = file.read_text(encoding="utf-8")
    try:
        result = service.lint_view(content, channel=channel, subject=subject, first_message=first_message)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--channel") from exc
    if as_json:
        _print_json(result)
    else:
        _print_issues(result["issues"])
        if result["valid"]:
            names = ", ".join(v["name"] for v in result["variablesDetected"]) or "none"
            console.print(f"[green]ok[/green]: {result['variantCount']} variants, variables: {names}")
        else:
            console.print(f"[red]refused[/red]: {result['errors']} error(s)")
    if not result["valid"]:
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    root.add_typer(templates_app, name="templates")
