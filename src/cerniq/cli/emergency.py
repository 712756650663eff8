"""``cerniq emergency stop|resume|status``: runbook 7 as commands (scripts/emergency-*.sh wrap them)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from cerniq.cli.common import cli_principal, console, resolve_tenant_id, run

emergency_app = typer.Typer(
    help="Emergency stop and resume of all outreach (runbook 7).", no_args_is_help=True
)

TenantOpt = Annotated[
    str | None, typer.Option(help="Tenant slug for the audit (default: the default tenant)")
]


_principal = cli_principal


@emergency_app.command("stop")
def stop_cmd(
    reason: Annotated[str, typer.Option(help="Why: security incident, legal requirement, major bug...")],
    tenant: TenantOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the state as JSON")] = False,
) -> None:
    """Halt all outreach now: no vendor call from any worker, sequences deactivated, phones and
    queues paused, the team notified on Slack."""
    from cerniq.kit.db import transaction
    from cerniq.ops import emergency

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            return await emergency.stop(session, _principal(tenant_id), reason)

    result = run(action)
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    if result["alreadyActive"]:
        console.print(
            f"[yellow]An emergency stop was already active since {result['at']}:[/yellow] "
            + escape(str(result["reason"]))
        )
    console.print("[bold red]EMERGENCY STOP active[/bold red]: " + escape(str(result["reason"])))
    console.print(f"sequences deactivated: {len(result['newlyDeactivatedSequences'])}")
    console.print(f"phones paused: {', '.join(result['newlyPausedPhones']) or 'none active'}")
    console.print(f"queues paused: {len(result['queuesPaused'])} (dispatch, sequences, email, phones)")
    console.print("notice: " + escape(str(result["notice"])))


@emergency_app.command("resume")
def resume_cmd(
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask whether the issue is resolved")
    ] = False,
    pause: Annotated[float, typer.Option("--pause", min=0, max=600, help="Seconds between two phones")] = 5.0,
    tenant: TenantOpt = None,
) -> None:
    """Resume after an emergency stop: the dispatcher, then the phones one by one. Sequences stay
    inactive and must be reactivated by hand."""
    from cerniq.ops import emergency

    if not yes:
        answer = typer.prompt("Has the issue been resolved? (yes/no)", default="", show_default=False)
        if answer.strip() != "yes":
            console.print("Resume cancelled")
            raise typer.Exit(1)

    def on_phone(item: dict[str, Any]) -> None:
        label = f" ({escape(str(item['label']))})" if item.get("label") else ""
        state = "ACTIVE" if item["resumed"] else f"left {item['status']}"
        console.print(f"  phone {item['phoneId']}{label}: {state}")

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        console.print("Resuming the dispatcher and the queues...")
        return await emergency.resume(_principal(tenant_id), pause_between=pause, on_phone=on_phone)

    result = run(action)
    console.print(f"phones resumed: {sum(1 for p in result['phones'] if p['resumed'])}")
    console.print(result["message"])
    for sequence in result["sequencesToReactivate"]:
        console.print(f"  inactive: {escape(str(sequence['name']))} ({sequence['id']})")
    console.print(result["notice"])


@emergency_app.command("status")
def status_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Whether an emergency stop is active, since when, why and by whom."""
    from cerniq.kit.db import transaction
    from cerniq.ops import emergency

    async def action() -> dict[str, Any]:
        async with transaction() as session:
            return await emergency.state(session)

    state = run(action)
    if as_json:
        typer.echo(json.dumps(state, indent=2, ensure_ascii=False))
        return
    if state["active"]:
        console.print(
            f"[bold red]EMERGENCY STOP active[/bold red] since {state['at']} by {escape(str(state['by']))}: "
            + escape(str(state["reason"]))
        )
        console.print(f"phones paused: {', '.join(state.get('phonesPaused') or []) or 'none'}")
    else:
        console.print("no emergency stop active")
        if state.get("resumedAt"):
            console.print(
                f"last stop: {state.get('at')} ({state.get('reason')}), resumed {state['resumedAt']}"
            )


def register(root: typer.Typer) -> None:
    root.add_typer(emergency_app, name="emergency")
