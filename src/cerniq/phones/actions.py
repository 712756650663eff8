"""Operator actions on phones (runbook 2.1-2.3, 7.1-7.2): pause, resume, reconnect, reassign
leads, ban, pause-all / resume-all, incidents and the test message. Shared by the API and the CLI;
each writes ``audit_log`` and a phone incident.

TimelinesAI has no reconnect call (re-linking is a QR scan in its app): "reconnect" re-checks the
account and records the operator's action; "resume" only reactivates a phone whose account is
connected now.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import Principal
from cerniq.auth.service import record_audit
from cerniq.errors import Conflict, EmergencyStopActive, NotFound, ServiceUnavailable, ValidationFailed
from cerniq.kit.clock import utcnow
from cerniq.kit.db import after_commit
from cerniq.kit.ids import job_id
from cerniq.messaging.service import TEST, queue_message
from cerniq.models import GoldCompany, GoldLeadJourney, WaPhoneNumber
from cerniq.models.enums import Channel, LeadState, PhoneStatus
from cerniq.ops.system_state import emergency_stop
from cerniq.phones import health
from cerniq.phones import repository as phones_repository
from cerniq.phones import repository_lifecycle as lifecycle
from cerniq.phones import service as phones
from cerniq.worker.names import phone_queue
from cerniq.worker.queues import get_queue

QR_INSTRUCTIONS = (
    "scan the QR code in the TimelinesAI app: open TimelinesAI > WhatsApp accounts, re-link {number} "
    "from the phone (WhatsApp > Linked devices), wait about 5 minutes for the sync, then resume the phone"
)
NO_ACCOUNT_INSTRUCTIONS = (
    "no TimelinesAI account has the number {number}: add the WhatsApp account in the TimelinesAI "
    "dashboard and scan the QR code in the TimelinesAI app, then resume the phone"
)
RESUMABLE = (PhoneStatus.PAUSED, PhoneStatus.OFFLINE, PhoneStatus.RECONNECTING, PhoneStatus.QUARANTINE)


async def _phone(
    session: AsyncSession, tenant_id: uuid.UUID, phone_id: str, *, lock: bool = False
) -> WaPhoneNumber:
    phone = await phones_repository.get_phone(session, tenant_id, phone_id, for_update=lock)
    if phone is None:
        raise NotFound(f"phone {phone_id!r} not found")
    return phone


def _instructions(phone: WaPhoneNumber, found: bool) -> str:
    template = QR_INSTRUCTIONS if found else NO_ACCOUNT_INSTRUCTIONS
    return template.format(number=phone.phone_number)


def _promote_after_commit(session: AsyncSession, phone_id: str) -> None:
    """Waiting messages go now: the phone queue's delayed jobs are promoted once committed."""

    async def promote() -> None:
        await get_queue(phone_queue(phone_id)).promoteJobs()

    after_commit(session, promote)


async def pause_phone(
    session: AsyncSession, principal: Principal, phone_id: str, *, reason: str | None
) -> dict[str, Any]:
    """Take a phone out of rotation (its messages wait in its queue). BANNED stays BANNED."""
    phone = await _phone(session, principal.tenant_id, phone_id, lock=True)
    if phone.status == PhoneStatus.BANNED:
        raise Conflict("a BANNED phone cannot be paused or resumed", code="PHONE_BANNED")
    before = phone.status
    why = reason or "paused by operator"
    changed = await phones.change_status(
        session,
        phone,
        PhoneStatus.PAUSED,
        reason=why,
        actor=principal.actor,
        principal=principal,
        incident_kind="PAUSED",
    )
    if changed:
        phones.log_incident_after_commit(session, phone.id, "paused", reason=why, actor=principal.actor)
    return {"id": phone.id, "status": phone.status.value, "previousStatus": before.value, "changed": changed}


async def resume_phone(session: AsyncSession, principal: Principal, phone_id: str) -> dict[str, Any]:
    """PAUSED / OFFLINE / RECONNECTING -> ACTIVE when the TimelinesAI account is connected now
    (409 ``PHONE_DISCONNECTED`` otherwise, 409 ``PHONE_BANNED`` for a banned phone); the phone
    queue's delayed jobs are promoted so waiting messages go now."""
    phone = await _phone(session, principal.tenant_id, phone_id)
    if phone.status == PhoneStatus.BANNED:
        raise Conflict(
            "a BANNED phone is never reactivated (runbook 2.2); register a replacement phone",
            code="PHONE_BANNED",
        )
    account = await health.account_of(phone)
    connected = account is not None and account.is_active
    await session.refresh(phone, with_for_update=True)
    before = phone.status
    if before == PhoneStatus.BANNED:  # type: ignore[comparison-overlap]  # banned meanwhile
        raise Conflict("the phone was banned meanwhile", code="PHONE_BANNED")
    now = utcnow()
    await lifecycle.record_health(session, phone.id, connected=connected, at=now)
    if before in RESUMABLE and not connected:
        raise Conflict(
            "the TimelinesAI account is not connected; " + _instructions(phone, account is not None),
            code="PHONE_DISCONNECTED",
            details={"status": before.value, "connected": False},
        )
    changed = False
    if before in (PhoneStatus.OFFLINE, PhoneStatus.RECONNECTING):
        changed = await phones.mark_reconnected(session, phone, actor=principal.actor)
    elif before in (PhoneStatus.PAUSED, PhoneStatus.QUARANTINE):
        changed = await phones.change_status(
            session,
            phone,
            PhoneStatus.ACTIVE,
            reason="resumed by operator",
            actor=principal.actor,
            incident_kind="RESUMED",
        )
    await record_audit(
        session,
        principal,
        "phone.resume",
        entity_type="phone",
        entity_id=phone.id,
        before={"status": before.value},
        after={"status": phone.status.value, "connected": connected},
    )
    if changed:
        phones.log_incident_after_commit(session, phone.id, "resumed", reason=None, actor=principal.actor)
    _promote_after_commit(session, phone.id)
    return {
        "id": phone.id,
        "status": phone.status.value,
        "previousStatus": before.value,
        "changed": changed,
        "connected": connected,
    }


async def reconnect_phone(session: AsyncSession, principal: Principal, phone_id: str) -> dict[str, Any]:
    """Runbook 2.1 step 4. The vendor has no reconnect call: re-check the account, move an
    OFFLINE phone to RECONNECTING (or ACTIVE when connected again), record the operator's action.
    Returns ``{status, connected, instructions}``; instructions say to scan the QR code while the
    account is still disconnected."""
    phone = await _phone(session, principal.tenant_id, phone_id)
    if phone.status == PhoneStatus.BANNED:
        raise Conflict(
            "do NOT attempt to reconnect a banned phone (runbook 2.2); register a replacement phone",
            code="PHONE_BANNED",
        )
    account = await health.account_of(phone)
    connected = account is not None and account.is_active
    await session.refresh(phone, with_for_update=True)
    before = phone.status
    await lifecycle.record_health(session, phone.id, connected=connected, at=utcnow())
    instructions: str | None = None
    if connected:
        if before in (PhoneStatus.OFFLINE, PhoneStatus.RECONNECTING):
            await phones.mark_reconnected(session, phone, actor=principal.actor)
            _promote_after_commit(session, phone.id)
        elif before == PhoneStatus.PAUSED:
            instructions = "the account is connected; the phone is PAUSED: resume it to send again"
    else:
        instructions = _instructions(phone, account is not None)
        if before == PhoneStatus.ACTIVE:
            await phones.mark_offline(
                session, phone, reason="TimelinesAI account disconnected", actor=principal.actor
            )
        if phone.status == PhoneStatus.OFFLINE:
            await phones.change_status(
                session,
                phone,
                PhoneStatus.RECONNECTING,
                reason="operator is re-linking the account (QR scan)",
                actor=principal.actor,
                incident_kind="RECONNECTING",
            )
    await phones_repository.add_incident(
        session,
        tenant_id=phone.tenant_id,
        phone_id=phone.id,
        kind="RECONNECT_REQUESTED",
        reason="operator reconnect",
        actor=principal.actor,
        details={"from": before.value, "to": phone.status.value, "connected": connected},
    )
    await record_audit(
        session,
        principal,
        "phone.reconnect",
        entity_type="phone",
        entity_id=phone.id,
        before={"status": before.value},
        after={"status": phone.status.value, "connected": connected},
    )
    phones.log_incident_after_commit(
        session,
        phone.id,
        f"reconnect requested ({before.value} -> {phone.status.value}, connected={connected})",
        reason=None,
        actor=principal.actor,
    )
    return {
        "id": phone.id,
        "status": phone.status.value,
        "previousStatus": before.value,
        "connected": connected,
        "instructions": instructions,
    }


async def reassign_leads(session: AsyncSession, principal: Principal, phone_id: str) -> dict[str, Any]:
    """Runbook 2.2 step 3: the phone's COLD / CONTACTED_WA leads lose their sticky phone and chat
    (``assigned_phone_id`` and ``wa_chat_id`` NULL) and the next dispatch gives them another
    phone. Their messages still QUEUED on this phone are SKIPPED (and their jobs removed). They
    are due now, unless human-controlled; a CONTACTED_WA lead whose follow-up is scheduled later
    keeps that time. Returns ``{reassigned: N, ...}``."""
    phone = await _phone(session, principal.tenant_id, phone_id, lock=True)
    now = utcnow()
    skipped = await lifecycle.skip_queued_messages(session, phone.id, code="PHONE_REASSIGNED", now=now)
    skipped_leads = {journey for _msg, journey in skipped}
    moved = await lifecycle.unassign_leads(session, phone.id)
    due = [
        lead.journey_id
        for lead in moved
        if not lead.human
        and (
            lead.state == LeadState.COLD
            or lead.journey_id in skipped_leads
            or lead.next_action_at is None
            or lead.next_action_at <= now
        )
    ]
    await lifecycle.make_due(session, due, now)
    result = {
        "phoneId": phone.id,
        "reassigned": len(moved),
        "dueNow": len(due),
        "humanControlled": sum(1 for lead in moved if lead.human),
        "messagesSkipped": len(skipped),
    }
    await phones_repository.add_incident(
        session,
        tenant_id=phone.tenant_id,
        phone_id=phone.id,
        kind="LEADS_REASSIGNED",
        reason=f"{len(moved)} lead(s) unassigned",
        actor=principal.actor,
        details=result,
    )
    await record_audit(
        session,
        principal,
        "phone.reassign_leads",
        entity_type="phone",
        entity_id=phone.id,
        after=result,
    )
    phones.log_incident_after_commit(
        session, phone.id, f"{len(moved)} lead(s) reassigned", reason=None, actor=principal.actor
    )
    queue_name = phone_queue(phone.id)
    job_ids = [job_id("wa", message_id) for message_id, _journey in skipped]

    async def remove_jobs() -> None:
        queue = get_queue(queue_name)
        for jid in job_ids:
            with contextlib.suppress(Exception):  # an active (locked) job finds its row SKIPPED
                await queue.remove(jid)

    if job_ids:
        after_commit(session, remove_jobs)
    return result


async def ban(session: AsyncSession, principal: Principal, phone_id: str, *, reason: str) -> dict[str, Any]:
    """Runbook 2.2 in one step (:func:`cerniq.phones.service.ban_phone`)."""
    if not reason.strip():
        raise ValidationFailed("a reason is required to ban a phone", code="REASON_REQUIRED")
    phone = await _phone(session, principal.tenant_id, phone_id, lock=True)
    before = phone.status
    result = await phones.ban_phone(session, phone, reason=reason, actor=principal.actor, principal=principal)
    phones.log_incident_after_commit(session, phone.id, "banned", reason=reason, actor=principal.actor)
    return {"id": phone.id, "status": phone.status.value, "previousStatus": before.value, **result}


async def pause_all(session: AsyncSession, principal: Principal, *, reason: str | None) -> dict[str, Any]:
    """Every ACTIVE phone of the tenant -> PAUSED (runbook 7.1 step 3). Returns the phones paused."""
    why = reason or "pause-all"
    rows = await lifecycle.phones(session, principal.tenant_id, statuses=[PhoneStatus.ACTIVE], lock=True)
    paused = []
    for phone in rows:
        if await phones.change_status(
            session,
            phone,
            PhoneStatus.PAUSED,
            reason=why,
            actor=principal.actor,
            principal=principal,
            incident_kind="PAUSED",
        ):
            paused.append(phone.id)
            phones.log_incident_after_commit(
                session, phone.id, "paused (pause-all)", reason=why, actor=principal.actor
            )
    await record_audit(
        session, principal, "phones.pause_all", entity_type="phone", reason=why, after={"paused": paused}
    )
    return {"paused": paused, "count": len(paused), "reason": why}


async def resume_all(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    """Every PAUSED phone of the tenant whose TimelinesAI account is connected -> ACTIVE (the
    reverse of pause-all); the others are listed with the reason they stay."""
    rows = await lifecycle.phones(session, principal.tenant_id, statuses=[PhoneStatus.PAUSED])
    if not rows:
        return {"resumed": [], "skipped": [], "count": 0}
    try:
        accounts = await health.fetch_accounts()
    except health.VendorDown as exc:
        raise ServiceUnavailable(
            "TimelinesAI is not answering; try again in a few minutes",
            code="TIMELINESAI_UNAVAILABLE",
            details={"error": str(exc)},
        ) from exc
    rows = await lifecycle.phones(session, principal.tenant_id, statuses=[PhoneStatus.PAUSED], lock=True)
    resumed: list[str] = []
    skipped: list[dict[str, str]] = []
    for phone in rows:
        account = accounts.get(health.account_key(phone.phone_number))
        if account is None or not account.is_active:
            skipped.append({"id": phone.id, "reason": "TimelinesAI account not connected"})
            continue
        await phones.change_status(
            session,
            phone,
            PhoneStatus.ACTIVE,
            reason="resume-all",
            actor=principal.actor,
            principal=principal,
            incident_kind="RESUMED",
        )
        resumed.append(phone.id)
        phones.log_incident_after_commit(
            session, phone.id, "resumed (resume-all)", reason=None, actor=principal.actor
        )
        _promote_after_commit(session, phone.id)
    await record_audit(
        session,
        principal,
        "phones.resume_all",
        entity_type="phone",
        after={"resumed": resumed, "skipped": [s["id"] for s in skipped]},
    )
    return {"resumed": resumed, "skipped": skipped, "count": len(resumed)}


async def incidents(
    session: AsyncSession, tenant_id: uuid.UUID, phone_id: str | None = None, *, limit: int = 100
) -> dict[str, Any]:
    """The phone_incidents rows (newest first) of one phone or of every phone of the tenant."""
    if phone_id is not None:
        await _phone(session, tenant_id, phone_id)
    rows = await phones_repository.incidents(session, tenant_id, phone_id, limit=limit)
    return {
        "phoneId": phone_id,
        "incidents": [
            {
                "id": str(i.id),
                "phoneId": i.phone_id,
                "kind": i.kind,
                "reason": i.reason,
                "actor": i.actor,
                "details": i.details,
                "at": i.created_at.isoformat(),
                "resolvedAt": i.resolved_at.isoformat() if i.resolved_at else None,
            }
            for i in rows
        ],
    }


# --- the test message (runbook 2.3 step 6) --------------------------------------------------------


def recipient_cui(number: str) -> str:
    """The synthetic company of a test recipient: ``TEST-<number digits>``."""
    return "TEST-" + "".join(c for c in number if c.isdigit())


async def synthetic_recipient(session: AsyncSession, tenant_id: uuid.UUID, number: str) -> GoldLeadJourney:
    """The journey of the synthetic "test recipient" company of ``number`` (created once, then
    reused, so every test message to a number has the same lead). It has no next action and is
    human-controlled, so neither dispatch nor an AI answer ever contacts it on its own."""
    cui = recipient_cui(number)
    company = await lifecycle.company_by_cui(session, tenant_id, cui)
    if company is None:
        company = GoldCompany(
            tenant_id=tenant_id,
            denumire=f"Test recipient {number}",
            cui=cui,
            is_agricultural=False,
            source="test",
            raw={"test": True},
        )
        await lifecycle.add(session, company)
    journey = await lifecycle.journey_of_company(session, tenant_id, company.id, lock=True)
    if journey is None:
        journey = GoldLeadJourney(
            tenant_id=tenant_id,
            lead_id=company.id,
            mobile_e164=number,
            current_state=LeadState.COLD,
            next_action_at=None,
            tags=["test"],
            # no automated or AI message ever goes to a test recipient, whatever it replies
            is_human_controlled=True,
            human_controlled_at=utcnow(),
            human_control_reason="synthetic test recipient (runbook 2.3 test messages)",
            internal_notes="synthetic lead of runbook 2.3 test messages",
        )
        await lifecycle.add(session, journey)
    return journey


async def send_test_message(
    session: AsyncSession,
    principal: Principal,
    *,
    phone_id: str,
    test_number: str,
    text: str | None = None,
) -> dict[str, Any]:
    """Send one test message from ``phone_id`` to ``test_number`` through the normal send path
    (origin TEST: business hours do not apply, the emergency stop does)."""
    number = phones.normalize_number(test_number)
    phone = await _phone(session, principal.tenant_id, phone_id)
    if phone.status == PhoneStatus.BANNED:
        raise Conflict("the phone is BANNED", code="PHONE_BANNED")
    if phone.status != PhoneStatus.ACTIVE or not phone.is_enabled:
        raise Conflict(
            f"the phone is {phone.status.value}{'' if phone.is_enabled else ' (disabled)'}; "
            "a test message needs an ACTIVE, enabled phone",
            code="PHONE_NOT_ACTIVE",
            details={"status": phone.status.value, "isEnabled": phone.is_enabled},
        )
    stop = await emergency_stop(session)
    if stop is not None:
        raise EmergencyStopActive("the emergency stop is active: nothing is sent", details=stop)
    journey = await synthetic_recipient(session, principal.tenant_id, number)
    if journey.assigned_phone_id != phone.id:
        # the test lead follows the phone under test: a new chat from that number
        journey.assigned_phone_id = phone.id
        journey.assigned_at = utcnow()
        journey.wa_chat_id = None
    local = phones.clock().local(utcnow()).strftime("%Y-%m-%d %H:%M")
    body = text or f"Mesaj de test Cerniq de pe {phone.phone_label} ({phone.phone_number}), {local}."
    message = await queue_message(
        session,
        journey,
        channel=Channel.WHATSAPP,
        content=body,
        origin=TEST,
        phone_id=phone.id,
        created_by=principal.actor,
    )
    await record_audit(
        session,
        principal,
        "phone.test_send",
        entity_type="phone",
        entity_id=phone.id,
        after={"messageId": str(message.id), "testNumber": number},
    )
    return {
        "messageId": str(message.id),
        "status": message.status.value,
        "phoneId": phone.id,
        "testNumber": number,
        "leadId": str(journey.id),
    }
