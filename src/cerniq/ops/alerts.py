"""Alerts: one open alert per condition and subject (the dedup key), with the runbook's matrix.

``trigger`` opens an alert or counts another occurrence of the open one; ``resolve_condition``
closes it when the condition clears. Only a NEW alert is announced (the listeners registered
with ``on_triggered``; :mod:`cerniq.ops.notify` is one): a repeat bumps ``occurrences`` and
``last_seen_at`` and notifies nobody.

Lifecycle: OPEN -> ACKNOWLEDGED -> RESOLVED, or SILENCED until ``silenced_until`` (then OPEN
again if the condition is still there). HIGH and CRITICAL alerts go to the L1 on-call at once
and escalate while nobody acknowledges them: L2 team lead after 30 minutes, L3 manager after 2
hours (``claim_escalations``, run every minute by the ``monitor:alerts`` job).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import Principal
from cerniq.auth.service import record_audit
from cerniq.errors import Conflict, NotFound, ValidationFailed
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
        AlertKind(
            "wa:blocks:high", AlertSeverity.HIGH, 30, "runbook 2.2", "WhatsApp block signals above threshold"
        ),
        AlertKind(
            "email:campaign:missing", AlertSeverity.MEDIUM, 60, "runbook 6.1", "No cold campaign mapped"
        ),
        AlertKind(
            "email:account:error", AlertSeverity.HIGH, 30, "runbook 6.1", "Instantly sending account error"
        ),
        AlertKind(
            "instantly:auth", AlertSeverity.CRITICAL, 0, "vendor status", "Instantly refuses our API key"
        ),
        AlertKind("resend:auth", AlertSeverity.CRITICAL, 0, "vendor status", "Resend refuses our API key"),
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
        .values(status=AlertStatus.RESOLVED, resolved_at=at or utcnow(), resolved_by=resolved_by)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def open_alerts(session: AsyncSession, tenant_id: uuid.UUID | None) -> list[Alert]:
    query = select(Alert).where(Alert.status.in_(OPEN_STATES))
    if tenant_id is not None:
        query = query.where((Alert.tenant_id == tenant_id) | Alert.tenant_id.is_(None))
    return list((await session.execute(query.order_by(Alert.first_seen_at.desc()))).scalars())


# --- the lifecycle: OPEN -> ACKNOWLEDGED -> RESOLVED; SILENCED until silenced_until -----------

ESCALATING_SEVERITIES = (AlertSeverity.HIGH, AlertSeverity.CRITICAL)
LEVEL_NAMES = {1: "L1 on-call", 2: "L2 team lead", 3: "L3 manager"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def view(alert: Alert) -> dict[str, Any]:
    """An alert as the API and the CLI show it."""
    kind = MATRIX.get(alert.alert_type)
    return {
        "id": str(alert.id),
        "type": alert.alert_type,
        "severity": alert.severity.value,
        "status": alert.status.value,
        "subject": alert.subject,
        "title": alert.title,
        "message": alert.message,
        "details": alert.details,
        "occurrences": alert.occurrences,
        "firstSeenAt": _iso(alert.first_seen_at),
        "lastSeenAt": _iso(alert.last_seen_at),
        "acknowledgedAt": _iso(alert.acknowledged_at),
        "acknowledgedBy": alert.acknowledged_by,
        "resolvedAt": _iso(alert.resolved_at),
        "resolvedBy": alert.resolved_by,
        "silencedUntil": _iso(alert.silenced_until),
        "escalationLevel": alert.escalation_level,
        "escalatedTo": LEVEL_NAMES.get(alert.escalation_level),
        "escalatedAt": _iso(alert.escalated_at),
        "lastNotifiedAt": _iso(alert.last_notified_at),
        "responseMinutes": kind.response_minutes if kind else None,
        "procedure": kind.procedure if kind else None,
        "tenantId": str(alert.tenant_id) if alert.tenant_id else None,
    }


def _visible(tenant_id: uuid.UUID) -> Any:
    """A tenant sees its own alerts and the install-wide ones (queues, DLQ, emergency stop)."""
    return (Alert.tenant_id == tenant_id) | Alert.tenant_id.is_(None)


async def list_alerts(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    statuses: list[AlertStatus] | None = None,
    severities: list[AlertSeverity] | None = None,
    types: list[str] | None = None,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Alert], int]:
    """Alerts of the tenant (and install-wide ones), most severe and newest first, with the total."""
    query = select(Alert).where(_visible(tenant_id))
    if statuses:
        query = query.where(Alert.status.in_(statuses))
    if severities:
        query = query.where(Alert.severity.in_(severities))
    if types:
        query = query.where(Alert.alert_type.in_(types))
    if since is not None:
        query = query.where(Alert.last_seen_at >= since)
    total = int((await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one())
    severity_rank = case(
        {s: i for i, s in enumerate(reversed(list(AlertSeverity)))}, value=Alert.severity, else_=9
    )
    rows = await session.execute(
        query.order_by(severity_rank, Alert.first_seen_at.desc()).limit(limit).offset(offset)
    )
    return list(rows.scalars()), total


async def counts(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, Any]:
    """Open alerts (OPEN, ACKNOWLEDGED, SILENCED) by status and by severity."""
    rows = await session.execute(
        select(Alert.status, Alert.severity, func.count())
        .where(_visible(tenant_id), Alert.status.in_(OPEN_STATES))
        .group_by(Alert.status, Alert.severity)
    )
    by_status = {s.value: 0 for s in OPEN_STATES}
    by_severity = {s.value: 0 for s in AlertSeverity}
    total = 0
    for status, severity, count in rows:
        by_status[AlertStatus(status).value] += int(count)
        by_severity[AlertSeverity(severity).value] += int(count)
        total += int(count)
    return {"open": total, "byStatus": by_status, "bySeverity": by_severity}


async def get_alert(
    session: AsyncSession, tenant_id: uuid.UUID, alert_id: uuid.UUID, *, for_update: bool = False
) -> Alert:
    query = select(Alert).where(Alert.id == alert_id, _visible(tenant_id))
    if for_update:
        query = query.with_for_update()
    alert = (await session.execute(query)).scalar_one_or_none()
    if alert is None:
        raise NotFound(f"alert {alert_id} not found", code="ALERT_NOT_FOUND")
    return alert


async def find(session: AsyncSession, tenant_id: uuid.UUID, ref: str) -> Alert:
    """The alert whose id is ``ref`` or starts with it (at least 6 characters, unique)."""
    ref = ref.strip().lower()
    try:
        return await get_alert(session, tenant_id, uuid.UUID(ref))
    except ValueError:
        pass
    if len(ref) < 6 or any(c not in "0123456789abcdef-" for c in ref):
        raise ValidationFailed("give an alert id or at least its first 6 characters", details={"id": ref})
    rows = list(
        (
            await session.execute(
                select(Alert).where(_visible(tenant_id), func.cast(Alert.id, Text).like(f"{ref}%")).limit(2)
            )
        ).scalars()
    )
    if not rows:
        raise NotFound(f"alert {ref} not found", code="ALERT_NOT_FOUND")
    if len(rows) > 1:
        raise ValidationFailed(f"{ref} matches several alerts; give more characters")
    return rows[0]


async def acknowledge(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, *, note: str | None = None
) -> Alert:
    """Someone is on it: escalation stops. Acknowledging twice is harmless."""
    alert = await get_alert(session, principal.tenant_id, alert_id, for_update=True)
    if alert.status == AlertStatus.RESOLVED:
        raise Conflict("the alert is already resolved", code="ALERT_RESOLVED")
    before = alert.status.value
    if alert.status != AlertStatus.ACKNOWLEDGED:
        alert.status = AlertStatus.ACKNOWLEDGED
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by = principal.actor
        alert.silenced_until = None
        await session.flush()
    await record_audit(
        session,
        principal,
        "alert.acknowledge",
        entity_type="alert",
        entity_id=alert.id,
        reason=note,
        before={"status": before},
        after={"status": alert.status.value},
    )
    return alert


async def resolve(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, *, note: str | None = None
) -> Alert:
    """Close the alert by hand. If the condition is still there, the next check opens a new one."""
    alert = await get_alert(session, principal.tenant_id, alert_id, for_update=True)
    before = alert.status.value
    if alert.status != AlertStatus.RESOLVED:
        alert.status = AlertStatus.RESOLVED
        alert.resolved_at = utcnow()
        alert.resolved_by = principal.actor
        alert.silenced_until = None
        await session.flush()
    await record_audit(
        session,
        principal,
        "alert.resolve",
        entity_type="alert",
        entity_id=alert.id,
        reason=note,
        before={"status": before},
        after={"status": alert.status.value},
    )
    return alert


async def silence(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, *, until: datetime, reason: str
) -> Alert:
    """No notification or escalation until ``until``; then the alert is OPEN again if still there."""
    now = utcnow()
    if until.tzinfo is None:
        raise ValidationFailed("until must carry a timezone (e.g. 2026-01-18T12:00:00Z)")
    if until <= now:
        raise ValidationFailed("until must be in the future", details={"until": until.isoformat()})
    if until - now > timedelta(days=30):
        raise ValidationFailed("an alert can be silenced for at most 30 days")
    alert = await get_alert(session, principal.tenant_id, alert_id, for_update=True)
    if alert.status == AlertStatus.RESOLVED:
        raise Conflict("the alert is already resolved", code="ALERT_RESOLVED")
    before = alert.status.value
    alert.status = AlertStatus.SILENCED
    alert.silenced_until = until
    alert.details = {
        **alert.details,
        "silence": {"by": principal.actor, "reason": reason, "at": now.isoformat()},
    }
    await session.flush()
    await record_audit(
        session,
        principal,
        "alert.silence",
        entity_type="alert",
        entity_id=alert.id,
        reason=reason,
        before={"status": before},
        after={"status": alert.status.value, "silencedUntil": until.isoformat()},
    )
    return alert


async def expire_silences(session: AsyncSession, now: datetime | None = None) -> list[uuid.UUID]:
    """Silences that ended: back to OPEN (the condition has not been resolved meanwhile). The
    escalation clock restarts from now."""
    now = now or utcnow()
    rows = await session.execute(
        update(Alert)
        .where(Alert.status == AlertStatus.SILENCED, Alert.silenced_until <= now)
        .values(
            status=AlertStatus.OPEN,
            silenced_until=None,
            details=Alert.details.op("||")(func.jsonb_build_object("reopenedAt", now.isoformat())),
        )
        .returning(Alert.id)
    )
    return [r[0] for r in rows]


def escalation_clock(alert: Alert) -> datetime:
    """Escalation counts from the first sighting, or from the end of the last silence."""
    reopened = (alert.details or {}).get("reopenedAt")
    if reopened:
        try:
            return max(alert.first_seen_at, datetime.fromisoformat(str(reopened)))
        except ValueError:
            pass
    return alert.first_seen_at


def due_level(alert: Alert, now: datetime, l2_after: timedelta, l3_after: timedelta) -> int:
    """The escalation level an unacknowledged HIGH/CRITICAL alert should be at now."""
    if alert.status != AlertStatus.OPEN or alert.severity not in ESCALATING_SEVERITIES:
        return alert.escalation_level
    age = now - escalation_clock(alert)
    level = 1
    if age >= l2_after:
        level = 2
    if age >= l3_after:
        level = 3
    return max(level, alert.escalation_level)


async def claim_escalations(
    session: AsyncSession, now: datetime, l2_after: timedelta, l3_after: timedelta
) -> list[tuple[uuid.UUID, int, int]]:
    """Raise the level of every alert that is due (``(id, from, to)``); the row update is the
    claim, so two workers never escalate (and notify) the same step twice."""
    candidates = (
        await session.execute(
            select(Alert)
            .where(
                Alert.status == AlertStatus.OPEN,
                Alert.severity.in_(ESCALATING_SEVERITIES),
                Alert.escalation_level < 3,
            )
            .with_for_update(skip_locked=True)
        )
    ).scalars()
    claimed: list[tuple[uuid.UUID, int, int]] = []
    for alert in candidates:
        target = due_level(alert, now, l2_after, l3_after)
        if target > alert.escalation_level:
            claimed.append((alert.id, alert.escalation_level, target))
            alert.escalation_level = target
            alert.escalated_at = now
    await session.flush()
    return claimed


# Every process that can raise an alert also announces it: the notifiers hang off this hook.
async def _announce(alert_id: uuid.UUID, is_new: bool) -> None:
    from cerniq.ops.notify import on_alert

    await on_alert(alert_id, is_new)


on_triggered(_announce)
