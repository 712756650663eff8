"""Email-channel fixtures: the sandbox (Instantly, Resend) over real HTTP, our settings pointing
at it, an in-process worker for the email and webhook queues, and seeding helpers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from cerniq.config import get_settings
from cerniq.sandbox import SandboxHandle, WebhookRecorder, run_sandbox_in_thread

INSTANTLY_KEY = "sandbox-instantly-key"
RESEND_KEY = "re_sandbox_key"
INSTANTLY_SECRET = "instantly-hook-secret-0123456789abcdef"
RESEND_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SENDERS = ["ana@outreach-cerniq.ro", "dan@outreach-cerniq.ro"]

EMAIL_QUEUES = [
    "q:email:cold",
    "q:email:warm",
    "webhook:instantly:ingest",
    "webhook:resend:ingest",
]


@pytest.fixture(scope="session")
def email_sandbox_server() -> Iterator[SandboxHandle]:
    handle = run_sandbox_in_thread(
        accounts=2,
        reply_probability=0.0,
        time_scale=0.01,
        rate_limit_enabled=False,
        fault_delay=3.0,
        webhook_timeout=2.0,
        webhook_attempts=2,
        webhook_retry_delay=0.05,
        instantly_auto_send=False,
        instantly_event_delay=1.0,
        resend_event_delay=1.0,
        resend_webhook_secret=RESEND_SECRET,
        resend_retry_scale=0.0001,
    )
    yield handle
    handle.stop()


@pytest.fixture
def sandbox(email_sandbox_server: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> SandboxHandle:
    """The sandbox, reset, with our settings pointing at it."""
    email_sandbox_server.reset()
    env = {
        "CERNIQ_INSTANTLY_BASE_URL": email_sandbox_server.url("instantly"),
        "CERNIQ_INSTANTLY_API_KEY": INSTANTLY_KEY,
        "CERNIQ_INSTANTLY_WEBHOOK_SECRET": INSTANTLY_SECRET,
        "CERNIQ_RESEND_BASE_URL": email_sandbox_server.url("resend"),
        "CERNIQ_RESEND_API_KEY": RESEND_KEY,
        "CERNIQ_RESEND_WEBHOOK_SECRET": RESEND_SECRET,
        "CERNIQ_RESEND_FROM": "Cerniq Vânzări <vanzari@cerniq.app>",
        "CERNIQ_INSTANTLY_TIMEOUT": "2",
        "CERNIQ_RESEND_TIMEOUT": "2",
        "CERNIQ_EMAIL_RETRY_DELAY": "0.2",
        "CERNIQ_EMAIL_CAMPAIGN_WAIT": "0.5",
        "CERNIQ_BUSINESS_HOURS_ALWAYS_OPEN": "true",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return email_sandbox_server


@pytest_asyncio.fixture(loop_scope="session")
async def worker(sandbox: SandboxHandle) -> AsyncIterator[Any]:
    """A worker consuming the email and email-webhook queues, in the test's event loop."""
    from cerniq.email.vendors import close_email_vendors
    from cerniq.worker.runner import WorkerProcess

    process = WorkerProcess(
        get_settings(),
        queues=EMAIL_QUEUES,
        serve_phones=False,
        run_scheduler=False,
        lock_duration_ms=5000,
        stalled_interval_ms=2000,
        grace_seconds=5,
    )
    await process.start()
    yield process
    await process.stop()
    await close_email_vendors()


@pytest_asyncio.fixture(loop_scope="session")
async def vendors_closed() -> AsyncIterator[None]:
    """Close the email clients at the end of a test that used them without a worker."""
    from cerniq.email.vendors import close_email_vendors

    yield
    await close_email_vendors()


@pytest.fixture
def recorder() -> Iterator[WebhookRecorder]:
    rec = WebhookRecorder()
    yield rec
    rec.stop()


def instantly_api(sandbox: SandboxHandle) -> httpx.Client:
    return httpx.Client(
        base_url=sandbox.url("instantly") + "/api/v2",
        headers={"Authorization": f"Bearer {INSTANTLY_KEY}"},
        timeout=5,
    )


def instantly_leads(sandbox: SandboxHandle, **params: Any) -> list[dict[str, Any]]:
    return list(sandbox.control("GET", "/_control/instantly/leads", **params))


def resend_emails(sandbox: SandboxHandle, **params: Any) -> list[dict[str, Any]]:
    return list(sandbox.control("GET", "/_control/resend/emails", **params))


async def make_campaign(tenant: Any, *, name: str = "Fermieri Timiș", **kwargs: Any) -> Any:
    """A campaign created at the sandbox Instantly and mapped here (the tenant's default)."""
    from cerniq.auth.principal import system_principal
    from cerniq.email.campaigns import create_campaign
    from cerniq.kit.db import transaction

    kwargs.setdefault("email_accounts", SENDERS)
    async with transaction() as session:
        return await create_campaign(session, system_principal(tenant.id), name=name, **kwargs)


async def add_email_lead(
    tenant: Any,
    n: int,
    *,
    email: str | None = None,
    mobile: str | None = None,
    state: Any = None,
) -> uuid.UUID:
    """A lead with an email address (and no WhatsApp number unless given)."""
    from cerniq.kit.db import transaction
    from cerniq.models import GoldCompany, GoldContact, GoldLeadJourney
    from cerniq.models.enums import LeadState

    async with transaction() as session:
        company = GoldCompany(
            tenant_id=tenant.id,
            denumire=f"Agro Câmpia {n} SRL",
            cui=str(20_000_000 + n),
            judet="Arad",
            localitate="Pecica",
            is_agricultural=True,
        )
        session.add(company)
        await session.flush()
        contact = GoldContact(
            tenant_id=tenant.id,
            company_id=company.id,
            prenume="Ion",
            nume=f"Popescu{n}",
            full_name=f"Ion Popescu{n}",
        )
        session.add(contact)
        await session.flush()
        journey = GoldLeadJourney(
            tenant_id=tenant.id,
            lead_id=company.id,
            primary_contact_id=contact.id,
            email=email or f"office{n}@agrocampia{n}.ro",
            mobile_e164=mobile,
            current_state=state or LeadState.COLD,
        )
        session.add(journey)
        await session.flush()
        return journey.id


async def queue_email(
    journey_id: uuid.UUID,
    channel: Any,
    *,
    content: str = "Bună ziua, vă scriu din partea Cerniq despre semințe certificate.",
    subject: str | None = "Semințe pentru sezonul de primăvară",
    origin: str = "AUTOMATION",
    campaign_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """A QUEUED email row through the one send path (``queue_message``); its job runs after commit."""
    from cerniq.kit.db import transaction
    from cerniq.messaging.service import queue_message
    from cerniq.models import GoldLeadJourney

    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        row = await queue_message(
            session,
            journey,
            channel=channel,
            content=content,
            subject=subject,
            origin=origin,
            email_campaign_id=campaign_id,
        )
        return row.id


async def get_row(message_id: uuid.UUID) -> Any:
    from cerniq.kit.db import transaction
    from cerniq.models import GoldCommunicationLog

    async with transaction() as session:
        return await session.get(GoldCommunicationLog, message_id)


async def get_journey(journey_id: uuid.UUID) -> Any:
    from cerniq.kit.db import transaction
    from cerniq.models import GoldLeadJourney

    async with transaction() as session:
        return await session.get(GoldLeadJourney, journey_id)


async def status_is(message_id: uuid.UUID, *statuses: Any) -> bool:
    row = await get_row(message_id)
    return row is not None and row.status in statuses


async def forward(recorder: WebhookRecorder, api: Any, path: str, index: int = -1) -> httpx.Response:
    """Deliver a recorded webhook (exact bytes and headers) to our ingest endpoint."""
    request = recorder.requests[index]
    headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
    response: httpx.Response = await api.post(path, content=request.raw, headers=headers)
    return response
