"""Helpers of the phone lifecycle and quota tests: run a job handler, set sandbox accounts, read
alerts, incidents and audit rows, and write ledger rows."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any

import structlog
from sqlalchemy import select

from cerniq.config import get_settings
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.models import (
    Alert,
    AuditEntry,
    GoldCommunicationLog,
    GoldLeadJourney,
    PhoneIncident,
    WaPhoneNumber,
)
from cerniq.models.enums import AlertStatus, Channel, Direction, MessageStatus
from cerniq.worker.registry import Handler, JobContext


async def run_job(handler: Handler, queue: str, data: dict[str, Any] | None = None) -> Any:
    """Run a job handler the way the worker does (one attempt, the current settings)."""
    job = SimpleNamespace(id="test-job", name="test", attemptsMade=0, opts={}, data=data or {})
    ctx = JobContext(
        job=job, token="test", queue_name=queue, settings=get_settings(), log=structlog.get_logger("test")
    )
    return await handler(ctx, data or {})


async def run_health_job() -> dict[str, Any]:
    from cerniq.phones.tasks import phone_health_job
    from cerniq.worker import names

    result: dict[str, Any] = await run_job(phone_health_job, names.MONITOR_PHONES)
    return result


def set_account(sandbox: Any, number: str, state: str) -> None:
    """The TimelinesAI account of ``number`` in ``state`` (connected, disconnected, suspended, banned)."""
    sandbox.control("POST", "/_control/timelinesai/accounts", {"phone": number, "state": state})


def number_of(n: int) -> str:
    """The sandbox account (and ``add_phones`` phone) number n: +40700000001, ..."""
    return f"+407{n:08d}"


async def phone_row(phone_id: str) -> WaPhoneNumber:
    async with transaction() as session:
        phone = await session.get(WaPhoneNumber, phone_id)
        assert phone is not None
        return phone


async def alerts_of(alert_type: str, subject: str | None = None) -> list[Alert]:
    async with transaction() as session:
        query = select(Alert).where(Alert.alert_type == alert_type)
        if subject is not None:
            query = query.where(Alert.subject == subject)
        return list((await session.execute(query.order_by(Alert.created_at))).scalars())


async def open_alert(alert_type: str, subject: str | None = None) -> Alert | None:
    rows = [
        a
        for a in await alerts_of(alert_type, subject)
        if a.status in (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED, AlertStatus.SILENCED)
    ]
    assert len(rows) <= 1
    return rows[0] if rows else None


async def incidents_of(phone_id: str) -> list[PhoneIncident]:
    async with transaction() as session:
        query = (
            select(PhoneIncident).where(PhoneIncident.phone_id == phone_id).order_by(PhoneIncident.created_at)
        )
        return list((await session.execute(query)).scalars())


async def audit_rows(action: str) -> list[AuditEntry]:
    async with transaction() as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.created_at)
        return list((await session.execute(query)).scalars())


async def add_message(
    tenant: Any,
    journey_id: uuid.UUID,
    phone_id: str,
    *,
    cost: int = 0,
    day: date | None = None,
    status: MessageStatus = MessageStatus.SENT,
    direction: Direction = Direction.OUTBOUND,
    sent_at: datetime | None = None,
    origin: str = "OPERATOR",
) -> uuid.UUID:
    """One WhatsApp row of the log (the quota ledger when ``day`` is set)."""
    async with transaction() as session:
        row = GoldCommunicationLog(
            tenant_id=tenant.id,
            lead_journey_id=journey_id,
            channel=Channel.WHATSAPP,
            direction=direction,
            status=status,
            origin="WEBHOOK" if direction == Direction.INBOUND else origin,
            content="Bună ziua",
            phone_id=phone_id,
            quota_cost=cost,
            quota_date=day,
            sent_at=sent_at
            or (utcnow() if status not in (MessageStatus.QUEUED, MessageStatus.FAILED) else None),
            status_updated_at=utcnow(),
        )
        session.add(row)
        await session.flush()
        return row.id


async def journeys(ids: list[uuid.UUID]) -> dict[uuid.UUID, GoldLeadJourney]:
    async with transaction() as session:
        rows = await session.execute(select(GoldLeadJourney).where(GoldLeadJourney.id.in_(ids)))
        return {j.id: j for j in rows.scalars()}


async def assign(journey_id: uuid.UUID, phone_id: str | None, **values: Any) -> None:
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        journey.assigned_phone_id = phone_id
        for key, value in values.items():
            setattr(journey, key, value)


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


async def cli(*args: str) -> CliResult:
    """Run ``cerniq ARGS`` in a subprocess (its own event loop and pools, as an operator would)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from cerniq.cli.main import main; main()",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    stdout, stderr = await process.communicate()
    return CliResult(int(process.returncode or 0), stdout.decode(), stderr.decode())
