"""Per-phone history (runbook 2.2 step 6: review the messaging patterns that may have caused a ban).

Figures come from ``gold_communication_log``, grouped by business day in the business timezone
(Europe/Bucharest), and the quota limit of each day from ``wa_quota_usage`` (the phone's current
limit for days not closed yet).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Date, and_, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.config import get_settings
from cerniq.errors import NotFound
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.models import GoldCommunicationLog, WaPhoneNumber, WaQuotaUsage
from cerniq.models.enums import Channel, Direction, MessageStatus

MAX_DAYS = 90
SENT = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.REPLIED)
DELIVERED = (MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.REPLIED)
READ = (MessageStatus.READ, MessageStatus.REPLIED)


def _count(condition: Any) -> Any:
    return func.count(case((condition, 1)))


async def phone_history(
    session: AsyncSession, tenant_id: uuid.UUID, phone_id: str, days: int = 7
) -> dict[str, Any]:
    """``{"phoneId", "days", "dailyStats": [{date, newContacts, followUps, totalSent, delivered,
    read, replies, failed, quotaLimit, mismatch}]}``, one entry per calendar day, oldest first,
    ending today. Sent messages count on the business day their quota was spent (or they were
    sent), failures on the day they failed, replies (inbound messages on this phone) on the day
    they arrived."""
    settings = get_settings()
    days = max(1, min(days, MAX_DAYS))
    phone = (
        await session.execute(
            select(WaPhoneNumber).where(WaPhoneNumber.tenant_id == tenant_id, WaPhoneNumber.id == phone_id)
        )
    ).scalar_one_or_none()
    if phone is None:
        raise NotFound(f"phone {phone_id!r} not found")
    end = BusinessClock.from_settings(settings).business_day(utcnow())
    start = end - timedelta(days=days - 1)
    log = GoldCommunicationLog
    at = func.coalesce(log.sent_at, log.status_updated_at, log.created_at)
    local_day = cast(func.timezone(settings.timezone, at), Date)
    day = func.coalesce(log.quota_date, local_day)
    is_sent = or_(log.status.in_(SENT), log.sent_at.is_not(None))
    outbound = (
        select(
            day.label("day"),
            _count(and_(is_sent, log.status != MessageStatus.FAILED, log.quota_cost == 1)).label("new"),
            _count(and_(is_sent, log.status != MessageStatus.FAILED, log.quota_cost == 0)).label("followups"),
            _count(or_(log.status.in_(DELIVERED), log.delivered_at.is_not(None))).label("delivered"),
            _count(or_(log.status.in_(READ), log.read_at.is_not(None))).label("read"),
            _count(log.status == MessageStatus.FAILED).label("failed"),
        )
        .where(
            log.tenant_id == tenant_id,
            log.phone_id == phone.id,
            log.channel == Channel.WHATSAPP,
            log.direction == Direction.OUTBOUND,
            day >= start,
            day <= end,
        )
        .group_by(day)
    )
    inbound_day = cast(func.timezone(settings.timezone, log.created_at), Date)
    inbound = (
        select(inbound_day.label("day"), func.count().label("replies"))
        .where(
            log.tenant_id == tenant_id,
            log.phone_id == phone.id,
            log.channel == Channel.WHATSAPP,
            log.direction == Direction.INBOUND,
            inbound_day >= start,
            inbound_day <= end,
        )
        .group_by(inbound_day)
    )
    usage = select(WaQuotaUsage.usage_date, WaQuotaUsage.quota_limit, WaQuotaUsage.mismatch).where(
        WaQuotaUsage.tenant_id == tenant_id,
        WaQuotaUsage.phone_id == phone.id,
        WaQuotaUsage.usage_date >= start,
        WaQuotaUsage.usage_date <= end,
    )
    sent_by_day: dict[date, Any] = {r.day: r for r in await session.execute(outbound)}
    replies_by_day: dict[date, int] = {r.day: int(r.replies) for r in await session.execute(inbound)}
    usage_by_day: dict[date, tuple[int, bool]] = {
        r[0]: (int(r[1]), bool(r[2])) for r in await session.execute(usage)
    }
    stats = []
    for offset in range(days):
        current = start + timedelta(days=offset)
        row = sent_by_day.get(current)
        new = int(row.new) if row else 0
        followups = int(row.followups) if row else 0
        limit, mismatch = usage_by_day.get(current, (phone.daily_quota_limit, None))
        stats.append(
            {
                "date": current.isoformat(),
                "newContacts": new,
                "followUps": followups,
                "totalSent": new + followups,
                "delivered": int(row.delivered) if row else 0,
                "read": int(row.read) if row else 0,
                "replies": replies_by_day.get(current, 0),
                "failed": int(row.failed) if row else 0,
                "quotaLimit": limit,
                "mismatch": mismatch,
            }
        )
    return {"phoneId": phone.id, "label": phone.phone_label, "days": days, "dailyStats": stats}
