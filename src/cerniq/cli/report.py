"""``cerniq report daily``: the daily report of runbook 1.2 (same as POST /internal/reports/daily);
``cerniq report backfill``: roll up closed days missing from ``outreach_daily_stats``."""

from __future__ import annotations

import getpass
import json
from datetime import date
from typing import Annotated, Any

import typer

from cerniq.cli.common import console, resolve_tenant_id, run

report_app = typer.Typer(help="Reports.", no_args_is_help=True)


@report_app.command("daily")
def daily_cmd(
    date_: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD (default today)")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant slug")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Roll up the day, store the report in outreach_daily_stats.report, post it to Slack."""
    try:
        day = date.fromisoformat(date_) if date_ else None
    except ValueError:
        raise typer.BadParameter(f"{date_!r} is not a date (YYYY-MM-DD)", param_hint="--date") from None

    async def action() -> dict[str, Any]:
        from cerniq.analytics import service
        from cerniq.auth.principal import Principal
        from cerniq.auth.service import record_audit
        from cerniq.kit.db import transaction
        from cerniq.models.enums import Role
        from cerniq.ops.notify import slack_notice

        tid = await resolve_tenant_id(tenant)
        user = getpass.getuser()
        the_day = day or service.today()
        async with transaction() as session:
            report = await service.daily_report(session, tid, the_day)
            principal = Principal(
                tenant_id=tid, role=Role.ADMIN, actor_type="cli", actor_id=user, actor_label=user
            )
            await record_audit(
                session, principal, "report.daily", entity_type="daily_report", entity_id=the_day.isoformat()
            )
        await slack_notice(service.report_text(report), severity="LOW")
        return report

    report = run(action)
    if as_json:
        console.print_json(json.dumps(report, default=str))
        return
    from cerniq.analytics.service import report_text

    console.print(report_text(report))


@report_app.command("backfill")
def backfill_cmd(
    days: Annotated[int, typer.Option(min=1, max=366, help="How many closed days back")] = 92,
    tenant: Annotated[str | None, typer.Option(help="Tenant slug")] = None,
) -> None:
    """Roll up the closed days of the last DAYS that have no stored figures or breakdowns (the
    00:10 job does this every night); prints the days it filled."""

    async def action() -> list[date]:
        from datetime import timedelta

        from cerniq.analytics import service
        from cerniq.kit.db import transaction

        tid = await resolve_tenant_id(tenant)
        last = service.today() - timedelta(days=1)
        async with transaction() as session:
            return await service.backfill(session, tid, last - timedelta(days=days - 1), last)

    filled = run(action)
    console.print(f"rolled up {len(filled)} day(s)" + (f": {filled[0]} to {filled[-1]}" if filled else ""))


def register(root: typer.Typer) -> None:
    root.add_typer(report_app, name="report")
