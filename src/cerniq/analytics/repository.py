"""SQL of the outreach analytics: daily figures from the communication log (live and archive),
the lead journeys, the state history and the review queue; the ``outreach_daily_stats`` UPSERT."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, and_, cast, distinct, func, select, true, tuple_, union_all
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.models import (
    GoldCommunicationLog,
    GoldCommunicationLogArchive,
    GoldLeadJourney,
    HumanReview,
    LeadStateHistory,
    OutreachDailyStats,
    Tenant,
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


async def tenant_ids(session: AsyncSession) -> list[uuid.UUID]:
    return list((await session.execute(select(Tenant.id))).scalars().all())


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


BREAKDOWN_KEYS = {"phones": "phone_id", "templates": "template_id", "sequences": "sequence_id"}
#: The counts of one key on one day, as stored in ``outreach_daily_stats.breakdowns``.
COUNTS = ("sent", "newContacts", "leadsContacted", "leadsReplied", "positiveReplies")

Breakdowns = dict[str, dict[str, dict[str, int]]]  # kind -> key -> count -> n


def _local_day(column: Any, tz: str) -> Any:
    return cast(func.timezone(tz, column), Date)


def _grouped_by_key(*columns: Any) -> Any:
    """One grouping set per breakdown key, each with the day."""
    day = columns[0]
    return func.grouping_sets(*(tuple_(day, c) for c in columns[1:]))


def _last_touch(inbound: Any) -> Any:
    """The last outbound message a lead was sent before the inbound row (live or archived): its
    phone, template and sequence are the ones the reply is credited to."""
    parts = []
    for m in (GoldCommunicationLog, GoldCommunicationLogArchive):
        parts.append(
            select(m.phone_id, m.template_id, m.sequence_id, m.created_at)
            .where(
                m.lead_journey_id == inbound.c.lead_journey_id,
                m.direction == Direction.OUTBOUND,
                m.sent_at < inbound.c.created_at,
            )
            .order_by(m.created_at.desc())
            .limit(1)
            .correlate(inbound)
        )
    both = union_all(*parts).subquery("touches")
    return (
        select(both.c.phone_id, both.c.template_id, both.c.sequence_id)
        .order_by(both.c.created_at.desc())
        .limit(1)
        .lateral("touch")
    )


def _add(out: dict[date, Breakdowns], day: date, kind: str, key: Any, **counts: int) -> None:
    entry = out.setdefault(day, {k: {} for k in BREAKDOWN_KEYS}).setdefault(kind, {})
    row = entry.setdefault(str(key), dict.fromkeys(COUNTS, 0))
    for name, n in counts.items():
        row[name] += int(n)


async def breakdowns_by_day(
    session: AsyncSession, tenant_id: uuid.UUID, start: datetime, end: datetime, tz: str
) -> dict[date, Breakdowns]:
    """Per day of ``tz`` in [start, end) and per phone, template and sequence: messages sent,
    new contacts, distinct leads sent a message that day, and distinct leads that replied that
    day crediting the key (all, and positively).

    A reply is credited to the phone, template and sequence of the last message the lead was
    sent before it (last touch), on the day it arrived: a closed day's figures never change, so
    ranges add up stored days. Two statements, one scan of the range's messages each."""
    m = messages(tenant_id, events_since=start)
    keys = [getattr(m.c, c) for c in BREAKDOWN_KEYS.values()]
    day = _local_day(m.c.sent_at, tz).label("day")
    sent = m.c.status.not_in(NOT_SENT)
    outbound = (
        select(
            day,
            *keys,
            *(func.grouping(k).label(f"g_{i}") for i, k in enumerate(keys)),
            func.count().filter(sent).label("sent"),
            func.count().filter(m.c.quota_cost == 1).label("new"),
            func.count(distinct(m.c.lead_journey_id)).filter(sent).label("contacted"),
        )
        .where(m.c.direction == Direction.OUTBOUND, _between(m.c.sent_at, start, end))
        .group_by(_grouped_by_key(day, *keys))
    )
    out: dict[date, Breakdowns] = {}
    kinds = list(BREAKDOWN_KEYS)
    for r in (await session.execute(outbound)).all():
        for i, kind in enumerate(kinds):
            key = r[1 + i]
            if r._mapping[f"g_{i}"] == 0 and key is not None:
                _add(out, r.day, kind, key, sent=r.sent, newContacts=r.new, leadsContacted=r.contacted)

    inbound = (
        select(m.c.lead_journey_id, m.c.created_at, m.c.sentiment_score)
        .where(m.c.direction == Direction.INBOUND, _between(m.c.created_at, start, end))
        .subquery("i")
    )
    touch = _last_touch(inbound)
    touch_keys = [touch.c.phone_id, touch.c.template_id, touch.c.sequence_id]
    reply_day = _local_day(inbound.c.created_at, tz).label("day")
    lead = distinct(inbound.c.lead_journey_id)
    replies = (
        select(
            reply_day,
            *touch_keys,
            *(func.grouping(k).label(f"g_{i}") for i, k in enumerate(touch_keys)),
            func.count(lead).label("replied"),
            func.count(lead).filter(inbound.c.sentiment_score >= POSITIVE_REPLY_SCORE).label("positive"),
        )
        .select_from(inbound.join(touch, true()))
        .group_by(_grouped_by_key(reply_day, *touch_keys))
    )
    for r in (await session.execute(replies)).all():
        for i, kind in enumerate(kinds):
            key = r[1 + i]
            if r._mapping[f"g_{i}"] == 0 and key is not None:
                _add(out, r.day, kind, key, leadsReplied=r.replied, positiveReplies=r.positive)
    return out


def breakdown_items(days: list[Breakdowns], kind: str) -> list[dict[str, Any]]:
    """The per-key items of ``kind`` over ``days`` (summed; a lead counts once per day it was
    sent a message, and once per day it replied), with the rates, most messages first."""
    totals: dict[str, dict[str, int]] = {}
    for figures in days:
        for key, counts in figures.get(kind, {}).items():
            row = totals.setdefault(key, dict.fromkeys(COUNTS, 0))
            for name in COUNTS:
                row[name] += int(counts.get(name, 0))
    out = []
    for key, row in totals.items():
        contacted, replied, positive = row["leadsContacted"], row["leadsReplied"], row["positiveReplies"]
        out.append(
            {
                "id": key,
                **row,
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
