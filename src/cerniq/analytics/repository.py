"""SQL of the outreach analytics: daily figures from the communication log (live and archive),
the lead journeys, the state history and the review queue; the ``outreach_daily_stats`` UPSERT."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, distinct, func, select, union_all
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.models import (
    GoldCommunicationLog,
    GoldCommunicationLogArchive,
    GoldLeadJourney,
    HumanReview,
    LeadStateHistory,
    OutreachDailyStats,
    WaPhoneNumber,
)
from cerniq.models.communication_log_columns import touched_since
from cerniq.models.enums import Channel, Direction, LeadState, MessageStatus
from cerniq.replies.bands import POSITIVE_REPLY_SCORE

NOT_SENT = (
    MessageStatus.QUEUED,
    MessageStatus.SENDING,
    MessageStatus.FAILED,
    MessageStatus.SKIPPED,
    MessageStatus.AMBIGUOUS,
)

_COLS = (
    "id",
    "tenant_id",
    "lead_journey_id",
    "channel",
    "direction",
    "status",
    "template_id",
    "sequence_id",
    "sequence_step",
    "phone_id",
    "quota_cost",
    "quota_date",
    "sentiment_score",
    "sent_at",
    "opened_at",
    "clicked_at",
    "bounced_at",
    "created_at",
)


def messages(tenant_id: uuid.UUID, *, events_since: datetime | None = None) -> Any:
    """Every message of the tenant, live and archived, as one subquery; with ``events_since``
    only those that can have an event since then (see ``touched_since``)."""
    parts = []
    for m in (GoldCommunicationLog, GoldCommunicationLogArchive):
        part = select(*(getattr(m, c) for c in _COLS)).where(m.tenant_id == tenant_id)
        if events_since is not None:
            part = part.where(touched_since(m, events_since))
        parts.append(part)
    return union_all(*parts).subquery("m")


def _between(column: Any, start: datetime, end: datetime) -> Any:
    return and_(column >= start, column < end)


async def message_figures(
    session: AsyncSession, tenant_id: uuid.UUID, day: date, start: datetime, end: datetime
) -> dict[str, Any]:
    # Every figure counts messages with a time in [start, end) (or quota spent on ``day``,
    # which is the day it was sent): none was last updated long before ``start``.
    m = messages(tenant_id, events_since=start)
    out_ = m.c.direction == Direction.OUTBOUND
    in_ = m.c.direction == Direction.INBOUND
    sent = and_(out_, _between(m.c.sent_at, start, end))
    wa, cold, warm = (
        m.c.channel == Channel.WHATSAPP,
        m.c.channel == Channel.EMAIL_COLD,
        m.c.channel == Channel.EMAIL_WARM,
    )
    created = _between(m.c.created_at, start, end)

    def n(cond: Any) -> Any:
        return func.count().filter(cond)

    stmt = select(
        n(and_(sent, wa, m.c.quota_cost == 1)).label("wa_new_contacts_sent"),
        n(and_(sent, wa, m.c.quota_cost == 0)).label("wa_followups_sent"),
        n(and_(in_, wa, created)).label("wa_replies_received"),
        func.coalesce(func.sum(m.c.quota_cost).filter(and_(wa, m.c.quota_date == day)), 0).label(
            "wa_quota_used"
        ),
        n(and_(sent, cold)).label("email_cold_sent"),
        n(and_(out_, cold, _between(m.c.opened_at, start, end))).label("email_cold_opens"),
        n(and_(out_, cold, _between(m.c.clicked_at, start, end))).label("email_cold_clicks"),
        n(and_(in_, cold, created)).label("email_cold_replies"),
        n(and_(out_, cold, _between(m.c.bounced_at, start, end))).label("email_cold_bounces"),
        n(and_(sent, warm)).label("email_warm_sent"),
        n(and_(out_, warm, _between(m.c.opened_at, start, end))).label("email_warm_opens"),
        func.count(distinct(m.c.lead_journey_id)).filter(and_(in_, created)).label("leads_replied"),
        func.count(distinct(m.c.lead_journey_id))
        .filter(and_(in_, created, m.c.sentiment_score >= POSITIVE_REPLY_SCORE))
        .label("leads_positive_replies"),
        func.avg(m.c.sentiment_score).filter(and_(in_, created)).label("sentiment_avg"),
    )
    row = (await session.execute(stmt)).mappings().one()
    return dict(row)


async def lead_figures(
    session: AsyncSession, tenant_id: uuid.UUID, start: datetime, end: datetime
) -> dict[str, int]:
    j = GoldLeadJourney
    contacted = select(func.count()).where(j.tenant_id == tenant_id, _between(j.first_contact_at, start, end))
    converted = select(func.count()).where(j.tenant_id == tenant_id, _between(j.converted_at, start, end))
    h = LeadStateHistory
    dead = select(func.count(distinct(h.lead_journey_id))).where(
        h.tenant_id == tenant_id, h.to_state == LeadState.DEAD, _between(h.created_at, start, end)
    )
    r = HumanReview
    reviews = select(
        func.count().filter(_between(r.created_at, start, end)),
        func.count().filter(_between(r.resolved_at, start, end)),
        func.count().filter(_between(r.sla_breached_at, start, end)),
    ).where(r.tenant_id == tenant_id)
    created, resolved, breached = (await session.execute(reviews)).one()
    return {
        "leads_contacted": int((await session.execute(contacted)).scalar_one()),
        "leads_converted": int((await session.execute(converted)).scalar_one()),
        "leads_marked_dead": int((await session.execute(dead)).scalar_one()),
        "reviews_created": int(created),
        "reviews_resolved": int(resolved),
        "reviews_sla_breached": int(breached),
    }


async def quota_capacity(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    stmt = select(func.coalesce(func.sum(WaPhoneNumber.daily_quota_limit), 0)).where(
        WaPhoneNumber.tenant_id == tenant_id, WaPhoneNumber.is_enabled.is_(True)
    )
    return int((await session.execute(stmt)).scalar_one())


async def upsert_stats(
    session: AsyncSession, tenant_id: uuid.UUID, day: date, values: dict[str, Any]
) -> None:
    stmt = insert(OutreachDailyStats).values(tenant_id=tenant_id, stat_date=day, **values)
    update = {k: stmt.excluded[k] for k in values} | {"computed_at": func.now(), "updated_at": func.now()}
    await session.execute(stmt.on_conflict_do_update(index_elements=["tenant_id", "stat_date"], set_=update))


async def stored(
    session: AsyncSession, tenant_id: uuid.UUID, first: date, last: date
) -> list[OutreachDailyStats]:
    stmt = (
        select(OutreachDailyStats)
        .where(OutreachDailyStats.tenant_id == tenant_id, OutreachDailyStats.stat_date.between(first, last))
        .order_by(OutreachDailyStats.stat_date)
    )
    return list((await session.execute(stmt)).scalars().all())


def _breakdown(tenant_id: uuid.UUID, key: str, start: datetime, end: datetime) -> Select[Any]:
    m = messages(tenant_id, events_since=start)
    column = getattr(m.c, key)
    out_ = m.c.direction == Direction.OUTBOUND
    sent = and_(out_, _between(m.c.sent_at, start, end), m.c.status.not_in(NOT_SENT))
    return (
        select(
            column.label("key"),
            func.count().filter(sent).label("sent"),
            func.count(distinct(m.c.lead_journey_id)).filter(sent).label("leads_contacted"),
            func.count()
            .filter(and_(out_, m.c.quota_cost == 1, _between(m.c.sent_at, start, end)))
            .label("new_contacts"),
        )
        .where(column.is_not(None))
        .group_by(column)
    )


async def breakdown(
    session: AsyncSession, tenant_id: uuid.UUID, key: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Per ``key`` (template_id, sequence_id, phone_id): messages sent, leads contacted, and the
    leads that replied / replied positively after a message of that key in the window."""
    rows = {
        str(r.key): dict(r._mapping)
        for r in (await session.execute(_breakdown(tenant_id, key, start, end))).all()
    }
    # every row counted here has a time in the window, so none was last updated before it
    m = messages(tenant_id, events_since=start)
    outbound = (
        select(m.c.lead_journey_id, getattr(m.c, key).label("key"), m.c.sent_at)
        .where(
            m.c.direction == Direction.OUTBOUND,
            _between(m.c.sent_at, start, end),
            getattr(m.c, key).is_not(None),
        )
        .subquery("o")
    )
    inbound = (
        select(m.c.lead_journey_id, m.c.created_at, m.c.sentiment_score)
        .where(m.c.direction == Direction.INBOUND, m.c.created_at >= start)
        .subquery("i")
    )
    replies = (
        select(
            outbound.c.key,
            func.count(distinct(inbound.c.lead_journey_id)).label("replied"),
            func.count(distinct(inbound.c.lead_journey_id))
            .filter(inbound.c.sentiment_score >= POSITIVE_REPLY_SCORE)
            .label("positive"),
        )
        .join(
            inbound,
            and_(
                inbound.c.lead_journey_id == outbound.c.lead_journey_id,
                inbound.c.created_at > outbound.c.sent_at,
            ),
        )
        .group_by(outbound.c.key)
    )
    for r in (await session.execute(replies)).all():
        entry = rows.setdefault(
            str(r.key), {"key": r.key, "sent": 0, "leads_contacted": 0, "new_contacts": 0}
        )
        entry["replied"], entry["positive"] = int(r.replied), int(r.positive)
    out = []
    for entry in rows.values():
        contacted = int(entry["leads_contacted"])
        replied, positive = int(entry.get("replied", 0)), int(entry.get("positive", 0))
        out.append(
            {
                "id": str(entry["key"]),
                "sent": int(entry["sent"]),
                "newContacts": int(entry["new_contacts"]),
                "leadsContacted": contacted,
                "leadsReplied": replied,
                "positiveReplies": positive,
                "replyRate": round(replied / contacted, 4) if contacted else 0.0,
                "positiveRepliesPerLeadContacted": round(positive / contacted, 4) if contacted else 0.0,
            }
        )
    return sorted(out, key=lambda e: (-e["sent"], e["id"]))


async def funnel(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, int]:
    j = GoldLeadJourney
    rows = (
        await session.execute(
            select(j.current_state, func.count()).where(j.tenant_id == tenant_id).group_by(j.current_state)
        )
    ).all()
    by_state = {str(getattr(s, "value", s)): int(n) for s, n in rows}
    contacted_ever = int(
        (
            await session.execute(
                select(func.count()).where(j.tenant_id == tenant_id, j.first_contact_at.is_not(None))
            )
        ).scalar_one()
    )
    replied_ever = int(
        (
            await session.execute(
                select(func.count()).where(j.tenant_id == tenant_id, j.last_reply_at.is_not(None))
            )
        ).scalar_one()
    )
    converted_ever = int(
        (
            await session.execute(
                select(func.count()).where(j.tenant_id == tenant_id, j.converted_at.is_not(None))
            )
        ).scalar_one()
    )
    total = sum(by_state.values())
    return {
        "total": total,
        "contacted": contacted_ever,
        "replied": replied_ever,
        "converted": converted_ever,
        **{f"state{s.title().replace('_', '')}": by_state.get(s, 0) for s in [x.value for x in LeadState]},
    }
