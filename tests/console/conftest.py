"""Console fixtures: users with passwords, a signed-in HTTP client, and the app served over
real HTTP (uvicorn in a thread) for the browser tests."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from cerniq.config import get_settings
from cerniq.models.enums import Role
from tests.messaging.conftest import sandbox, sandbox_server  # noqa: F401  (vendor sandbox fixtures)

PASSWORD = "parola-sigura-1"


@pytest_asyncio.fixture(loop_scope="session")
async def users(tenant: Any) -> dict[str, str]:
    """An admin, an operator and a viewer of the default tenant (same password); role -> email."""
    from cerniq.auth import service
    from cerniq.kit.db import transaction

    emails = {}
    async with transaction() as session:
        for role in (Role.ADMIN, Role.OPERATOR, Role.VIEWER):
            email = f"{role.value}@ferma.ro"
            await service.create_user(
                session,
                tenant_id=tenant.id,
                email=email,
                display_name=role.value,
                role=role,
                password=PASSWORD,
            )
            emails[role.value] = email
    return emails


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


@pytest_asyncio.fixture(loop_scope="session")
async def console() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app, in process, that keeps cookies."""
    from cerniq.app import create_app

    app = create_app(get_settings())
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def sign_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(
        "/console/login", data={"email": email, "password": password, "next": "/console/dashboard"}
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerHandle:
    def __init__(self, server: Any, thread: threading.Thread, url: str) -> None:
        self.server = server
        self.thread = thread
        self.url = url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout=10)


@pytest.fixture
def live_server(database: str) -> Iterator[ServerHandle]:
    """The app under uvicorn on a free port, in a thread with its own event loop."""
    import uvicorn

    from cerniq.app import create_app

    port = _free_port()
    config = uvicorn.Config(
        create_app(get_settings()), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)

    def run() -> None:
        asyncio.run(server.serve())

    thread = threading.Thread(target=run, daemon=True, name="console-uvicorn")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    handle = ServerHandle(server, thread, f"http://127.0.0.1:{port}")
    yield handle
    handle.stop()


async def _open_review(tenant: Any, journey_id: uuid.UUID, draft: str) -> uuid.UUID:
    from cerniq.kit.db import transaction
    from cerniq.models import GoldLeadJourney
    from cerniq.models.enums import Channel, Direction, MessageStatus, ReviewPriority, ReviewReason
    from cerniq.models.gold_communication_log import GoldCommunicationLog
    from cerniq.reviews import service as reviews

    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        inbound = GoldCommunicationLog(
            tenant_id=tenant.id,
            lead_journey_id=journey.id,
            channel=Channel.WHATSAPP,
            direction=Direction.INBOUND,
            status=MessageStatus.RECEIVED,
            content="Cât costă analiza de sol pentru 300 ha? Ne interesează până în martie.",
            phone_id="phone_01",
            phone_number=journey.mobile_e164,
        )
        session.add(inbound)
        await session.flush()
        review = await reviews.open_review(
            session,
            journey=journey,
            communication=inbound,
            reason=ReviewReason.QUESTION,
            priority=ReviewPriority.MEDIUM,
            trigger_content=inbound.content,
            ai_analysis={"intent": "PRICE_QUESTION", "sentiment": 40, "confidence": 0.62},
            suggested_response=draft,
        )
        return review.id
