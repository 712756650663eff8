"""Redis recovery (runbook 8.2) as one call: ``cerniq recover redis``.

PostgreSQL is the truth; Redis holds counters, mirrors and job transport. After Redis lost its
data (FLUSHALL, crash without persistence) this rebuilds, in order:

1. today's quota counters, follow-up counters and reservation hashes from the ledger
   (:func:`cerniq.quota.service.resync_day`);
2. the ``phone:status:{id}`` mirrors from ``wa_phone_numbers``;
3. the ``system:emergency_stop`` mirror from ``system_state``;
4. a job for every QUEUED / SENDING / AMBIGUOUS message whose job is gone
   (:func:`cerniq.messaging.relay.relay`, idempotent by job id, so nothing is sent twice);
5. the cron job schedulers of every registered schedule;
6. one dispatch job, which picks every lead whose follow-up is due (``next_action_at <= now``);
   follow-ups due later are found by the scheduled dispatch when their time comes.

Every step is idempotent: running it twice changes nothing more.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select

from cerniq.auth.principal import Principal
from cerniq.auth.service import record_audit
from cerniq.config import Settings, get_settings
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.models import GoldLeadJourney, Tenant, WaPhoneNumber
from cerniq.models.enums import Role
from cerniq.ops.system_state import EMERGENCY_STOP_KEY, emergency_stop
from cerniq.phones.service import status_key


@dataclass
class RecoveryReport:
    quota_phones: int = 0
    quota_counters: dict[str, int] = field(default_factory=dict)
    phone_status_keys: int = 0
    emergency_stop_active: bool = False
    messages_checked: int = 0
    messages_requeued: int = 0
    schedules: int = 0
    followups_due: int = 0
    dispatch_job: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def rebuild_phone_status() -> int:
    """SET ``phone:status:{id}`` for every phone from the database; returns how many."""
    async with transaction() as session:
        rows = (await session.execute(select(WaPhoneNumber.id, WaPhoneNumber.status))).all()
    redis = get_redis()
    for phone_id, status in rows:
        await redis.set(status_key(phone_id), str(status.value if hasattr(status, "value") else status))
    return len(rows)


async def rebuild_emergency_mirror() -> bool:
    """Mirror the emergency stop of ``system_state`` into Redis (or clear a stale mirror)."""
    async with transaction() as session:
        value = await emergency_stop(session)
    redis = get_redis()
    if value:
        mirror = {"reason": value.get("reason"), "at": value.get("at"), "by": value.get("by")}
        await redis.set(EMERGENCY_STOP_KEY, json.dumps(mirror))
        return True
    await redis.delete(EMERGENCY_STOP_KEY)
    return False


async def upsert_schedules(settings: Settings) -> int:
    """Re-create every registered cron job scheduler (as a starting worker does)."""
    from cerniq.worker import registry
    from cerniq.worker.queues import get_queue

    registry.load_all_tasks()
    count = 0
    for spec in registry.schedules():
        repeat: dict[str, Any] = {"pattern": spec.pattern, "tz": spec.tz or settings.timezone}
        await get_queue(spec.queue, settings).upsertJobScheduler(
            spec.scheduler_id, repeat, spec.job_name, spec.data
        )
        count += 1
    return count


async def due_followups() -> int:
    """Leads whose next action is due now (picked by the next dispatch)."""
    async with transaction() as session:
        stmt = select(func.count()).where(
            GoldLeadJourney.next_action_at.is_not(None),
            GoldLeadJourney.next_action_at <= utcnow(),
            GoldLeadJourney.sequence_paused.is_(False),
        )
        return int((await session.execute(stmt)).scalar_one())


async def recover_redis(
    settings: Settings | None = None, *, actor: str = "system", dispatch: bool = True
) -> RecoveryReport:
    """Rebuild everything Redis should hold from PostgreSQL (see the module doc)."""
    from cerniq.messaging.relay import relay
    from cerniq.quota import service as quota_service
    from cerniq.worker import names
    from cerniq.worker.enqueue import enqueue

    settings = settings or get_settings()
    report = RecoveryReport()
    async with transaction() as session:
        changes = await quota_service.resync_day(
            session, quota_service.today(), actor_type="cli", actor_label=actor
        )
    report.quota_phones = len(changes)
    report.quota_counters = {pid: after for pid, (_before, after) in changes.items()}
    report.phone_status_keys = await rebuild_phone_status()
    report.emergency_stop_active = await rebuild_emergency_mirror()
    relayed = await relay(everything=True)
    report.messages_checked, report.messages_requeued = relayed.checked, relayed.requeued
    report.schedules = await upsert_schedules(settings)
    report.followups_due = await due_followups()
    if dispatch:
        report.dispatch_job = await enqueue(
            names.DISPATCH, "dispatch", {}, job_id=f"recover-dispatch-{uuid.uuid4().hex}"
        )
    async with transaction() as session:
        tenant_ids = (await session.execute(select(Tenant.id))).scalars().all()
        for tid in tenant_ids:
            principal = Principal(
                tenant_id=tid, role=Role.ADMIN, actor_type="cli", actor_id=actor, actor_label=actor
            )
            await record_audit(
                session,
                principal,
                "recover.redis",
                entity_type="system",
                entity_id="redis",
                reason="rebuild Redis from PostgreSQL (runbook 8.2)",
                after=report.as_dict(),
            )
    return report
