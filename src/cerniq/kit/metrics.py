"""Prometheus metrics, all prefixed ``cerniq_``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Gauge, Histogram

JOB_SECONDS = Histogram(
    "cerniq_job_processing_seconds",
    "Job processing time",
    ["queue", "status"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
MESSAGES_SENT = Counter("cerniq_messages_sent_total", "Messages accepted by a vendor", ["channel", "type"])
SEND_FAILURES = Counter("cerniq_send_failures_total", "Send attempts that failed", ["channel", "kind"])
QUOTA_CHECKS = Counter("cerniq_quota_check_total", "Quota reservations", ["result"])
WEBHOOKS_RECEIVED = Counter("cerniq_webhooks_received_total", "Webhook requests", ["provider", "outcome"])
REPLIES = Counter("cerniq_replies_received_total", "Inbound replies", ["channel", "intent"])
QUEUE_DEPTH = Gauge("cerniq_queue_depth", "Jobs per queue and state", ["queue", "state"])
PHONE_STATUS = Gauge("cerniq_phone_status", "1 when the phone has this status", ["phone_id", "status"])
QUOTA_USED = Gauge("cerniq_wa_quota_used", "New contacts spent today", ["phone_id"])
REVIEWS_PENDING = Gauge("cerniq_review_queue_size", "Open reviews", ["priority"])
ALERTS_OPEN = Gauge("cerniq_alerts_open", "Open alerts", ["alert_type", "severity"])

# Gauges describing shared state (queue depth, phone status, quota, reviews, alerts) are set by
# refreshers that the /metrics endpoint awaits before rendering: metrics live per process and
# the API process is the one Prometheus scrapes. Features register theirs with
# ``register_refresher``; a failing refresher is logged and never breaks the scrape.
Refresher = Callable[[], Awaitable[None]]
_refreshers: list[Refresher] = []


def register_refresher(refresher: Refresher) -> None:
    """Call ``refresher()`` before every ``/metrics`` render (registering twice is a no-op)."""
    if refresher not in _refreshers:
        _refreshers.append(refresher)


async def refresh_all() -> None:
    """Run every registered refresher; errors are logged, not raised."""
    for refresher in list(_refreshers):
        try:
            await refresher()
        except Exception as exc:
            logging.getLogger("cerniq.metrics").warning("metrics refresher failed: %r", exc)
