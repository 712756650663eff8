"""Fixtures and helpers of the webhook and reply-pipeline tests.

* ``wh_sandbox``: the provider sandbox over HTTP, reset, our settings pointing at it.
* ``app_server``: our API served by uvicorn on a free port *in the test's event loop*, so the
  sandbox can deliver webhooks to it over real HTTP.
* ``pipeline_worker``: a worker consuming only the webhook and triage queues (no phone queues:
  queued WhatsApp messages stay QUEUED, which lets tests look at them).
* ``full_worker``: every queue, phones included (sends go to the sandbox).

Test modules outside this folder import the fixtures they use from here.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from sqlalchemy import func, select

from cerniq.config import get_settings
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.leads.state import transition
from cerniq.messaging.service import AUTOMATION, queue_message
from cerniq.models import (
    GoldCommunicationLog,
    GoldLeadJourney,
    OutreachSequence,
    SequenceEnrollment,
    WebhookEvent,
)
from cerniq.models.enums import Channel, Direction, LeadState, MessageStatus
from cerniq.sequences import engine as sequences
from cerniq.worker import names
from cerniq.worker.queues import get_queue
from tests.fixtures.outreach import add_leads, add_sequence

WEBHOOK_QUEUES = [
    "webhook:timelinesai:ingest",
    "webhook:instantly:ingest",
    "webhook:resend:ingest",
    names.AI_SENTIMENT,
]


@pytest.fixture(scope="session")
def wh_sandbox_server() -> Iterator[Any]:
    from cerniq.sandbox.server import run_sandbox_in_thread

    handle = run_sandbox_in_thread(
        accounts=5,
        seed=11,
        reply_probability=0.0,
        reply_delay=0.05,
        time_scale=1.0,
        status_delays={"sent": 0.05, "delivered": 0.1, "read": 0.15},
        rate_limit_enabled=False,
        webhook_timeout=3.0,
        webhook_retry_delay=0.05,
        fault_delay=2.0,
    )
    yield handle
    handle.stop()


@pytest.fixture
def wh_sandbox(wh_sandbox_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sandbox, reset, with our settings pointing at it."""
    wh_sandbox_server.reset()
    monkeypatch.setenv("CERNIQ_TIMELINESAI_BASE_URL", wh_sandbox_server.timelinesai_url)
    monkeypatch.setenv("CERNIQ_TIMELINESAI_API_TOKEN", "sandbox-timelinesai-token")
    monkeypatch.setenv("CERNIQ_TIMELINESAI_TIMEOUT", "2")
    monkeypatch.setenv("CERNIQ_BUSINESS_HOURS_ALWAYS_OPEN", "true")
    monkeypatch.setenv("CERNIQ_AMBIGUITY_GRACE", "1")
    get_settings.cache_clear()
    return wh_sandbox_server


@dataclass
class AppServer:
    url: str
    server: uvicorn.Server


@pytest_asyncio.fixture(loop_scope="session")
async def app_server(wh_sandbox: Any) -> AsyncIterator[AppServer]:
    """Our API on a free port, served by the test's own event loop."""
    from cerniq.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        create_app(get_settings()), host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "the API did not start"
    yield AppServer(url=f"http://127.0.0.1:{port}", server=server)
    server.should_exit = True
    await asyncio.wait_for(serving, timeout=10)
    sock.close()


async def _worker(**kwargs: Any) -> Any:
    from cerniq.worker.runner import WorkerProcess

    process = WorkerProcess(
        get_settings(),
        run_scheduler=False,
        lock_duration_ms=5000,
        stalled_interval_ms=2000,
        grace_seconds=5,
        **kwargs,
    )
    await process.start()
    return process


@pytest_asyncio.fixture(loop_scope="session")
async def pipeline_worker(wh_sandbox: Any) -> AsyncIterator[Any]:
    """Consumes the webhook and triage queues only."""
    from cerniq.messaging.vendors import close_vendors

    process = await _worker(queues=WEBHOOK_QUEUES, serve_phones=False)
    yield process
    await process.stop()
    await close_vendors()


@pytest_asyncio.fixture(loop_scope="session")
async def full_worker(wh_sandbox: Any) -> AsyncIterator[Any]:
    """Consumes every queue, phone queues included."""
    from cerniq.messaging.vendors import close_vendors

    process = await _worker()
    yield process
    await process.stop()
    await close_vendors()


async def subscribe(sandbox: Any, app: AppServer, tenant: Any) -> list[dict[str, Any]]:
    """Subscribe our endpoint in the sandbox the way ``cerniq webhooks register`` does."""
    from cerniq.providers.timelinesai.client import TimelinesAIClient
    from cerniq.webhooks import service

    url = service.timelinesai_url(app.url, tenant.webhook_token)
    async with TimelinesAIClient(
        token="sandbox-timelinesai-token", base_url=sandbox.timelinesai_url
    ) as client:
        return await service.register_timelinesai(client, url)


# --- seeding ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactedLead:
    journey_id: uuid.UUID
    mobile: str
    chat_id: str
    outbound_id: uuid.UUID
    followup_id: uuid.UUID | None


async def contacted_lead(
    tenant: Any,
    *,
    n: int = 1,
    phone_id: str = "phone_01",
    chat_id: str | None = None,
    queue_followup: bool = False,
    email: bool = False,
) -> ContactedLead:
    """A lead in CONTACTED_WA on ``phone_id``: enrolled in a two-step sequence, step 1 SENT (with
    a vendor uid and chat), and, with ``queue_followup``, step 2 QUEUED for sending."""
    sequence_id = await add_sequence(tenant)
    (lead_id,) = await add_leads(tenant, 1, start=n, email=email)
    chat = chat_id or str(1_000_000 + n)
    now = utcnow()
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead_id)
        sequence = await session.get(OutreachSequence, sequence_id)
        assert journey is not None and sequence is not None
        enrollment = await sequences.enroll(session, journey, sequence, start_at=now - timedelta(days=4))
        await transition(session, journey, LeadState.CONTACTED_WA, trigger="SEND", reason="seed")
        journey.assigned_phone_id = phone_id
        journey.assigned_at = now - timedelta(days=4)
        journey.wa_chat_id = chat
        journey.is_new_contact = False
        journey.first_contact_at = now - timedelta(days=4)
        journey.last_contact_at = now - timedelta(days=4)
        journey.messages_sent = 1
        outbound = GoldCommunicationLog(
            id=uuid.uuid4(),
            tenant_id=tenant.id,
            lead_journey_id=journey.id,
            channel=Channel.WHATSAPP,
            direction=Direction.OUTBOUND,
            status=MessageStatus.SENT,
            origin=AUTOMATION,
            content="Bună ziua de la Cerniq!",
            content_rendered="Bună ziua de la Cerniq!",
            external_message_id=f"seed-out-{n}-{uuid.uuid4()}",
            thread_id=chat,
            phone_id=phone_id,
            phone_number=journey.mobile_e164,
            sequence_id=sequence_id,
            sequence_step=1,
            enrollment_id=enrollment.id,
            quota_cost=1,
            sent_at=now - timedelta(days=3),
        )
        session.add(outbound)
        enrollment.current_step = 1
        journey.sequence_step = 1
        journey.next_action_at = now + timedelta(hours=1)
        enrollment.next_step_at = journey.next_action_at
        await session.flush()
        followup_id = None
        if queue_followup:
            followup = await queue_message(
                session,
                journey,
                channel=Channel.WHATSAPP,
                content="Revin cu un mesaj: ați avut timp să vă uitați?",
                origin=AUTOMATION,
                sequence_id=sequence_id,
                sequence_step=2,
                enrollment_id=enrollment.id,
            )
            followup_id = followup.id
        assert journey.mobile_e164 is not None
        return ContactedLead(journey.id, journey.mobile_e164, chat, outbound.id, followup_id)


# --- reading ------------------------------------------------------------------------------------


async def journey_of(journey_id: uuid.UUID) -> GoldLeadJourney:
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        return journey


async def messages_of(
    journey_id: uuid.UUID, direction: Direction | None = None
) -> list[GoldCommunicationLog]:
    async with transaction() as session:
        query = select(GoldCommunicationLog).where(GoldCommunicationLog.lead_journey_id == journey_id)
        if direction is not None:
            query = query.where(GoldCommunicationLog.direction == direction)
        return list((await session.execute(query.order_by(GoldCommunicationLog.created_at))).scalars())


async def webhook_events(**filters: Any) -> list[WebhookEvent]:
    async with transaction() as session:
        query = select(WebhookEvent)
        for key, value in filters.items():
            query = query.where(getattr(WebhookEvent, key) == value)
        return list((await session.execute(query.order_by(WebhookEvent.received_at))).scalars())


async def enrollments_of(journey_id: uuid.UUID) -> list[SequenceEnrollment]:
    async with transaction() as session:
        query = select(SequenceEnrollment).where(SequenceEnrollment.lead_journey_id == journey_id)
        return list((await session.execute(query)).scalars())


async def count_rows(model: Any, **filters: Any) -> int:
    async with transaction() as session:
        query = select(func.count()).select_from(model)
        for key, value in filters.items():
            query = query.where(getattr(model, key) == value)
        return int((await session.execute(query)).scalar_one())


async def job_state(queue: str, job_id: str) -> str:
    return str(await get_queue(queue).getJobState(job_id))


def reviews_available() -> bool:
    """True once the HITL review service exists (the review assertions depend on it)."""
    try:
        from cerniq.reviews import service
    except ImportError:
        return False
    return hasattr(service, "open_review")


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``cerniq ARGS`` in a subprocess (the test's settings via the environment)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from cerniq.cli.main import main; main()",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "250", **(env or {})},
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return int(process.returncode or 0), out.decode()
