"""``cerniq webhooks``: quarantined deliveries, replay, show, and the TimelinesAI subscription."""

from __future__ import annotations

import getpass
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from cerniq.cli.common import console, err_console, resolve_tenant_id, run

app = typer.Typer(
    help="Vendor webhooks: quarantined deliveries, replay after a fix, the TimelinesAI subscription.",
    no_args_is_help=True,
)

TenantOption = Annotated[
    str | None, typer.Option("--tenant", help="Tenant slug (default: the default tenant)")
]


def _cli_principal(tenant_id: Any) -> Any:
    from cerniq.auth.principal import Principal
    from cerniq.models.enums import Role

    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return Principal(tenant_id=tenant_id, role=Role.ADMIN, actor_type="cli", actor_id=user, actor_label=user)


def _short_payload(payload: dict[str, Any], width: int = 60) -> str:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("quarantine")
def quarantine(
    provider: Annotated[str | None, typer.Option(help="timelinesai, instantly or resend")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first")] = 50,
    tenant: TenantOption = None,
) -> None:
    """List quarantined deliveries (unknown lead, bad shape, no processor): id, provider, type,
    received, error, payload. Fix the cause, then `cerniq webhooks replay ID`."""
    from cerniq.kit.db import transaction
    from cerniq.models.enums import WebhookStatus
    from cerniq.webhooks import repository

    async def action() -> None:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            events = await repository.list_events(
                session, status=WebhookStatus.QUARANTINED, provider=provider, tenant_id=tenant_id, limit=limit
            )
        if not events:
            console.print("no quarantined webhook events")
            return
        table = Table("id", "provider", "type", "received", "error", "payload", title="Quarantined webhooks")
        for event in events:
            table.add_row(
                str(event.id),
                event.provider,
                event.event_type or "",
                event.received_at.isoformat(timespec="seconds"),
                (event.error or "")[:80],
                _short_payload(event.payload),
            )
        console.print(table)
        console.print(f"{len(events)} event(s); replay one with: cerniq webhooks replay ID")

    run(action)


@app.command("show")
def show(
    event_id: Annotated[str, typer.Argument(help="Event id (or its first 6+ characters)")],
    tenant: TenantOption = None,
) -> None:
    """Show one stored delivery: status, error, headers and the full payload."""
    from cerniq.kit.db import transaction
    from cerniq.webhooks import service

    async def action() -> None:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            event = await service.find_event(session, event_id, tenant_id)
        table = Table(show_header=False)
        for name, value in (
            ("id", str(event.id)),
            ("provider", event.provider),
            ("type", event.event_type or ""),
            ("key", event.event_key),
            ("status", event.status.value),
            ("error", event.error or ""),
            ("attempts", str(event.attempts)),
            ("tenant", str(event.tenant_id or "")),
            ("lead journey", str(event.lead_journey_id or "")),
            ("received", event.received_at.isoformat(timespec="seconds")),
            ("processed", event.processed_at.isoformat(timespec="seconds") if event.processed_at else ""),
            ("headers", json.dumps(event.headers, ensure_ascii=False)),
        ):
            table.add_row(name, value)
        console.print(table)
        console.print_json(json.dumps(event.payload, ensure_ascii=False))

    run(action)


@app.command("replay")
def replay(
    event_id: Annotated[str, typer.Argument(help="Event id (or its first 6+ characters)")],
    force: Annotated[bool, typer.Option(help="Also replay an event that was processed")] = False,
    tenant: TenantOption = None,
) -> None:
    """Process a quarantined (or ignored) delivery again, now (after fixing its cause)."""
    from cerniq.webhooks import service

    async def action() -> None:
        tenant_id = await resolve_tenant_id(tenant)
        event, outcome = await service.replay(event_id, _cli_principal(tenant_id), force=force)
        console.print(f"event {event.id}: {outcome} (status {event.status.value})")
        if event.error:
            console.print(f"error: {event.error}")
        if event.status.value == "QUARANTINED":
            raise typer.Exit(1)

    run(action)


@app.command("register")
def register_subscription(
    public_url: Annotated[
        str | None,
        typer.Option("--public-url", help="Our public base URL, e.g. https://outreach.example.ro"),
    ] = None,
    tenant: TenantOption = None,
) -> None:
    """Subscribe our TimelinesAI endpoint (with the tenant's secret token) to messages received and
    sent and to account connect/disconnect events, through the TimelinesAI API. Idempotent."""
    from cerniq.auth import repository as auth_repository
    from cerniq.auth.service import record_audit
    from cerniq.config import get_settings
    from cerniq.kit.db import transaction
    from cerniq.providers.timelinesai.client import TimelinesAIClient
    from cerniq.webhooks import service

    settings = get_settings()
    base = public_url or settings.public_base_url
    if not base.startswith(("http://", "https://")):
        err_console.print("--public-url must be an http(s) URL")
        raise typer.Exit(2)
    if not settings.timelinesai_api_token.get_secret_value():
        err_console.print("set CERNIQ_TIMELINESAI_API_TOKEN (the workspace's Public API token) first")
        raise typer.Exit(2)

    async def action() -> None:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            row = await auth_repository.tenant_by_id(session, tenant_id)
            assert row is not None
            token = row.webhook_token
        url = service.timelinesai_url(base, token)
        async with TimelinesAIClient.from_settings(settings) as client:
            rows = await service.register_timelinesai(client, url)
        async with transaction() as session:
            await record_audit(
                session,
                _cli_principal(tenant_id),
                "webhooks.register",
                entity_type="webhook_subscription",
                entity_id="timelinesai",
                after={"publicUrl": base, "events": [f"{r['eventType']}:{r['action']}" for r in rows]},
            )
        shown = service.timelinesai_url(base, token[:4] + "…")
        table = Table("event type", "webhook id", "action", title=f"TimelinesAI webhooks -> {shown}")
        for item in rows:
            table.add_row(item["eventType"], str(item["id"]), item["action"])
        console.print(table)

    run(action)
