"""Emergency stop and resume (runbook 7).

The stop is install-wide: the send path and the dispatcher read one ``system_state`` row
(``emergency_stop``) just before every vendor call, whichever tenant the message belongs to.
So stopping acts on every tenant's phones and sequences, and is reserved to admins.

Stop (answers within seconds, one transaction):
1. ``system_state.emergency_stop`` = ``{active, reason, at, by, ...}`` (PostgreSQL is the truth,
   mirrored at ``system:emergency_stop`` in Redis): from the commit on, no worker on any host
   calls a vendor, and the dispatcher refuses to run;
2. every active sequence ``is_active = false`` (the ids are kept in the state so an operator
   can see what to reactivate);
3. every ACTIVE phone -> PAUSED with reason ``EMERGENCY_STOP``;
4. after commit: the dispatch, sequence, email and phone queues are paused (BullMQ pause: jobs
   wait, running ones finish - and the send path skips them if they reach the vendor call);
5. a CRITICAL ``emergency:stop`` alert (emails the on-call), the Slack notice
   "🚨 EMERGENCY STOP: Outreach system halted. Reason: ...", and an audit row.

Messages already QUEUED stay QUEUED: their jobs wait in the paused queues and go out after the
resume, once the operator has confirmed the issue is resolved (as with the runbook's stopped
workers). Skipping them at once would strand their leads, since the dispatcher only schedules
a lead's next step after a send. To cancel them, drain the queues (``cerniq queues drain``).

Resume: clears the state, resumes the dispatcher and the other queues, then the phones paused
by the stop one by one, ``pause_between`` seconds apart (each phone's queue resumes with it),
posts "✅ Outreach system resumed" and audits. Sequences stay inactive: "Sequences must be
manually reactivated".
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import Principal
from cerniq.auth.service import record_audit
from cerniq.errors import Conflict, ValidationFailed
from cerniq.kit.clock import utcnow
from cerniq.kit.db import after_commit, transaction
from cerniq.kit.redis import get_redis
from cerniq.logging import get_logger
from cerniq.models import OutreachSequence, WaPhoneNumber
from cerniq.models.enums import PhoneStatus
from cerniq.ops import alerts, notify, queue_admin
from cerniq.ops.system_state import EMERGENCY_STOP, EMERGENCY_STOP_KEY, emergency_stop, get_state, lock_state
from cerniq.phones import service as phones
from cerniq.worker.names import DISPATCH, EMAIL_COLD, EMAIL_WARM, PHONE_QUEUE_PREFIX, SEQUENCES, phone_queue
from cerniq.worker.queues import get_queue

log = get_logger("cerniq.ops.emergency")

PHONE_REASON = "EMERGENCY_STOP"
STOP_NOTICE = "🚨 EMERGENCY STOP: Outreach system halted. Reason: {reason}"
RESUME_NOTICE = "✅ Outreach system resumed"
SEQUENCES_NOTE = "Sequences must be manually reactivated"
# Queues whose jobs lead to a vendor call, besides the phone queues.
SENDING_QUEUES = (DISPATCH, SEQUENCES, EMAIL_COLD, EMAIL_WARM)

PhoneCallback = Callable[[dict[str, Any]], Awaitable[None] | None]


async def state(session: AsyncSession) -> dict[str, Any]:
    """The emergency stop as operators see it: ``{"active": false}`` when none was ever set."""
    value = await get_state(session, EMERGENCY_STOP) or {}
    return {"active": bool(value.get("active")), **{k: v for k, v in value.items() if k != "active"}}


async def stop(session: AsyncSession, principal: Principal, reason: str) -> dict[str, Any]:
    """Halt all outreach (runbook 7.1). Stopping again re-applies it and keeps the first reason."""
    reason = " ".join((reason or "").split())
    if len(reason) < 3:
        raise ValidationFailed("a reason of at least 3 characters is required", details={"reason": reason})
    row = await lock_state(session, EMERGENCY_STOP)
    previous = dict(row.value or {})
    already = bool(previous.get("active"))
    now = utcnow()

    deactivated = [
        {"id": str(r[0]), "tenantId": str(r[1]), "name": r[2]}
        for r in await session.execute(
            update(OutreachSequence)
            .where(OutreachSequence.is_active.is_(True))
            .values(is_active=False, updated_at=utcnow())
            .returning(OutreachSequence.id, OutreachSequence.tenant_id, OutreachSequence.name)
        )
    ]
    active_phones = list(
        (
            await session.execute(
                select(WaPhoneNumber)
                .where(WaPhoneNumber.status == PhoneStatus.ACTIVE)
                .order_by(func.length(WaPhoneNumber.id), WaPhoneNumber.id)
                .with_for_update()
            )
        ).scalars()
    )
    for phone in active_phones:
        await phones.change_status(
            session,
            phone,
            PhoneStatus.PAUSED,
            reason=PHONE_REASON,
            actor=principal.actor,
            principal=principal,
            incident_kind="EMERGENCY_STOP",
        )
    names = await queue_admin.queue_names(session)
    to_pause = sorted({*SENDING_QUEUES, *(n for n in names if n.startswith(PHONE_QUEUE_PREFIX))})

    def merged(key: str, new: list[Any]) -> list[Any]:
        old = list(previous.get(key) or []) if already else []
        return old + [item for item in new if item not in old]

    value: dict[str, Any] = {
        "active": True,
        "reason": previous.get("reason") if already else reason,
        "at": previous.get("at") if already else now.isoformat(),
        "by": previous.get("by") if already else principal.actor,
        "sequencesDeactivated": merged("sequencesDeactivated", deactivated),
        "phonesPaused": merged("phonesPaused", [p.id for p in active_phones]),
        "queuesPaused": merged("queuesPaused", to_pause),
    }
    if already:
        value["reappliedAt"] = now.isoformat()
        value["reappliedBy"] = principal.actor
    row.value = value
    row.updated_by = principal.actor
    await session.flush()

    notice = STOP_NOTICE.format(reason=value["reason"])
    await alerts.trigger(
        session,
        "emergency:stop",
        message=notice,
        details={"reason": value["reason"], "by": value["by"]},
    )
    await record_audit(
        session,
        principal,
        "emergency.stop",
        entity_type="system",
        entity_id=EMERGENCY_STOP,
        reason=reason,
        before={"active": already},
        after={
            "active": True,
            "sequencesDeactivated": len(deactivated),
            "phonesPaused": [p.id for p in active_phones],
            "queuesPaused": len(to_pause),
        },
    )
    mirror = json.dumps({"reason": value["reason"], "at": value["at"], "by": value["by"]})

    async def halt_queues() -> None:
        await get_redis().set(EMERGENCY_STOP_KEY, mirror)
        for name in to_pause:
            try:
                await get_queue(name).pause()
            except Exception as exc:  # the PostgreSQL flag already stops every send
                log.error("emergency.pause_failed", queue=name, error=repr(exc))
        if not already:
            await notify.slack_notice(notice)

    after_commit(session, halt_queues)
    log.warning("emergency.stop", reason=value["reason"], by=principal.actor, phones=len(active_phones))
    return {
        **value,
        "alreadyActive": already,
        "newlyPausedPhones": [p.id for p in active_phones],
        "newlyDeactivatedSequences": deactivated,
        "notice": notice,
    }


async def resume(
    principal: Principal,
    *,
    pause_between: float = 5.0,
    on_phone: PhoneCallback | None = None,
) -> dict[str, Any]:
    """Resume outreach (runbook 7.2). Runs its own transactions: the state is cleared and
    committed first, then each phone is resumed in a transaction of its own, ``pause_between``
    seconds apart. Raises Conflict when no stop is active."""
    if pause_between < 0:
        raise ValidationFailed("pause_between must be >= 0 seconds")
    now = utcnow()
    async with transaction() as session:
        row = await lock_state(session, EMERGENCY_STOP)
        previous = dict(row.value or {})
        if not previous.get("active"):
            raise Conflict("no emergency stop is active", code="EMERGENCY_STOP_NOT_ACTIVE")
        paused_phones = list(
            (
                await session.execute(
                    select(WaPhoneNumber.id)
                    .where(
                        WaPhoneNumber.status == PhoneStatus.PAUSED,
                        WaPhoneNumber.status_reason == PHONE_REASON,
                    )
                    .order_by(WaPhoneNumber.tenant_id, func.length(WaPhoneNumber.id), WaPhoneNumber.id)
                )
            ).scalars()
        )
        row.value = {
            **previous,
            "active": False,
            "resumedAt": now.isoformat(),
            "resumedBy": principal.actor,
        }
        row.updated_by = principal.actor
        await session.flush()
        await alerts.resolve_condition(session, "emergency:stop", resolved_by=principal.actor)
        await record_audit(
            session,
            principal,
            "emergency.resume",
            entity_type="system",
            entity_id=EMERGENCY_STOP,
            before={"active": True, "reason": previous.get("reason")},
            after={"active": False, "phonesToResume": paused_phones},
        )
    # committed: sends are allowed again from here on
    phone_queues = {phone_queue(p) for p in paused_phones}
    queues_first = sorted(set(previous.get("queuesPaused") or SENDING_QUEUES) - phone_queues)
    await get_redis().delete(EMERGENCY_STOP_KEY)
    for name in queues_first:
        await _resume_queue(name)

    resumed: list[dict[str, Any]] = []
    for index, phone_id in enumerate(paused_phones):
        if index and pause_between > 0:
            await asyncio.sleep(pause_between)
        item = await _resume_phone(principal, phone_id)
        if item.get("stoppedAgain"):
            break
        resumed.append(item)
        if on_phone is not None:
            outcome = on_phone(item)
            if inspect.isawaitable(outcome):
                await outcome
    slack = await notify.slack_notice(RESUME_NOTICE)
    log.warning("emergency.resume", by=principal.actor, phones=len(resumed))
    return {
        "active": False,
        "resumedAt": now.isoformat(),
        "resumedBy": principal.actor,
        "stoppedReason": previous.get("reason"),
        "queuesResumed": queues_first + [phone_queue(p["phoneId"]) for p in resumed if p["resumed"]],
        "phones": resumed,
        "sequencesToReactivate": previous.get("sequencesDeactivated") or [],
        "message": SEQUENCES_NOTE,
        "notice": RESUME_NOTICE,
        "slackNotified": bool(slack and slack.get("ok")),
    }


async def _resume_queue(name: str) -> None:
    try:
        await get_queue(name).resume()
    except Exception as exc:
        log.error("emergency.resume_queue_failed", queue=name, error=repr(exc))


async def _resume_phone(principal: Principal, phone_id: str) -> dict[str, Any]:
    """PAUSED (by the stop) -> ACTIVE, then its queue; a phone changed meanwhile is left alone."""
    async with transaction() as session:
        if await emergency_stop(session) is not None:
            return {"phoneId": phone_id, "resumed": False, "stoppedAgain": True}
        phone = (
            await session.execute(select(WaPhoneNumber).where(WaPhoneNumber.id == phone_id).with_for_update())
        ).scalar_one_or_none()
        changed = False
        status = phone.status.value if phone is not None else None
        if phone is not None and phone.status == PhoneStatus.PAUSED and phone.status_reason == PHONE_REASON:
            changed = await phones.change_status(
                session,
                phone,
                PhoneStatus.ACTIVE,
                reason="emergency resume",
                actor=principal.actor,
                principal=principal,
                incident_kind="EMERGENCY_RESUME",
            )
            status = phone.status.value
        label = phone.phone_label if phone is not None else None
    await _resume_queue(phone_queue(phone_id))
    return {"phoneId": phone_id, "label": label, "status": status, "resumed": changed}
