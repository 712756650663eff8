"""Reliability fixtures: the sandbox, workers in this process or as real ``cerniq worker``
subprocesses (so they can be SIGKILLed / SIGTERMed), and seeding helpers for the send path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select, update

from cerniq.config import get_settings
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_queue_redis, get_redis
from cerniq.messaging import repository
from cerniq.messaging.service import AUTOMATION, queue_message
from cerniq.models import GoldCommunicationLog, GoldLeadJourney
from cerniq.models.enums import Channel, MessageStatus
from cerniq.quota.guardian import QuotaGuardian
from cerniq.worker.names import phone_queue
from cerniq.worker.queues import get_queue
from tests.messaging import conftest as messaging_fixtures
from tests.messaging.conftest import sent_messages

CERNIQ = str(Path(sys.executable).parent / "cerniq")
sandbox_server = messaging_fixtures.sandbox_server
sandbox = messaging_fixtures.sandbox
__all__ = ["sandbox", "sandbox_server", "sent_messages"]


def today() -> date:
    return BusinessClock.from_settings(get_settings()).business_day(utcnow())


async def queue_wa(
    journey_id: uuid.UUID,
    phone_id: str,
    *,
    text: str | None = None,
    new_contact: bool = True,
    origin: str = AUTOMATION,
) -> uuid.UUID:
    """A QUEUED WhatsApp row for the lead on ``phone_id`` and its job (after commit)."""
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        journey.assigned_phone_id = phone_id
        journey.next_action_at = None
        message = await queue_message(
            session,
            journey,
            channel=Channel.WHATSAPP,
            content=text or f"Bună ziua! Mesaj pentru {journey.mobile_e164} ({uuid.uuid4().hex[:6]})",
            origin=origin,
            phone_id=phone_id,
            new_contact=new_contact,
            created_by="test",
        )
        return message.id


async def rows(**filters: Any) -> list[GoldCommunicationLog]:
    async with transaction() as session:
        query = select(GoldCommunicationLog).order_by(GoldCommunicationLog.created_at)
        for key, value in filters.items():
            query = query.where(getattr(GoldCommunicationLog, key) == value)
        return list((await session.execute(query)).scalars())


async def row(message_id: uuid.UUID) -> GoldCommunicationLog:
    async with transaction() as session:
        found = await session.get(GoldCommunicationLog, message_id)
        assert found is not None
        return found


async def journey(journey_id: uuid.UUID) -> GoldLeadJourney:
    async with transaction() as session:
        found = await session.get(GoldLeadJourney, journey_id)
        assert found is not None
        return found


async def status_counts() -> dict[str, int]:
    async with transaction() as session:
        result = await session.execute(
            select(GoldCommunicationLog.status, func.count()).group_by(GoldCommunicationLog.status)
        )
        return {str(s.value): int(n) for s, n in result}


async def counters(phone_ids: list[str]) -> dict[str, int]:
    return await QuotaGuardian(get_redis()).usage_many(phone_ids, today())


async def ledger() -> dict[str, int]:
    async with transaction() as session:
        return await repository.ledger_counts(session, today())


async def mark_sent(message_id: uuid.UUID) -> None:
    """Pretend an earlier message went out (so the lead's next one is a follow-up)."""
    async with transaction() as session:
        await session.execute(
            update(GoldCommunicationLog)
            .where(GoldCommunicationLog.id == message_id)
            .values(status=MessageStatus.SENT, sent_at=func.now())
        )


async def job_state(phone_id: str, message_id: uuid.UUID) -> str:
    return str(await get_queue(phone_queue(phone_id)).getJobState(f"wa-{message_id}"))


async def delayed_until_ms(phone_id: str, message_id: uuid.UUID) -> int | None:
    """When the delayed job of the row becomes due (ms since the epoch), from the delayed set."""
    score = await get_queue_redis().zscore(f"bull:{phone_queue(phone_id)}:delayed", f"wa-{message_id}")
    return None if score is None else int(score) >> 12


@pytest_asyncio.fixture(loop_scope="session")
async def phone_worker(sandbox: Any) -> AsyncIterator[Any]:
    """A worker in this event loop serving only the phone queues (short locks)."""
    from cerniq.messaging.vendors import close_vendors
    from cerniq.worker.runner import WorkerProcess

    process = WorkerProcess(
        get_settings(), queues=["phones"], lock_duration_ms=5000, stalled_interval_ms=2000, grace_seconds=5
    )
    await process.start()
    yield process
    await process.stop()
    await close_vendors()


class WorkerProcesses:
    """``cerniq worker`` subprocesses with short locks; killed at the end of the test."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, lock_ms: int = 3000, stalled_ms: int = 1000, grace: float = 10.0) -> Any:
        env = {**os.environ, "CERNIQ_LOG_LEVEL": "WARNING"}
        proc = subprocess.Popen(
            [
                CERNIQ,
                "worker",
                "--queues",
                "phones",
                "--lock-duration-ms",
                str(lock_ms),
                "--stalled-interval-ms",
                str(stalled_ms),
                "--grace",
                str(grace),
                *args,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture
def worker_processes(sandbox: Any) -> Iterator[WorkerProcesses]:
    procs = WorkerProcesses()
    yield procs
    procs.stop_all()


async def lease_holder(phone_id: str) -> str | None:
    value = await get_queue_redis().get(f"cerniq:lease:{phone_queue(phone_id)}")
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def wait_sync(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")
