"""Alert notifications: Slack incoming webhooks and email, routed by severity and level.

* A NEW alert is announced once (a repeat of an open alert announces nothing): Slack for the
  severities in ``alert_slack_severities`` (CRITICAL, HIGH, MEDIUM by default), email to the L1
  on-call (users with team_role ``on_call`` plus ``alert_email_to``) for the severities in
  ``alert_email_severities`` (CRITICAL, HIGH).
* An escalation announces the new level: email to the team leads (L2) or managers (L3) and a
  Slack line.
* Email goes through SMTP when ``smtp_host`` is set (or ``alert_email_backend=smtp``); otherwise
  the "log" backend records it: a log line and an entry in the alert's ``details.notifications``.

Every delivery (or failure) is recorded in ``details.notifications``; a notifier never raises
into the code that raised the alert.
"""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Final

import httpx
from sqlalchemy import select

from cerniq.config import Settings, get_settings
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.logging import get_logger
from cerniq.models import Alert, User
from cerniq.models.enums import AlertStatus

log = get_logger("cerniq.ops.notify")

POST_TIMEOUT: Final = httpx.Timeout(5.0, connect=3.0)
KEEP_NOTIFICATIONS: Final = 50
LEVEL_ROLES: Final = {1: "on_call", 2: "team_lead", 3: "manager"}
LEVEL_NAMES: Final = {1: "L1 on-call", 2: "L2 team lead", 3: "L3 manager"}
EMOJI: Final = {"CRITICAL": "🚨", "HIGH": "⚠️", "MEDIUM": "🔶", "LOW": "ℹ️"}
# Alert types whose Slack announcement is a notice of its own (the emergency stop posts the
# runbook's "🚨 EMERGENCY STOP" text itself); their alert still emails the on-call.
OWN_SLACK_NOTICE: Final = frozenset({"emergency:stop"})


class NotifyError(Exception):
    """A notifier did not deliver."""


@dataclass
class Outcome:
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return any(d.get("ok") for d in self.deliveries)


def slack_url_for(severity: str, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return settings.alert_slack_webhook_urls.get(severity) or settings.slack_webhook_url


async def post_slack(text: str, *, url: str) -> None:
    """Post ``text`` to a Slack incoming webhook; NotifyError when Slack refuses or is silent."""
    try:
        async with httpx.AsyncClient(timeout=POST_TIMEOUT, trust_env=False) as client:
            response = await client.post(url, json={"text": text})
    except httpx.HTTPError as exc:
        raise NotifyError(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        raise NotifyError(f"HTTP {response.status_code}: {response.text[:200]}")


async def slack_notice(text: str, *, severity: str = "CRITICAL") -> dict[str, Any] | None:
    """Post an operational notice (emergency stop/resume). None when no webhook is configured;
    never raises."""
    url = slack_url_for(severity)
    if not url:
        return None
    try:
        await post_slack(text, url=url)
    except NotifyError as exc:
        log.warning("notify.slack_failed", error=str(exc))
        return {"channel": "slack", "ok": False, "error": str(exc)}
    return {"channel": "slack", "ok": True}


def email_backend(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    if settings.alert_email_backend == "auto":
        return "smtp" if settings.smtp_host else "log"
    return settings.alert_email_backend


def _smtp_send(settings: Settings, to: list[str], subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(body)
    timeout = settings.smtp_timeout.total_seconds()
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(message)


async def send_email(to: list[str], subject: str, body: str) -> dict[str, Any]:
    """Send (SMTP) or record (log backend) one email; returns the delivery record."""
    settings = get_settings()
    backend = email_backend(settings)
    record: dict[str, Any] = {"channel": "email", "backend": backend, "to": to, "subject": subject}
    if backend == "log":
        log.info("alert.email", to=to, subject=subject, body=body)
        record["ok"] = True
        return record
    try:
        await asyncio.to_thread(_smtp_send, settings, to, subject, body)
        record["ok"] = True
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("alert.email_failed", to=to, error=str(exc))
        record.update(ok=False, error=f"{type(exc).__name__}: {exc}")
    return record


async def recipients(tenant_id: uuid.UUID | None, team_role: str) -> list[str]:
    """Active users with ``team_role`` of the tenant (of every tenant for install-wide alerts)."""
    async with transaction() as session:
        query = select(User.email).where(User.team_role == team_role, User.is_active.is_(True))
        if tenant_id is not None:
            query = query.where(User.tenant_id == tenant_id)
        return sorted(set((await session.execute(query)).scalars()))


def alert_text(snapshot: dict[str, Any], *, level: int, reason: str) -> str:
    severity = snapshot["severity"]
    head = f"{EMOJI.get(severity, '')} [{severity}] {snapshot['title']}"
    if reason == "escalated":
        head = f"⏫ Escalated to {LEVEL_NAMES[level]}: {head} (unacknowledged)"
    elif reason == "silence-expired":
        head = f"🔔 Still open after its silence: {head}"
    lines = [head]
    if snapshot["message"]:
        lines.append(str(snapshot["message"]))
    response = snapshot["responseMinutes"]
    respond = "immediately" if response == 0 else f"within {response} min" if response else None
    meta = [f"type {snapshot['type']}"]
    if respond:
        meta.append(f"respond {respond}")
    if snapshot["procedure"]:
        meta.append(f"procedure: {snapshot['procedure']}")
    meta.append(f"seen {snapshot['occurrences']}x since {snapshot['firstSeenAt']}")
    lines.append(" · ".join(meta))
    lines.append(f"Acknowledge: cerniq alerts ack {snapshot['id']}")
    return "\n".join(lines)


def _snapshot(alert: Alert) -> dict[str, Any]:
    from cerniq.ops.alerts import view

    return view(alert)


async def on_alert(alert_id: uuid.UUID, is_new: bool) -> None:
    """The ``alerts.on_triggered`` listener: announce new alerts, nothing for repeats."""
    if not is_new:
        return
    try:
        await announce(alert_id, level=1, reason="new")
    except Exception as exc:  # a notification must never break whoever raised the alert
        log.error("notify.failed", alert=str(alert_id), error=repr(exc))


async def announce(alert_id: uuid.UUID, *, level: int, reason: str) -> Outcome:
    """Deliver the notifications of ``alert_id`` at escalation ``level`` and record them."""
    settings = get_settings()
    async with transaction() as session:
        alert = await session.get(Alert, alert_id)
        if alert is None or alert.status != AlertStatus.OPEN:
            return Outcome()
        snapshot = _snapshot(alert)
        tenant_id = alert.tenant_id
    severity = snapshot["severity"]
    text = alert_text(snapshot, level=level, reason=reason)
    outcome = Outcome()

    url = slack_url_for(severity, settings)
    wants_slack = level > 1 or (
        severity in settings.alert_slack_severities and snapshot["type"] not in OWN_SLACK_NOTICE
    )
    if url and wants_slack:
        try:
            await post_slack(text, url=url)
            outcome.deliveries.append({"channel": "slack", "ok": True})
        except NotifyError as exc:
            log.warning("notify.slack_failed", alert=str(alert_id), error=str(exc))
            outcome.deliveries.append({"channel": "slack", "ok": False, "error": str(exc)})

    if level > 1 or severity in settings.alert_email_severities:
        to = await recipients(tenant_id, LEVEL_ROLES[level])
        if level == 1:
            to = sorted(set(to) | set(settings.alert_email_to))
        if to:
            subject = f"[Cerniq {severity}] {snapshot['title']}"
            if level > 1:
                subject = f"[Escalated to {LEVEL_NAMES[level]}] {subject}"
            outcome.deliveries.append(await send_email(to, subject, text))

    if outcome.deliveries:
        await _record(alert_id, level, reason, outcome)
    return outcome


async def _record(alert_id: uuid.UUID, level: int, reason: str, outcome: Outcome) -> None:
    now = utcnow()
    async with transaction() as session:
        alert = (
            await session.execute(select(Alert).where(Alert.id == alert_id).with_for_update())
        ).scalar_one_or_none()
        if alert is None:
            return
        entries = [
            {**d, "level": level, "levelName": LEVEL_NAMES[level], "reason": reason, "at": now.isoformat()}
            for d in outcome.deliveries
        ]
        history = list((alert.details or {}).get("notifications") or [])
        alert.details = {**alert.details, "notifications": (history + entries)[-KEEP_NOTIFICATIONS:]}
        if outcome.delivered:
            alert.last_notified_at = now
