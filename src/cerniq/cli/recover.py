"""``cerniq recover redis``: runbook 8.2 as one command."""

from __future__ import annotations

import getpass
import json

import typer

from cerniq.cli.common import console, run

recover_app = typer.Typer(help="Rebuild state from PostgreSQL after a loss.", no_args_is_help=True)


@recover_app.command("redis")
def redis_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Rebuild quota counters (ledger), phone:status keys, the emergency-stop mirror, lost
    message jobs, cron schedules, and enqueue a dispatch for due follow-ups."""
    from cerniq.ops.recovery import recover_redis

    report = run(lambda: recover_redis(actor=getpass.getuser()))
    if as_json:
        console.print_json(json.dumps(report.as_dict()))
        return
    console.print(f"quota counters rebuilt from the ledger: {report.quota_phones} phones")
    for phone, count in sorted(report.quota_counters.items()):
        console.print(f"  {phone}: {count}")
    console.print(f"phone:status keys rebuilt: {report.phone_status_keys}")
    console.print(f"emergency stop mirror: {'ACTIVE' if report.emergency_stop_active else 'clear'}")
    console.print(
        f"in-flight messages checked: {report.messages_checked}, re-enqueued: {report.messages_requeued}"
    )
    console.print(f"cron schedules re-created: {report.schedules}")
    console.print(f"follow-ups due now: {report.followups_due} (dispatch job {report.dispatch_job})")


def register(root: typer.Typer) -> None:
    root.add_typer(recover_app, name="recover")
