"""``cerniq demo``: the whole system on one machine with the provider sandbox standing in for the
vendors, 20 phones and a few hundred demo leads, so a newcomer sees a live outreach day."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any

import typer

DEMO_ENV = {
    "CERNIQ_ENV": "demo",
    "CERNIQ_LOCAL_OPERATOR_MODE": "true",
    "CERNIQ_BUSINESS_HOURS_ALWAYS_OPEN": "true",
    "CERNIQ_JITTER_BASE": "2",
    "CERNIQ_JITTER_SPREAD": "4",
    "CERNIQ_DISPATCH_CRON": "* * * * *",
    "CERNIQ_LOG_LEVEL": "WARNING",
}


def _sandbox_env(port: int) -> dict[str, str]:
    base = f"http://127.0.0.1:{port}"
    return {
        "CERNIQ_TIMELINESAI_BASE_URL": f"{base}/timelinesai",
        "CERNIQ_TIMELINESAI_API_TOKEN": "sandbox-timelinesai-token",
        "CERNIQ_INSTANTLY_BASE_URL": f"{base}/instantly",
        "CERNIQ_INSTANTLY_API_KEY": "sandbox-instantly-key",
        "CERNIQ_INSTANTLY_WEBHOOK_SECRET": "sandbox-instantly-webhook-secret",
        "CERNIQ_RESEND_BASE_URL": f"{base}/resend",
        "CERNIQ_RESEND_API_KEY": "re_sandbox_key",
        "CERNIQ_RESEND_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "CERNIQ_SLACK_WEBHOOK_URL": f"{base}/slack/services/demo/alerts",
    }


def register(root: typer.Typer) -> None:
    @root.command()
    def demo(
        leads: Annotated[int, typer.Option(help="Demo leads to create (kept between runs)")] = 300,
        phones: Annotated[int, typer.Option(help="Sandbox WhatsApp phones")] = 20,
        reply_probability: Annotated[
            float, typer.Option(help="Share of messages the sandbox answers")
        ] = 0.35,
        sandbox_port: Annotated[int, typer.Option(help="Port of the provider sandbox")] = 64100,
        data_dir: Annotated[Path, typer.Option(help="Where embedded servers keep their data")] = Path(
            ".cerniq"
        ),
    ) -> None:
        """Run API (:64000), workers and the provider sandbox with demo data and live activity."""
        for key, value in {**DEMO_ENV, **_sandbox_env(sandbox_port)}.items():
            os.environ.setdefault(key, value)
        os.environ.setdefault("CERNIQ_SANDBOX_PORT", str(sandbox_port))
        from cerniq.kit.embedded import ensure_stores

        stores = ensure_stores(data_dir)
        from cerniq.config import get_settings
        from cerniq.kit.migrate import ensure_database_exists, upgrade_database
        from cerniq.logging import configure_logging
        from cerniq.sandbox.server import run_sandbox_in_thread

        get_settings.cache_clear()
        settings = get_settings()
        configure_logging(settings)
        ensure_database_exists(settings.database_url)
        upgrade_database(settings.database_url)
        sandbox = run_sandbox_in_thread(
            port=settings.sandbox_port,
            accounts=phones,
            reply_probability=reply_probability,
            reply_delay=6.0,
            seed=11,
            resend_webhook_secret=os.environ["CERNIQ_RESEND_WEBHOOK_SECRET"],
        )
        try:
            asyncio.run(
                _main(settings, stores.notes, leads=leads, phones=phones, sandbox_url=sandbox.base_url)
            )
        except KeyboardInterrupt:
            pass
        finally:
            sandbox.stop()
            del stores


async def _main(settings: Any, notes: list[str], *, leads: int, phones: int, sandbox_url: str) -> None:
    from cerniq.cli.serve import serve_all
    from cerniq.demo import seed
    from cerniq.kit.db import transaction
    from cerniq.worker import names
    from cerniq.worker.enqueue import enqueue

    async with transaction() as session:
        tenant = await seed.ensure_tenant(session, settings.default_tenant_slug)
        new_phones = await seed.ensure_phones(session, tenant, phones)
        await seed.ensure_sequence(session, tenant)
        new_leads = await seed.ensure_leads(session, tenant, leads)
        token = await seed.admin_token(session, tenant)
        webhook_token = tenant.webhook_token
        await seed.ensure_email_campaign(session, tenant)
    await _subscribe_webhooks(settings, webhook_token)
    _banner(settings, notes, token, sandbox_url, new_phones, new_leads)

    async def kickoff() -> None:
        # a livelier demo than the cron alone: dispatch every 15 seconds
        for n in range(10_000):
            await asyncio.sleep(2 if n == 0 else 15)
            await enqueue(names.DISPATCH, "dispatch", {}, job_id=f"demo-dispatch-{n}")

    activity = asyncio.create_task(_activity(settings))
    starter = asyncio.create_task(kickoff())
    try:
        await serve_all(settings)
    finally:
        activity.cancel()
        starter.cancel()
        await asyncio.gather(activity, starter, return_exceptions=True)


async def _subscribe_webhooks(settings: Any, webhook_token: str) -> None:
    """Point the sandbox's TimelinesAI webhooks at our ingest endpoint (idempotent)."""
    from cerniq.messaging.vendors import close_vendors, whatsapp

    url = f"http://127.0.0.1:{settings.api_port}/api/v1/webhooks/timelinesai/{webhook_token}"
    client = whatsapp()
    existing = {(w.event_type, w.url) for w in await client.list_webhooks()}
    for event_type in (
        "message:received:new",
        "message:sent:new",
        "whatsapp:account:connected",
        "whatsapp:account:disconnected",
    ):
        if (event_type, url) not in existing:
            await client.create_webhook(event_type, url)
    await close_vendors()
    from cerniq.email import service as email_service

    await email_service.setup_webhooks(base_url=f"http://127.0.0.1:{settings.api_port}")


def _banner(
    settings: Any, notes: list[str], token: str, sandbox_url: str, new_phones: int, new_leads: int
) -> None:
    from rich.console import Console

    console = Console()
    api = f"http://127.0.0.1:{settings.api_port}"
    console.rule("[bold]Cerniq Outreach demo")
    console.print(f"API       {api}   (OpenAPI {api}/docs, health {api}/health)")
    console.print(f"Console   {api}/console")
    console.print(f"Sandbox   {sandbox_url}   (fake TimelinesAI, Instantly, Resend and Slack)")
    for note in notes:
        console.print(f"Store     {note}")
    console.print(f"Data      {new_phones} phones and {new_leads} demo leads added this run")
    console.print(
        "[yellow]Demo mode[/yellow]: business hours are open around the clock "
        "(production: 09:00-18:00 Europe/Bucharest, Mon-Fri, Romanian holidays off);"
    )
    console.print(
        "           jitter is 2-6 s between two sends of a phone (production: 30-150 s); "
        "dispatch runs every minute (production: every 5)."
    )
    console.print("           Local-operator mode: requests from this machine act as the admin.")
    console.print(f"Admin token (for other machines): {token}", soft_wrap=True)
    console.print("Try:  curl -s localhost:64000/api/v1/outreach/phones | jq '.phones[] | {label, status}'")
    console.print("      curl -s localhost:64000/api/admin/queues/health | jq '.queues'")
    console.rule("live activity (Ctrl-C to stop)")


async def _activity(settings: Any) -> None:
    """Print what happened since the last line, every 5 seconds."""
    from sqlalchemy import func, select

    from cerniq.kit.db import transaction
    from cerniq.models import GoldCommunicationLog, HumanReview
    from cerniq.models.enums import Direction, MessageStatus, ReviewStatus

    while True:
        await asyncio.sleep(5)
        try:
            async with transaction() as session:
                rows = await session.execute(
                    select(
                        GoldCommunicationLog.direction, GoldCommunicationLog.status, func.count()
                    ).group_by(GoldCommunicationLog.direction, GoldCommunicationLog.status)
                )
                counts: dict[str, int] = {}
                for direction, status, n in rows:
                    key = "replies" if direction == Direction.INBOUND else str(status.value).lower()
                    counts[key] = counts.get(key, 0) + int(n)
                pending = (
                    await session.execute(
                        select(func.count())
                        .select_from(HumanReview)
                        .where(HumanReview.status.in_((ReviewStatus.PENDING, ReviewStatus.ASSIGNED)))
                    )
                ).scalar_one()
            sent = sum(
                counts.get(s.value.lower(), 0)
                for s in (
                    MessageStatus.SENT,
                    MessageStatus.DELIVERED,
                    MessageStatus.READ,
                    MessageStatus.REPLIED,
                )
            )
            print(
                f"[activity] queued {counts.get('queued', 0) + counts.get('sending', 0)} · sent {sent} "
                f"(delivered {counts.get('delivered', 0)}, read {counts.get('read', 0)}) · "
                f"replies {counts.get('replies', 0)} · reviews pending {pending} · "
                f"failed {counts.get('failed', 0)} · skipped {counts.get('skipped', 0)}",
                flush=True,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            print(f"[activity] unavailable: {type(exc).__name__}", flush=True)
