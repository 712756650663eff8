"""The queue names (DESIGN §6). Phone queues are ``q:wa:phone_NN``, one per phone."""

from __future__ import annotations

import re

DISPATCH = "outreach:orchestrator:dispatch"
EMAIL_COLD = "q:email:cold"
EMAIL_WARM = "q:email:warm"
WEBHOOK_TIMELINESAI = "webhook:timelinesai:ingest"
WEBHOOK_INSTANTLY = "webhook:instantly:ingest"
WEBHOOK_RESEND = "webhook:resend:ingest"
AI_SENTIMENT = "ai:sentiment:analyze"
AI_RESPONSE = "ai:response:generate"
QUOTA_RESET = "quota:guardian:reset"
MONITOR_PHONES = "monitor:phone:health"
MONITOR_EMAIL = "monitor:email:deliverability"
MONITOR_ALERTS = "monitor:alerts"
MONITOR_PIPELINE = "monitor:pipeline:health"
HUMAN_SLA = "human:sla:check"
HUMAN_NOTIFY = "human:review:notify"
SEQUENCES = "outreach:sequence:advance"
MAINTENANCE_WEEKLY = "maintenance:weekly"
MAINTENANCE_OUTBOX = "maintenance:outbox:relay"
MAINTENANCE_STATS = "maintenance:daily:stats"
EMAIL_ANALYTICS = "email:cold:analytics"

DLQ_KEY = "bull:dlq:outreach"

PHONE_QUEUE_PREFIX = "q:wa:"
_PHONE_QUEUE = re.compile(r"^q:wa:(phone_\d{2,})$")


def phone_queue(phone_id: str) -> str:
    """``phone_03`` -> ``q:wa:phone_03``."""
    return f"{PHONE_QUEUE_PREFIX}{phone_id}"


def phone_of_queue(queue_name: str) -> str | None:
    """``q:wa:phone_03`` -> ``phone_03``; None for other queues."""
    match = _PHONE_QUEUE.match(queue_name)
    return match.group(1) if match else None


# Every named queue of DESIGN §6 (phone queues are added per phone).
DECLARED_QUEUES = (
    DISPATCH,
    EMAIL_COLD,
    EMAIL_WARM,
    WEBHOOK_TIMELINESAI,
    WEBHOOK_INSTANTLY,
    WEBHOOK_RESEND,
    AI_SENTIMENT,
    AI_RESPONSE,
    QUOTA_RESET,
    MONITOR_PHONES,
    MONITOR_EMAIL,
    MONITOR_ALERTS,
    MONITOR_PIPELINE,
    HUMAN_SLA,
    HUMAN_NOTIFY,
    SEQUENCES,
    MAINTENANCE_WEEKLY,
    MAINTENANCE_OUTBOX,
    MAINTENANCE_STATS,
    EMAIL_ANALYTICS,
)
