"""``cerniq alerts``: the open alerts (runbook 9), acknowledge, resolve, silence, history, check.

An alert is named by its id or the first characters of it (as the tables show).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from cerniq.cli.common import cli_principal, console, resolve_tenant_id, run

alerts_app = typer.Typer(
    help="Alerts (runbook 9): list, acknowledge, resolve, silence, history, run the checks now.",
    invoke_without_command=True,
)

TenantOpt = Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (as the API answers)")]
SEVERITY_STYLE = {"CRITICAL": "bold red", "HIGH": "red", "MEDIUM": "yellow", "LOW": ""}


_principal = cli_principal


def _table(items: list[dict[str, Any]], title: str) -> Table:
    table = Table(
        "id", "severity", "status", "type", "subject", "seen", "level", "since", "message", title=title
    )
    for a in items:
        table.add_row(
            a["id"][:8],
            Text(a["severity"], style=SEVERITY_STYLE.get(a["severity"], "")),
            a["status"],
            a["type"],
            Text(a["subject"] or "-"),
            f"{a['occurrences']}x",
            f"L{a['escalationLevel']}",
            (a["firstSeenAt"] or "")[:16].replace("T", " "),
            Text((a["message"] or a["title"])[:90]),
        )
    return table


def _list(
    status: list[str] | None, severity: list[str] | None, kind: list[str] | None, tenant: str | None
) -> Any:
    from cerniq.kit.db import transaction
    from cerniq.models.enums import AlertSeverity, AlertStatus
    from cerniq.ops import alerts

    statuses: list[AlertStatus] | None = list(alerts.OPEN_STATES)
    if status:
        statuses = (
            None if [s.lower() for s in status] == ["all"] else [AlertStatus(s.upper()) for s in status]
        )

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            rows, total = await alerts.list_alerts(
                session,
                tenant_id,
                statuses=statuses,
                severities=[AlertSeverity(s.upper()) for s in severity] if severity else None,
                types=kind or None,
            )
            return {
                "alerts": [alerts.view(a) for a in rows],
                "counts": await alerts.counts(session, tenant_id),
                "meta": {"total": total},
            }

    return run(action)


@alerts_app.callback()
def default(ctx: typer.Context) -> None:
    """Without a sub-command: the open alerts."""
    if ctx.invoked_subcommand is None:
        list_cmd(status=None, severity=None, kind=None, tenant=None, as_json=False)


@alerts_app.command("list")
def list_cmd(
    status: Annotated[
        list[str] | None, typer.Option(help="OPEN, ACKNOWLEDGED, SILENCED, RESOLVED or all")
    ] = None,
    severity: Annotated[list[str] | None, typer.Option(help="LOW, MEDIUM, HIGH, CRITICAL")] = None,
    kind: Annotated[list[str] | None, typer.Option("--type", help="e.g. phone:offline")] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open alerts (or those of --status), most severe first."""
    body = _list(status, severity, kind, tenant)
    if as_json:
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    counts = body["counts"]
    console.print(_table(body["alerts"], f"alerts: {counts['open']} open"))
    console.print(" · ".join(f"{k} {v}" for k, v in counts["bySeverity"].items() if v) or "nothing open")


def _change(ref: str, tenant: str | None, verb: str, **kwargs: Any) -> dict[str, Any]:
    from cerniq.kit.db import transaction
    from cerniq.ops import alerts

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        principal = _principal(tenant_id)
        async with transaction() as session:
            alert = await alerts.find(session, tenant_id, ref)
            if verb == "ack":
                alert = await alerts.acknowledge(session, principal, alert.id, note=kwargs.get("note"))
            elif verb == "resolve":
                alert = await alerts.resolve(session, principal, alert.id, note=kwargs.get("note"))
            else:
                alert = await alerts.silence(
                    session, principal, alert.id, until=kwargs["until"], reason=kwargs["reason"]
                )
            return alerts.view(alert)

    return run(action)


@alerts_app.command("ack")
def ack_cmd(
    alert_id: Annotated[str, typer.Argument(help="Alert id (or its first 8 characters)")],
    note: Annotated[str | None, typer.Option(help="What you are doing about it")] = None,
    tenant: TenantOpt = None,
) -> None:
    """Acknowledge an alert: it stops escalating."""
    a = _change(alert_id, tenant, "ack", note=note)
    console.print(f"{a['id'][:8]} {a['type']} {a['subject'] or ''}: ACKNOWLEDGED by {a['acknowledgedBy']}")


@alerts_app.command("resolve")
def resolve_cmd(
    alert_id: Annotated[str, typer.Argument(help="Alert id (or its first 8 characters)")],
    note: Annotated[str | None, typer.Option(help="How it was fixed")] = None,
    tenant: TenantOpt = None,
) -> None:
    """Resolve an alert (if its condition is still there, the next check opens a new one)."""
    a = _change(alert_id, tenant, "resolve", note=note)
    console.print(f"{a['id'][:8]} {a['type']} {a['subject'] or ''}: RESOLVED")


@alerts_app.command("silence")
def silence_cmd(
    alert_id: Annotated[str, typer.Argument(help="Alert id (or its first 8 characters)")],
    reason: Annotated[str, typer.Option(help="Why it may be ignored for now")],
    minutes: Annotated[int | None, typer.Option(min=1, max=43200, help="For this many minutes")] = None,
    until: Annotated[
        str | None, typer.Option(help="Until this ISO time, e.g. 2026-01-18T18:00:00+02:00")
    ] = None,
    tenant: TenantOpt = None,
) -> None:
    """Silence an alert until a time: no notification, no escalation; OPEN again afterwards."""
    from cerniq.kit.clock import utcnow

    if (minutes is None) == (until is None):
        raise typer.BadParameter("give --minutes or --until")
    if until is not None:
        try:
            end = datetime.fromisoformat(until)
        except ValueError as exc:
            raise typer.BadParameter(f"--until is not an ISO time: {until}") from exc
    else:
        end = utcnow() + timedelta(minutes=minutes or 0)
    a = _change(alert_id, tenant, "silence", until=end, reason=reason)
    console.print(f"{a['id'][:8]} {a['type']} {a['subject'] or ''}: SILENCED until {a['silencedUntil']}")


@alerts_app.command("history")
def history_cmd(
    days: Annotated[int, typer.Option(min=1, max=365)] = 7,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every alert of the last DAYS days, whatever its status."""
    from cerniq.kit.clock import utcnow
    from cerniq.kit.db import transaction
    from cerniq.ops import alerts

    async def action() -> list[dict[str, Any]]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            rows, _total = await alerts.list_alerts(
                session, tenant_id, since=utcnow() - timedelta(days=days), limit=500
            )
            return [alerts.view(a) for a in rows]

    items = run(action)
    if as_json:
        typer.echo(json.dumps(items, indent=2, ensure_ascii=False))
        return
    console.print(_table(items, f"alerts of the last {days} day(s)"))


@alerts_app.command("check")
def check_cmd(as_json: JsonOpt = False) -> None:
    """Run the monitor now: evaluate the conditions, expire silences, escalate."""
    from cerniq.ops import monitor

    result = run(monitor.tick)
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
        return
    conditions = result.get("conditions") or {}
    console.print(f"triggered: {', '.join(conditions.get('triggered') or []) or 'nothing'}")
    console.print(f"resolved: {conditions.get('resolved', 0)}")
    console.print(f"silences expired: {len(result.get('silencesExpired') or [])}")
    for item in result.get("escalations") or []:
        console.print(f"escalated {item['alertId'][:8]} to L{item['level']}")


@alerts_app.command("matrix")
def matrix_cmd() -> None:
    """The response matrix (runbook 9.1) and the escalation path (9.2)."""
    from cerniq.ops.alerts import MATRIX

    table = Table("alert", "severity", "response", "procedure")
    for kind in MATRIX.values():
        response = "immediate" if kind.response_minutes == 0 else f"{kind.response_minutes} min"
        table.add_row(kind.alert_type, kind.severity.value, response, kind.procedure)
    console.print(table)
    console.print(
        "L1 on-call: HIGH/CRITICAL at once · L2 team lead: unacknowledged after 30 min · L3 manager: 2 h"
    )


def register(root: typer.Typer) -> None:
    root.add_typer(alerts_app, name="alerts")
