"""The gauges Prometheus alert rules read (``deploy/prometheus/alerts.yml``), refreshed from
Redis and PostgreSQL by the ``/metrics`` endpoint of the API process before each scrape.

Metrics live per process; only the API serves ``/metrics``, so gauges describing shared state
(queue depth, phone status, quota, reviews, alerts) are computed here on demand, at most once
every few seconds however often they are scraped.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from prometheus_client import Gauge
from sqlalchemy import func, select

from cerniq.config import get_settings
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import transaction
from cerniq.kit.metrics import ALERTS_OPEN, PHONE_STATUS, QUEUE_DEPTH, QUOTA_USED, REVIEWS_PENDING
from cerniq.kit.redis import get_queue_redis, get_redis
from cerniq.models import Alert, GoldCommunicationLog, HumanReview, WaPhoneNumber
from cerniq.models.enums import AlertSeverity, Channel, Direction, PhoneStatus, ReviewStatus
from cerniq.ops import queue_admin
from cerniq.ops.alerts import OPEN_STATES
from cerniq.ops.system_state import EMERGENCY_STOP_KEY
from cerniq.quota.guardian import QuotaGuardian
from cerniq.worker.names import DLQ_KEY

QUOTA_LIMIT = Gauge("cerniq_wa_quota_limit", "Daily new-contact quota of the phone", ["phone_id"])
QUEUE_PAUSED = Gauge("cerniq_queue_paused", "1 when the queue is paused", ["queue"])
QUEUE_LAST_FINISHED = Gauge(
    "cerniq_queue_last_finished_timestamp_seconds",
    "When the queue last finished a job (completed or failed), 0 if never",
    ["queue"],
)
QUEUE_OLDEST_ACTIVE = Gauge(
    "cerniq_queue_oldest_active_seconds", "How long the queue's oldest active job has been running", ["queue"]
)
SENT_TODAY = Gauge("cerniq_messages_sent_today", "Outbound messages sent since local midnight", ["channel"])
REPLIES_TODAY = Gauge("cerniq_replies_today", "Inbound messages received since local midnight", ["channel"])
DLQ_LENGTH = Gauge("cerniq_dlq_length", "Entries in the dead-letter list bull:dlq:outreach")
EMERGENCY = Gauge("cerniq_emergency_stop", "1 while the emergency stop is active")

MIN_INTERVAL_S = 5.0
OPEN_REVIEW_STATES = (ReviewStatus.PENDING, ReviewStatus.ASSIGNED, ReviewStatus.IN_PROGRESS)
_lock = asyncio.Lock()
_last = 0.0


async def refresh(*, force: bool = False) -> None:
    """Recompute every gauge (skipped when done less than 5 s ago, unless ``force``)."""
    global _last
    async with _lock:
        if not force and time.monotonic() - _last < MIN_INTERVAL_S:
            return
        await _refresh()
        _last = time.monotonic()


async def _refresh() -> None:
    now = utcnow()
    async with transaction() as session:
        names = await queue_admin.queue_names(session)
        phones = list((await session.execute(select(WaPhoneNumber))).scalars())
        reviews = (
            await session.execute(
                select(HumanReview.priority, func.count())
                .where(HumanReview.status.in_(OPEN_REVIEW_STATES))
                .group_by(HumanReview.priority)
            )
        ).all()
        midnight = _local_midnight(now)
        sent = (
            await session.execute(
                select(GoldCommunicationLog.channel, func.count())
                .where(
                    GoldCommunicationLog.direction == Direction.OUTBOUND,
                    GoldCommunicationLog.sent_at >= midnight,
                )
                .group_by(GoldCommunicationLog.channel)
            )
        ).all()
        replies = (
            await session.execute(
                select(GoldCommunicationLog.channel, func.count())
                .where(
                    GoldCommunicationLog.direction == Direction.INBOUND,
                    GoldCommunicationLog.created_at >= midnight,
                )
                .group_by(GoldCommunicationLog.channel)
            )
        ).all()
        alerts = (
            await session.execute(
                select(Alert.alert_type, Alert.severity, func.count())
                .where(Alert.status.in_(OPEN_STATES))
                .group_by(Alert.alert_type, Alert.severity)
            )
        ).all()

    counts = await queue_admin.counts_many(names)
    activity = await queue_activity(names)
    QUEUE_DEPTH.clear()
    QUEUE_PAUSED.clear()
    QUEUE_LAST_FINISHED.clear()
    QUEUE_OLDEST_ACTIVE.clear()
    for name, c in counts.items():
        for state in ("waiting", "active", "completed", "failed", "delayed"):
            QUEUE_DEPTH.labels(queue=name, state=state).set(c[state])
        QUEUE_PAUSED.labels(queue=name).set(c["paused"])
        last_finished, oldest_active = activity[name]
        QUEUE_LAST_FINISHED.labels(queue=name).set(last_finished)
        QUEUE_OLDEST_ACTIVE.labels(queue=name).set(oldest_active)

    day = BusinessClock.from_settings(get_settings()).business_day(now)
    used = await QuotaGuardian(get_redis()).usage_many([p.id for p in phones], day)
    PHONE_STATUS.clear()
    QUOTA_USED.clear()
    QUOTA_LIMIT.clear()
    for phone in phones:
        for status in PhoneStatus:
            PHONE_STATUS.labels(phone_id=phone.id, status=status.value).set(
                1 if phone.status == status else 0
            )
        QUOTA_USED.labels(phone_id=phone.id).set(used.get(phone.id, 0))
        QUOTA_LIMIT.labels(phone_id=phone.id).set(phone.daily_quota_limit)

    REVIEWS_PENDING.clear()
    for priority, count in reviews:
        REVIEWS_PENDING.labels(priority=str(getattr(priority, "value", priority))).set(int(count))

    SENT_TODAY.clear()
    REPLIES_TODAY.clear()
    for channel in Channel:
        SENT_TODAY.labels(channel=channel.value).set(0)
        REPLIES_TODAY.labels(channel=channel.value).set(0)
    for channel, count in sent:
        SENT_TODAY.labels(channel=Channel(channel).value).set(int(count))
    for channel, count in replies:
        REPLIES_TODAY.labels(channel=Channel(channel).value).set(int(count))

    ALERTS_OPEN.clear()
    for alert_type, severity, count in alerts:
        ALERTS_OPEN.labels(alert_type=alert_type, severity=AlertSeverity(severity).value).set(int(count))

    DLQ_LENGTH.set(int(await get_queue_redis().llen(DLQ_KEY)))
    EMERGENCY.set(1 if await get_redis().exists(EMERGENCY_STOP_KEY) else 0)


def _local_midnight(now: datetime) -> datetime:
    """Midnight of today in the business timezone (the day the runbook's reports count)."""
    local = now.astimezone(get_settings().tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


async def queue_activity(names: list[str]) -> dict[str, tuple[float, float]]:
    """Per queue: when it last finished a job (epoch seconds, 0 if never) and for how long its
    oldest active job has been running (seconds, 0 if none)."""
    redis = get_queue_redis()
    pipe = redis.pipeline(transaction=False)
    for name in names:
        key = f"bull:{name}"
        pipe.zrevrange(f"{key}:completed", 0, 0, withscores=True)
        pipe.zrevrange(f"{key}:failed", 0, 0, withscores=True)
        pipe.lrange(f"{key}:active", 0, 99)
    raw = await pipe.execute()
    active_ids: dict[str, list[str]] = {}
    finished: dict[str, float] = {}
    for index, name in enumerate(names):
        completed, failed, active = raw[index * 3 : index * 3 + 3]
        scores = [float(score) for _member, score in (*completed, *failed)]
        finished[name] = max(scores) / 1000 if scores else 0.0
        active_ids[name] = [str(a) for a in active]
    pipe = redis.pipeline(transaction=False)
    order: list[str] = []
    for name, ids in active_ids.items():
        for job_id in ids:
            pipe.hget(f"bull:{name}:{job_id}", "processedOn")
            order.append(name)
    started = await pipe.execute() if order else []
    oldest: dict[str, float] = dict.fromkeys(names, 0.0)
    now = time.time()
    for name, processed_on in zip(order, started, strict=True):
        if processed_on:
            oldest[name] = max(oldest[name], now - int(processed_on) / 1000)
    return {name: (finished[name], round(oldest[name], 1)) for name in names}
