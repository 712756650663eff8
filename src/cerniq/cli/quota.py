"""``cerniq quota show|reset|resync|close-day``: runbook §3 and the Redis rebuild of §8."""

from __future__ import annotations

import getpass
import json
from datetime import date
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from cerniq.cli.common import console, resolve_tenant_id, run

quota_app = typer.Typer(
    help="WhatsApp quota: usage next to the ledger, emergency reset, resync from the ledger.",
    no_args_is_help=True,
)

DateOption = Annotated[
    str | None, typer.Option("--date", help="Business day YYYY-MM-DD (default: today, Europe/Bucharest)")
]
TenantOption = Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")]


def _parse_day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint="--date") from None


def _cell(value: object) -> Text:
    return Text("-" if value is None else str(value))


def _cli_principal(tenant_id: Any) -> Any:
    from cerniq.auth.principal import Principal
    from cerniq.models.enums import Role

    user = getpass.getuser()
    return Principal(tenant_id=tenant_id, role=Role.ADMIN, actor_type="cli", actor_id=user, actor_label=user)


@quota_app.command("show")
def show_cmd(
    date_: DateOption = None,
    tenant: TenantOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Per phone: today's quota in Redis next to the ledger, with a MISMATCH marker.

    Used / limit / remaining / follow-ups come from Redis; the ledger is the gold_communication_log
    rows with quota_cost = 1 and that quota_date."""
    from cerniq.kit.db import transaction
    from cerniq.quota import service

    wanted = _parse_day(date_)

    async def action() -> tuple[date, list[Any]]:
        tenant_id = await resolve_tenant_id(tenant)
        day = wanted or service.today()
        async with transaction() as session:
            return day, await service.day_report(session, day, tenant_id)

    day, rows = run(action)
    if as_json:
        console.print_json(json.dumps({"date": day.isoformat(), "phones": [r.as_dict() for r in rows]}))
        return
    table = Table(
        "phone",
        "label",
        "status",
        "used",
        "limit",
        "remaining",
        "follow-ups",
        "ledger new",
        "ledger follow-ups",
        "check",
        title=f"WhatsApp quota on {day.isoformat()} (Redis vs ledger)",
    )
    for row in rows:
        check = Text("MISMATCH", style="bold red") if row.mismatch else Text("ok", style="green")
        table.add_row(
            _cell(row.phone_id),
            _cell(row.label),
            _cell(row.status),
            _cell(row.used),
            _cell(row.limit),
            _cell(row.remaining),
            _cell(row.followups),
            _cell(row.ledger_new),
            _cell(row.ledger_followups),
            check,
        )
    console.print(table)
    used = sum(r.used or 0 for r in rows)
    console.print(f"{used} / {sum(r.limit for r in rows)} new contacts used on {day.isoformat()}")
    bad = [r.phone_id for r in rows if r.mismatch]
    if bad:
        console.print(
            f"[bold red]{len(bad)} phone(s) disagree with the ledger[/bold red]: {', '.join(bad)}; "
            "`cerniq quota resync` rebuilds the counters from the ledger"
        )


@quota_app.command("reset")
def reset_cmd(
    phone: Annotated[str, typer.Argument(help="Phone id, e.g. phone_03")],
    reason: Annotated[str, typer.Option("--reason", help="Why (the confirmed bug); required")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    date_: DateOption = None,
    tenant: TenantOption = None,
) -> None:
    """EMERGENCY ONLY (runbook 3.3): set one phone's new-contact counter to 0 (EX 172800).

    The old values (counter, follow-ups, reservations) are saved in audit_log and in a
    QUOTA_RESET phone incident first. Use only for a confirmed bug that miscounted the quota."""
    from cerniq.kit.db import transaction
    from cerniq.quota import service

    if not reason.strip():
        raise typer.BadParameter("a reason is required", param_hint="--reason")
    wanted = _parse_day(date_)
    if not yes:
        typer.confirm(
            f"Reset the new-contact quota of {phone} to 0? Going over 200 new contacts a day risks a ban",
            abort=True,
        )

    async def action() -> dict[str, Any]:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            return await service.reset_phone(
                session, _cli_principal(tenant_id), phone, reason=reason, day=wanted
            )

    result = run(action)
    before = result["before"]
    console.print(
        f"{result['key']}: {before['counter'] if before['counter'] is not None else 'unset'} -> 0 "
        f"(EX {result['after']['ttlSeconds']})"
    )
    console.print(
        f"saved before the reset: counter={before['counter']}, follow-ups={before['followups']}, "
        f"reservations={before['reservations']} (audit_log action quota.reset, phone incident QUOTA_RESET)"
    )
    console.print("monitor it: redis-cli GET " + result["key"])


@quota_app.command("resync")
def resync_cmd(
    date_: DateOption = None,
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant's phones (default: every tenant)")
    ] = None,
) -> None:
    """Rebuild the day's Redis quota counters from the ledger (runbook 8.1 step 4, 8.2 step 2).

    Counters, follow-up counters and reservations are rebuilt; the counter before and after is
    printed per phone."""
    from cerniq.kit.db import transaction
    from cerniq.quota import service

    wanted = _parse_day(date_)
    user = getpass.getuser()

    async def action() -> tuple[date, dict[str, tuple[int, int]]]:
        tenant_id = await resolve_tenant_id(tenant) if tenant else None
        day = wanted or service.today()
        async with transaction() as session:
            return day, await service.resync_day(
                session, day, tenant_id=tenant_id, actor_type="cli", actor_label=user
            )

    day, changes = run(action)
    table = Table("phone", "before", "after", "", title=f"Quota counters rebuilt for {day.isoformat()}")
    for phone_id, (before, after) in changes.items():
        mark = Text("changed", style="yellow") if before != after else Text("")
        table.add_row(_cell(phone_id), _cell(before), _cell(after), mark)
    console.print(table)
    console.print(
        f"{len(changes)} phone(s) resynced; {sum(1 for b, a in changes.values() if b != a)} changed"
    )


@quota_app.command("close-day")
def close_day_cmd(date_: DateOption = None) -> None:
    """Run the 00:00 job now: write wa_quota_usage for a day (default: yesterday), flag mismatches."""
    from cerniq.kit.db import transaction
    from cerniq.quota import service

    wanted = _parse_day(date_)

    async def action() -> dict[str, Any]:
        async with transaction() as session:
            return await service.close_day(session, wanted or service.yesterday())

    report = run(action)
    table = Table(
        "phone", "new contacts", "follow-ups", "ledger", "check", title=f"wa_quota_usage {report['date']}"
    )
    for row in report["rows"]:
        check = Text("MISMATCH", style="bold red") if row["mismatch"] else Text("ok", style="green")
        table.add_row(
            _cell(row["phoneId"]),
            _cell(row["newContacts"]),
            _cell(row["followUps"]),
            _cell(row["ledger"]),
            check,
        )
    console.print(table)


def register(root: typer.Typer) -> None:
    root.add_typer(quota_app, name="quota")
