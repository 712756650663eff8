"""``cerniq dispatch``: run one dispatch now (what the 5-minute cron does) and print its report."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from cerniq.cli.common import console, resolve_tenant_id, run


def register(root: typer.Typer) -> None:
    @root.command("dispatch")
    def dispatch_cmd(
        tenant: Annotated[
            str | None, typer.Option(help="Only this tenant's leads (slug; default: every tenant)")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    ) -> None:
        """Claim the due leads and queue their messages now; print the report."""
        from cerniq.auth.service import record_audit
        from cerniq.kit.db import transaction
        from cerniq.messaging.dispatch import dispatch

        async def action() -> dict[str, Any]:
            tenant_id = await resolve_tenant_id(tenant) if tenant else None
            report = (await dispatch(tenant_id=tenant_id)).as_dict()
            async with transaction() as session:
                await record_audit(
                    session,
                    None,
                    "outreach.dispatch",
                    entity_type="dispatch",
                    entity_id=tenant or "all",
                    reason="cerniq dispatch",
                    after=report,
                    tenant_id=tenant_id,
                )
            return report

        report = run(action)
        if as_json:
            typer.echo(json.dumps(report))
            return
        table = Table("field", "value", title="dispatch")
        for key, value in report.items():
            table.add_row(key, str(value))
        console.print(table)
