"""The alert conditions watched every minute (``monitor:alerts``), their auto-resolution,
silence expiry and escalation.

Conditions evaluated here (the others are raised where they happen: phone offline/banned by the
phone monitor and the send path, bounce rate by email, SLA by reviews, quota by dispatch):

* ``dlq:overflow``: ``LLEN bull:dlq:outreach`` above 100;
* ``queue:backlog``: more than 1,000 jobs waiting for 10 minutes (per queue);
* ``queue:stalled``: jobs waiting on an unpaused queue and nothing finished for 5 minutes, or a
  job active for more than 5 minutes (per queue);
* ``pipeline:degraded``: fewer than half of a tenant's enabled phones ACTIVE for 5 minutes (not
  while an emergency stop pauses them on purpose).

Each resolves itself once its condition clears; so do ``quota:exhausted`` (a phone has quota
again), ``phone:offline`` (the phone is no longer offline) and ``emergency:stop`` (resumed).
"How long has it been true" is kept in Redis hashes ``cerniq:monitor:*`` (state database).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from cerniq.config import Settings, get_settings
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_queue_redis, get_redis
from cerniq.logging import get_logger
from cerniq.models import Alert, WaPhoneNumber
from cerniq.models.enums import PhoneStatus
from cerniq.ops import alerts, notify, queue_admin
from cerniq.ops.gauges import queue_activity
from cerniq.ops.system_state import emergency_stop
from cerniq.quota.guardian import QuotaGuardian
from cerniq.worker.names import DLQ_KEY

log = get_logger("cerniq.ops.monitor")

BACKLOG_SINCE = "cerniq:monitor:backlog_since"
WAITING_SINCE = "cerniq:monitor:waiting_since"
DEGRADED_SINCE = "cerniq:monitor:degraded_since"


async def _since(key: str, field: str, now: datetime) -> float:
    """When ``field`` of the hash ``key`` first became true (set to now if it was not)."""
    redis = get_redis()
    await redis.hsetnx(key, field, f"{now.timestamp():.3f}")
    return float(await redis.hget(key, field) or now.timestamp())


async def evaluate(settings: Settings | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Check every condition once; trigger what holds, resolve what cleared. Returns a summary."""
    settings = settings or get_settings()
    now = now or utcnow()
    ts = now.timestamp()
    redis = get_redis()
    async with transaction() as session:
        names = await queue_admin.queue_names(session)
        stopped = await emergency_stop(session) is not None
    counts = await queue_admin.counts_many(names)
    activity = await queue_activity(names)
    summary: dict[str, Any] = {"triggered": [], "resolved": 0}

    async with transaction() as session:
        length = int(await get_queue_redis().llen(DLQ_KEY))
        if length > settings.alert_dlq_threshold:
            await alerts.trigger(
                session,
                "dlq:overflow",
                message=f"{length} entries in {DLQ_KEY} (more than {settings.alert_dlq_threshold})",
                details={"length": length},
            )
            summary["triggered"].append("dlq:overflow")
        else:
            summary["resolved"] += await alerts.resolve_condition(session, "dlq:overflow", at=now)

        for name in names:
            c = counts[name]
            if c["waiting"] > settings.alert_backlog_threshold:
                since = await _since(BACKLOG_SINCE, name, now)
                if ts - since >= settings.alert_backlog_for.total_seconds():
                    await alerts.trigger(
                        session,
                        "queue:backlog",
                        subject=name,
                        message=f"{c['waiting']} jobs waiting in {name} for {int((ts - since) // 60)} min",
                        details={"waiting": c["waiting"], "active": c["active"]},
                    )
                    summary["triggered"].append(f"queue:backlog:{name}")
            else:
                await redis.hdel(BACKLOG_SINCE, name)
                summary["resolved"] += await alerts.resolve_condition(
                    session, "queue:backlog", subject=name, at=now
                )

            reasons: list[str] = []
            last_finished, oldest_active = activity[name]
            stalled_after = settings.alert_stalled_after.total_seconds()
            if c["waiting"] > 0 and not c["paused"]:
                since = await _since(WAITING_SINCE, name, now)
                quiet = ts - max(since, last_finished)
                if quiet >= stalled_after:
                    reasons.append(f"{c['waiting']} waiting and nothing finished for {int(quiet // 60)} min")
            else:
                await redis.hdel(WAITING_SINCE, name)
            if oldest_active >= stalled_after:
                reasons.append(f"a job has been active for {int(oldest_active // 60)} min")
            if reasons:
                await alerts.trigger(
                    session,
                    "queue:stalled",
                    subject=name,
                    message=f"{name}: " + "; ".join(reasons),
                    details={
                        "waiting": c["waiting"],
                        "active": c["active"],
                        "oldestActiveSeconds": oldest_active,
                    },
                )
                summary["triggered"].append(f"queue:stalled:{name}")
            else:
                summary["resolved"] += await alerts.resolve_condition(
                    session, "queue:stalled", subject=name, at=now
                )

    async with transaction() as session:
        summary["triggered"] += await _phones(session, settings, now, stopped)
        summary["resolved"] += await _auto_resolve(session, settings, now, stopped)
    return summary


async def _phones(session: Any, settings: Settings, now: datetime, stopped: bool) -> list[str]:
    """``pipeline:degraded`` per tenant: fewer than half of the enabled phones ACTIVE."""
    rows = await session.execute(
        select(WaPhoneNumber.tenant_id, WaPhoneNumber.status, func.count())
        .where(WaPhoneNumber.is_enabled.is_(True))
        .group_by(WaPhoneNumber.tenant_id, WaPhoneNumber.status)
    )
    totals: dict[uuid.UUID, list[int]] = {}
    for tenant_id, status, count in rows:
        entry = totals.setdefault(tenant_id, [0, 0])
        entry[0] += int(count)
        if PhoneStatus(status) == PhoneStatus.ACTIVE:
            entry[1] += int(count)
    redis = get_redis()
    triggered: list[str] = []
    for tenant_id, (total, active) in totals.items():
        field = str(tenant_id)
        if stopped:
            await redis.hdel(DEGRADED_SINCE, field)
            continue
        if total and active * 2 < total:
            since = await _since(DEGRADED_SINCE, field, now)
            if now.timestamp() - since >= settings.alert_degraded_for.total_seconds():
                await alerts.trigger(
                    session,
                    "pipeline:degraded",
                    tenant_id=tenant_id,
                    message=f"only {active} of {total} phones are ACTIVE",
                    details={"active": active, "total": total},
                )
                triggered.append(f"pipeline:degraded:{tenant_id}")
        else:
            await redis.hdel(DEGRADED_SINCE, field)
            await alerts.resolve_condition(session, "pipeline:degraded", tenant_id=tenant_id, at=now)
    return triggered


async def _auto_resolve(session: Any, settings: Settings, now: datetime, stopped: bool) -> int:
    """Resolve the open alerts raised elsewhere whose condition has cleared."""
    resolved = 0
    if not stopped:
        resolved += await alerts.resolve_condition(session, "emergency:stop", at=now)
    open_rows = list(
        (
            await session.execute(
                select(Alert).where(
                    Alert.status.in_(alerts.OPEN_STATES),
                    Alert.alert_type.in_(("phone:offline", "quota:exhausted")),
                )
            )
        ).scalars()
    )
    if not open_rows:
        return resolved
    phones = {p.id: p for p in (await session.execute(select(WaPhoneNumber))).scalars()}
    day = BusinessClock.from_settings(settings).business_day(now)
    used = await QuotaGuardian(get_redis()).usage_many(list(phones), day)
    for alert in open_rows:
        if alert.alert_type == "phone:offline":
            phone = phones.get(alert.subject or "")
            cleared = phone is None or phone.status not in (PhoneStatus.OFFLINE, PhoneStatus.RECONNECTING)
        else:
            cleared = any(
                p.tenant_id == alert.tenant_id
                and p.is_enabled
                and p.status == PhoneStatus.ACTIVE
                and used.get(p.id, 0) < p.daily_quota_limit
                for p in phones.values()
            )
        if cleared:
            resolved += await alerts.resolve_condition(
                session, alert.alert_type, subject=alert.subject, tenant_id=alert.tenant_id, at=now
            )
    return resolved


async def expire_silences(now: datetime | None = None) -> list[uuid.UUID]:
    """Silences that ended: OPEN again and announced once more."""
    async with transaction() as session:
        reopened = await alerts.expire_silences(session, now or utcnow())
    for alert_id in reopened:
        await notify.announce(alert_id, level=1, reason="silence-expired")
    return reopened


async def escalate(settings: Settings | None = None, now: datetime | None = None) -> list[dict[str, Any]]:
    """Escalate unacknowledged HIGH/CRITICAL alerts (L2 after 30 min, L3 after 2 h) and notify."""
    settings = settings or get_settings()
    now = now or utcnow()
    async with transaction() as session:
        claimed = await alerts.claim_escalations(
            session, now, settings.alert_escalate_l2_after, settings.alert_escalate_l3_after
        )
    done: list[dict[str, Any]] = []
    for alert_id, old, new in claimed:
        for level in range(old + 1, new + 1):
            outcome = await notify.announce(alert_id, level=level, reason="escalated")
            done.append({"alertId": str(alert_id), "level": level, "deliveries": len(outcome.deliveries)})
        log.warning("alert.escalated", alert=str(alert_id), level=new)
    return done


async def tick(settings: Settings | None = None) -> dict[str, Any]:
    """One run of the monitor: conditions, silences, escalations (each failure isolated)."""
    result: dict[str, Any] = {}
    try:
        result["conditions"] = await evaluate(settings)
    except Exception as exc:
        log.error("monitor.conditions_failed", error=repr(exc))
        result["conditions"] = {"error": repr(exc)}
    try:
        result["silencesExpired"] = [str(a) for a in await expire_silences()]
    except Exception as exc:
        log.error("monitor.silences_failed", error=repr(exc))
        result["silencesExpired"] = {"error": repr(exc)}
    try:
        result["escalations"] = await escalate(settings)
    except Exception as exc:
        log.error("monitor.escalation_failed", error=repr(exc))
        result["escalations"] = {"error": repr(exc)}
    return result
