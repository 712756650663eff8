"""Phone health (runbook 2.1): the ``monitor:phone:health`` check against TimelinesAI and the
account webhook events.

TimelinesAI reports an account's status as ``active`` or ``disconnected`` (suspended and banned
accounts read ``disconnected`` too; only a send tells a ban apart), so the monitor knows two
facts per phone: connected or not. From them:

* connected: an OFFLINE or RECONNECTING phone becomes ACTIVE again and its ``phone:offline``
  alert is resolved. PAUSED (an operator's decision) and BANNED (never reconnected, runbook 2.2)
  are left alone.
* disconnected (or no account for the number): an ACTIVE phone becomes OFFLINE with a
  ``phone:offline`` alert. A RECONNECTING phone stays RECONNECTING (an operator is re-linking it).
* the vendor failing every attempt: ``timelinesai:down`` (CRITICAL), resolved by the next
  successful check; phone statuses are left as they are.

Every check also re-writes the Redis mirror ``phone:status:{id}`` from PostgreSQL (so a status
changed with the runbook's SQL is picked up), creates today's zero quota key of every enabled
phone (so a phone inserted with SQL has its keys), and raises ``pipeline:degraded`` while fewer
than half of a tenant's enabled phones are ACTIVE (not while an emergency stop pauses them).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.errors import ServiceUnavailable, ValidationFailed
from cerniq.kit.clock import utcnow
from cerniq.kit.db import after_commit
from cerniq.kit.redis import get_redis
from cerniq.messaging.vendors import whatsapp
from cerniq.models import WaPhoneNumber
from cerniq.models.enums import PhoneStatus
from cerniq.ops import alerts
from cerniq.ops.system_state import emergency_stop
from cerniq.phones import repository as phones_repository
from cerniq.phones import repository_lifecycle as lifecycle
from cerniq.phones import service as phones
from cerniq.providers.errors import ProviderError
from cerniq.providers.timelinesai.schemas import WhatsAppAccount
from cerniq.quota import service as quota

VENDOR_ATTEMPTS = 3
VENDOR_BACKOFF_S = (0.2, 0.5)
DOWN_ALERT = "timelinesai:down"
DEGRADED_ALERT = "pipeline:degraded"
OFFLINE_ALERT = "phone:offline"
MONITOR_ACTOR = "monitor:phone:health"
WEBHOOK_ACTOR = "webhook:timelinesai"

CONNECT_EVENTS = frozenset({"whatsapp:account:connected", "whatsapp:account:resumed"})
DISCONNECT_EVENTS = {
    "whatsapp:account:disconnected": "disconnected",
    "whatsapp:account:suspended": "suspended",
}


class VendorDown(Exception):
    """Every attempt to list the TimelinesAI accounts failed."""


def account_key(number: str) -> str:
    """The E.164 form of a number, the key phones and vendor accounts are matched on."""
    try:
        return phones.normalize_number(number)
    except ValidationFailed:
        digits = "".join(c for c in number if c.isdigit())
        return f"+{digits}" if digits else number


async def fetch_accounts() -> dict[str, WhatsAppAccount]:
    """``GET /whatsapp_accounts`` by E.164 number, tried ``VENDOR_ATTEMPTS`` times; VendorDown
    when every attempt fails (outage, 5xx, 429, bad token, unreadable answer)."""
    last: Exception | None = None
    for attempt in range(VENDOR_ATTEMPTS):
        try:
            accounts = await whatsapp().list_accounts()
            return {account_key(a.phone): a for a in accounts}
        except (ProviderError, ValueError) as exc:  # ValueError: no token, or a malformed answer
            last = exc
            if attempt + 1 < VENDOR_ATTEMPTS:
                await asyncio.sleep(VENDOR_BACKOFF_S[min(attempt, len(VENDOR_BACKOFF_S) - 1)])
    raise VendorDown(f"{type(last).__name__}: {last}")


async def account_of(phone: WaPhoneNumber) -> WhatsAppAccount | None:
    """The phone's TimelinesAI account now (None: no account with this number), or 503."""
    try:
        accounts = await fetch_accounts()
    except VendorDown as exc:
        raise ServiceUnavailable(
            "TimelinesAI is not answering; try again in a few minutes",
            code="TIMELINESAI_UNAVAILABLE",
            details={"error": str(exc)},
        ) from exc
    return accounts.get(account_key(phone.phone_number))


@dataclass
class PhoneCheck:
    """What one health check saw and did for one phone."""

    phone_id: str
    label: str
    tenant_id: uuid.UUID
    enabled: bool
    before: PhoneStatus
    after: PhoneStatus
    connected: bool | None
    action: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.phone_id,
            "label": self.label,
            "enabled": self.enabled,
            "previousStatus": self.before.value,
            "status": self.after.value,
            "connected": self.connected,
            "action": self.action,
        }


@dataclass
class HealthReport:
    """The result of :func:`check_phones` (the body of ``POST /api/admin/phones/health-check``)."""

    checked_at: datetime
    vendor_ok: bool
    vendor_error: str | None
    accounts: int
    phones: list[PhoneCheck] = field(default_factory=list)
    mirror_fixed: list[str] = field(default_factory=list)
    quota_keys_created: list[str] = field(default_factory=list)
    degraded_tenants: list[uuid.UUID] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        enabled = [p for p in self.phones if p.enabled]
        return {
            "total": len(self.phones),
            "enabled": len(enabled),
            "active": sum(1 for p in enabled if p.after == PhoneStatus.ACTIVE),
            "notActive": sum(1 for p in enabled if p.after != PhoneStatus.ACTIVE),
            "wentOffline": sum(1 for p in self.phones if p.action == "offline"),
            "reconnected": sum(1 for p in self.phones if p.action == "reconnected"),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "checkedAt": self.checked_at.isoformat(),
            "timelinesai": {"ok": self.vendor_ok, "error": self.vendor_error, "accounts": self.accounts},
            "summary": self.summary(),
            "phones": [p.as_dict() for p in self.phones],
            "mirrorFixed": self.mirror_fixed,
            "quotaKeysCreated": self.quota_keys_created,
            "pipelineDegraded": bool(self.degraded_tenants),
        }


async def check_phones(session: AsyncSession, tenant_id: uuid.UUID | None = None) -> HealthReport:
    """Check every phone (of ``tenant_id``, or of all tenants) against TimelinesAI and apply the
    rules of the module docstring. The caller owns the transaction; the Redis mirror is written
    after it commits."""
    now = utcnow()
    accounts: dict[str, WhatsAppAccount] | None
    try:
        accounts = await fetch_accounts()
        vendor_error = None
    except VendorDown as exc:
        accounts, vendor_error = None, str(exc)
    if accounts is None:
        await alerts.trigger(
            session,
            DOWN_ALERT,
            message=f"GET /whatsapp_accounts failed {VENDOR_ATTEMPTS} times: {vendor_error}",
            details={"error": vendor_error},
        )
    else:
        await alerts.resolve_condition(session, DOWN_ALERT)

    report = HealthReport(
        checked_at=now,
        vendor_ok=accounts is not None,
        vendor_error=vendor_error,
        accounts=len(accounts or {}),
    )
    phone_rows = await lifecycle.phones(session, tenant_id, lock=True)
    for phone in phone_rows:
        check = PhoneCheck(
            phone_id=phone.id,
            label=phone.phone_label,
            tenant_id=phone.tenant_id,
            enabled=phone.is_enabled,
            before=phone.status,
            after=phone.status,
            connected=None,
        )
        if accounts is not None:
            account = accounts.get(account_key(phone.phone_number))
            check.connected = account is not None and account.is_active
            if phone.is_enabled:
                check.action = await _apply(session, phone, account, connected=check.connected)
            await lifecycle.record_health(session, phone.id, connected=check.connected, at=now)
        check.after = phone.status
        report.phones.append(check)

    report.mirror_fixed = await _reconcile_mirror(session, phone_rows)
    report.quota_keys_created = await quota.ensure_zero_keys(
        [p.id for p in phone_rows if p.is_enabled and p.status != PhoneStatus.BANNED], quota.today()
    )
    if await emergency_stop(session) is None:  # an emergency stop pauses every phone on purpose
        for tid in sorted({p.tenant_id for p in phone_rows}, key=str):
            if await _pipeline_health(session, tid, [p for p in phone_rows if p.tenant_id == tid]):
                report.degraded_tenants.append(tid)
    return report


async def _apply(
    session: AsyncSession, phone: WaPhoneNumber, account: WhatsAppAccount | None, *, connected: bool
) -> str | None:
    if connected:
        if await phones.mark_reconnected(session, phone, actor=MONITOR_ACTOR):
            phones.log_incident_after_commit(
                session, phone.id, "reconnected", reason="TimelinesAI account connected", actor=MONITOR_ACTOR
            )
            return "reconnected"
        if phone.status == PhoneStatus.ACTIVE:
            # e.g. set ACTIVE by the runbook's PATCH or SQL: the condition has cleared
            await alerts.resolve_condition(
                session, OFFLINE_ALERT, subject=phone.id, tenant_id=phone.tenant_id
            )
        return None
    if phone.status != PhoneStatus.ACTIVE:
        return None
    reason = (
        "TimelinesAI account disconnected"
        if account is not None
        else f"no TimelinesAI account for {phone.phone_number}"
    )
    if await phones.mark_offline(session, phone, reason=reason, actor=MONITOR_ACTOR):
        phones.log_incident_after_commit(
            session, phone.id, "went offline", reason=reason, actor=MONITOR_ACTOR
        )
        return "offline"
    return None


async def _reconcile_mirror(session: AsyncSession, phone_rows: list[WaPhoneNumber]) -> list[str]:
    """Re-write ``phone:status:{id}`` from PostgreSQL after commit; returns the ids that differed."""
    if not phone_rows:
        return []
    statuses = {p.id: p.status.value for p in phone_rows}
    current = await get_redis().mget([phones.status_key(pid) for pid in statuses])
    stale = [pid for pid, value in zip(statuses, current, strict=True) if value != statuses[pid]]

    async def write() -> None:
        pipe = get_redis().pipeline(transaction=False)
        for pid, status in statuses.items():
            pipe.set(phones.status_key(pid), status)
        await pipe.execute()

    after_commit(session, write)
    return stale


async def _pipeline_health(session: AsyncSession, tenant_id: uuid.UUID, rows: list[WaPhoneNumber]) -> bool:
    """``pipeline:degraded`` while fewer than half the tenant's enabled phones are ACTIVE."""
    enabled = [p for p in rows if p.is_enabled]
    active = sum(1 for p in enabled if p.status == PhoneStatus.ACTIVE)
    if enabled and active * 2 < len(enabled):
        await alerts.trigger(
            session,
            DEGRADED_ALERT,
            tenant_id=tenant_id,
            message=f"{active} of {len(enabled)} enabled phones are ACTIVE",
            details={"active": active, "enabled": len(enabled)},
        )
        return True
    await alerts.resolve_condition(session, DEGRADED_ALERT, tenant_id=tenant_id)
    return False


async def handle_account_event(
    session: AsyncSession,
    *,
    account_phone: str,
    event_type: str,
    payload: dict[str, Any],
    tenant_id: uuid.UUID | None = None,
) -> str:
    """Apply a TimelinesAI account webhook (``whatsapp:account:*``) to the phones with that number.

    ``disconnected`` / ``suspended``: an ACTIVE (or RECONNECTING) phone goes OFFLINE with a
    ``phone:offline`` alert. ``connected`` / ``resumed``: an OFFLINE or RECONNECTING phone goes
    ACTIVE and the alert is resolved; PAUSED and BANNED phones are never revived. Returns what
    happened, for the webhook event's processing note: ``"phone_03:offline"`` (one
    ``id:outcome`` per matching phone, comma separated; outcomes ``offline``, ``reconnected``,
    ``unchanged``), ``"unknown_phone"`` or ``"ignored"`` (not an account event). With
    ``tenant_id`` (the tenant whose webhook URL received the event) only that tenant's phones match.
    """
    if not account_phone:
        account = payload.get("whatsapp_account")
        account_phone = str(account.get("phone") or "") if isinstance(account, dict) else ""
    disconnect = DISCONNECT_EVENTS.get(event_type)
    if disconnect is None and event_type not in CONNECT_EVENTS:
        return "ignored"
    if not account_phone:
        return "unknown_phone"
    number = account_key(account_phone)
    matches = sorted(
        (
            p
            for p in await phones_repository.phone_by_account_phone(session, number)
            if tenant_id is None or p.tenant_id == tenant_id
        ),
        key=lambda p: p.id,
    )
    if not matches:
        return "unknown_phone"
    outcomes = []
    for phone in matches:
        await session.refresh(phone, with_for_update=True)
        if disconnect is not None:
            reason = f"TimelinesAI account {disconnect} ({event_type})"
            changed = await phones.mark_offline(session, phone, reason=reason, actor=WEBHOOK_ACTOR)
            await lifecycle.set_online(session, phone.id, False)
            if changed:
                phones.log_incident_after_commit(
                    session, phone.id, "went offline", reason=reason, actor=WEBHOOK_ACTOR
                )
            outcomes.append(f"{phone.id}:{'offline' if changed else 'unchanged'}")
        else:
            changed = await phones.mark_reconnected(session, phone, actor=WEBHOOK_ACTOR)
            await lifecycle.set_online(session, phone.id, True)
            if changed:
                phones.log_incident_after_commit(
                    session, phone.id, "reconnected", reason=f"TimelinesAI {event_type}", actor=WEBHOOK_ACTOR
                )
            outcomes.append(f"{phone.id}:{'reconnected' if changed else 'unchanged'}")
    return ",".join(outcomes)
