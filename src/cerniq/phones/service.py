"""The phone pool. This module is the one place that changes a phone's status: PostgreSQL first,
then (after commit) the Redis mirror ``phone:status:{id}`` the runbook reads."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import phonenumbers
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.analytics import snapshots
from cerniq.auth.principal import Principal
from cerniq.auth.service import record_audit
from cerniq.config import get_settings
from cerniq.errors import Conflict, NotFound, ValidationFailed
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import after_commit
from cerniq.kit.redis import get_redis
from cerniq.logging import get_logger
from cerniq.models import WaPhoneNumber
from cerniq.models.enums import PhoneStatus
from cerniq.phones import repository
from cerniq.quota.guardian import QuotaGuardian

STATUS_KEY = "phone:status:{}"


def status_key(phone_id: str) -> str:
    return STATUS_KEY.format(phone_id)


def normalize_number(raw: str, region: str = "RO") -> str:
    """E.164 form of ``raw`` (Romanian numbers by default), or ValidationFailed."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed(f"not a phone number: {raw!r}", details={"phoneNumber": raw}) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationFailed(f"not a valid phone number: {raw!r}", details={"phoneNumber": raw})
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def guardian() -> QuotaGuardian:
    return QuotaGuardian(get_redis())


def clock() -> BusinessClock:
    return BusinessClock.from_settings(get_settings())


async def phone_views(
    session: AsyncSession, tenant_id: uuid.UUID, phones: list[WaPhoneNumber]
) -> list[dict[str, Any]]:
    """The runbook's phone shape, with today's quota read from Redis. One phone's assigned
    leads are counted now; a list's come from the minute job's count (``analytics.snapshots``:
    counting every assigned lead per phone reads them all, 0.2 s at 1M leads)."""
    now = utcnow()
    biz = clock()
    day = biz.business_day(now)
    reset_at = biz.local_midnight_after(now)
    used = await guardian().usage_many([p.id for p in phones], day)
    if len(phones) == 1:
        assigned = await repository.assigned_lead_counts(session, tenant_id, phones[0].id)
    else:
        assigned, _at = await snapshots.read(session, tenant_id, "assigned")
    return [view(p, used.get(p.id, 0), reset_at.isoformat(), assigned.get(p.id, 0)) for p in phones]


def view(phone: WaPhoneNumber, used: int, reset_at: str, assigned: int = 0) -> dict[str, Any]:
    limit = phone.daily_quota_limit
    return {
        "id": phone.id,
        "label": phone.phone_label,
        "phoneNumber": phone.phone_number,
        "timelinesaiAccountId": phone.timelinesai_account_id,
        "status": phone.status.value,
        "statusReason": phone.status_reason,
        "statusChangedAt": phone.status_changed_at.isoformat() if phone.status_changed_at else None,
        "isOnline": phone.is_online,
        "isEnabled": phone.is_enabled,
        "priority": phone.priority,
        "quota": {"used": used, "limit": limit, "remaining": max(limit - used, 0), "resetAt": reset_at},
        "followupLimit": phone.followup_limit,
        "stats": {
            "totalMessagesSent": phone.total_messages_sent,
            "totalLeadsAssigned": assigned,
            "totalConversations": phone.total_conversations,
        },
        "lastHealthCheckAt": phone.last_health_check_at.isoformat() if phone.last_health_check_at else None,
        "lastMessageSentAt": phone.last_message_sent_at.isoformat() if phone.last_message_sent_at else None,
        "lastMessageReceivedAt": (
            phone.last_message_received_at.isoformat() if phone.last_message_received_at else None
        ),
    }


async def list_view(
    session: AsyncSession, tenant_id: uuid.UUID, *, status: PhoneStatus | None, is_enabled: bool | None
) -> dict[str, Any]:
    phones = await repository.list_phones(session, tenant_id, status=status, is_enabled=is_enabled)
    views = await phone_views(session, tenant_id, phones)
    return {
        "phones": views,
        "totalQuotaUsed": sum(v["quota"]["used"] for v in views),
        "totalQuotaLimit": sum(v["quota"]["limit"] for v in views),
        "phonesOnline": sum(1 for v in views if v["status"] == PhoneStatus.ACTIVE.value),
        "phonesOffline": sum(1 for v in views if v["status"] != PhoneStatus.ACTIVE.value),
    }


async def get_phone(session: AsyncSession, tenant_id: uuid.UUID, phone_id: str) -> WaPhoneNumber:
    phone = await repository.get_phone(session, tenant_id, phone_id)
    if phone is None:
        raise NotFound(f"phone {phone_id!r} not found")
    return phone


async def detail_view(session: AsyncSession, tenant_id: uuid.UUID, phone_id: str) -> dict[str, Any]:
    phone = await get_phone(session, tenant_id, phone_id)
    (item,) = await phone_views(session, tenant_id, [phone])
    since = clock().business_day(utcnow()) - timedelta(days=14)
    item["assignedLeadsCount"] = item["stats"]["totalLeadsAssigned"]
    item["recentQuotaHistory"] = [
        {
            "date": row.usage_date.isoformat(),
            "used": row.total_sent,
            "newContacts": row.new_contacts_sent,
            "followUps": row.followups_sent,
            "mismatch": row.mismatch,
        }
        for row in await repository.quota_history(session, phone.id, since)
    ]
    item["incidents"] = [
        {"kind": i.kind, "reason": i.reason, "actor": i.actor, "at": i.created_at.isoformat()}
        for i in await repository.incidents(session, tenant_id, phone.id, limit=20)
    ]
    return item


async def create_phone(
    session: AsyncSession,
    principal: Principal,
    *,
    phone_number: str,
    label: str,
    timelinesai_account_id: str | None = None,
    daily_quota_limit: int | None = None,
    priority: int | None = None,
    is_enabled: bool = True,
) -> WaPhoneNumber:
    """Register a phone; its status key and today's quota key are set once the row is committed."""
    number = normalize_number(phone_number)
    if await repository.phone_by_number(session, principal.tenant_id, number) is not None:
        raise Conflict(f"phone {number} is already registered", details={"phoneNumber": number})
    values: dict[str, Any] = {
        "tenant_id": principal.tenant_id,
        "phone_number": number,
        "phone_label": label,
        "timelinesai_account_id": timelinesai_account_id,
        "is_enabled": is_enabled,
    }
    if daily_quota_limit is not None:
        values["daily_quota_limit"] = daily_quota_limit
    if priority is not None:
        values["priority"] = priority
    phone = await repository.add_phone(session, **values)
    await repository.add_incident(
        session,
        tenant_id=principal.tenant_id,
        phone_id=phone.id,
        kind="REGISTERED",
        reason=label,
        actor=principal.actor,
    )
    await record_audit(
        session,
        principal,
        "phone.create",
        entity_type="phone",
        entity_id=phone.id,
        after={"phoneNumber": number, "label": label, "quota": phone.daily_quota_limit},
    )
    phone_id, status = phone.id, phone.status

    async def mirror() -> None:
        redis = get_redis()
        await redis.set(status_key(phone_id), status.value)
        day = clock().business_day(utcnow())
        await redis.set(f"quota:wa:{phone_id}:{day.isoformat()}", 0, ex=172800, nx=True)

    after_commit(session, mirror)
    return phone


async def change_status(
    session: AsyncSession,
    phone: WaPhoneNumber,
    status: PhoneStatus,
    *,
    reason: str | None,
    actor: str,
    principal: Principal | None = None,
    incident_kind: str | None = None,
) -> bool:
    """Move ``phone`` to ``status`` (PostgreSQL now, the Redis mirror after commit).

    Returns False when nothing changed. Records a phone incident and, for operator actions, an
    audit row.
    """
    before = phone.status
    if before == status:
        mirror_status(session, phone.id, status)
        return False
    await repository.set_status(session, phone.id, status, reason)
    phone.status = status
    phone.status_reason = reason
    await repository.add_incident(
        session,
        tenant_id=phone.tenant_id,
        phone_id=phone.id,
        kind=incident_kind or status.value,
        reason=reason,
        actor=actor,
        details={"from": before.value, "to": status.value},
    )
    if principal is not None:
        await record_audit(
            session,
            principal,
            "phone.status",
            entity_type="phone",
            entity_id=phone.id,
            reason=reason,
            before={"status": before.value},
            after={"status": status.value},
        )
    mirror_status(session, phone.id, status)
    return True


def mirror_status(session: AsyncSession, phone_id: str, status: PhoneStatus) -> None:
    async def write() -> None:
        await get_redis().set(status_key(phone_id), status.value)

    after_commit(session, write)


async def update_phone(
    session: AsyncSession, principal: Principal, phone_id: str, changes: dict[str, Any]
) -> WaPhoneNumber:
    """Operator edits: label, enabled flag, priority, quota limit, status ACTIVE/PAUSED."""
    phone = await repository.get_phone(session, principal.tenant_id, phone_id, for_update=True)
    if phone is None:
        raise NotFound(f"phone {phone_id!r} not found")
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for field, column in (
        ("label", "phone_label"),
        ("isEnabled", "is_enabled"),
        ("priority", "priority"),
        ("dailyQuotaLimit", "daily_quota_limit"),
        ("timelinesaiAccountId", "timelinesai_account_id"),
    ):
        if field in changes and changes[field] is not None:
            before[field] = getattr(phone, column)
            setattr(phone, column, changes[field])
            after[field] = changes[field]
    status = changes.get("status")
    if status is not None:
        target = PhoneStatus(status)
        if target not in (PhoneStatus.ACTIVE, PhoneStatus.PAUSED):
            raise ValidationFailed("status can be set to ACTIVE or PAUSED; other states come from the vendor")
        if phone.status == PhoneStatus.BANNED and target == PhoneStatus.ACTIVE:
            raise Conflict(
                "a BANNED phone is never reactivated (runbook 2.2); register a replacement phone",
                code="PHONE_BANNED",
            )
        await change_status(
            session,
            phone,
            target,
            reason=changes.get("reason") or "operator",
            actor=principal.actor,
            principal=principal,
        )
    if before:
        await session.flush()
        await record_audit(
            session,
            principal,
            "phone.update",
            entity_type="phone",
            entity_id=phone.id,
            before=before,
            after=after,
        )
    return phone


async def ban_phone(
    session: AsyncSession,
    phone: WaPhoneNumber,
    *,
    reason: str,
    actor: str,
    principal: Principal | None = None,
) -> dict[str, int]:
    """Runbook 2.2 in one step: BANNED (never reconnected), its COLD / CONTACTED_WA leads
    unassigned and due again (the next dispatch moves them to other phones), its queued messages
    SKIPPED and its pending jobs removed after commit, an incident and a ``phone:banned`` alert."""
    from sqlalchemy import select, update

    from cerniq.models import GoldCommunicationLog, GoldLeadJourney
    from cerniq.models.enums import Direction, LeadState, MessageStatus
    from cerniq.ops import alerts
    from cerniq.worker.names import phone_queue
    from cerniq.worker.queues import get_queue

    changed = await change_status(
        session,
        phone,
        PhoneStatus.BANNED,
        reason=reason,
        actor=actor,
        principal=principal,
        incident_kind="BANNED",
    )
    now = utcnow()
    skipped = await session.execute(
        update(GoldCommunicationLog)
        .where(
            GoldCommunicationLog.phone_id == phone.id,
            GoldCommunicationLog.direction == Direction.OUTBOUND,
            GoldCommunicationLog.status == MessageStatus.QUEUED,
        )
        .values(status=MessageStatus.SKIPPED, error_code="PHONE_BANNED", status_updated_at=now)
        .returning(GoldCommunicationLog.lead_journey_id)
    )
    skipped_leads = {r[0] for r in skipped}
    moved = await session.execute(
        update(GoldLeadJourney)
        .where(
            GoldLeadJourney.assigned_phone_id == phone.id,
            GoldLeadJourney.current_state.in_((LeadState.COLD, LeadState.CONTACTED_WA)),
        )
        .values(assigned_phone_id=None, assigned_at=None, wa_chat_id=None)
        .returning(GoldLeadJourney.id, GoldLeadJourney.next_action_at)
    )
    unassigned = list(moved)
    due_again = [jid for jid, next_at in unassigned if jid in skipped_leads or next_at is None]
    if due_again:
        await session.execute(
            update(GoldLeadJourney)
            .where(GoldLeadJourney.id.in_(due_again), GoldLeadJourney.is_human_controlled.is_(False))
            .values(next_action_at=now)
        )
    # leads in conversation elsewhere keep the number only as history
    await session.execute(
        update(GoldLeadJourney).where(GoldLeadJourney.assigned_phone_id == phone.id).values(wa_chat_id=None)
    )
    del select
    if changed:
        await alerts.trigger(
            session,
            "phone:banned",
            subject=phone.id,
            tenant_id=phone.tenant_id,
            message=f"{phone.phone_label} banned: {reason}",
            details={"leadsUnassigned": len(unassigned), "messagesSkipped": len(skipped_leads)},
        )
    queue_name = phone_queue(phone.id)

    async def purge() -> None:
        await get_queue(queue_name).drain(delayed=True)

    after_commit(session, purge)
    return {"leadsUnassigned": len(unassigned), "messagesSkipped": len(skipped_leads)}


async def mark_offline(session: AsyncSession, phone: WaPhoneNumber, *, reason: str, actor: str) -> bool:
    """ACTIVE (or RECONNECTING) -> OFFLINE with a ``phone:offline`` alert. Never touches PAUSED or BANNED."""
    from cerniq.ops import alerts

    if phone.status not in (PhoneStatus.ACTIVE, PhoneStatus.RECONNECTING):
        return False
    await change_status(
        session, phone, PhoneStatus.OFFLINE, reason=reason, actor=actor, incident_kind="OFFLINE"
    )
    await alerts.trigger(
        session,
        "phone:offline",
        subject=phone.id,
        tenant_id=phone.tenant_id,
        message=f"{phone.phone_label} is disconnected: {reason}",
    )
    return True


async def mark_reconnected(session: AsyncSession, phone: WaPhoneNumber, *, actor: str) -> bool:
    """OFFLINE / RECONNECTING -> ACTIVE once the account is connected; never revives PAUSED or BANNED."""
    from cerniq.ops import alerts

    if phone.status not in (PhoneStatus.OFFLINE, PhoneStatus.RECONNECTING):
        return False
    await change_status(
        session,
        phone,
        PhoneStatus.ACTIVE,
        reason="account connected",
        actor=actor,
        incident_kind="RECONNECTED",
    )
    await alerts.resolve_condition(session, "phone:offline", subject=phone.id, tenant_id=phone.tenant_id)
    return True


# --- incident log file (runbook 2.2 step 7, 3.3 step 3) ----------------------------------------

PHONE_INCIDENT_LOG = "phone-incidents.log"
QUOTA_RESET_LOG = "quota-resets.log"


def incident_log_path(name: str = PHONE_INCIDENT_LOG) -> Path:
    """``{data_dir}/logs/{name}``: the runbook's ``/var/log/cerniq/*.log`` files, for grep."""
    return get_settings().data_dir / "logs" / name


def incident_log_line(phone_id: str, event: str, reason: str | None, actor: str) -> str:
    """One line in the runbook's format: ``<date>: Phone phone_03 banned. Reason: ... (by ...)``."""
    stamp = clock().local(utcnow()).strftime("%a %b %d %H:%M:%S %Z %Y")
    text = f"{stamp}: Phone {phone_id} {event}."
    if reason:
        text += f" Reason: {' '.join(reason.split())}"
    return f"{text} (by {actor})"


def append_incident_log(line: str, name: str = PHONE_INCIDENT_LOG) -> None:
    """Append one line to the incident log file (best effort: the table is the record)."""
    path = incident_log_path(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(line.rstrip("\n") + "\n")
    except OSError as exc:
        get_logger("cerniq.phones").warning("incident_log.unwritable", path=str(path), error=str(exc))


def log_incident_after_commit(
    session: AsyncSession,
    phone_id: str,
    event: str,
    *,
    reason: str | None,
    actor: str,
    files: tuple[str, ...] = (PHONE_INCIDENT_LOG,),
) -> None:
    """Write the incident's log line once the transaction that recorded it commits."""
    line = incident_log_line(phone_id, event, reason, actor)

    async def write() -> None:
        for name in files:
            append_incident_log(line, name)

    after_commit(session, write)
