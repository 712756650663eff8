"""``cerniq queues health|show|failed|retry|drain|pause|resume|clean|dlq``: runbook 4 as commands.

The commands work on Redis and PostgreSQL directly (no API needed) and audit as ``cli:<user>``.
``--json`` prints what the matching API endpoint returns, for jq.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from cerniq.cli.common import cli_principal, console, resolve_tenant_id, run

queues_app = typer.Typer(
    help="BullMQ queues (runbook 4): counts, jobs, failures, retries, drain, pause, clean, the DLQ.",
    no_args_is_help=True,
)

TenantOpt = Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (as the API answers)")]


_principal = cli_principal


async def _audit(session: Any, principal: Any, action: str, name: str, after: dict[str, Any]) -> None:
    from cerniq.auth.service import record_audit

    await record_audit(session, principal, action, entity_type="queue", entity_id=name, after=after)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def _ago(ms: int | None) -> str:
    if not ms:
        return ""
    import time

    seconds = max(time.time() - ms / 1000, 0)
    if seconds < 120:
        return f"{int(seconds)}s ago"
    if seconds < 7200:
        return f"{int(seconds // 60)}m ago"
    return f"{seconds / 3600:.1f}h ago"


def _jobs_table(jobs: list[dict[str, Any]], title: str) -> Table:
    table = Table("id", "queue", "name", "state", "attempts", "age", "reason / note", title=title)
    for job in jobs:
        note = job.get("failedReason") or ""
        if job.get("state") == "active":
            note = f"active {job.get('activeForSeconds')} s" + (" [STUCK]" if job.get("stuck") else "")
        attempts = f"{job['attemptsMade']}/{job['opts'].get('attempts') or '-'}"
        table.add_row(
            Text(str(job["id"])),
            Text(job["queue"]),
            Text(str(job["name"])),
            job["state"],
            attempts,
            _ago(job.get("finishedOn") or job.get("processedOn") or job.get("timestamp")),
            Text(str(note)[:120]),
        )
    return table


@queues_app.command("health")
def health_cmd(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Counts of every queue (the morning check's step 4)."""
    from cerniq.kit.db import transaction
    from cerniq.ops import queue_admin

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            return await queue_admin.health(session, tenant_id)

    body = run(action)
    if as_json:
        _print_json(body)
        return
    table = Table("queue", "waiting", "active", "delayed", "failed", "completed", "paused")
    for name, c in body["queues"].items():
        style = "red" if c["failed"] else ("yellow" if c["waiting"] and not c["active"] else "")
        table.add_row(
            name,
            str(c["waiting"]),
            str(c["active"]),
            str(c["delayed"]),
            str(c["failed"]),
            str(c["completed"]),
            "PAUSED" if c["paused"] else "",
            style=style,
        )
    console.print(table)


@queues_app.command("show")
def show_cmd(
    name: Annotated[str, typer.Argument(help="Queue name, e.g. q:wa:phone_01")],
    jobs: Annotated[
        str | None, typer.Option(help="List jobs: waiting, active, delayed, failed or completed")
    ] = None,
    job: Annotated[
        str | None, typer.Option("--job", help="Show one job (data, attempts, stacktrace)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A queue's counts (runbook 4.1), its jobs in one state, or one job (4.2 step 2)."""
    from cerniq.kit.db import transaction
    from cerniq.ops import queue_admin

    async def action() -> Any:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            queue = await queue_admin.require_queue(session, name, tenant_id)
        if job:
            return await queue_admin.get_job(queue, job)
        if jobs:
            return await queue_admin.list_jobs(queue, jobs, limit=limit)
        return await queue_admin.queue_summary(queue)

    body = run(action)
    if as_json:
        _print_json(body)
    elif job:
        for key in ("id", "queue", "name", "state", "attemptsMade", "failedReason"):
            console.print(f"[bold]{key}[/bold]: ", Text(str(body.get(key))))
        console.print("[bold]opts[/bold]: ", Text(json.dumps(body["opts"])))
        console.print("[bold]data[/bold]: ", Text(json.dumps(body["data"], ensure_ascii=False, default=str)))
        for line in body.get("stacktrace") or []:
            console.print(Text(str(line)))
    elif jobs:
        console.print(_jobs_table(body, f"{name}: {jobs}"))
    else:
        table = Table(
            "waiting", "active", "delayed", "failed", "completed", "paused", "stuck active", title=name
        )
        table.add_row(
            str(body["waiting"]),
            str(body["active"]),
            str(body["delayed"]),
            str(body["failed"]),
            str(body["completed"]),
            "yes" if body["paused"] else "no",
            ", ".join(body["stuckActive"]) or "-",
        )
        console.print(table)


@queues_app.command("failed")
def failed_cmd(
    name: Annotated[str | None, typer.Argument(help="Queue name (default: every queue)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Failed jobs with their reasons (runbook 4.2 step 1), newest first."""
    from cerniq.kit.db import transaction
    from cerniq.ops import queue_admin

    async def action() -> list[dict[str, Any]]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            if name is None:
                return await queue_admin.failed_everywhere(session, tenant_id, limit=limit)
            queue = await queue_admin.require_queue(session, name, tenant_id)
        return await queue_admin.list_jobs(queue, "failed", limit=limit)

    body = run(action)
    if as_json:
        _print_json(body)
        return
    console.print(_jobs_table(body, f"failed jobs ({len(body)})"))
    reasons: dict[str, int] = {}
    for item in body:
        reason = str(item.get("failedReason") or "")[:100]
        reasons[reason] = reasons.get(reason, 0) + 1
    if reasons:
        summary = Table("count", "failedReason", title="by reason")
        for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
            summary.add_row(str(count), Text(reason))
        console.print(summary)


@queues_app.command("retry")
def retry_cmd(
    name: Annotated[str, typer.Argument(help="Queue name")],
    job_id: Annotated[str | None, typer.Argument(help="Job id (omit with --all-failed)")] = None,
    all_failed: Annotated[bool, typer.Option("--all-failed", help="Retry every failed job")] = False,
    force: Annotated[bool, typer.Option(help="Requeue an active job even if not stuck yet")] = False,
    tenant: TenantOpt = None,
) -> None:
    """Retry one job (failed, delayed or stuck active) or every failed job (runbook 4.1/4.2)."""
    from cerniq.kit.db import transaction
    from cerniq.ops import queue_admin

    if (job_id is None) == (not all_failed):
        raise typer.BadParameter("give a JOB_ID or --all-failed")

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            queue = await queue_admin.require_queue(session, name, tenant_id)
            if all_failed:
                result = await queue_admin.retry_failed(queue)
                await _audit(session, _principal(tenant_id), "queue.retry_failed", queue, result)
            else:
                assert job_id is not None
                result = await queue_admin.retry_job(queue, job_id, force=force)
                await _audit(session, _principal(tenant_id), "queue.retry_job", queue, result)
            return result

    result = run(action)
    if all_failed:
        console.print(f"{result['retried']} failed job(s) of {name} moved back to waiting")
        for error in result["errors"]:
            console.print(f"[yellow]not retried[/yellow] {error}")
    elif result["retried"]:
        console.print(f"job {job_id} of {name}: {result['from']} -> waiting")
    else:
        console.print(f"job {job_id} of {name} is already {result['from']}; nothing to do")


@queues_app.command("drain")
def drain_cmd(
    name: Annotated[str, typer.Argument(help="Queue name")],
    delayed: Annotated[bool, typer.Option(help="Also remove delayed jobs")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    tenant: TenantOpt = None,
) -> None:
    """Remove every waiting job of a queue (runbook 4.1, "lost cause"). Asks first."""
    from cerniq.kit.db import transaction
    from cerniq.ops import queue_admin

    async def count() -> int:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            queue = await queue_admin.require_queue(session, name, tenant_id)
        c = (await queue_admin.counts_many([queue]))[queue]
        return c["waiting"] + (c["delayed"] if delayed else 0)

    if not yes:
        pending = run(count)
        console.print(f"[red]This removes {pending} job(s) from {name}: they are lost.[/red]")
        if not typer.confirm("Drain the queue?", default=False):
            console.print("Drain cancelled")
            raise typer.Exit(1)

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            queue = await queue_admin.require_queue(session, name, tenant_id)
            result = await queue_admin.drain(session, queue, delayed=delayed)
            await _audit(session, _principal(tenant_id), "queue.drain", queue, result)
            return result

    result = run(action)
    console.print(f"removed {result['removed']} job(s) from {name}")
    if result["messagesCancelled"]:
        console.print(f"{result['messagesCancelled']} queued message(s) cancelled; their leads are due again")


def _pause(name: str, paused: bool, tenant: str | None) -> None:
    from cerniq.kit.db import transaction
    from cerniq.ops import queue_admin

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            queue = await queue_admin.require_queue(session, name, tenant_id)
            result = await queue_admin.set_paused(queue, paused)
            await _audit(
                session, _principal(tenant_id), "queue.pause" if paused else "queue.resume", queue, result
            )
            return result

    result = run(action)
    console.print(f"{name}: {'paused' if result['paused'] else 'running'}")


@queues_app.command("pause")
def pause_cmd(name: Annotated[str, typer.Argument(help="Queue name")], tenant: TenantOpt = None) -> None:
    """Stop workers taking new jobs from a queue (running jobs finish)."""
    _pause(name, True, tenant)


@queues_app.command("resume")
def resume_cmd(name: Annotated[str, typer.Argument(help="Queue name")], tenant: TenantOpt = None) -> None:
    """Let workers take jobs from a queue again."""
    _pause(name, False, tenant)


@queues_app.command("clean")
def clean_cmd(
    name: Annotated[str | None, typer.Argument(help="Queue name (default: every queue)")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Clean failed jobs")] = False,
    completed: Annotated[bool, typer.Option("--completed", help="Clean completed jobs")] = False,
    age: Annotated[int, typer.Option(min=0, help="Only jobs older than this many seconds")] = 86400,
    tenant: TenantOpt = None,
) -> None:
    """Remove old failed (runbook 4.2 step 5) or completed (10.1 step 3) jobs."""
    from cerniq.kit.db import transaction
    from cerniq.ops import queue_admin

    if failed == completed:
        raise typer.BadParameter("give --failed or --completed")
    state = "failed" if failed else "completed"

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            if name is None:
                result = await queue_admin.clean_everywhere(session, tenant_id, state, age_seconds=age)
                await _audit(session, _principal(tenant_id), f"queue.clean_{state}", "*", result)
            else:
                queue = await queue_admin.require_queue(session, name, tenant_id)
                result = await queue_admin.clean(queue, state, age_seconds=age)
                await _audit(session, _principal(tenant_id), f"queue.clean_{state}", queue, result)
            return result

    result = run(action)
    console.print(f"removed {result['removed']} {state} job(s) older than {age} s")
    for queue, removed in (result.get("queues") or {}).items():
        console.print(f"  {queue}: {removed}")


@queues_app.command("dlq")
def dlq_cmd(
    limit: Annotated[int, typer.Option(min=1, max=10000, help="Entries shown")] = 20,
    retry: Annotated[int | None, typer.Option("--retry", min=0, help="Retry the entry at INDEX")] = None,
    retry_all: Annotated[bool, typer.Option("--retry-all", help="Retry every entry")] = False,
    trim: Annotated[int | None, typer.Option("--trim", min=0, help="Keep only the newest N entries")] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The dead-letter list bull:dlq:outreach: final failures with their reasons (index 0 = newest).

    --retry INDEX / --retry-all put the jobs back on their queues under their original ids (for
    send jobs the message row decides what happens); --trim N keeps the newest N."""
    from cerniq.kit.db import transaction
    from cerniq.ops import queue_admin

    if retry is not None and retry_all:
        raise typer.BadParameter("give --retry INDEX or --retry-all, not both")

    async def action() -> dict[str, Any]:
        out: dict[str, Any] = {}
        if retry is not None or retry_all or trim is not None:
            tenant_id = await resolve_tenant_id(tenant)
            async with transaction() as session:
                if retry is not None:
                    out["retried"] = [(await queue_admin.dlq_retry(retry)).as_dict()]
                elif retry_all:
                    out["retried"] = [r.as_dict() for r in await queue_admin.dlq_retry_all()]
                if trim is not None:
                    out["trim"] = await queue_admin.dlq_trim(trim)
                await _audit(session, _principal(tenant_id), "dlq.admin", "dlq:outreach", out)
        out.update(await queue_admin.dlq_entries(limit))
        return out

    body = run(action)
    if as_json:
        _print_json(body)
        return
    for item in body.get("retried") or []:
        console.print(f"retried #{item['index']}: {item['queue']} {item['jobId']} -> {item['outcome']}")
    if "trim" in body:
        console.print(f"trimmed: removed {body['trim']['removed']}, kept {body['trim']['kept']}")
    table = Table(
        "#", "queue", "job", "name", "attempts", "failed at", "reason", title=f"DLQ: {body['total']} entries"
    )
    for entry in body["entries"]:
        table.add_row(
            str(entry.get("index")),
            Text(str(entry.get("queue", ""))),
            Text(str(entry.get("jobId", ""))),
            Text(str(entry.get("name", ""))),
            str(entry.get("attemptsMade", "")),
            str(entry.get("failedAt", ""))[:19],
            Text(str(entry.get("failedReason") or entry.get("raw") or "")[:120]),
        )
    console.print(table)


def register(root: typer.Typer) -> None:
    root.add_typer(queues_app, name="queues")
