"""The runbook's psql statements (spec/runbook-etapa2.md), run as written against the migrated
schema, plus the schema behaviour the rest of the system relies on (phone ids, defaults, the
one-in-flight rule, the archive). One scratch database for the module; tables emptied per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, TextClause, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from cerniq.config import Settings
from cerniq.kit.migrate import drop_database, ensure_database_exists, to_sync_url, upgrade_database
from cerniq.models import (
    Base,
    GoldCommunicationLog,
    GoldCompany,
    GoldLeadJourney,
    Tenant,
    WaPhoneNumber,
)
from cerniq.models.enums import Channel, Direction, LeadState, MessageStatus, PhoneStatus


@pytest.fixture(scope="module")
def db_url() -> Iterator[str]:
    base = make_url(Settings().database_url)
    url = to_sync_url(base.set(database=f"cerniq_sql_{uuid.uuid4().hex[:12]}"))
    ensure_database_exists(url)
    upgrade_database(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_engine(db_url, poolclass=NullPool)
    yield eng
    eng.dispose()


@pytest.fixture
def tenant_id(engine: Engine) -> uuid.UUID:
    """An empty database with one tenant; phone ids restart at phone_01."""
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(text("ALTER SEQUENCE wa_phone_numbers_id_seq RESTART WITH 1"))
        tenant: uuid.UUID = conn.execute(
            text("INSERT INTO tenants (slug, name) VALUES ('default', 'Default') RETURNING id")
        ).scalar_one()
        return tenant


@pytest.fixture
def conn(engine: Engine, tenant_id: uuid.UUID) -> Iterator[Connection]:
    with engine.begin() as connection:
        yield connection


def add_phone(conn: Connection, tenant_id: uuid.UUID, number: str, label: str) -> str:
    """Runbook 2.3, step 2, with the placeholders filled in."""
    phone_id: str = conn.execute(
        text(
            """
            INSERT INTO wa_phone_numbers (
              tenant_id, phone_number, phone_label, timelinesai_account_id,
              status, daily_quota_limit, is_enabled
            ) VALUES (
              :tenant, :number, :label, 'acc_1',
              'ACTIVE', 200, true
            ) RETURNING id
            """
        ),
        {"tenant": tenant_id, "number": number, "label": label},
    ).scalar_one()
    return phone_id


def insert(conn: Connection, table: str, **values: Any) -> Any:
    """INSERT one row and return its id; ``text(...)`` values are SQL, the rest parameters."""
    params = {k: v for k, v in values.items() if not isinstance(v, TextClause)}
    sql_values = ", ".join(v.text if isinstance(v, TextClause) else f":{k}" for k, v in values.items())
    return conn.execute(
        text(f"INSERT INTO {table} ({', '.join(values)}) VALUES ({sql_values}) RETURNING id"), params
    ).scalar_one()


def add_lead(
    conn: Connection,
    tenant_id: uuid.UUID,
    cui: str,
    state: str = "COLD",
    phone: str | None = None,
    **extra: Any,
) -> uuid.UUID:
    company = insert(conn, "gold_companies", tenant_id=tenant_id, denumire=f"Agro {cui} SRL", cui=cui)
    return insert(  # type: ignore[no-any-return]
        conn,
        "gold_lead_journey",
        tenant_id=tenant_id,
        lead_id=company,
        current_state=state,
        assigned_phone_id=phone,
        **extra,
    )


def add_message(conn: Connection, tenant_id: uuid.UUID, journey: uuid.UUID, **values: Any) -> uuid.UUID:
    row: dict[str, Any] = {"channel": "WHATSAPP", "direction": "OUTBOUND", "status": "SENT"}
    row.update(values)
    return insert(conn, "gold_communication_log", tenant_id=tenant_id, lead_journey_id=journey, **row)  # type: ignore[no-any-return]


def add_review(
    conn: Connection, tenant_id: uuid.UUID, journey: uuid.UUID, priority: str, **extra: Any
) -> uuid.UUID:
    row: dict[str, Any] = {"reason": "NEGATIVE_SENTIMENT", "sla_due_at": text("now() + interval '1 hour'")}
    row.update(extra)
    return insert(  # type: ignore[no-any-return]
        conn, "human_review_queue", tenant_id=tenant_id, lead_journey_id=journey, priority=priority, **row
    )


# --- 2. Phone management ---------------------------------------------------------------------


def test_adding_a_phone_fills_in_the_defaults(conn: Connection, tenant_id: uuid.UUID) -> None:
    assert add_phone(conn, tenant_id, "+40712345678", "Sales 21") == "phone_01"
    assert add_phone(conn, tenant_id, "+40712345679", "Sales 22") == "phone_02"
    row = conn.execute(text("SELECT * FROM wa_phone_numbers WHERE id = 'phone_01'")).mappings().one()
    assert row["daily_quota_limit"] == 200
    assert row["followup_limit"] == 500
    assert row["status"] == "ACTIVE"
    assert row["is_enabled"] is True
    assert row["is_online"] is True
    assert row["status_changed_at"] is not None
    assert row["total_messages_sent"] == 0
    assert row["reputation_score"] == 100

    # The same number twice in one tenant is refused.
    with pytest.raises(IntegrityError):
        add_phone(conn, tenant_id, "+40712345678", "Sales 21 again")


def test_phone_ids_keep_two_digits_and_do_not_truncate_past_99(
    conn: Connection, tenant_id: uuid.UUID
) -> None:
    conn.execute(text("SELECT setval('wa_phone_numbers_id_seq', 98)"))
    assert add_phone(conn, tenant_id, "+40700000099", "Sales 99") == "phone_99"
    assert add_phone(conn, tenant_id, "+40700000100", "Sales 100") == "phone_100"


def test_phone_offline_check_and_ban(conn: Connection, tenant_id: uuid.UUID) -> None:
    phone = add_phone(conn, tenant_id, "+40712345678", "Sales 21")
    # Runbook 2.1, step 2.
    row = conn.execute(
        text(f"SELECT id, phone_label, status, status_changed_at FROM wa_phone_numbers WHERE id = '{phone}'")
    ).one()
    assert (row.id, row.phone_label, row.status) == ("phone_01", "Sales 21", "ACTIVE")

    # Runbook 2.2, step 2.
    conn.execute(
        text(f"UPDATE wa_phone_numbers SET status = 'BANNED', status_changed_at = NOW() WHERE id = '{phone}'")
    )
    banned = conn.execute(
        text(f"SELECT status, status_changed_at FROM wa_phone_numbers WHERE id = '{phone}'")
    ).one()
    assert banned.status == "BANNED"
    assert banned.status_changed_at >= row.status_changed_at


def test_reassigning_leads_of_a_banned_phone(conn: Connection, tenant_id: uuid.UUID) -> None:
    phone = add_phone(conn, tenant_id, "+40712345678", "Sales 21")
    other = add_phone(conn, tenant_id, "+40712345679", "Sales 22")
    cold = add_lead(conn, tenant_id, "RO1", "COLD", phone)
    contacted = add_lead(conn, tenant_id, "RO2", "CONTACTED_WA", phone)
    warm = add_lead(conn, tenant_id, "RO3", "WARM_REPLY", phone)
    elsewhere = add_lead(conn, tenant_id, "RO4", "COLD", other)
    conn.execute(text("UPDATE gold_lead_journey SET assigned_at = NOW()"))

    # Runbook 2.2, step 4, as written (engagement_stage is the runbook's name for current_state).
    result = conn.execute(
        text(
            f"""
            UPDATE gold_lead_journey
            SET assigned_phone_id = NULL, assigned_at = NULL
            WHERE assigned_phone_id = '{phone}'
              AND engagement_stage IN ('COLD', 'CONTACTED_WA')
            """
        )
    )
    assert result.rowcount == 2
    rows = {
        r.id: r.assigned_phone_id
        for r in conn.execute(text("SELECT id, assigned_phone_id FROM gold_lead_journey"))
    }
    assert rows == {cold: None, contacted: None, warm: phone, elsewhere: other}


def test_engagement_stage_follows_current_state(conn: Connection, tenant_id: uuid.UUID) -> None:
    journey = add_lead(conn, tenant_id, "RO1")
    stage = "SELECT engagement_stage FROM gold_lead_journey WHERE id = :j"
    assert conn.execute(text(stage), {"j": journey}).scalar_one() == "COLD"
    conn.execute(
        text("UPDATE gold_lead_journey SET current_state = 'NEGOTIATION' WHERE id = :j"), {"j": journey}
    )
    assert conn.execute(text(stage), {"j": journey}).scalar_one() == "NEGOTIATION"
    # It is derived, never written.
    with pytest.raises(DBAPIError, match="generated column"), conn.begin_nested():
        conn.execute(text("UPDATE gold_lead_journey SET engagement_stage = 'DEAD'"))


# --- 3. Quota ---------------------------------------------------------------------------------


def test_quota_ledger_queries(conn: Connection, tenant_id: uuid.UUID) -> None:
    p1 = add_phone(conn, tenant_id, "+40700000001", "Sales 1")
    p2 = add_phone(conn, tenant_id, "+40700000002", "Sales 2")
    for i in range(3):
        journey = add_lead(conn, tenant_id, f"A{i}", "CONTACTED_WA", p1)
        add_message(conn, tenant_id, journey, phone_id=p1, quota_cost=1, sent_at=text("now()"))
        add_message(conn, tenant_id, journey, phone_id=p1, quota_cost=0, sent_at=text("now()"))
    journey = add_lead(conn, tenant_id, "B0", "CONTACTED_WA", p2)
    add_message(conn, tenant_id, journey, phone_id=p2, quota_cost=1, sent_at=text("now()"))
    # Yesterday's new contact and an email do not count.
    conn.execute(
        text(
            "INSERT INTO gold_communication_log (tenant_id, lead_journey_id, channel, direction, "
            "status, phone_id, quota_cost, created_at, sent_at) VALUES "
            "(:t, :j, 'WHATSAPP', 'OUTBOUND', 'SENT', :p, 1, now() - interval '1 day', "
            " now() - interval '1 day'), "
            "(:t, :j, 'EMAIL_COLD', 'OUTBOUND', 'SENT', NULL, 1, now(), now())"
        ),
        {"t": tenant_id, "j": journey, "p": p2},
    )

    # Runbook 3.1 step 2, 3 and 4; 8.1 step 4 and 8.2 step 2 are the same query as step 4.
    active = conn.execute(text("SELECT id FROM wa_phone_numbers WHERE status = 'ACTIVE'")).scalars().all()
    assert sorted(active) == [p1, p2]

    by_cost = conn.execute(
        text(
            """
            SELECT quota_cost, COUNT(*)
            FROM gold_communication_log
            WHERE DATE(sent_at) = CURRENT_DATE
              AND channel = 'WHATSAPP'
            GROUP BY quota_cost;
            """
        )
    ).all()
    assert {r[0]: r[1] for r in by_cost} == {0: 3, 1: 4}

    ledger = conn.execute(
        text(
            """
            SELECT phone_id, COUNT(*) as messages_today
            FROM gold_communication_log
            WHERE created_at > CURRENT_DATE
              AND channel = 'WHATSAPP'
              AND quota_cost = 1
            GROUP BY phone_id
            """
        )
    ).all()
    assert {r[0]: r[1] for r in ledger} == {p1: 3, p2: 1}


def test_quota_usage_row_per_phone_and_day(conn: Connection, tenant_id: uuid.UUID) -> None:
    phone = add_phone(conn, tenant_id, "+40700000001", "Sales 1")
    yesterday = date.today() - timedelta(days=1)
    conn.execute(
        text(
            "INSERT INTO wa_quota_usage (tenant_id, phone_id, usage_date, new_contacts_sent) "
            "VALUES (:t, :p, :d, 200)"
        ),
        {"t": tenant_id, "p": phone, "d": yesterday},
    )
    # Runbook 3.2, step 2.
    row = (
        conn.execute(text(f"SELECT * FROM wa_quota_usage WHERE usage_date = '{yesterday:%Y-%m-%d}'"))
        .mappings()
        .one()
    )
    assert (row["phone_id"], row["new_contacts_sent"], row["quota_limit"], row["mismatch"]) == (
        phone,
        200,
        200,
        False,
    )
    with pytest.raises(IntegrityError):
        conn.execute(
            text("INSERT INTO wa_quota_usage (tenant_id, phone_id, usage_date) VALUES (:t, :p, :d)"),
            {"t": tenant_id, "p": phone, "d": yesterday},
        )


# --- 5. Reviews -------------------------------------------------------------------------------


def test_review_queue_depth_and_emergency_assignment(conn: Connection, tenant_id: uuid.UUID) -> None:
    user = conn.execute(
        text(
            "INSERT INTO users (tenant_id, email, display_name) "
            "VALUES (:t, 'ana@cerniq.ro', 'Ana') RETURNING id"
        ),
        {"t": tenant_id},
    ).scalar_one()
    journey = add_lead(conn, tenant_id, "RO1", "WARM_REPLY")
    urgent = [add_review(conn, tenant_id, journey, "URGENT") for _ in range(2)]
    medium = add_review(conn, tenant_id, journey, "MEDIUM")

    # Runbook 5.1, step 2.
    depth = conn.execute(
        text(
            """
            SELECT priority, status, COUNT(*)
            FROM human_review_queue
            WHERE created_at > NOW() - INTERVAL '24 hours'
            GROUP BY priority, status
            ORDER BY priority
            """
        )
    ).all()
    assert [tuple(r) for r in depth] == [("MEDIUM", "PENDING", 1), ("URGENT", "PENDING", 2)]

    # Runbook 5.2, step 2. PostgreSQL has no UPDATE ... LIMIT: the statement runs without it
    # (the runbook's LIMIT 10 is expressed with a sub-select in the second form).
    conn.execute(
        text(
            f"""
            UPDATE human_review_queue
            SET assigned_to = '{user}',
                assigned_at = NOW(),
                status = 'ASSIGNED'
            WHERE status = 'PENDING'
              AND priority = 'URGENT'
            """
        )
    )
    rows = conn.execute(text("SELECT id, status, assigned_to, assigned_at FROM human_review_queue")).all()
    by_id = {r.id: r for r in rows}
    for review in urgent:
        assert by_id[review].status == "ASSIGNED"
        assert by_id[review].assigned_to == user
        assert by_id[review].assigned_at is not None
    assert by_id[medium].status == "PENDING"

    conn.execute(
        text(
            f"""
            UPDATE human_review_queue
            SET assigned_to = '{user}', assigned_at = NOW(), status = 'ASSIGNED'
            WHERE id IN (
              SELECT id FROM human_review_queue
              WHERE status = 'PENDING' AND priority = 'MEDIUM'
              ORDER BY created_at LIMIT 10
            )
            """
        )
    )
    assert (
        conn.execute(text("SELECT count(*) FROM human_review_queue WHERE status = 'PENDING'")).scalar_one()
        == 0
    )


def test_one_review_per_inbound_message(conn: Connection, tenant_id: uuid.UUID) -> None:
    journey = add_lead(conn, tenant_id, "RO1", "WARM_REPLY")
    message = add_message(conn, tenant_id, journey, direction="INBOUND", status="RECEIVED", origin="WEBHOOK")
    add_review(conn, tenant_id, journey, "HIGH", communication_id=message)
    with pytest.raises(IntegrityError):
        add_review(conn, tenant_id, journey, "HIGH", communication_id=message)


# --- 6. Email ---------------------------------------------------------------------------------


def test_bounced_emails_query(conn: Connection, tenant_id: uuid.UUID) -> None:
    journey = add_lead(conn, tenant_id, "RO1", "CONTACTED_EMAIL")
    for _ in range(2):
        add_message(
            conn,
            tenant_id,
            journey,
            channel="EMAIL_COLD",
            status="BOUNCED",
            email="office@agro.ro",
            bounce_reason="mailbox does not exist",
        )
    add_message(conn, tenant_id, journey, channel="EMAIL_COLD", status="SENT", email="ok@agro.ro")
    # Runbook 6.1, step 4.
    rows = conn.execute(
        text(
            """
            SELECT email, bounce_reason, COUNT(*)
            FROM gold_communication_log
            WHERE status = 'BOUNCED'
              AND created_at > NOW() - INTERVAL '24 hours'
            GROUP BY email, bounce_reason
            ORDER BY COUNT(*) DESC
            LIMIT 20
            """
        )
    ).all()
    assert [tuple(r) for r in rows] == [("office@agro.ro", "mailbox does not exist", 2)]


# --- 7. Emergency stop, 8. recovery -----------------------------------------------------------


def test_emergency_stop_and_recovery_queries(conn: Connection, tenant_id: uuid.UUID) -> None:
    conn.execute(
        text("INSERT INTO outreach_sequences (tenant_id, name) VALUES (:t, 'WA standard'), (:t, 'Email')"),
        {"t": tenant_id},
    )
    # Runbook 7.1, step 2.
    assert (
        conn.execute(text("UPDATE outreach_sequences SET is_active = FALSE WHERE is_active = TRUE;")).rowcount
        == 2
    )

    phone = add_phone(conn, tenant_id, "+40700000001", "Sales 1")
    due = add_lead(
        conn, tenant_id, "RO1", "CONTACTED_WA", phone, next_action_at=text("now() + interval '1 day'")
    )
    add_lead(conn, tenant_id, "RO2", "CONTACTED_WA", phone, next_action_at=text("now() + interval '1 day'"))
    conn.execute(
        text(
            "UPDATE gold_lead_journey SET sequence_paused = TRUE WHERE lead_id IN "
            "(SELECT id FROM gold_companies WHERE cui = 'RO2')"
        )
    )
    add_message(conn, tenant_id, due, phone_id=phone)

    # Runbook 8.1, step 3.
    assert conn.execute(text("SELECT COUNT(*) FROM gold_lead_journey")).scalar_one() == 2
    assert conn.execute(text("SELECT COUNT(*) FROM gold_communication_log")).scalar_one() == 1
    # Runbook 8.2, step 3 and 4.
    assert conn.execute(text("SELECT id, status FROM wa_phone_numbers")).all() == [(phone, "ACTIVE")]
    pending = conn.execute(
        text(
            """
            SELECT lead_id, next_action_at
            FROM gold_lead_journey
            WHERE next_action_at IS NOT NULL
              AND next_action_at > NOW()
              AND sequence_paused = FALSE
            """
        )
    ).all()
    lead_of_due = conn.execute(
        text("SELECT lead_id FROM gold_lead_journey WHERE id = :j"), {"j": due}
    ).scalar_one()
    assert [r.lead_id for r in pending] == [lead_of_due]


# --- 10. Weekly maintenance: the archive -------------------------------------------------------


def test_weekly_archive_moves_old_messages(engine: Engine, tenant_id: uuid.UUID) -> None:
    with engine.begin() as conn:
        phone = add_phone(conn, tenant_id, "+40700000001", "Sales 1")
        journey = add_lead(conn, tenant_id, "RO1", "WARM_REPLY", phone)
        old_out = add_message(
            conn,
            tenant_id,
            journey,
            phone_id=phone,
            quota_cost=1,
            idempotency_key="send/wa/1",
            raw_response=text("'{\"ok\": true}'::jsonb"),
            created_at=text("now() - interval '120 days'"),
        )
        old_in = add_message(
            conn,
            tenant_id,
            journey,
            direction="INBOUND",
            status="RECEIVED",
            origin="WEBHOOK",
            created_at=text("now() - interval '100 days'"),
        )
        recent = add_message(conn, tenant_id, journey, phone_id=phone)
        # A review that points at an old inbound message must not block its archiving.
        review = add_review(conn, tenant_id, journey, "LOW", communication_id=old_in)
        # Runbook 1.2, step 6.
        pending = conn.execute(
            text("SELECT COUNT(*) FROM gold_communication_log WHERE created_at < NOW() - INTERVAL '90 days'")
        ).scalar_one()
        assert pending == 2
        before = conn.execute(
            text("SELECT * FROM gold_communication_log WHERE id IN (:a, :b) ORDER BY id"),
            {"a": old_out, "b": old_in},
        ).all()

    # Runbook 10.1, step 1, as one psql script.
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO gold_communication_log_archive
                SELECT * FROM gold_communication_log
                WHERE created_at < NOW() - INTERVAL '90 days';
                """
            )
        )
        conn.execute(
            text("DELETE FROM gold_communication_log WHERE created_at < NOW() - INTERVAL '90 days';")
        )

    with engine.begin() as conn:
        archived = conn.execute(text("SELECT * FROM gold_communication_log_archive ORDER BY id")).all()
        assert [tuple(r) for r in archived] == [tuple(r) for r in before]
        assert conn.execute(text("SELECT id FROM gold_communication_log")).scalars().all() == [recent]
        assert (
            conn.execute(
                text("SELECT communication_id FROM human_review_queue WHERE id = :r"), {"r": review}
            ).scalar_one()
            is None
        )
        # Archiving the same rows again (a re-run after a crash between the two statements)
        # only collides on the primary key, never on anything else.
        with pytest.raises(IntegrityError, match="pk_gold_communication_log_archive"):
            conn.execute(
                text(
                    "INSERT INTO gold_communication_log_archive SELECT * FROM gold_communication_log_archive"
                )
            )

    # Runbook 10.1, step 2 (VACUUM cannot run inside a transaction block).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE gold_communication_log;"))
        conn.execute(text("VACUUM ANALYZE gold_lead_journey;"))


# --- Invariants the send path and the console rely on ---------------------------------------


def test_at_most_one_automated_message_in_flight_per_lead(conn: Connection, tenant_id: uuid.UUID) -> None:
    journey = add_lead(conn, tenant_id, "RO1")
    first = add_message(conn, tenant_id, journey, status="QUEUED")
    with pytest.raises(IntegrityError, match="ux_comm_log_one_inflight"), conn.begin_nested():
        add_message(conn, tenant_id, journey, status="SENDING")
    # Operator messages and inbound messages are not limited by it.
    add_message(conn, tenant_id, journey, status="QUEUED", origin="OPERATOR")
    add_message(conn, tenant_id, journey, status="RECEIVED", direction="INBOUND", origin="WEBHOOK")
    # Once the first is sent, the next automated message may be queued.
    conn.execute(text("UPDATE gold_communication_log SET status = 'SENT' WHERE id = :m"), {"m": first})
    add_message(conn, tenant_id, journey, status="QUEUED")


def test_defaults_and_checks(conn: Connection, tenant_id: uuid.UUID) -> None:
    token = conn.execute(
        text("SELECT webhook_token FROM tenants WHERE id = :t"), {"t": tenant_id}
    ).scalar_one()
    assert len(token) >= 32
    journey = add_lead(conn, tenant_id, "RO1")
    row = conn.execute(text("SELECT * FROM gold_lead_journey WHERE id = :j"), {"j": journey}).mappings().one()
    assert row["current_state"] == "COLD"
    assert row["is_new_contact"] is True
    assert row["timezone"] == "Europe/Bucharest"
    assert (row["tags"], row["custom_fields"]) == ([], {})
    assert (row["sentiment_score"], row["sequence_step"], row["is_human_controlled"]) == (0, 0, False)

    message = add_message(conn, tenant_id, journey)
    log = (
        conn.execute(text("SELECT * FROM gold_communication_log WHERE id = :m"), {"m": message})
        .mappings()
        .one()
    )
    assert (log["origin"], log["quota_cost"], log["retry_count"], log["max_retries"]) == (
        "AUTOMATION",
        0,
        0,
        3,
    )

    for statement in (
        "UPDATE gold_lead_journey SET sentiment_score = 101",
        "UPDATE gold_lead_journey SET engagement_score = -1",
        "INSERT INTO users (tenant_id, email) VALUES (:t, 'Ana@Cerniq.ro')",
        "INSERT INTO suppression_list (tenant_id, channel, value, reason) VALUES (:t, 'SMS', 'x', 'MANUAL')",
        "UPDATE gold_communication_log SET origin = 'ROBOT'",
    ):
        with pytest.raises(IntegrityError), conn.begin_nested():
            conn.execute(text(statement), {"t": tenant_id})


def stage_of(journey: GoldLeadJourney) -> LeadState:
    return journey.engagement_stage


async def test_orm_round_trip_over_asyncpg(db_url: str, tenant_id: uuid.UUID) -> None:
    """The models work through the app's driver: server-side ids and defaults come back on
    flush, and the generated engagement_stage is readable after an update without a lazy load."""
    engine = create_async_engine(make_url(db_url).set(drivername="postgresql+asyncpg"), poolclass=NullPool)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            tenant = await session.get(Tenant, tenant_id)
            assert tenant is not None
            phone = WaPhoneNumber(tenant_id=tenant.id, phone_number="+40700000001", phone_label="Sales 1")
            company = GoldCompany(tenant_id=tenant.id, denumire="Agro SRL", cui="RO123")
            session.add_all([phone, company])
            await session.flush()
            assert phone.id == "phone_01"
            assert phone.status is PhoneStatus.ACTIVE
            assert phone.daily_quota_limit == 200

            journey = GoldLeadJourney(tenant_id=tenant.id, lead_id=company.id, assigned_phone_id=phone.id)
            session.add(journey)
            await session.flush()
            assert stage_of(journey) is LeadState.COLD
            created = journey.updated_at

            journey.current_state = LeadState.CONTACTED_WA
            await session.flush()
            assert stage_of(journey) is LeadState.CONTACTED_WA
            assert journey.updated_at >= created

            message = GoldCommunicationLog(
                tenant_id=tenant.id,
                lead_journey_id=journey.id,
                channel=Channel.WHATSAPP,
                direction=Direction.OUTBOUND,
                phone_id=phone.id,
                quota_cost=1,
            )
            session.add(message)
            await session.flush()
            assert message.status is MessageStatus.QUEUED
            assert message.created_at is not None
            await session.commit()
    finally:
        await engine.dispose()
