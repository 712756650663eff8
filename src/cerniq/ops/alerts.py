"""Alerts: one open alert per condition and subject (the dedup key), with the runbook's matrix.

``trigger`` opens an alert or counts another occurrence of the open one; ``resolve_condition``
closes it when the condition clears. Notifications and escalation hang off ``on_triggered``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.kit.clock import utcnow
from cerniq.kit.db import after_commit
from cerniq.models import Alert
from cerniq.models.enums import AlertSeverity, AlertStatus

OPEN_STATES = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED, AlertStatus.SILENCED)


@dataclass(frozen=True)
class AlertKind:
    alert_type: str
    severity: AlertSeverity
    response_minutes: int
    procedure: str
    title: str


# The runbook's response matrix (section 9.1), plus queue:stalled and pipeline:degraded.
MATRIX: dict[str, AlertKind] = {
    k.alert_type: k
    for k in (
        AlertKind("phone:offline", AlertSeverity.HIGH, 15, "runbook 2.1", "Phone offline"),
        AlertKind("phone:banned", AlertSeverity.CRITICAL, 0, "runbook 2.2", "Phone banned"),
        AlertKind("bounce:high", AlertSeverity.HIGH, 30, "runbook 6.1", "Email bounce rate above 3%"),
        AlertKind("sla:breach", AlertSeverity.MEDIUM, 60, "runbook 5.1", "Review SLA breached"),
        AlertKind("quota:exhausted", AlertSeverity.MEDIUM, 60, "runbook 3.1", "All phones out of quota"),
        AlertKind("quota:mismatch", AlertSeverity.MEDIUM, 60, "runbook 3.1", "Quota counter off the ledger"),
        AlertKind("dlq:overflow", AlertSeverity.HIGH, 15, "runbook 4.2", "Dead-letter list above 100"),
        AlertKind("timelinesai:down", AlertSeverity.CRITICAL, 0, "vendor status", "TimelinesAI unreachable"),
        AlertKind("queue:backlog", AlertSeverity.MEDIUM, 30, "runbook 4.1", "Queue backlog growing"),
        AlertKind("queue:stalled", AlertSeverity.HIGH, 15, "runbook 4.1", "Queue stalled"),
        AlertKind(
            "pipeline:degraded", AlertSeverity.HIGH, 15, "runbook 2.1", "Fewer than half the phones active"
        ),
        AlertKind("emergency:stop", AlertSeverity.CRITICAL, 0, "runbook 7.1", "Emergency stop active"),
    )
}

Listener = Callable[[uuid.UUID, bool], Awaitable[None]]
_listeners: list[Listener] = []


def on_triggered(listener: Listener) -> None:
    """Call ``listener(alert_id, is_new)`` after the transaction that triggered an alert commits."""
    _listeners.append(listener)


def dedup_key(alert_type: str, subject: str | None, tenant_id: uuid.UUID | None) -> str:
    return f"{tenant_id or 'global'}:{alert_type}:{subject or '-'}"


async def trigger(
    session: AsyncSession,
    alert_type: str,
    *,
    subject: str | None = None,
    tenant_id: uuid.UUID | None = None,
    message: str = "",
    details: dict[str, Any] | None = None,
) -> Alert:
    """Open the alert for this condition and subject, or count one more occurrence of it."""
    kind = MATRIX.get(alert_type)
    key = dedup_key(alert_type, subject, tenant_id)
    now = utcnow()
    for _attempt in range(2):
        existing = (
            await session.execute(
                select(Alert).where(Alert.dedup_key == key, Alert.status.in_(OPEN_STATES)).with_for_update()
            )
        ).scalar_one_or_none()
        if existing is not None:
            existing.occurrences += 1
            existing.last_seen_at = now
            if message:
                existing.message = message
            if details:
                existing.details = {**existing.details, **details}
            await session.flush()
            _notify_after_commit(session, existing.id, False)
            return existing
        alert = Alert(
            tenant_id=tenant_id,
            alert_type=alert_type,
            severity=kind.severity if kind else AlertSeverity.MEDIUM,
            status=AlertStatus.OPEN,
            dedup_key=key,
            subject=subject,
            title=(kind.title if kind else alert_type) + (f": {subject}" if subject else ""),
            message=message,
            details={**(details or {}), **({"procedure": kind.procedure} if kind else {})},
            first_seen_at=now,
            last_seen_at=now,
        )
        try:
            async with session.begin_nested():
                session.add(alert)
                await session.flush()
        except IntegrityError:
            continue  # another transaction opened it first: count an occurrence instead
        _notify_after_commit(session, alert.id, True)
        return alert
    raise RuntimeError(f"could not open alert {key}")


def _notify_after_commit(session: AsyncSession, alert_id: uuid.UUID, is_new: bool) -> None:
    for listener in _listeners:

        async def call(listener: Listener = listener) -> None:
            await listener(alert_id, is_new)

        after_commit(session, call)


async def resolve_condition(
    session: AsyncSession,
    alert_type: str,
    *,
    subject: str | None = None,
    tenant_id: uuid.UUID | None = None,
    resolved_by: str = "auto",
    at: datetime | None = None,
) -> int:
    """Resolve the open alert of this condition (the condition cleared). Returns rows resolved."""
    result = await session.execute(
        update(Alert)
        .where(Alert.dedup_key == dedup_key(alert_type, subject, tenant_id), Alert.status.in_(OPEN_STATES))
        .values(status=AlertStatus.RESOLVED, resolved_at=at or func.now(), resolved_by=resolved_by)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def open_alerts(session: AsyncSession, tenant_id: uuid.UUID | None) -> list[Alert]:
    query = select(Alert).where(Alert.status.in_(OPEN_STATES))
    if tenant_id is not None:
        query = query.where((Alert.tenant_id == tenant_id) | Alert.tenant_id.is_(None))
    return list((await session.execute(query.order_by(Alert.first_seen_at.desc()))).scalars())
