"""``cerniq check morning|evening``: runbook 1.1 and 1.2 in one command each; exit 1 when
something needs attention."""

from __future__ import annotations

import getpass
import json
from typing import Annotated, Any

import typer

from cerniq.cli.common import console, resolve_tenant_id, run

check_app = typer.Typer(help="Daily checklists (runbook 1).", no_args_is_help=True)

TenantOption = Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _finish(title: str, checks: list[Any], as_json: bool, extra: dict[str, Any] | None = None) -> None:
    from cerniq.ops.checks import needs_attention, render

    if as_json:
        body = {
            "check": title,
            "needsAttention": needs_attention(checks),
            "checks": [c.as_dict() for c in checks],
        }
        console.print_json(json.dumps(body | (extra or {})))
    else:
        console.print(render(title, checks), markup=False, highlight=False)
        if extra and extra.get("report"):
            console.print(extra["report"], markup=False, highlight=False)
    if needs_attention(checks):
        raise typer.Exit(1)


@check_app.command("morning")
def morning_cmd(tenant: TenantOption = None, as_json: JsonOption = False) -> None:
    """Phones, quota keys, queues, pending reviews, overnight SLA breaches, yesterday's metrics,
    disk space, per-phone Redis status."""
    from cerniq.ops import checks

    async def action() -> list[Any]:
        return await checks.morning(await resolve_tenant_id(tenant))

    _finish("morning", run(action), as_json)


@check_app.command("evening")
def evening_cmd(
    tenant: TenantOption = None,
    as_json: JsonOption = False,
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="Also generate the daily report")
    ] = True,
) -> None:
    """Today's performance, quota usage, reviews at SLA risk, failed jobs (queues + DLQ), archive
    backlog, today's backup; then the daily report (runbook 1.2 extra step)."""
    from cerniq.ops import checks

    async def action() -> tuple[list[Any], str | None]:
        tid = await resolve_tenant_id(tenant)
        found = await checks.evening(tid)
        summary = None
        if report:
            from cerniq.analytics import service
            from cerniq.auth.principal import Principal
            from cerniq.auth.service import record_audit
            from cerniq.kit.db import transaction
            from cerniq.models.enums import Role

            user = getpass.getuser()
            async with transaction() as session:
                built = await service.daily_report(session, tid, service.today())
                principal = Principal(
                    tenant_id=tid, role=Role.ADMIN, actor_type="cli", actor_id=user, actor_label=user
                )
                await record_audit(
                    session, principal, "report.daily", entity_type="daily_report", entity_id=built["date"]
                )
            summary = service.report_text(built)
        return found, summary

    found, summary = run(action)
    _finish("evening", found, as_json, {"report": summary})


def register(root: typer.Typer) -> None:
    root.add_typer(check_app, name="check")
