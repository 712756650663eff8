"""``cerniq gdpr export|erase LEAD_ID``: a person's data (art. 15) and its erasure (art. 17)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from cerniq.cli.common import cli_principal, console, err_console, resolve_tenant_id, run

gdpr_app = typer.Typer(help="Personal data of a lead's people (GDPR).", no_args_is_help=True)

TenantOption = Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")]


def _lead(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a lead id (UUID)", param_hint="LEAD_ID") from None


_principal = cli_principal


@gdpr_app.command("export")
def export_cmd(
    lead_id: str,
    tenant: TenantOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the JSON here")] = None,
) -> None:
    """Everything held about the lead's people, as JSON (stdout or --output)."""
    journey_id = _lead(lead_id)

    async def action() -> dict[str, Any]:
        from cerniq.kit.db import transaction
        from cerniq.ops import gdpr

        tid = await resolve_tenant_id(tenant)
        async with transaction() as session:
            data = await gdpr.export(session, tid, journey_id)
            await gdpr.record_export(session, _principal(tid), journey_id)
            return data

    data = run(action)
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if output:
        output.write_text(text, encoding="utf-8")
        err_console.print(f"written to {output}")
    else:
        typer.echo(text)


@gdpr_app.command("erase")
def erase_cmd(
    lead_id: str,
    tenant: TenantOption = None,
    reason: Annotated[str | None, typer.Option(help="Why (e.g. the request reference)")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Really erase (irreversible)")] = False,
) -> None:
    """Anonymize the lead's people everywhere, keep the counts, suppress them permanently."""
    journey_id = _lead(lead_id)
    if not yes:
        err_console.print("[red]refusing to erase without --yes[/red] (irreversible)")
        raise typer.Exit(2)

    async def action() -> dict[str, Any]:
        from cerniq.kit.db import transaction
        from cerniq.ops import gdpr

        tid = await resolve_tenant_id(tenant)
        async with transaction() as session:
            return await gdpr.erase(session, _principal(tid), journey_id, reason=reason)

    result = run(action)
    console.print(f"erased lead {result['leadId']}:")
    for key, value in result["erased"].items():
        console.print(f"  {key}: {value}")


def register(root: typer.Typer) -> None:
    root.add_typer(gdpr_app, name="gdpr")
