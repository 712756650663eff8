"""Quota operations (runbook §3, §8): today's usage next to the ledger, the emergency reset of one
phone, the rebuild of Redis counters from the ledger, and the nightly close of a business day.

Redis holds the live counters (``quota:wa:{phone}:{day}`` and its follow-up and reservation
companions, :mod:`cerniq.quota.guardian`); PostgreSQL holds the ledger they are rebuilt from
(``gold_communication_log.quota_cost`` / ``quota_date``, :mod:`cerniq.quota.repository`) and the
daily audit ``wa_quota_usage``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import Principal
from cerniq.auth.service import record_audit
from cerniq.config import get_settings
from cerniq.errors import NotFound, ValidationFailed
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import after_commit
from cerniq.kit.redis import get_redis
from cerniq.models import WaPhoneNumber
from cerniq.models.enums import PhoneStatus, Role
from cerniq.ops import alerts
from cerniq.phones import repository as phones_repository
from cerniq.phones import service as phones
from cerniq.quota import repository
from cerniq.quota.guardian import (
    DEFAULT_TTL_SECONDS,
    QuotaGuardian,
    followup_key,
    quota_key,
    reservations_key,
)
from cerniq.quota.repository import LedgerDay

MISMATCH_ALERT = "quota:mismatch"

__all__ = [
    "MISMATCH_ALERT",
    "PhoneQuota",
    "close_day",
    "day_report",
    "ensure_zero_keys",
    "reset_phone",
    "resync_day",
    "today",
    "yesterday",
]


def clock() -> BusinessClock:
    return BusinessClock.from_settings(get_settings())


def today() -> date:
    """Today's business day (Europe/Bucharest): the day of the quota keys."""
    return clock().business_day(utcnow())


def yesterday() -> date:
    return today() - timedelta(days=1)


def guardian() -> QuotaGuardian:
    return QuotaGuardian(get_redis())


def _int(raw: Any) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


@dataclass
class PhoneQuota:
    """One phone's quota on one day: Redis counters next to the ledger."""

    phone_id: str
    label: str
    status: str
    limit: int
    used: int | None
    """The Redis counter ``quota:wa:{phone}:{day}``; None when the key does not exist."""
    followups: int | None
    reservations: int
    ledger_new: int
    ledger_followups: int

    @property
    def remaining(self) -> int:
        return max(self.limit - (self.used or 0), 0)

    @property
    def mismatch(self) -> bool:
        """The counter disagrees with the ledger (a missing key counts as 0)."""
        return (self.used or 0) != self.ledger_new

    def as_dict(self) -> dict[str, Any]:
        return {
            "phoneId": self.phone_id,
            "label": self.label,
            "status": self.status,
            "used": self.used,
            "limit": self.limit,
            "remaining": self.remaining,
            "followUps": self.followups,
            "reservations": self.reservations,
            "ledgerNewContacts": self.ledger_new,
            "ledgerFollowUps": self.ledger_followups,
            "mismatch": self.mismatch,
        }


async def _raw_counters(phone_ids: list[str], day: date) -> tuple[list[Any], list[Any], list[Any]]:
    """MGET of the counters and follow-up counters, HLEN of the reservation hashes."""
    if not phone_ids:
        return [], [], []
    redis = get_redis()
    pipe = redis.pipeline(transaction=False)
    pipe.mget([quota_key(p, day) for p in phone_ids])
    pipe.mget([followup_key(p, day) for p in phone_ids])
    for p in phone_ids:
        pipe.hlen(reservations_key(p, day))
    results = await pipe.execute()
    return list(results[0]), list(results[1]), list(results[2:])


async def day_report(session: AsyncSession, day: date, tenant_id: uuid.UUID) -> list[PhoneQuota]:
    """Every phone of the tenant on ``day``: used / limit / remaining / follow-ups from Redis next
    to the ledger (``quota_cost = 1`` rows with that ``quota_date``)."""
    phone_rows = await repository.phones(session, tenant_id)
    ids = [p.id for p in phone_rows]
    ledger = await repository.ledger(session, day, ids)
    counters, followups, reservations = await _raw_counters(ids, day)
    out = []
    for phone, used, fu, res in zip(phone_rows, counters, followups, reservations, strict=True):
        book = ledger.get(phone.id, LedgerDay())
        out.append(
            PhoneQuota(
                phone_id=phone.id,
                label=phone.phone_label,
                status=phone.status.value,
                limit=phone.daily_quota_limit,
                used=_int(used),
                followups=_int(fu),
                reservations=int(res or 0),
                ledger_new=book.new_contacts,
                ledger_followups=book.followups,
            )
        )
    return out


async def reset_phone(
    session: AsyncSession,
    principal: Principal,
    phone_id: str,
    *,
    reason: str,
    day: date | None = None,
) -> dict[str, Any]:
    """Runbook 3.3 (emergency only): set one phone's new-contact counter of ``day`` (today by
    default) to 0 with EX 172800.

    The three keys of the day (counter, follow-ups, reservations) are saved first in the
    ``audit_log`` row's ``before`` and in a ``QUOTA_RESET`` phone incident; the counter is
    written once that is committed. Follow-ups and reservations are left as they are, so a
    retried send still does not pay twice and a later release still decrements.
    """
    if not reason or not reason.strip():
        raise ValidationFailed("a reason is required for a manual quota reset", code="REASON_REQUIRED")
    day = day or today()
    phone = await phones_repository.get_phone(session, principal.tenant_id, phone_id, for_update=True)
    if phone is None:
        raise NotFound(f"phone {phone_id!r} not found")
    quota = guardian()
    redis = get_redis()
    counter = _int(await redis.get(quota_key(phone.id, day)))
    followups = _int(await redis.get(followup_key(phone.id, day)))
    reservations = await quota.reservations(phone.id, day)
    before = {
        "date": day.isoformat(),
        "counter": counter,
        "followups": followups,
        "reservations": reservations,
    }
    after = {"date": day.isoformat(), "counter": 0, "ttlSeconds": quota.ttl_seconds}
    await record_audit(
        session,
        principal,
        "quota.reset",
        entity_type="phone",
        entity_id=phone.id,
        reason=reason,
        before=before,
        after=after,
    )
    await phones_repository.add_incident(
        session,
        tenant_id=phone.tenant_id,
        phone_id=phone.id,
        kind="QUOTA_RESET",
        reason=reason,
        actor=principal.actor,
        details={"before": before, "after": after},
    )
    pid = phone.id

    async def write() -> None:
        await quota.set_usage(pid, day, 0)

    after_commit(session, write)
    phones.log_incident_after_commit(
        session,
        pid,
        f"manual quota reset for {day.isoformat()} "
        f"(counter was {counter if counter is not None else 'unset'})",
        reason=reason,
        actor=principal.actor,
        files=(phones.QUOTA_RESET_LOG, phones.PHONE_INCIDENT_LOG),
    )
    return {
        "phoneId": pid,
        "date": day.isoformat(),
        "before": {"counter": counter, "followups": followups, "reservations": len(reservations)},
        "after": {"counter": 0, "ttlSeconds": quota.ttl_seconds},
        "key": quota_key(pid, day),
    }


_RESYNC_SCRIPT = resources.files("cerniq.quota").joinpath("resync.lua").read_text(encoding="utf-8")


async def resync_day(
    session: AsyncSession,
    day: date,
    *,
    tenant_id: uuid.UUID | None = None,
    actor_type: str = "system",
    actor_label: str = "system",
) -> dict[str, tuple[int, int]]:
    """Rebuild the quota keys of business day ``day`` from the ledger (runbook 8.1 step 4, 8.2
    step 2), for every phone (of ``tenant_id``, or of all tenants).

    Per phone, atomically: the reservation hash gets one entry per ledger row (``quota_cost``
    1, or 0 for a follow-up holding a reservation), entries that are neither in the ledger nor
    a message still in flight are dropped, and the counter and follow-up counter are set to what
    the hash then holds, with the 48 h TTL. After a FLUSHALL the counters equal the ledger exactly.
    Returns ``{phone_id: (counter before, counter after)}`` (a missing key reads 0) and writes one
    ``audit_log`` row per tenant.
    """
    phone_rows = await repository.phones(session, tenant_id)
    ledger = await repository.ledger(session, day, [p.id for p in phone_rows])
    redis = get_redis()
    script = redis.register_script(_RESYNC_SCRIPT)
    quota = guardian()
    out: dict[str, tuple[int, int]] = {}
    per_tenant: dict[uuid.UUID, dict[str, tuple[int, int]]] = {}
    for phone in phone_rows:
        book = ledger.get(phone.id, LedgerDay())
        existing = await quota.reservations(phone.id, day)
        extras = set(existing) - set(book.reservations)
        keep = await repository.in_flight_ids(session, phone.id, extras) if extras else set()
        drop = sorted(extras - keep)
        args: list[str | int] = [quota.ttl_seconds, len(drop), *drop]
        for row_id, cost in book.reservations.items():
            args.extend((row_id, cost))
        raw = await script(
            keys=[quota_key(phone.id, day), followup_key(phone.id, day), reservations_key(phone.id, day)],
            args=args,
        )
        before, after = max(int(raw[0]), 0), int(raw[1])
        out[phone.id] = (before, after)
        per_tenant.setdefault(phone.tenant_id, {})[phone.id] = (before, after)
    for tid, changes in per_tenant.items():
        principal = Principal(
            tenant_id=tid,
            role=Role.ADMIN,
            actor_type=actor_type,
            actor_id=actor_label,
            actor_label=actor_label,
        )
        await record_audit(
            session,
            principal,
            "quota.resync",
            entity_type="quota",
            entity_id=day.isoformat(),
            reason="rebuild Redis quota counters from the ledger",
            before={pid: b for pid, (b, _a) in changes.items()},
            after={pid: a for pid, (_b, a) in changes.items()},
        )
    return out


async def ensure_zero_keys(phone_ids: list[str], day: date) -> list[str]:
    """Create ``quota:wa:{phone}:{day}`` = 0 (EX 172800) where it does not exist yet, so the
    runbook's morning ``KEYS "quota:wa:*:$(date +%Y-%m-%d)" | wc -l`` counts every phone.
    Never overwrites a counter. Returns the phones whose key was created."""
    if not phone_ids:
        return []
    pipe = get_redis().pipeline(transaction=False)
    for pid in phone_ids:
        pipe.set(quota_key(pid, day), 0, ex=DEFAULT_TTL_SECONDS, nx=True)
    results = await pipe.execute()
    return [pid for pid, created in zip(phone_ids, results, strict=True) if created]


async def close_day(session: AsyncSession, day: date) -> dict[str, Any]:
    """Write ``wa_quota_usage`` for business day ``day``: one row per phone (UPSERT on
    (phone_id, usage_date), so running it twice changes nothing), with the Redis counters, the
    ledger count, the limit, and the first and last message of the day. A counter that differs
    from the ledger sets ``mismatch`` and raises a ``quota:mismatch`` alert (resolved when a
    rerun after ``cerniq quota resync`` finds them equal)."""
    phone_rows = await repository.phones(session)
    ids = [p.id for p in phone_rows]
    ledger = await repository.ledger(session, day, ids)
    counters, followups, _reservations = await _raw_counters(ids, day)
    existing = await repository.usage_rows(session, day)
    now = utcnow()
    values: list[dict[str, Any]] = []
    mismatches: list[str] = []
    for phone, raw_new, raw_fu in zip(phone_rows, counters, followups, strict=True):
        book = ledger.get(phone.id, LedgerDay())
        redis_count = _int(raw_new) or 0
        fu_redis = _int(raw_fu)
        followups_sent = fu_redis if fu_redis is not None else book.followups
        mismatch = redis_count != book.new_contacts
        values.append(
            {
                "tenant_id": phone.tenant_id,
                "phone_id": phone.id,
                "usage_date": day,
                "new_contacts_sent": redis_count,
                "followups_sent": followups_sent,
                "total_sent": redis_count + followups_sent,
                "quota_limit": phone.daily_quota_limit,
                "quota_remaining": max(phone.daily_quota_limit - redis_count, 0),
                "redis_count": redis_count,
                "ledger_count": book.new_contacts,
                "mismatch": mismatch,
                "first_message_at": book.first_at,
                "last_message_at": book.last_at,
                "quota_reset_at": now,
            }
        )
        previous = existing.get(phone.id)
        if mismatch:
            mismatches.append(phone.id)
            if previous is None or not previous.mismatch:
                await _mismatch_alert(session, phone, day, redis_count, book.new_contacts)
        elif previous is not None and previous.mismatch:
            await alerts.resolve_condition(
                session,
                MISMATCH_ALERT,
                subject=phone.id,
                tenant_id=phone.tenant_id,
                resolved_by="quota:reset",
            )
    await repository.upsert_usage(session, values)
    return {
        "date": day.isoformat(),
        "phones": len(values),
        "mismatches": mismatches,
        "rows": [
            {
                "phoneId": v["phone_id"],
                "newContacts": v["new_contacts_sent"],
                "followUps": v["followups_sent"],
                "ledger": v["ledger_count"],
                "mismatch": v["mismatch"],
            }
            for v in values
        ],
    }


async def _mismatch_alert(
    session: AsyncSession, phone: WaPhoneNumber, day: date, redis_count: int, ledger_count: int
) -> None:
    await alerts.trigger(
        session,
        MISMATCH_ALERT,
        subject=phone.id,
        tenant_id=phone.tenant_id,
        message=(
            f"{phone.phone_label}: Redis counted {redis_count} new contacts on {day.isoformat()}, "
            f"the ledger {ledger_count}"
        ),
        details={"date": day.isoformat(), "redisCount": redis_count, "ledgerCount": ledger_count},
    )


async def active_phone_ids(session: AsyncSession) -> list[str]:
    """Enabled ACTIVE phones of every tenant (the ones that get today's zero key at midnight)."""
    return [p.id for p in await repository.phones(session) if p.is_enabled and p.status == PhoneStatus.ACTIVE]
