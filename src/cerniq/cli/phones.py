"""``cerniq phones ...``: the phone procedures of runbook §2 (and pause-all of §7) as commands."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from cerniq.cli.common import act_as_cli, cli_principal, console, print_json

phones_app = typer.Typer(
    help="WhatsApp phones: list, pause/resume, reconnect, ban, reassign leads, health check, incidents.",
    no_args_is_help=True,
)

TenantOption = Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON")]
PhoneArg = Annotated[str, typer.Argument(help="Phone id, e.g. phone_03")]


def _cell(value: object) -> Text:
    return Text("-" if value is None else str(value))


_principal = cli_principal


def _act(tenant: str | None, action: Callable[[Any, Any], Awaitable[Any]]) -> Any:
    """Run ``action(session, principal)`` in one transaction as the CLI user (an admin)."""
    from cerniq.messaging.vendors import close_vendors

    return act_as_cli(tenant, action, cleanup=close_vendors)


_print_json = print_json


def _phones_table(phones: list[dict[str, Any]], title: str) -> Table:
    table = Table("id", "label", "number", "status", "enabled", "online", "quota", "last check", title=title)
    for p in phones:
        status_style = "green" if p["status"] == "ACTIVE" else "bold red"
        table.add_row(
            _cell(p["id"]),
            _cell(p["label"]),
            _cell(p["phoneNumber"]),
            Text(p["status"], style=status_style),
            _cell("yes" if p["isEnabled"] else "no"),
            _cell("yes" if p["isOnline"] else "no"),
            _cell(f"{p['quota']['used']}/{p['quota']['limit']}"),
            _cell((p["lastHealthCheckAt"] or "-")[:19]),
        )
    return table


@phones_app.command("list")
def list_cmd(
    status: Annotated[str | None, typer.Option(help="Only this status, e.g. OFFLINE")] = None,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every phone with its status and today's quota."""
    from cerniq.models.enums import PhoneStatus
    from cerniq.phones import service

    try:
        wanted = PhoneStatus(status.upper()) if status else None
    except ValueError:
        raise typer.BadParameter(
            f"unknown status {status!r}; one of {', '.join(s.value for s in PhoneStatus)}",
            param_hint="--status",
        ) from None

    async def action(session: Any, principal: Any) -> dict[str, Any]:
        return await service.list_view(session, principal.tenant_id, status=wanted, is_enabled=None)

    result = _act(tenant, action)
    if as_json:
        _print_json(result)
        return
    console.print(_phones_table(result["phones"], f"Phones ({len(result['phones'])})"))
    console.print(
        f"{result['phonesOnline']} ACTIVE, {result['phonesOffline']} not ACTIVE; "
        f"quota {result['totalQuotaUsed']}/{result['totalQuotaLimit']} used today"
    )


@phones_app.command("show")
def show_cmd(phone: PhoneArg, tenant: TenantOption = None, as_json: JsonOption = False) -> None:
    """One phone: status, quota, quota history and recent incidents."""
    from cerniq.phones import service

    async def action(session: Any, principal: Any) -> dict[str, Any]:
        return await service.detail_view(session, principal.tenant_id, phone)

    item = _act(tenant, action)
    if as_json:
        _print_json(item)
        return
    console.print(_phones_table([item], f"{item['id']} ({item['label']})"))
    console.print(
        f"status reason: {item['statusReason'] or '-'}; since {item['statusChangedAt'] or '-'}; "
        f"TimelinesAI account: {item['timelinesaiAccountId'] or '-'}; "
        f"leads assigned: {item['assignedLeadsCount']}"
    )
    if item["recentQuotaHistory"]:
        history = Table("date", "sent", "new contacts", "follow-ups", "mismatch", title="Quota history")
        for h in item["recentQuotaHistory"]:
            history.add_row(
                _cell(h["date"]),
                _cell(h["used"]),
                _cell(h["newContacts"]),
                _cell(h["followUps"]),
                _cell(h["mismatch"]),
            )
        console.print(history)
    _print_incidents(item["incidents"], "Recent incidents", with_phone=False)


def _print_incidents(rows: list[dict[str, Any]], title: str, *, with_phone: bool) -> None:
    if not rows:
        console.print("no incidents")
        return
    columns = ["at", *(["phone"] if with_phone else []), "kind", "reason", "actor"]
    table = Table(*columns, title=title)
    for i in rows:
        cells = [_cell(i["at"][:19])]
        if with_phone:
            cells.append(_cell(i.get("phoneId")))
        cells += [_cell(i["kind"]), _cell(i["reason"]), _cell(i["actor"])]
        table.add_row(*cells)
    console.print(table)


@phones_app.command("pause")
def pause_cmd(
    phone: PhoneArg,
    reason: Annotated[str, typer.Option("--reason", help="Why the phone is paused")],
    tenant: TenantOption = None,
) -> None:
    """Take a phone out of rotation; its messages wait in its queue."""
    from cerniq.phones import actions

    async def action(session: Any, principal: Any) -> dict[str, Any]:
        return await actions.pause_phone(session, principal, phone, reason=reason)

    result = _act(tenant, action)
    console.print(f"{result['id']}: {result['previousStatus']} -> {result['status']}")


@phones_app.command("resume")
def resume_cmd(phone: PhoneArg, tenant: TenantOption = None) -> None:
    """Back to ACTIVE if its TimelinesAI account is connected; waiting messages go now."""
    from cerniq.phones import actions

    async def action(session: Any, principal: Any) -> dict[str, Any]:
        return await actions.resume_phone(session, principal, phone)

    result = _act(tenant, action)
    console.print(f"{result['id']}: {result['previousStatus']} -> {result['status']} (account connected)")


@phones_app.command("reconnect")
def reconnect_cmd(phone: PhoneArg, tenant: TenantOption = None) -> None:
    """Re-check the TimelinesAI account (runbook 2.1 step 4) and say what to do next."""
    from cerniq.phones import actions

    async def action(session: Any, principal: Any) -> dict[str, Any]:
        return await actions.reconnect_phone(session, principal, phone)

    result = _act(tenant, action)
    state = "connected" if result["connected"] else "[bold red]disconnected[/bold red]"
    console.print(f"{result['id']}: {result['previousStatus']} -> {result['status']}; account {state}")
    if result["instructions"]:
        console.print(f"next: {result['instructions']}")


@phones_app.command("ban")
def ban_cmd(
    phone: PhoneArg,
    reason: Annotated[str, typer.Option("--reason", help="Suspected reason (runbook 2.2 step 7)")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    tenant: TenantOption = None,
) -> None:
    """Runbook 2.2 in one step: BANNED (never reconnected), leads unassigned, jobs purged."""
    from cerniq.phones import actions

    if not yes:
        typer.confirm(f"Mark {phone} BANNED? A banned phone is never reactivated", abort=True)

    async def action(session: Any, principal: Any) -> dict[str, Any]:
        return await actions.ban(session, principal, phone, reason=reason)

    result = _act(tenant, action)
    console.print(
        f"{result['id']}: {result['previousStatus']} -> BANNED; "
        f"{result['leadsUnassigned']} lead(s) unassigned, "
        f"{result['messagesSkipped']} queued message(s) skipped, pending jobs removed"
    )
    console.print("next: report it to TimelinesAI support and register a replacement (cerniq phones add)")


@phones_app.command("reassign-leads")
def reassign_cmd(phone: PhoneArg, tenant: TenantOption = None) -> None:
    """Runbook 2.2 step 3: the phone's COLD / CONTACTED_WA leads go to other phones at the next dispatch."""
    from cerniq.phones import actions

    async def action(session: Any, principal: Any) -> dict[str, Any]:
        return await actions.reassign_leads(session, principal, phone)

    result = _act(tenant, action)
    console.print(
        f"{result['phoneId']}: {result['reassigned']} lead(s) reassigned ({result['dueNow']} due now, "
        f"{result['humanControlled']} human-controlled), "
        f"{result['messagesSkipped']} queued message(s) skipped"
    )


@phones_app.command("health-check")
def health_check_cmd(tenant: TenantOption = None, as_json: JsonOption = False) -> None:
    """Check every phone against TimelinesAI now (what the 10-minute monitor does)."""
    from cerniq.auth.service import record_audit
    from cerniq.phones.health import check_phones

    async def action(session: Any, principal: Any) -> dict[str, Any]:
        report = await check_phones(session, tenant_id=principal.tenant_id)
        result = report.as_dict()
        await record_audit(
            session,
            principal,
            "phones.health_check",
            entity_type="phone",
            after={"summary": result["summary"], "timelinesaiOk": report.vendor_ok},
        )
        return result

    result = _act(tenant, action)
    if as_json:
        _print_json(result)
        return
    vendor = result["timelinesai"]
    if vendor["ok"]:
        console.print(f"TimelinesAI: ok ({vendor['accounts']} accounts)")
    else:
        console.print(
            f"[bold red]TimelinesAI unreachable[/bold red]: {vendor['error']} (alert timelinesai:down)"
        )
    table = Table("id", "label", "before", "after", "connected", "action", title="Phone health")
    for p in result["phones"]:
        table.add_row(
            _cell(p["id"]),
            _cell(p["label"]),
            _cell(p["previousStatus"]),
            _cell(p["status"]),
            _cell(p["connected"]),
            _cell(p["action"]),
        )
    console.print(table)
    s = result["summary"]
    console.print(f"{s['active']}/{s['enabled']} enabled phones ACTIVE")
    if result["pipelineDegraded"]:
        console.print("[bold red]pipeline degraded[/bold red]: fewer than half the phones are ACTIVE")


@phones_app.command("incidents")
def incidents_cmd(
    phone: Annotated[str | None, typer.Argument(help="Phone id (default: every phone)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """The phone incident log (bans, outages, pauses, quota resets), newest first."""
    from cerniq.phones import actions

    async def action(session: Any, principal: Any) -> dict[str, Any]:
        return await actions.incidents(session, principal.tenant_id, phone, limit=limit)

    result = _act(tenant, action)
    if as_json:
        _print_json(result)
        return
    _print_incidents(result["incidents"], f"Incidents of {phone or 'every phone'}", with_phone=phone is None)


@phones_app.command("add")
def add_cmd(
    number: Annotated[str, typer.Option("--number", help="E.164, e.g. +40712345678")],
    label: Annotated[str, typer.Option("--label", help="e.g. 'Sales 21'")],
    account: Annotated[str | None, typer.Option("--account", help="TimelinesAI account id")] = None,
    quota: Annotated[
        int | None, typer.Option("--quota", min=0, max=1000, help="New contacts per day")
    ] = None,
    priority: Annotated[int | None, typer.Option(min=1, max=100)] = None,
    tenant: TenantOption = None,
) -> None:
    """Register a phone (runbook 2.3): its Redis keys are set and its queue served without a restart."""
    from cerniq.phones import service

    async def action(session: Any, principal: Any) -> dict[str, Any]:
        phone = await service.create_phone(
            session,
            principal,
            phone_number=number,
            label=label,
            timelinesai_account_id=account,
            daily_quota_limit=quota,
            priority=priority,
        )
        return {"id": phone.id, "number": phone.phone_number, "quota": phone.daily_quota_limit}

    result = _act(tenant, action)
    console.print(f"registered {result['id']} {result['number']} (quota {result['quota']}/day)")
    console.print(f"next: cerniq phones health-check, then cerniq phones test-send {result['id']} +40...")


@phones_app.command("test-send")
def send_test_cmd(
    phone: PhoneArg,
    number: Annotated[str, typer.Argument(help="Recipient, e.g. +40722000000")],
    text: Annotated[str | None, typer.Option(help="Message text (default: a dated test line)")] = None,
    tenant: TenantOption = None,
) -> None:
    """Send one test message from a phone (runbook 2.3 step 6); a worker sends it."""
    from cerniq.phones import actions

    async def action(session: Any, principal: Any) -> dict[str, Any]:
        return await actions.send_test_message(
            session, principal, phone_id=phone, test_number=number, text=text
        )

    result = _act(tenant, action)
    console.print(
        f"message {result['messageId']} {result['status']} on {result['phoneId']} to {result['testNumber']}"
    )


def register(root: typer.Typer) -> None:
    root.add_typer(phones_app, name="phones")
