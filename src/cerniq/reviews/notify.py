"""Slack notices for the review queue: new URGENT/HIGH reviews, escalations, SLA breaches.

A notice is posted to the incoming webhook ``settings.slack_webhook_url`` only after the
transaction that produced it commits, with a short timeout, and never raises: a failed post is
logged and handed to the ``human:review:notify`` queue, whose job retries it with backoff under
an id derived from the review and the event (so a notice is retried, never duplicated by us).
Escalation emails are a stub for now: the recipients and the subject are logged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.config import get_settings
from cerniq.kit.clock import utcnow
from cerniq.kit.db import after_commit
from cerniq.kit.ids import job_id
from cerniq.logging import get_logger
from cerniq.worker import names

log = get_logger("cerniq.reviews.notify")

POST_TIMEOUT: Final = httpx.Timeout(3.0, connect=2.0)
RETRY_ATTEMPTS: Final = 8
RETRY_BACKOFF: Final = {"type": "exponential", "delay": 15000}
EMOJI: Final = {"URGENT": ":rotating_light:", "HIGH": ":warning:", "MEDIUM": ":memo:", "LOW": ":memo:"}


class SlackPostError(Exception):
    """Slack did not take the message (HTTP error or no answer)."""


def review_link(review_id: object) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/console/reviews/{review_id}"


def minutes_left(due: datetime, now: datetime | None = None) -> int:
    return int((due - (now or utcnow())).total_seconds() // 60)


def format_due(due: datetime) -> str:
    return due.strftime("%Y-%m-%d %H:%M UTC")


def review_text(
    *,
    headline: str,
    review_id: object,
    priority: str,
    company: str,
    reason: str,
    sla_due_at: datetime,
    excerpt: str | None = None,
    extra: str | None = None,
) -> str:
    """The Slack text of a review notice: priority, company, SLA deadline, link."""
    left = minutes_left(sla_due_at)
    sla = (
        f"SLA {format_due(sla_due_at)} ({left} min left)"
        if left >= 0
        else (f"SLA {format_due(sla_due_at)} (overdue by {-left} min)")
    )
    lines = [
        f"{EMOJI.get(priority, '')} *[{priority}] {headline}*: {company}",
        f"Reason: {reason} · {sla}",
    ]
    if excerpt:
        clipped = excerpt.strip().replace("\n", " ")
        lines.append(f"> {clipped[:280]}{'…' if len(clipped) > 280 else ''}")
    if extra:
        lines.append(extra)
    lines.append(f"<{review_link(review_id)}|Open the review>")
    return "\n".join(lines)


async def post_slack(text: str, *, url: str | None = None) -> bool:
    """Post ``text`` to the incoming webhook. False when no webhook is configured; raises
    :class:`SlackPostError` when Slack refuses or does not answer."""
    target = url if url is not None else get_settings().slack_webhook_url
    if not target:
        return False
    try:
        async with httpx.AsyncClient(timeout=POST_TIMEOUT, trust_env=False) as client:
            response = await client.post(target, json={"text": text})
    except httpx.HTTPError as exc:
        raise SlackPostError(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        raise SlackPostError(f"HTTP {response.status_code}: {response.text[:200]}")
    return True


def notify_after_commit(session: AsyncSession, text: str, *, key: str) -> None:
    """Post ``text`` once ``session`` commits; on failure hand it to the retry job ``key``."""
    if not get_settings().slack_webhook_url:
        return

    async def send() -> None:
        await deliver(text, key=key)

    after_commit(session, send)


async def deliver(text: str, *, key: str) -> None:
    """Post now; on failure log and enqueue a retry. Never raises."""
    try:
        await post_slack(text)
        return
    except SlackPostError as exc:
        log.warning("reviews.slack.failed", key=key, error=str(exc))
    except Exception as exc:  # a notice must never break the caller
        log.warning("reviews.slack.failed", key=key, error=repr(exc))
    try:
        from cerniq.worker.enqueue import enqueue

        await enqueue(
            names.HUMAN_NOTIFY,
            "slack",
            {"text": text, "key": key},
            job_id=job_id("slack", key),
            attempts=RETRY_ATTEMPTS,
            backoff=RETRY_BACKOFF,
            delay=None,
        )
    except Exception as exc:
        log.error("reviews.slack.retry_not_queued", key=key, error=repr(exc))


def email_stub(*, recipients: list[str], subject: str, body: str, key: str) -> dict[str, Any]:
    """The escalation email (no mail transport yet): logged with its recipients."""
    record = {"to": recipients, "subject": subject, "key": key, "chars": len(body)}
    log.info("reviews.escalation.email", **record)
    return record
