"""``cerniq email ...``: runbook 6.1 as commands (campaigns, pause/resume, clean bounces,
deliverability, bounces) plus the analytics fetch and the vendor webhook set-up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from cerniq.cli.common import act_as_cli, cli_principal, console, print_json, run

email_app = typer.Typer(
    help="Email: Instantly campaigns (pause/resume), bounces, suppression, deliverability breaker.",
    no_args_is_help=True,
)

TenantOption = Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON")]
CampaignArg = Annotated[str, typer.Argument(help="Campaign id (ours or the Instantly id)")]


def _cell(value: object) -> Text:
    return Text("-" if value is None or value == "" else str(value))


_principal = cli_principal


def _act(tenant: str | None, action: Callable[[Any, Any], Awaitable[Any]]) -> Any:
    """Run ``action(session, principal)`` in one transaction as the CLI user (an admin)."""
    from cerniq.email.vendors import close_email_vendors

    return act_as_cli(tenant, action, cleanup=close_email_vendors)


_print_json = print_json


def _campaign_table(campaigns: list[dict[str, Any]], title: str) -> Table:
    table = Table(
        "id", "name", "instantly id", "status", "sent", "bounced", "bounce %", "paused because", title=title
    )
    for c in campaigns:
        stats = c.get("stats") or {}
        style = "green" if c["status"] == "ACTIVE" else ("bold red" if c["status"] != "DRAFT" else "yellow")
        table.add_row(
            _cell(c["id"]),
            _cell(c["name"]),
            _cell(c["instantlyCampaignId"]),
            Text(c["status"], style=style),
            _cell(stats.get("sent", 0)),
            _cell(stats.get("bounced", 0)),
            _cell(stats.get("bounceRate", 0.0)),
            _cell(c.get("pausedReason")),
        )
    return table


@email_app.command("campaigns")
def campaigns_cmd(tenant: TenantOption = None, as_json: JsonOption = False) -> None:
    """Campaigns with status (Instantly's included) and the last analytics."""
    from cerniq.email import campaigns

    result = _act(tenant, lambda session, principal: campaigns.list_view(session, principal.tenant_id))
    if as_json:
        _print_json(result)
        return
    console.print(_campaign_table(result["campaigns"], f"{result['meta']['total']} campaign(s)"))


@email_app.command("pause")
def pause_cmd(
    campaign: CampaignArg,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log)")] = None,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Pause a campaign here (nothing more is added) and at Instantly."""
    from cerniq.email import campaigns

    result = _act(
        tenant,
        lambda session, principal: campaigns.pause_campaign(session, principal, campaign, reason=reason),
    )
    if as_json:
        _print_json(result)
        return
    synced = result["instantly"]["synced"]
    console.print(
        f"[bold]{result['name']}[/bold] is {result['status']}"
        + ("" if synced else f" here; Instantly not reached ({result['instantly']['error']}), retried hourly")
    )


@email_app.command("resume")
def resume_cmd(
    campaign: CampaignArg,
    reason: Annotated[str, typer.Option(help="Why it is safe to resume (kept in the audit log)")],
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resume a campaign at Instantly and here (runbook 6.1 step 9); the breaker then waits its
    grace period before it can trip again."""
    from cerniq.email import campaigns

    result = _act(
        tenant,
        lambda session, principal: campaigns.resume_campaign(session, principal, campaign, reason=reason),
    )
    if as_json:
        _print_json(result)
        return
    console.print(
        f"[bold]{result['name']}[/bold] is {result['status']}; breaker grace until "
        f"{result['breakerGraceUntil']}; {result['messagesReleased']} waiting message(s) released"
    )


@email_app.command("clean-bounces")
def clean_bounces_cmd(tenant: TenantOption = None, as_json: JsonOption = False) -> None:
    """Suppressed addresses out of future sends and out of the Instantly campaigns (runbook 6.1 step 8)."""
    from cerniq.email import service

    result = _act(tenant, service.clean_bounces)
    if as_json:
        _print_json(result)
        return
    console.print(
        f"{result['suppressedAddresses']} suppressed address(es); "
        f"{result['messagesSkipped']} queued message(s) skipped; "
        f"{result['blocklisted']} block-listed at Instantly; "
        f"{result['removedTotal']} lead(s) removed from campaigns"
    )
    for item in result["removedFromCampaigns"]:
        console.print(f"  {item['name']}: " + ", ".join(item["removed"]))
    for error in result["errors"]:
        console.print(f"[red]error[/red] {error}")


@email_app.command("deliverability")
def deliverability_cmd(
    check: Annotated[bool, typer.Option("--check", help="Run the breaker now, then report")] = False,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Bounce rate over the breaker's window, per campaign and sending domain (runbook 6.1 step 1)."""
    from cerniq.email import analytics
    from cerniq.email.breaker import run_breaker

    async def action(session: Any, principal: Any) -> Any:
        tripped = None
        if check:
            tripped = await run_breaker(tenant_id=principal.tenant_id)
        view = await analytics.deliverability_view(session, principal.tenant_id)
        return {**view, "breakerRun": tripped}

    result = _act(tenant, action)
    if as_json:
        _print_json(result)
        return
    style = "bold red" if result["aboveThreshold"] else "green"
    console.print(
        Text(
            f"bounce rate {result['bounceRate']}% ({result['bounced']}/{result['sent']}) over "
            f"{result['window']['hours']:g} h; threshold {result['threshold']}%",
            style=style,
        )
    )
    table = Table(
        "campaign", "status", "window sent", "window bounced", "bounce %", "paused because", title="campaigns"
    )
    for c in result["campaigns"]:
        table.add_row(
            _cell(c["name"]),
            _cell(c["status"]),
            _cell(c["window"]["sent"]),
            _cell(c["window"]["bounced"]),
            _cell(c["bounceRate"]),
            _cell(c["pausedReason"]),
        )
    console.print(table)
    domains = Table("domain", "sent", "bounced", "bounce %", "tripped", title="sending domains")
    for d in result["domains"]:
        domains.add_row(
            _cell(d["domain"]),
            _cell(d["sent"]),
            _cell(d["bounced"]),
            _cell(d["bounceRate"]),
            _cell(d["tripped"]),
        )
    console.print(domains)
    if result["breakerRun"] and result["breakerRun"]["tripped"]:
        for trip in result["breakerRun"]["tripped"]:
            console.print(f"[bold red]paused[/bold red] {trip['campaignId']}: {trip['reason']}")


@email_app.command("bounces")
def bounces_cmd(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first")] = 100,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """The latest bounces: address, type, reason, time (runbook 6.1 step 3)."""
    from cerniq.email import analytics

    result = _act(
        tenant, lambda session, principal: analytics.bounces_view(session, principal.tenant_id, limit)
    )
    if as_json:
        _print_json(result)
        return
    table = Table("email", "type", "reason", "when", "channel", title=f"{len(result['bounces'])} bounce(s)")
    for b in result["bounces"]:
        table.add_row(
            _cell(b["email"]),
            _cell(b["bounceType"]),
            _cell(b["reason"]),
            _cell(b["timestamp"]),
            _cell(b["channel"]),
        )
    console.print(table)


@email_app.command("suppressions")
def suppressions_cmd(tenant: TenantOption = None, as_json: JsonOption = False) -> None:
    """Suppressed addresses (bounces, complaints, unsubscribes, opt-outs)."""
    from cerniq.email import service

    result = _act(tenant, lambda session, principal: service.suppression_view(session, principal.tenant_id))
    if as_json:
        _print_json(result)
        return
    table = Table(
        "email",
        "reason",
        "source",
        "bounces",
        "permanent",
        "expires",
        title=f"{result['meta']['total']} suppressed",
    )
    for s in result["suppressions"]:
        table.add_row(
            _cell(s["email"]),
            _cell(s["reason"]),
            _cell(s["source"]),
            _cell(s["bounceCount"]),
            _cell(s["permanent"]),
            _cell(s["expiresAt"]),
        )
    console.print(table)


@email_app.command("fetch-analytics")
def fetch_analytics_cmd(tenant: TenantOption = None, as_json: JsonOption = False) -> None:
    """Fetch status and counters from Instantly now, then run the breaker (the hourly job)."""
    from cerniq.email import campaigns

    result = _act(tenant, lambda session, principal: campaigns.fetch_analytics(tenant_id=principal.tenant_id))
    if as_json:
        _print_json(result)
        return
    console.print(
        f"{result['updated']} campaign(s) updated, {result['repaused']} re-paused at Instantly, "
        f"{len(result['breaker']['tripped'])} paused by the breaker"
    )


@email_app.command("setup-webhooks")
def setup_webhooks_cmd(
    base_url: Annotated[
        str | None, typer.Option(help="Public root of this API (default CERNIQ_PUBLIC_BASE_URL)")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Subscribe /api/v1/webhooks/instantly (secret header) and /resend (Svix) at the vendors."""
    from cerniq.email import service
    from cerniq.email.vendors import close_email_vendors

    async def main() -> Any:
        try:
            return await service.setup_webhooks(base_url)
        finally:
            await close_email_vendors()

    result = run(main)
    if as_json:
        _print_json(result)
        return
    for vendor, item in result.items():
        state = "created" if item["created"] else "already there"
        console.print(f"{vendor}: {item['url']} ({state}, id {item['id']})")
        if item.get("signingSecret") and not item.get("secretConfigured"):
            console.print(f"  set CERNIQ_RESEND_WEBHOOK_SECRET={item['signingSecret']}")


def register(root: typer.Typer) -> None:
    """Add ``cerniq email`` to the root command."""
    root.add_typer(email_app, name="email")
