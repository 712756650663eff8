"""Every console page over a large tenant: 1M leads and 10M messages by default.

    python bench/bench_console_scale.py [--leads 1000000] [--messages 10000000] [--small]
                                        [--repeat 3] [--plans] [--keep] [--only leads]

Creates ``cerniq_bench_scale_<pid>`` migrated to head, generates one tenant with set-based SQL
(one ``INSERT ... SELECT FROM generate_series`` per table, every index and constraint of
production in place): 20 phones, templates, sequences with steps and enrollments, campaigns,
companies and journeys spread over states, channels, phones, next actions, last contacts and
sentiment, messages over the last 90 days (both directions, every channel, many statuses), open
and resolved reviews, alerts, audit rows, state history and daily stats. It ANALYZEs, signs in
to the console with an admin API token and times the GET of every console page in process
(httpx over ASGI, no network), printing the median of ``--repeat`` runs and the number of SQL
statements each page ran. ``--plans`` prints the EXPLAIN ANALYZE of the slowest statement of
every page slower than 300 ms. ``--small`` is 50k leads and 500k messages. It asserts nothing
about time. The database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

PG_BASE = "postgresql+asyncpg://postgres@127.0.0.1:5432"
SLOW_MS = 300.0

# ---------------------------------------------------------------------------------------------
# Data: one statement per table. :tenant is the tenant id, :leads and :messages the sizes.

GENERATE: tuple[tuple[str, str], ...] = (
    (
        "phones",
        """
        INSERT INTO wa_phone_numbers (id, tenant_id, phone_number, phone_label, status, is_online,
            daily_quota_limit, total_messages_sent, total_leads_assigned, is_enabled, priority)
        SELECT 'phone_' || lpad(n::text, 2, '0'), CAST(:tenant AS uuid),
            '+4072200' || lpad(n::text, 4, '0'), 'Telefon ' || n,
            CAST(CASE n WHEN 18 THEN 'PAUSED' WHEN 19 THEN 'OFFLINE' WHEN 20 THEN 'BANNED'
                ELSE 'ACTIVE' END AS phone_status_enum),
            n < 19, 200, n * 1000, :leads / 20, n <> 20, n
        FROM generate_series(1, 20) AS n
        """,
    ),
    (
        "templates",
        """
        INSERT INTO outreach_templates (tenant_id, name, code, channel, subject, content, is_active,
            is_approved, current_version, times_used, replies, positive_replies)
        SELECT CAST(:tenant AS uuid), 'Șablon ' || n, 'tpl_' || n,
            CAST((ARRAY['WHATSAPP', 'EMAIL_COLD', 'EMAIL_WARM'])[1 + n % 3] AS channel_enum),
            'Subiect ' || n, 'Bună ziua {{firma}}, mesajul ' || n, true, true, 1,
            n * 1000, n * 50, n * 20
        FROM generate_series(1, 12) AS n
        """,
    ),
    (
        "template versions",
        """
        INSERT INTO template_versions (tenant_id, template_id, version_number, subject, content,
            is_ab_variant, ab_weight, times_used)
        SELECT tenant_id, id, 1, subject, content, false, 100, times_used
        FROM outreach_templates WHERE tenant_id = CAST(:tenant AS uuid)
        """,
    ),
    (
        "sequences",
        """
        INSERT INTO outreach_sequences (tenant_id, name, code, status, is_active, primary_channel,
            fallback_channel, max_steps, total_enrolled, total_completed, total_converted)
        SELECT CAST(:tenant AS uuid), 'Secvența ' || n, 'seq_' || n,
            CAST(CASE WHEN n <= 4 THEN 'ACTIVE' ELSE 'PAUSED' END AS sequence_status_enum), n <= 4,
            'WHATSAPP', 'EMAIL_COLD', 3, :leads / 25, :leads / 100, :leads / 500
        FROM generate_series(1, 5) AS n
        """,
    ),
    (
        "sequence steps",
        """
        INSERT INTO outreach_sequence_steps (tenant_id, sequence_id, step_number, delay_hours,
            channel, template_id, is_active)
        SELECT s.tenant_id, s.id, k, 24 * (k - 1),
            CAST(CASE WHEN k = 3 THEN 'EMAIL_COLD' ELSE 'WHATSAPP' END AS channel_enum),
            (SELECT t.id FROM outreach_templates t WHERE t.tenant_id = s.tenant_id
                ORDER BY t.code OFFSET k LIMIT 1), true
        FROM outreach_sequences s CROSS JOIN generate_series(1, 3) AS k
        WHERE s.tenant_id = CAST(:tenant AS uuid)
        """,
    ),
    (
        "campaigns",
        """
        INSERT INTO email_campaigns (tenant_id, name, instantly_campaign_id, status, sending_domain,
            stats)
        SELECT CAST(:tenant AS uuid), 'Campanie ' || n, 'inst-' || n,
            CASE WHEN n % 3 = 0 THEN 'PAUSED' ELSE 'ACTIVE' END, 'ferma' || n || '.ro',
            jsonb_build_object('sent', n * 1000, 'opens', n * 300, 'replies', n * 20)
        FROM generate_series(1, 6) AS n
        """,
    ),
    (
        "companies and journeys",
        """
        WITH seqs AS (
            SELECT array_agg(id ORDER BY code) AS ids FROM outreach_sequences
            WHERE tenant_id = CAST(:tenant AS uuid)
        ), c AS (
            INSERT INTO gold_companies (tenant_id, cui, denumire, judet, localitate,
                email_principal, telefon_principal, is_agricultural, lead_score, source,
                created_at, updated_at)
            SELECT CAST(:tenant AS uuid), (30000000 + n)::text,
                (ARRAY['Agro', 'Ferma', 'Cereale', 'Bio', 'Legume'])[1 + n % 5] || ' ' || n ||
                    (ARRAY[' SRL', ' SA', ' PFA', ' II'])[1 + n % 4],
                (ARRAY['Timiș', 'Arad', 'Dolj', 'Iași', 'Cluj'])[1 + n % 5],
                'Localitate ' || (n % 300), 'office' || n || '@firma' || n || '.ro',
                '+40256' || lpad((n % 1000000)::text, 6, '0'), true, n % 100, 'csv',
                now() - make_interval(secs => 180 * 86400.0 * (:leads - n) / :leads),
                now() - make_interval(secs => 180 * 86400.0 * (:leads - n) / :leads)
            FROM generate_series(1, :leads) AS n
            RETURNING id, cui, created_at
        ), n AS (
            SELECT c.id, c.created_at, (c.cui::bigint - 30000000) AS n,
                ((c.cui::bigint - 30000000) * 7919) % 100 AS b FROM c
        )
        INSERT INTO gold_lead_journey (tenant_id, lead_id, email, mobile_e164, current_state,
            state_changed_at, assigned_phone_id, assigned_at, first_contact_channel,
            last_channel_used, current_sequence_id, sequence_step, sequence_started_at,
            next_action_at, sentiment_score, engagement_score, reply_count, messages_sent,
            requires_human_review, is_human_controlled, first_contact_at, last_contact_at,
            last_reply_at, created_at, updated_at)
        SELECT CAST(:tenant AS uuid), n.id, 'office' || n.n || '@firma' || n.n || '.ro',
            '+40722' || lpad((n.n % 1000000)::text, 6, '0'),
            CAST(CASE WHEN b < 45 THEN 'COLD' WHEN b < 70 THEN 'CONTACTED_WA'
                WHEN b < 82 THEN 'CONTACTED_EMAIL' WHEN b < 90 THEN 'WARM_REPLY'
                WHEN b < 93 THEN 'NEGOTIATION' WHEN b < 95 THEN 'CONVERTED'
                WHEN b < 99 THEN 'DEAD' ELSE 'PAUSED' END AS current_state_enum),
            n.created_at,
            CASE WHEN b >= 45 THEN 'phone_' || lpad((1 + n.n % 20)::text, 2, '0') END,
            CASE WHEN b >= 45 THEN n.created_at END,
            CASE WHEN b >= 45 THEN CAST(CASE WHEN b BETWEEN 70 AND 81 THEN 'EMAIL_COLD'
                ELSE 'WHATSAPP' END AS channel_enum) END,
            CASE WHEN b >= 45 THEN CAST((ARRAY['WHATSAPP', 'WHATSAPP', 'EMAIL_COLD',
                'EMAIL_WARM'])[1 + n.n % 4] AS channel_enum) END,
            CASE WHEN b >= 30 AND b < 90 THEN (SELECT ids FROM seqs)[1 + n.n % 5] END,
            CASE WHEN b >= 30 AND b < 90 THEN 1 + n.n % 3 ELSE 0 END,
            CASE WHEN b >= 30 AND b < 90 THEN n.created_at END,
            CASE WHEN b < 90 AND n.n % 3 <> 0
                THEN now() + make_interval(secs => ((n.n * 104729) % (60 * 86400)) - 30 * 86400) END,
            CASE WHEN b >= 82 AND b < 95 THEN ((n.n * 31) % 201) - 100 ELSE 0 END,
            (n.n * 13) % 101,
            CASE WHEN b >= 82 AND b < 95 THEN 1 + n.n % 4 ELSE 0 END,
            CASE WHEN b >= 45 THEN 1 + n.n % 6 ELSE 0 END,
            b >= 82 AND b < 95 AND n.n % 50 = 0,
            b >= 82 AND b < 95 AND n.n % 200 = 0,
            CASE WHEN b >= 45 THEN now() - make_interval(secs => (n.n * 7) % (90 * 86400)) END,
            CASE WHEN b >= 45 THEN now() - make_interval(secs => (n.n * 11) % (90 * 86400)) END,
            CASE WHEN b >= 82 AND b < 95 THEN now() - make_interval(secs => (n.n * 11) % (90 * 86400)) END,
            n.created_at, n.created_at
        FROM n
        """,
    ),
    (
        "enrollments",
        # Enrolled leads still COLD have had nothing sent yet (messages_sent = 0).
        """
        INSERT INTO sequence_enrollments (tenant_id, lead_journey_id, sequence_id, current_step,
            total_steps, status, enrolled_at, next_step_at, messages_sent)
        SELECT j.tenant_id, j.id, j.current_sequence_id,
            CASE WHEN j.current_state = 'COLD' THEN 0 ELSE j.sequence_step END, 3,
            CAST(CASE WHEN j.current_state IN ('COLD', 'CONTACTED_WA', 'CONTACTED_EMAIL')
                THEN 'ACTIVE' ELSE 'STOPPED' END AS enrollment_status_enum),
            j.sequence_started_at, j.next_action_at,
            CASE WHEN j.current_state = 'COLD' THEN 0 ELSE j.sequence_step END
        FROM gold_lead_journey j
        WHERE j.tenant_id = CAST(:tenant AS uuid) AND j.current_sequence_id IS NOT NULL
        """,
    ),
    (
        "state history",
        """
        INSERT INTO lead_state_history (tenant_id, lead_journey_id, from_state, to_state, trigger,
            reason, actor, created_at)
        SELECT j.tenant_id, j.id, NULL, j.current_state, 'IMPORT', 'bench', 'bench', j.created_at
        FROM gold_lead_journey j WHERE j.tenant_id = CAST(:tenant AS uuid)
        """,
    ),
    (
        "messages",
        # Lead k of the journeys (in creation order, from 0) gets message n when n*7919 mod
        # leads = k; lead 0 gets every 1000th message too (the "lead with many messages").
        # Times grow with n, over the last 90 days; rows are written in time order (ORDER BY:
        # the join alone scatters a day's messages over the whole table, where production
        # appends them together).
        """
        WITH leads AS MATERIALIZED (
            SELECT id, row_number() OVER (ORDER BY created_at, id) - 1 AS k
            FROM gold_lead_journey WHERE tenant_id = CAST(:tenant AS uuid)
        ), total AS MATERIALIZED (
            SELECT count(*) AS leads FROM leads
        ), tpl AS MATERIALIZED (
            SELECT array_agg(id ORDER BY code) AS ids FROM outreach_templates
            WHERE tenant_id = CAST(:tenant AS uuid)
        ), camp AS MATERIALIZED (
            SELECT array_agg(id ORDER BY name) AS ids FROM email_campaigns
            WHERE tenant_id = CAST(:tenant AS uuid)
        ), seq AS MATERIALIZED (
            SELECT array_agg(id ORDER BY code) AS ids FROM outreach_sequences
            WHERE tenant_id = CAST(:tenant AS uuid)
        ), m AS (
            SELECT n, n % 10 AS d, n % 7 AS ch,
                now() - make_interval(secs => 90 * 86400.0 * (:messages - n) / :messages) AS at,
                CASE WHEN n % 1000 = 0 THEN 0 ELSE (n * 7919) % total.leads END AS k
            FROM generate_series(1, CAST(:messages AS bigint)) AS n, total
        )
        INSERT INTO gold_communication_log (tenant_id, lead_journey_id, channel, direction,
            status, origin, template_id, content, external_message_id, thread_id, phone_id,
            phone_number, email_campaign_id, sequence_id, sequence_step, quota_cost, quota_date,
            sentiment_score, sentiment_analyzed_at, status_updated_at, sent_at, delivered_at,
            read_at, created_at, updated_at)
        SELECT CAST(:tenant AS uuid),
            leads.id,
            CAST(CASE WHEN m.ch < 4 THEN 'WHATSAPP' WHEN m.ch < 6 THEN 'EMAIL_COLD'
                ELSE 'EMAIL_WARM' END AS channel_enum),
            CAST(CASE WHEN m.d < 7 THEN 'OUTBOUND' ELSE 'INBOUND' END AS message_direction_enum),
            CAST(CASE WHEN m.d >= 7 THEN 'RECEIVED'
                ELSE (ARRAY['SENT', 'DELIVERED', 'READ', 'REPLIED', 'DELIVERED', 'FAILED',
                    'BOUNCED', 'READ', 'DELIVERED', 'QUEUED'])[1 + (m.n / 10) % 10] END
                AS message_status_enum),
            CASE WHEN m.d >= 7 THEN 'WEBHOOK'
                WHEN (m.n / 10) % 10 = 9 THEN 'OPERATOR' ELSE 'AUTOMATION' END,
            CASE WHEN m.d < 7 THEN tpl.ids[1 + m.n % 12] END,
            'Mesaj ' || m.n || ': bună ziua, vă contactăm despre analiza de sol',
            'ext-' || m.n, 'thread-' || m.k,
            CASE WHEN m.ch < 4 THEN 'phone_' || lpad((1 + m.n % 20)::text, 2, '0') END,
            CASE WHEN m.ch < 4 THEN '+40722' || lpad((m.n % 1000000)::text, 6, '0') END,
            CASE WHEN m.ch IN (4, 5) THEN camp.ids[1 + m.n % 6] END,
            CASE WHEN m.d < 7 AND m.n % 2 = 0 THEN seq.ids[1 + m.n % 5] END,
            CASE WHEN m.d < 7 AND m.n % 2 = 0 THEN 1 + m.n % 3 END,
            CASE WHEN m.ch < 4 AND m.d < 7 AND m.n % 5 = 0 THEN 1 ELSE 0 END,
            CASE WHEN m.ch < 4 AND m.d < 7 THEN (m.at AT TIME ZONE 'Europe/Bucharest')::date END,
            CASE WHEN m.d >= 7 THEN ((m.n * 31) % 201) - 100 END,
            CASE WHEN m.d >= 7 THEN m.at END,
            m.at + interval '5 minutes',
            CASE WHEN m.d < 7 THEN m.at + interval '1 second' END,
            CASE WHEN m.d < 7 AND (m.n / 10) % 10 IN (1, 2, 3, 4, 7, 8)
                THEN m.at + interval '2 minutes' END,
            CASE WHEN m.d < 7 AND (m.n / 10) % 10 IN (2, 3, 7) THEN m.at + interval '5 minutes' END,
            m.at,
            m.at + make_interval(secs => (m.n % 600))
        FROM m JOIN leads ON leads.k = m.k, tpl, camp, seq
        ORDER BY m.n
        """,
    ),
    (
        "reviews",
        # 1 in 100 leads has had a review; 1 in 10 of those is still open.
        """
        INSERT INTO human_review_queue (tenant_id, lead_journey_id, reason, priority, status,
            trigger_content, trigger_sentiment_score, suggested_response, confidence_score,
            sla_due_at, sla_breached, resolution_action, resolved_by, resolved_at, created_at,
            updated_at)
        SELECT j.tenant_id, j.id,
            CAST((ARRAY['NEGATIVE_SENTIMENT', 'QUESTION', 'AI_DRAFT', 'KEYWORD_TRIGGER'])[1 + k % 4]
                AS review_reason_enum),
            CAST((ARRAY['URGENT', 'HIGH', 'MEDIUM', 'LOW'])[1 + k % 4] AS review_priority_enum),
            CAST(CASE WHEN k % 10 = 0 THEN (ARRAY['PENDING', 'ASSIGNED', 'IN_PROGRESS',
                'ESCALATED'])[1 + (k / 10) % 4] ELSE 'RESOLVED' END AS review_status_enum),
            'Cât costă analiza de sol?', -20, 'Vă trimitem oferta.', 0.6,
            t.at + interval '2 hours', k % 7 = 0,
            CASE WHEN k % 10 <> 0 THEN CAST('APPROVED' AS review_action_enum) END,
            CASE WHEN k % 10 <> 0 THEN 'bench' END,
            CASE WHEN k % 10 <> 0 THEN t.at + interval '1 hour' END,
            t.at, t.at
        FROM (
            SELECT id, tenant_id, row_number() OVER (ORDER BY created_at, id) AS k
            FROM gold_lead_journey WHERE tenant_id = CAST(:tenant AS uuid)
        ) AS j
        CROSS JOIN LATERAL (
            SELECT now() - make_interval(secs => (j.k * 7919) % (90 * 86400)) AS at
        ) AS t
        WHERE j.k % 100 = 0
        """,
    ),
    (
        "alerts",
        """
        INSERT INTO alerts (tenant_id, alert_type, severity, status, dedup_key, subject, title,
            message, occurrences, first_seen_at, last_seen_at, resolved_at, created_at, updated_at)
        SELECT CAST(:tenant AS uuid),
            (ARRAY['phone\\:offline', 'queue\\:backlog', 'email\\:bounce_rate', 'review\\:sla'])[1 + n % 4],
            CAST((ARRAY['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'])[1 + n % 4] AS alert_severity_enum),
            CAST(CASE WHEN n % 50 = 0 THEN 'OPEN' WHEN n % 50 = 1 THEN 'ACKNOWLEDGED'
                ELSE 'RESOLVED' END AS alert_status_enum),
            'bench\\:' || n, 'phone_' || lpad((1 + n % 20)::text, 2, '0'), 'Alertă ' || n,
            'Detalii ' || n, 1 + n % 5, a.at, a.at + interval '10 minutes',
            CASE WHEN n % 50 > 1 THEN a.at + interval '1 hour' END, a.at, a.at
        FROM generate_series(1, greatest(:leads / 200, 100)) AS n
        CROSS JOIN LATERAL (SELECT now() - make_interval(secs => (n * 7919) % (90 * 86400)) AS at) a
        """,
    ),
    (
        "audit",
        """
        INSERT INTO audit_log (tenant_id, actor_type, actor_id, actor_label, action, entity_type,
            entity_id, reason, after, ip_address, created_at)
        SELECT CAST(:tenant AS uuid), CASE WHEN n % 3 = 0 THEN 'token' ELSE 'user' END,
            'actor-' || n % 7,
            (ARRAY['ana@ferma.ro', 'ion@ferma.ro', 'token\\:import', 'maria@ferma.ro',
                'cli\\:ops', 'dan@ferma.ro', 'elena@ferma.ro'])[1 + n % 7],
            (ARRAY['lead.update', 'review.resolve', 'review.assign', 'phone.pause',
                'console.sign_in', 'sequence.enroll', 'template.update', 'lead.takeover'])[1 + n % 8],
            (ARRAY['lead', 'review', 'review', 'phone', 'session', 'sequence', 'template',
                'lead'])[1 + n % 8],
            md5(n::text), 'bench', jsonb_build_object('n', n), '203.0.113.9',
            now() - make_interval(secs => 90 * 86400.0 * (:audit - n) / :audit)
        FROM generate_series(1, :audit) AS n
        """,
    ),
    (
        "daily stats",
        """
        INSERT INTO outreach_daily_stats (tenant_id, stat_date, wa_new_contacts_sent,
            wa_followups_sent, wa_replies_received, email_cold_sent, email_warm_sent,
            leads_contacted, leads_replied, leads_positive_replies, computed_at)
        SELECT CAST(:tenant AS uuid), current_date - d, :messages / 300, :messages / 400,
            :messages / 3000, :messages / 500, :messages / 900, :messages / 200, :messages / 3000,
            :messages / 9000, now()
        FROM generate_series(1, 90) AS d
        """,
    ),
)

TABLES = (
    "wa_phone_numbers",
    "outreach_templates",
    "template_versions",
    "outreach_sequences",
    "outreach_sequence_steps",
    "email_campaigns",
    "gold_companies",
    "gold_lead_journey",
    "sequence_enrollments",
    "lead_state_history",
    "gold_communication_log",
    "human_review_queue",
    "alerts",
    "audit_log",
    "outreach_daily_stats",
)


@dataclass
class Statement:
    ms: float
    sql: str
    params: Any


@dataclass
class Recorder:
    """The SQL statements run while ``active`` (with their duration), for the slow pages."""

    active: bool = False
    statements: list[Statement] = field(default_factory=list)


def instrument(recorder: Recorder) -> None:
    from sqlalchemy import event

    from cerniq.kit.db import get_engine

    engine = get_engine().sync_engine

    @event.listens_for(engine, "before_cursor_execute")
    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        conn.info["bench_started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if recorder.active:
            ms = (time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())) * 1000
            recorder.statements.append(Statement(ms, statement, params))


def pages(lead_id: str, many_id: str, phone: str) -> list[tuple[str, str]]:
    """(label, path) of every page timed."""
    out = [("dashboard", "/console/dashboard"), ("leads (default)", "/console/leads")]
    for sort in ("nextActionAt", "lastContactAt", "createdAt", "sentimentScore", "companyName"):
        for order in ("asc", "desc"):
            out.append((f"leads sort {sort} {order}", f"/console/leads?sortBy={sort}&sortOrder={order}"))
    out += [
        ("leads page 2000", "/console/leads?page=2000"),
        ("leads page 2000 lastContact desc", "/console/leads?sortBy=lastContactAt&sortOrder=desc&page=2000"),
        ("leads state=WARM_REPLY", "/console/leads?state=WARM_REPLY"),
        ("leads state=COLD", "/console/leads?state=COLD"),
        ("leads channel=EMAIL_COLD", "/console/leads?channel=EMAIL_COLD"),
        ("leads hasReply=1", "/console/leads?hasReply=1"),
        ("leads hasReply=0", "/console/leads?hasReply=0"),
        ("leads needsReview=1", "/console/leads?needsReview=1"),
        ("leads needsReview=0", "/console/leads?needsReview=0"),
        ("leads phone", f"/console/leads?phone={phone}"),
        ("leads search name", "/console/leads?search=Cereale+1234"),
        ("leads search phone", "/console/leads?search=0722+012+345"),
        ("lead detail (many messages)", f"/console/leads/{many_id}"),
        ("lead detail", f"/console/leads/{lead_id}"),
    ]
    out += [(f"reviews {tab}", f"/console/reviews?tab={tab}") for tab in ("URGENT", "HIGH", "MEDIUM", "LOW")]
    out += [
        ("phones", "/console/phones"),
        ("sequences", "/console/sequences"),
        ("templates", "/console/templates"),
        ("campaigns", "/console/campaigns"),
        ("queues", "/console/queues"),
        ("alerts", "/console/alerts"),
        ("analytics (7 days)", "/console/analytics"),
        ("analytics (90 days)", "/console/analytics?from={d90}"),
        ("audit", "/console/audit"),
        ("audit action=review.", "/console/audit?action=review."),
        ("audit actor=ana", "/console/audit?actor=ana"),
        ("users", "/console/users"),
        ("events once", "/console/events?once=1"),
    ]
    return out


async def explain(sql: str, params: Any) -> str:
    from cerniq.kit.db import get_engine

    async with get_engine().connect() as conn:
        rows = await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        text_plan = "\n".join("      " + r[0] for r in rows)
        await conn.rollback()
    return text_plan


async def run(args: argparse.Namespace) -> None:

    from cerniq.auth import service as auth_service
    from cerniq.config import get_settings
    from cerniq.kit.db import transaction
    from cerniq.models.enums import Role

    settings = get_settings()
    async with transaction() as session:
        tenant = await auth_service.ensure_tenant(session, settings.default_tenant_slug, "Bench")
        if args.reuse:
            _row, token = await auth_service.create_token(
                session, tenant_id=tenant.id, role=Role.ADMIN, name="bench"
            )
            await session.commit()
            await background_jobs(tenant.id)
            await time_pages(args, tenant.id, token)
            return
        await auth_service.create_user(
            session,
            tenant_id=tenant.id,
            email="ana@ferma.ro",
            display_name="Ana",
            role=Role.OPERATOR,
            password="parola-sigura-1",
        )
        _row, token = await auth_service.create_token(
            session, tenant_id=tenant.id, role=Role.ADMIN, name="bench"
        )
    sizes = {
        "tenant": str(tenant.id),
        "leads": args.leads,
        "messages": args.messages,
        "audit": args.leads // 5,
    }
    if not args.reuse:
        await generate(sizes)
    await background_jobs(tenant.id)
    await time_pages(args, tenant.id, token)


async def background_jobs(tenant_id: Any) -> None:
    """What the workers' jobs leave for the pages, timed: every closed day's per phone / template
    / sequence breakdowns (``cerniq report backfill``, as an upgrade runs it once; the 00:10 job
    after), and the minute jobs' roll-up of today and counts (``analytics.snapshots``)."""
    from datetime import timedelta

    from cerniq.analytics import service, snapshots
    from cerniq.kit.db import transaction

    t0 = time.perf_counter()
    last = service.today() - timedelta(days=1)
    async with transaction() as session:
        filled = await service.backfill(session, tenant_id, last - timedelta(days=91), last)
    print(f"  {'backfill breakdowns':<24} {len(filled):>12,} days {time.perf_counter() - t0:>7.1f} s")
    t0 = time.perf_counter()
    async with transaction() as session:
        await service.rollup_all(session, service.today())
    print(f"  {'minute roll-up of today':<24} {'':>17} {time.perf_counter() - t0:>7.1f} s")
    # what the minute roll-up costs at the end of a day (today is as long as the clock says)
    t0 = time.perf_counter()
    async with transaction() as session:
        await service.rollup(session, tenant_id, last)
        await session.rollback()
    print(f"  {'roll-up of a whole day':<24} {'':>17} {time.perf_counter() - t0:>7.1f} s")
    t0 = time.perf_counter()
    async with transaction() as session:
        await snapshots.refresh(session)
    print(f"  {'minute job counts':<24} {'':>17} {time.perf_counter() - t0:>7.1f} s\n")


async def baselines(tenant_id: Any, repeat: int) -> None:
    """The baseline, in the same run: what the pages' figures cost counted live from the
    journeys and messages, as the pages did before the roll-ups, snapshots and capped counts."""
    from datetime import timedelta

    from sqlalchemy import func, select

    from cerniq.analytics import repository as analytics_repository
    from cerniq.analytics import service
    from cerniq.kit.db import transaction
    from cerniq.models import GoldLeadJourney
    from cerniq.phones import repository as phones_repository
    from cerniq.sequences import repository as sequences_repository

    today = service.today()
    cases: list[tuple[str, Any]] = [
        (
            "exact count of every lead",
            lambda s: s.execute(select(func.count()).where(GoldLeadJourney.tenant_id == tenant_id)),
        ),
        ("funnel counted live", lambda s: analytics_repository.funnel(s, tenant_id)),
        ("sequence figures counted live", lambda s: sequences_repository.enrollment_stats(s, tenant_id)),
        ("leads per phone counted live", lambda s: phones_repository.assigned_lead_counts(s, tenant_id)),
        ("a whole day's figures live", lambda s: service.compute(s, tenant_id, today - timedelta(days=1))),
        (
            "7 days of breakdowns live",
            lambda s: service.compute_breakdowns(
                s, tenant_id, [today - timedelta(days=n) for n in range(7, 0, -1)]
            ),
        ),
        (
            "90 days of breakdowns live",
            lambda s: service.compute_breakdowns(
                s, tenant_id, [today - timedelta(days=n) for n in range(90, 0, -1)]
            ),
        ),
    ]
    print("\nbaseline: the same figures counted live")
    for label, work in cases:
        times = []
        for _ in range(1 if "90 days" in label else repeat):
            t0 = time.perf_counter()
            async with transaction() as session:
                await work(session)
            times.append((time.perf_counter() - t0) * 1000)
        print(f"{label:<36} {statistics.median(times):>14.1f} ms", flush=True)


async def generate(sizes: dict[str, Any]) -> None:
    from sqlalchemy import text

    from cerniq.kit.db import get_engine

    started = time.perf_counter()
    for label, sql in GENERATE:
        t0 = time.perf_counter()
        async with get_engine().begin() as conn:
            result = await conn.execute(text(sql), {k: v for k, v in sizes.items() if f":{k}" in sql})
        print(f"  {label:<24} {result.rowcount:>12,} rows {time.perf_counter() - t0:>7.1f} s", flush=True)
    t0 = time.perf_counter()
    async with get_engine().connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in TABLES:
            await conn.execute(text(f"VACUUM ANALYZE {table}"))
    print(f"  {'vacuum analyze':<24} {'':>17} {time.perf_counter() - t0:>7.1f} s")
    print(
        f"generated {sizes['leads']:,} leads, {sizes['messages']:,} messages"
        f" in {time.perf_counter() - started:.0f} s\n"
    )


async def time_pages(args: argparse.Namespace, tenant_id: Any, token: str) -> None:
    import httpx
    from sqlalchemy import text

    from cerniq.app import create_app
    from cerniq.config import get_settings
    from cerniq.kit.clock import utcnow
    from cerniq.kit.db import dispose_engines, get_engine
    from cerniq.kit.redis import close_redis

    tenant = type("T", (), {"id": tenant_id})
    settings = get_settings()
    async with get_engine().connect() as conn:
        many_id = (
            await conn.execute(
                text("SELECT id FROM gold_lead_journey WHERE tenant_id = :t ORDER BY created_at, id LIMIT 1"),
                {"t": tenant.id},
            )
        ).scalar_one()
        lead_id = (
            await conn.execute(
                text(
                    "SELECT lead_journey_id FROM gold_communication_log WHERE tenant_id = :t "
                    "AND lead_journey_id <> :m ORDER BY created_at DESC LIMIT 1"
                ),
                {"t": tenant.id, "m": many_id},
            )
        ).scalar_one()
        many_count = (
            await conn.execute(
                text("SELECT count(*) FROM gold_communication_log WHERE lead_journey_id = :m"), {"m": many_id}
            )
        ).scalar_one()
    print(f"lead with many messages: {many_id} ({many_count:,} messages)")

    recorder = Recorder()
    instrument(recorder)
    d90 = utcnow().date().toordinal() - 89
    from datetime import date

    d90_text = date.fromordinal(d90).isoformat()
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
    results: list[tuple[str, float, int, int, list[Statement]]] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=600) as client:
        signed = await client.post("/console/login", data={"token": token, "next": "/console/dashboard"})
        assert signed.status_code == 303 and "login" not in signed.headers["location"], signed.headers
        for label, path in pages(str(lead_id), str(many_id), "phone_03"):
            path = path.replace("{d90}", d90_text)
            if args.only and args.only not in label:
                continue
            times: list[float] = []
            status = 0
            slowest: list[Statement] = []
            count = 0
            for i in range(args.repeat + 1):  # the first run warms caches and is not counted
                recorder.statements = []
                recorder.active = True
                t0 = time.perf_counter()
                response = await client.get(path)
                elapsed = (time.perf_counter() - t0) * 1000
                recorder.active = False
                status = response.status_code
                if i:
                    times.append(elapsed)
                    count = len(recorder.statements)
                    slowest = sorted(recorder.statements, key=lambda s: -s.ms)
            median = statistics.median(times)
            results.append((label, median, status, count, slowest))
            mark = "  SLOW" if median > SLOW_MS else ""
            print(f"{label:<36} {status:>4} {median:>9.1f} ms {count:>4} stmts{mark}", flush=True)

    if not args.only:
        await baselines(tenant.id, args.repeat)

    if args.plans:
        for label, median, _status, _count, slowest in results:
            if median <= SLOW_MS or not slowest:
                continue
            print(f"\n--- {label}: {median:.0f} ms; its slowest statements:")
            for statement in slowest[:3]:
                print(f"  {statement.ms:7.1f} ms  " + " ".join(statement.sql.split())[:600])
            top = slowest[0]
            print(f"  params of the first: {str(top.params)[:300]}")
            print(await explain(top.sql, top.params))
    await close_redis()
    await dispose_engines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--small", action="store_true", help="50,000 leads and 500,000 messages")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--plans", action="store_true", help=f"EXPLAIN ANALYZE of pages over {SLOW_MS:.0f} ms"
    )
    parser.add_argument("--only", help="time only the pages whose label contains this")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument(
        "--reuse", action="store_true", help="time the pages of --url, kept by an earlier --keep run"
    )
    parser.add_argument("--url", help="the database to create (default cerniq_bench_scale_<pid>)")
    args = parser.parse_args()
    if args.small:
        args.leads, args.messages = 50_000, 500_000
    url = args.url or f"{PG_BASE}/cerniq_bench_scale_{os.getpid()}"
    os.environ["CERNIQ_DATABASE_URL"] = url
    os.environ.setdefault("CERNIQ_LOG_LEVEL", "WARNING")
    os.environ.setdefault("CERNIQ_REDIS_URL", "redis://127.0.0.1:6379/14")
    os.environ.setdefault("CERNIQ_QUEUE_REDIS_DB", "15")
    from cerniq.kit.migrate import drop_database, ensure_database_exists, upgrade_database

    sizes = "reused as it is" if args.reuse else f"{args.leads:,} leads, {args.messages:,} messages"
    print(f"database {url.rsplit('/', 1)[1]}: {sizes}")
    if args.reuse and not args.url:
        parser.error("--reuse needs the --url of a kept database")
    if not args.reuse:
        drop_database(url)
        ensure_database_exists(url)
    upgrade_database(url)
    try:
        asyncio.run(run(args))
    finally:
        if not args.keep and not args.reuse:
            drop_database(url)


if __name__ == "__main__":
    main()
