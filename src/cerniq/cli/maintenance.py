"""``cerniq maintenance weekly``: runbook 10.1 as one command."""

from __future__ import annotations

import getpass
import json

import typer

from cerniq.cli.common import console, run

maintenance_app = typer.Typer(help="Maintenance windows (runbook 10).", no_args_is_help=True)


@maintenance_app.command("weekly")
def weekly_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Archive messages older than 90 days (batched, verified), VACUUM ANALYZE, clean completed
    jobs older than 7 days, trim DLQs to 1,000, prune old webhook payloads, write the report."""
    from cerniq.ops.maintenance import weekly

    report = run(lambda: weekly(actor=getpass.getuser()))
    if as_json:
        console.print_json(json.dumps(report.as_dict()))
        return
    a = report.archive
    console.print(
        f"archived {a.archived} msgs older than {a.cutoff} in {a.batches} batches ({a.remaining_old} left)"
    )
    console.print(f"vacuum analyze: {', '.join(report.vacuumed)}")
    console.print(f"completed jobs removed: {report.completed_jobs_removed}")
    console.print(f"DLQ entries trimmed: {report.dlq_removed}")
    console.print(f"webhook payloads pruned: {report.webhook_payloads_pruned}")
    console.print(f"health report: {report.report_path}")


def register(root: typer.Typer) -> None:
    root.add_typer(maintenance_app, name="maintenance")
