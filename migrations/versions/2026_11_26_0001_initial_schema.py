"""initial schema: every table, enum type, index and the phone id sequence

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 00:01:00+00:00

Written against the models of this date and kept self-contained (no model imports), so it
replays the same way forever. tests/test_migrations.py checks that the models and the migrated
schema agree, and that downgrade to base leaves nothing behind.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENUMS: dict[str, tuple[str, ...]] = {
    "current_state_enum": (
        "COLD",
        "CONTACTED_WA",
        "CONTACTED_EMAIL",
        "WARM_REPLY",
        "NEGOTIATION",
        "CONVERTED",
        "DEAD",
        "PAUSED",
    ),
    "channel_enum": ("WHATSAPP", "EMAIL_COLD", "EMAIL_WARM", "PHONE", "MANUAL"),
    "message_direction_enum": ("OUTBOUND", "INBOUND"),
    "message_status_enum": (
        "QUEUED",
        "SENDING",
        "SENT",
        "DELIVERED",
        "READ",
        "REPLIED",
        "RECEIVED",
        "OPENED",
        "CLICKED",
        "BOUNCED",
        "FAILED",
        "AMBIGUOUS",
        "SKIPPED",
    ),
    "phone_status_enum": ("ACTIVE", "PAUSED", "OFFLINE", "BANNED", "RECONNECTING", "QUARANTINE"),
    "review_priority_enum": ("LOW", "MEDIUM", "HIGH", "URGENT"),
    "review_reason_enum": (
        "NEGATIVE_SENTIMENT",
        "KEYWORD_TRIGGER",
        "BOUNCE_DETECTED",
        "COMPLAINT",
        "MANUAL_FLAG",
        "AI_UNCERTAIN",
        "AI_FLAGGED",
        "AI_DRAFT",
        "QUESTION",
    ),
    "review_status_enum": ("PENDING", "ASSIGNED", "IN_PROGRESS", "RESOLVED", "ESCALATED", "EXPIRED"),
    "review_action_enum": (
        "APPROVED",
        "EDITED",
        "REJECTED",
        "TAKEOVER",
        "IGNORED",
        "MARKED_DEAD",
        "LEAD_PAUSED",
    ),
    "user_role_enum": ("admin", "operator", "viewer"),
    "sequence_status_enum": ("DRAFT", "ACTIVE", "PAUSED", "COMPLETED", "ARCHIVED"),
    "enrollment_status_enum": ("ACTIVE", "PAUSED", "COMPLETED", "STOPPED"),
    "alert_severity_enum": ("LOW", "MEDIUM", "HIGH", "CRITICAL"),
    "alert_status_enum": ("OPEN", "ACKNOWLEDGED", "RESOLVED", "SILENCED"),
    "webhook_status_enum": ("RECEIVED", "PROCESSED", "QUARANTINED", "IGNORED", "REJECTED"),
    "suppression_reason_enum": (
        "HARD_BOUNCE",
        "SOFT_BOUNCE",
        "COMPLAINT",
        "UNSUBSCRIBE",
        "OPT_OUT",
        "GDPR_ERASURE",
        "MANUAL",
    ),
}

PHONE_ID_SEQUENCE = "wa_phone_numbers_id_seq"
PHONE_ID_DEFAULT = f"'phone_' || to_char(nextval('{PHONE_ID_SEQUENCE}'), 'FM9999999999999999900')"

# Creation order; downgrade drops in reverse.
TABLES = (
    "tenants",
    "users",
    "api_tokens",
    "gold_companies",
    "gold_contacts",
    "wa_phone_numbers",
    "phone_incidents",
    "wa_quota_usage",
    "outreach_templates",
    "template_versions",
    "outreach_sequences",
    "outreach_sequence_steps",
    "email_campaigns",
    "gold_lead_journey",
    "lead_state_history",
    "sequence_enrollments",
    "gold_communication_log",
    "gold_communication_log_archive",
    "suppression_list",
    "webhook_events",
    "human_review_queue",
    "hitl_audit_log",
    "outreach_daily_stats",
    "alerts",
    "system_state",
    "audit_log",
    "idempotency_keys",
)


# --- column and constraint helpers (names are final: op.f() skips the naming convention) ---


def enum(name: str) -> postgresql.ENUM:
    return postgresql.ENUM(*ENUMS[name], name=name, create_type=False)


def id_column() -> sa.Column[Any]:
    return sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False)


def uuid_column(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.UUID(), nullable=nullable)


def text_column(name: str, nullable: bool = True, default: str | None = None) -> sa.Column[Any]:
    server_default = None if default is None else sa.text(f"'{default}'::text")
    return sa.Column(name, sa.Text(), server_default=server_default, nullable=nullable)


def int_column(name: str, default: int | None = None, nullable: bool | None = None) -> sa.Column[Any]:
    server_default = None if default is None else sa.text(str(default))
    return sa.Column(
        name,
        sa.Integer(),
        server_default=server_default,
        nullable=default is None if nullable is None else nullable,
    )


def bool_column(name: str, default: bool | None = None) -> sa.Column[Any]:
    if default is None:
        return sa.Column(name, sa.Boolean(), nullable=True)
    return sa.Column(name, sa.Boolean(), server_default=sa.text(str(default).lower()), nullable=False)


def ts_column(name: str, nullable: bool = True, now: bool = False) -> sa.Column[Any]:
    server_default = sa.text("now()") if now else None
    return sa.Column(name, sa.DateTime(timezone=True), server_default=server_default, nullable=nullable)


def date_column(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.Date(), nullable=nullable)


def enum_column(
    name: str, type_name: str, nullable: bool = False, default: str | None = None
) -> sa.Column[Any]:
    server_default = None if default is None else sa.text(f"'{default}'::{type_name}")
    return sa.Column(name, enum(type_name), server_default=server_default, nullable=nullable)


def jsonb_column(name: str, default: str | None = None) -> sa.Column[Any]:
    """JSONB, nullable unless it has a default ('{}' or '[]')."""
    server_default = None if default is None else sa.text(f"'{default}'::jsonb")
    return sa.Column(name, postgresql.JSONB(), server_default=server_default, nullable=default is None)


def tenant_column(nullable: bool = False) -> sa.Column[Any]:
    return uuid_column("tenant_id", nullable=nullable)


def timestamps() -> list[sa.Column[Any]]:
    return [
        ts_column("created_at", nullable=False, now=True),
        ts_column("updated_at", nullable=False, now=True),
    ]


def pk(table: str, column: str = "id") -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(column, name=op.f(f"pk_{table}"))


def fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return fk(table, "tenant_id", "tenants", "CASCADE")


def uq(table: str, *columns: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(*columns, name=op.f(f"uq_{table}_{'_'.join(columns)}"))


def ck(table: str, name: str, condition: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(condition, name=op.f(f"ck_{table}_{name}"))


def index(
    name: str, table: str, columns: list[str | sa.TextClause], unique: bool = False, where: str | None = None
) -> None:
    condition = None if where is None else sa.text(where)
    op.create_index(op.f(name), table, columns, unique=unique, postgresql_where=condition)


def tenant_index(table: str) -> None:
    index(f"ix_{table}_tenant_id", table, ["tenant_id"])


def communication_log_columns() -> list[sa.Column[Any]]:
    """The columns of gold_communication_log and of its archive, in table order."""
    return [
        id_column(),
        tenant_column(),
        uuid_column("lead_journey_id", nullable=False),
        enum_column("channel", "channel_enum"),
        enum_column("direction", "message_direction_enum"),
        enum_column("status", "message_status_enum", default="QUEUED"),
        text_column("origin", nullable=False, default="AUTOMATION"),
        uuid_column("template_id"),
        uuid_column("template_version_id"),
        text_column("content", nullable=False, default=""),
        text_column("content_rendered"),
        text_column("subject"),
        text_column("external_message_id"),
        text_column("thread_id"),
        text_column("phone_id"),
        text_column("phone_number"),
        text_column("email"),
        uuid_column("email_campaign_id"),
        uuid_column("sequence_id"),
        int_column("sequence_step"),
        uuid_column("enrollment_id"),
        sa.Column("quota_cost", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        date_column("quota_date"),
        bool_column("is_ai_generated", False),
        int_column("sentiment_score"),
        ts_column("sentiment_analyzed_at"),
        text_column("intent_classification"),
        text_column("bounce_type"),
        text_column("bounce_reason"),
        text_column("click_url"),
        text_column("error_code"),
        text_column("error_message"),
        int_column("retry_count", 0),
        int_column("max_retries", 3),
        text_column("idempotency_key"),
        jsonb_column("raw_request"),
        jsonb_column("raw_response"),
        jsonb_column("webhook_payload"),
        ts_column("status_updated_at"),
        ts_column("scheduled_at"),
        ts_column("sent_at"),
        ts_column("delivered_at"),
        ts_column("read_at"),
        ts_column("replied_at"),
        ts_column("bounced_at"),
        ts_column("opened_at"),
        ts_column("clicked_at"),
        ts_column("unsubscribed_at"),
        text_column("created_by"),
        *timestamps(),
    ]


def upgrade() -> None:
    for name, values in ENUMS.items():
        labels = ", ".join(f"'{value}'" for value in values)
        op.execute(f"CREATE TYPE {name} AS ENUM ({labels})")
    op.execute(f"CREATE SEQUENCE {PHONE_ID_SEQUENCE}")

    # --- tenants, users, tokens ---
    op.create_table(
        "tenants",
        id_column(),
        text_column("slug", nullable=False),
        text_column("name", nullable=False),
        jsonb_column("settings", "{}"),
        sa.Column(
            "webhook_token",
            sa.Text(),
            server_default=sa.text("replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')"),
            nullable=False,
        ),
        bool_column("is_active", True),
        *timestamps(),
        pk("tenants"),
        uq("tenants", "slug"),
        uq("tenants", "webhook_token"),
    )

    op.create_table(
        "users",
        id_column(),
        tenant_column(),
        text_column("email", nullable=False),
        text_column("display_name", nullable=False, default=""),
        enum_column("role", "user_role_enum", default="operator"),
        text_column("password_hash"),
        text_column("team_role", nullable=False, default="operator"),
        bool_column("is_available", True),
        bool_column("is_active", True),
        ts_column("last_login_at"),
        text_column("locale", nullable=False, default="ro"),
        *timestamps(),
        pk("users"),
        tenant_fk("users"),
        uq("users", "tenant_id", "email"),
        ck("users", "email_lower", "email = lower(email)"),
        ck("users", "team_role_valid", "team_role IN ('operator', 'team_lead', 'manager', 'on_call')"),
    )
    tenant_index("users")

    op.create_table(
        "api_tokens",
        id_column(),
        tenant_column(),
        uuid_column("user_id"),
        text_column("name", nullable=False),
        text_column("token_hash", nullable=False),
        text_column("token_prefix", nullable=False),
        enum_column("role", "user_role_enum", default="operator"),
        ts_column("last_used_at"),
        ts_column("expires_at"),
        ts_column("revoked_at"),
        *timestamps(),
        pk("api_tokens"),
        tenant_fk("api_tokens"),
        fk("api_tokens", "user_id", "users", "CASCADE"),
        uq("api_tokens", "token_hash"),
    )
    tenant_index("api_tokens")
    index("ix_api_tokens_user_id", "api_tokens", ["user_id"])

    # --- Etapa 1 inputs ---
    op.create_table(
        "gold_companies",
        id_column(),
        tenant_column(),
        text_column("denumire", nullable=False),
        text_column("cui", nullable=False),
        text_column("nr_reg_com"),
        text_column("judet"),
        text_column("localitate"),
        text_column("adresa"),
        text_column("cod_caen"),
        text_column("sector"),
        bool_column("is_agricultural", False),
        text_column("email_principal"),
        text_column("telefon_principal"),
        bool_column("hlr_reachable"),
        text_column("email_status"),
        text_column("website"),
        int_column("lead_score"),
        int_column("quality_score"),
        text_column("source"),
        jsonb_column("raw", "{}"),
        *timestamps(),
        pk("gold_companies"),
        tenant_fk("gold_companies"),
        uq("gold_companies", "tenant_id", "cui"),
    )
    tenant_index("gold_companies")

    op.create_table(
        "gold_contacts",
        id_column(),
        tenant_column(),
        uuid_column("company_id", nullable=False),
        text_column("prenume"),
        text_column("nume"),
        text_column("full_name"),
        text_column("functie"),
        text_column("email"),
        text_column("phone"),
        text_column("whatsapp_number"),
        bool_column("consent_email", False),
        bool_column("consent_whatsapp", False),
        text_column("consent_source"),
        ts_column("consent_at"),
        bool_column("unsubscribed", False),
        bool_column("is_primary", False),
        *timestamps(),
        pk("gold_contacts"),
        tenant_fk("gold_contacts"),
        fk("gold_contacts", "company_id", "gold_companies", "CASCADE"),
    )
    tenant_index("gold_contacts")
    index("ix_gold_contacts_company_id", "gold_contacts", ["company_id"])

    # --- WhatsApp phones and quota ---
    op.create_table(
        "wa_phone_numbers",
        sa.Column("id", sa.Text(), server_default=sa.text(PHONE_ID_DEFAULT), nullable=False),
        tenant_column(),
        text_column("phone_number", nullable=False),
        text_column("phone_label", nullable=False),
        text_column("timelinesai_account_id"),
        text_column("timelinesai_phone_id"),
        enum_column("status", "phone_status_enum", default="ACTIVE"),
        ts_column("status_changed_at", nullable=False, now=True),
        text_column("status_reason"),
        ts_column("last_health_check_at"),
        ts_column("last_message_sent_at"),
        ts_column("last_message_received_at"),
        bool_column("is_online", True),
        int_column("daily_quota_limit", 200),
        int_column("followup_limit", 500),
        int_column("total_messages_sent", 0),
        int_column("total_leads_assigned", 0),
        int_column("total_conversations", 0),
        bool_column("is_enabled", True),
        int_column("priority", 50),
        int_column("reputation_score", 100),
        *timestamps(),
        pk("wa_phone_numbers"),
        tenant_fk("wa_phone_numbers"),
        uq("wa_phone_numbers", "tenant_id", "phone_number"),
        uq("wa_phone_numbers", "timelinesai_phone_id"),
    )
    op.execute(f"ALTER SEQUENCE {PHONE_ID_SEQUENCE} OWNED BY wa_phone_numbers.id")
    tenant_index("wa_phone_numbers")
    index("ix_wa_phone_numbers_tenant_status", "wa_phone_numbers", ["tenant_id", "status"])

    op.create_table(
        "phone_incidents",
        id_column(),
        tenant_column(),
        text_column("phone_id", nullable=False),
        text_column("kind", nullable=False),
        text_column("reason"),
        jsonb_column("details", "{}"),
        text_column("actor"),
        ts_column("created_at", nullable=False, now=True),
        ts_column("resolved_at"),
        pk("phone_incidents"),
        tenant_fk("phone_incidents"),
        fk("phone_incidents", "phone_id", "wa_phone_numbers", "CASCADE"),
    )
    tenant_index("phone_incidents")
    index("ix_phone_incidents_phone_created", "phone_incidents", ["phone_id", "created_at"])

    op.create_table(
        "wa_quota_usage",
        id_column(),
        tenant_column(),
        text_column("phone_id", nullable=False),
        date_column("usage_date", nullable=False),
        int_column("new_contacts_sent", 0),
        int_column("followups_sent", 0),
        int_column("total_sent", 0),
        int_column("quota_limit", 200),
        int_column("quota_remaining"),
        int_column("redis_count"),
        int_column("ledger_count"),
        bool_column("mismatch", False),
        ts_column("first_message_at"),
        ts_column("last_message_at"),
        ts_column("quota_reset_at"),
        *timestamps(),
        pk("wa_quota_usage"),
        tenant_fk("wa_quota_usage"),
        fk("wa_quota_usage", "phone_id", "wa_phone_numbers", "CASCADE"),
        uq("wa_quota_usage", "phone_id", "usage_date"),
    )
    tenant_index("wa_quota_usage")
    index("ix_wa_quota_usage_usage_date", "wa_quota_usage", [sa.text("usage_date DESC")])

    # --- templates and sequences ---
    op.create_table(
        "outreach_templates",
        id_column(),
        tenant_column(),
        text_column("name", nullable=False),
        text_column("code"),
        text_column("description"),
        enum_column("channel", "channel_enum"),
        text_column("subject"),
        text_column("content", nullable=False, default=""),
        jsonb_column("variables", "[]"),
        text_column("language", nullable=False, default="ro"),
        bool_column("has_media", False),
        text_column("media_type"),
        text_column("media_url"),
        bool_column("is_active", True),
        bool_column("is_approved", False),
        int_column("current_version", 1),
        int_column("times_used", 0),
        int_column("replies", 0),
        int_column("positive_replies", 0),
        *timestamps(),
        pk("outreach_templates"),
        tenant_fk("outreach_templates"),
        uq("outreach_templates", "tenant_id", "code"),
    )
    tenant_index("outreach_templates")
    index(
        "ix_outreach_templates_tenant_channel_active",
        "outreach_templates",
        ["tenant_id", "channel", "is_active"],
    )

    op.create_table(
        "template_versions",
        id_column(),
        tenant_column(),
        uuid_column("template_id", nullable=False),
        int_column("version_number", nullable=False),
        text_column("version_label"),
        text_column("subject"),
        text_column("content", nullable=False),
        jsonb_column("variables", "[]"),
        text_column("change_notes"),
        bool_column("is_ab_variant", False),
        int_column("ab_weight", 0),
        int_column("times_used", 0),
        int_column("opens", 0),
        int_column("replies", 0),
        int_column("positive_replies", 0),
        text_column("created_by"),
        *timestamps(),
        pk("template_versions"),
        tenant_fk("template_versions"),
        fk("template_versions", "template_id", "outreach_templates", "CASCADE"),
        uq("template_versions", "template_id", "version_number"),
    )
    tenant_index("template_versions")

    op.create_table(
        "outreach_sequences",
        id_column(),
        tenant_column(),
        text_column("name", nullable=False),
        text_column("code"),
        text_column("description"),
        enum_column("status", "sequence_status_enum", default="ACTIVE"),
        bool_column("is_active", True),
        bool_column("is_default", False),
        enum_column("primary_channel", "channel_enum", default="WHATSAPP"),
        enum_column("fallback_channel", "channel_enum", nullable=True),
        bool_column("respect_business_hours", True),
        text_column("timezone", nullable=False, default="Europe/Bucharest"),
        bool_column("stop_on_reply", True),
        bool_column("stop_on_bounce", True),
        int_column("max_attempts", 5),
        int_column("max_steps", 5),
        int_column("total_enrolled", 0),
        int_column("total_completed", 0),
        int_column("total_converted", 0),
        sa.Column("avg_response_rate", sa.Numeric(7, 4), nullable=True),
        *timestamps(),
        pk("outreach_sequences"),
        tenant_fk("outreach_sequences"),
        uq("outreach_sequences", "tenant_id", "code"),
    )
    tenant_index("outreach_sequences")
    index("ix_outreach_sequences_tenant_active", "outreach_sequences", ["tenant_id", "is_active"])

    op.create_table(
        "outreach_sequence_steps",
        id_column(),
        tenant_column(),
        uuid_column("sequence_id", nullable=False),
        int_column("step_number", nullable=False),
        int_column("delay_hours", 24),
        int_column("delay_minutes", 0),
        enum_column("channel", "channel_enum", default="WHATSAPP"),
        uuid_column("template_id"),
        text_column("subject_override"),
        text_column("content_override"),
        bool_column("skip_if_replied", True),
        bool_column("skip_if_opened", False),
        bool_column("is_ab_test", False),
        text_column("ab_variant"),
        int_column("ab_percentage", 50),
        bool_column("is_active", True),
        *timestamps(),
        pk("outreach_sequence_steps"),
        tenant_fk("outreach_sequence_steps"),
        fk("outreach_sequence_steps", "sequence_id", "outreach_sequences", "CASCADE"),
        fk("outreach_sequence_steps", "template_id", "outreach_templates", "SET NULL"),
        uq("outreach_sequence_steps", "sequence_id", "step_number"),
    )
    tenant_index("outreach_sequence_steps")
    index("ix_outreach_sequence_steps_template_id", "outreach_sequence_steps", ["template_id"])

    op.create_table(
        "email_campaigns",
        id_column(),
        tenant_column(),
        text_column("name", nullable=False),
        text_column("instantly_campaign_id"),
        uuid_column("sequence_id"),
        uuid_column("sequence_step_id"),
        text_column("status", nullable=False, default="DRAFT"),
        int_column("instantly_status"),
        text_column("sending_domain"),
        text_column("paused_reason"),
        ts_column("paused_at"),
        text_column("paused_by"),
        bool_column("paused_by_breaker", False),
        ts_column("breaker_grace_until"),
        jsonb_column("stats", "{}"),
        ts_column("last_analytics_at"),
        *timestamps(),
        pk("email_campaigns"),
        tenant_fk("email_campaigns"),
        fk("email_campaigns", "sequence_id", "outreach_sequences", "SET NULL"),
        fk("email_campaigns", "sequence_step_id", "outreach_sequence_steps", "SET NULL"),
        uq("email_campaigns", "instantly_campaign_id"),
    )
    tenant_index("email_campaigns")
    index("ix_email_campaigns_tenant_status", "email_campaigns", ["tenant_id", "status"])
    index("ix_email_campaigns_sequence_id", "email_campaigns", ["sequence_id"])
    index("ix_email_campaigns_sequence_step_id", "email_campaigns", ["sequence_step_id"])

    # --- lead journeys ---
    op.create_table(
        "gold_lead_journey",
        id_column(),
        tenant_column(),
        uuid_column("lead_id", nullable=False),
        uuid_column("primary_contact_id"),
        text_column("mobile_e164"),
        text_column("email"),
        bool_column("whatsapp_invalid", False),
        text_column("wa_chat_id"),
        text_column("assigned_phone_id"),
        ts_column("assigned_at"),
        enum_column("current_state", "current_state_enum", default="COLD"),
        # The runbook's name for current_state. Same enum type (a text copy cannot be a
        # generated column: enum-to-text casts are not immutable), so `IN ('COLD', ...)` works.
        sa.Column(
            "engagement_stage",
            enum("current_state_enum"),
            sa.Computed("current_state", persisted=True),
            nullable=False,
        ),
        enum_column("previous_state", "current_state_enum", nullable=True),
        ts_column("state_changed_at"),
        text_column("state_change_reason"),
        bool_column("is_new_contact", True),
        date_column("quota_consumption_date"),
        enum_column("first_contact_channel", "channel_enum", nullable=True),
        enum_column("last_channel_used", "channel_enum", nullable=True),
        enum_column("preferred_channel", "channel_enum", nullable=True),
        bool_column("email_opted_out", False),
        bool_column("whatsapp_opted_out", False),
        ts_column("opted_out_at"),
        uuid_column("current_sequence_id"),
        int_column("sequence_step", 0),
        ts_column("sequence_started_at"),
        bool_column("sequence_paused", False),
        ts_column("next_action_at"),
        int_column("sentiment_score", 0),
        int_column("engagement_score", 0),
        int_column("reply_count", 0),
        int_column("open_count", 0),
        int_column("click_count", 0),
        int_column("messages_sent", 0),
        bool_column("requires_human_review", False),
        text_column("human_review_reason"),
        enum_column("human_review_priority", "review_priority_enum", nullable=True),
        bool_column("is_human_controlled", False),
        uuid_column("human_controlled_by"),
        ts_column("human_controlled_at"),
        text_column("human_control_reason"),
        uuid_column("assigned_to_user"),
        ts_column("first_contact_at"),
        ts_column("last_contact_at"),
        ts_column("last_reply_at"),
        ts_column("last_open_at"),
        ts_column("converted_at"),
        text_column("timezone", nullable=False, default="Europe/Bucharest"),
        jsonb_column("tags", "[]"),
        jsonb_column("custom_fields", "{}"),
        text_column("internal_notes"),
        *timestamps(),
        pk("gold_lead_journey"),
        tenant_fk("gold_lead_journey"),
        fk("gold_lead_journey", "lead_id", "gold_companies", "CASCADE"),
        fk("gold_lead_journey", "primary_contact_id", "gold_contacts", "SET NULL"),
        fk("gold_lead_journey", "assigned_phone_id", "wa_phone_numbers", "SET NULL"),
        fk("gold_lead_journey", "current_sequence_id", "outreach_sequences", "SET NULL"),
        fk("gold_lead_journey", "assigned_to_user", "users", "SET NULL"),
        uq("gold_lead_journey", "tenant_id", "lead_id"),
        ck("gold_lead_journey", "sentiment_score_range", "sentiment_score BETWEEN -100 AND 100"),
        ck("gold_lead_journey", "engagement_score_range", "engagement_score BETWEEN 0 AND 100"),
    )
    journey = "gold_lead_journey"
    tenant_index(journey)
    index("ix_gold_lead_journey_lead_id", journey, ["lead_id"])
    index("ix_gold_lead_journey_tenant_state", journey, ["tenant_id", "current_state"])
    index(
        "ix_gold_lead_journey_assigned_phone",
        journey,
        ["assigned_phone_id"],
        where="assigned_phone_id IS NOT NULL",
    )
    index("ix_gold_lead_journey_next_action", journey, ["next_action_at"], where="next_action_at IS NOT NULL")
    index("ix_gold_lead_journey_needs_review", journey, ["tenant_id"], where="requires_human_review")
    index("ix_gold_lead_journey_sequence_step", journey, ["current_sequence_id", "sequence_step"])
    index("ix_gold_lead_journey_tenant_created", journey, ["tenant_id", "created_at"])
    index(
        "ix_gold_lead_journey_wa_chat", journey, ["tenant_id", "wa_chat_id"], where="wa_chat_id IS NOT NULL"
    )
    index(
        "ix_gold_lead_journey_mobile", journey, ["tenant_id", "mobile_e164"], where="mobile_e164 IS NOT NULL"
    )
    index("ix_gold_lead_journey_email", journey, ["tenant_id", "email"], where="email IS NOT NULL")

    op.create_table(
        "lead_state_history",
        id_column(),
        tenant_column(),
        uuid_column("lead_journey_id", nullable=False),
        enum_column("from_state", "current_state_enum", nullable=True),
        enum_column("to_state", "current_state_enum"),
        text_column("trigger", nullable=False, default="SYSTEM"),
        text_column("reason"),
        text_column("actor"),
        ts_column("created_at", nullable=False, now=True),
        pk("lead_state_history"),
        tenant_fk("lead_state_history"),
        fk("lead_state_history", "lead_journey_id", "gold_lead_journey", "CASCADE"),
    )
    tenant_index("lead_state_history")
    index("ix_lead_state_history_journey_created", "lead_state_history", ["lead_journey_id", "created_at"])

    op.create_table(
        "sequence_enrollments",
        id_column(),
        tenant_column(),
        uuid_column("lead_journey_id", nullable=False),
        uuid_column("sequence_id", nullable=False),
        int_column("current_step", 0),
        int_column("total_steps", 0),
        enum_column("status", "enrollment_status_enum", default="ACTIVE"),
        ts_column("enrolled_at", nullable=False, now=True),
        ts_column("next_step_at"),
        ts_column("completed_at"),
        ts_column("stopped_at"),
        text_column("stop_reason"),
        int_column("messages_sent", 0),
        int_column("opens", 0),
        int_column("clicks", 0),
        int_column("replies", 0),
        *timestamps(),
        pk("sequence_enrollments"),
        tenant_fk("sequence_enrollments"),
        fk("sequence_enrollments", "lead_journey_id", "gold_lead_journey", "CASCADE"),
        fk("sequence_enrollments", "sequence_id", "outreach_sequences", "CASCADE"),
        uq("sequence_enrollments", "lead_journey_id", "sequence_id"),
    )
    tenant_index("sequence_enrollments")
    index("ix_sequence_enrollments_sequence_id", "sequence_enrollments", ["sequence_id"])
    index(
        "ix_sequence_enrollments_next_step_active",
        "sequence_enrollments",
        ["next_step_at"],
        where="status = 'ACTIVE'",
    )

    # --- communication log and its archive (same columns, same order) ---
    log = "gold_communication_log"
    op.create_table(
        log,
        *communication_log_columns(),
        pk(log),
        tenant_fk(log),
        fk(log, "lead_journey_id", "gold_lead_journey", "CASCADE"),
        fk(log, "template_id", "outreach_templates", "SET NULL"),
        fk(log, "template_version_id", "template_versions", "SET NULL"),
        fk(log, "phone_id", "wa_phone_numbers", "SET NULL"),
        fk(log, "email_campaign_id", "email_campaigns", "SET NULL"),
        fk(log, "sequence_id", "outreach_sequences", "SET NULL"),
        fk(log, "enrollment_id", "sequence_enrollments", "SET NULL"),
        uq(log, "idempotency_key"),
        ck(log, "origin_valid", "origin IN ('AUTOMATION', 'AI', 'OPERATOR', 'REVIEW', 'TEST', 'WEBHOOK')"),
        ck(log, "quota_cost_non_negative", "quota_cost >= 0"),
    )
    index("ix_gold_communication_log_journey_created", log, ["lead_journey_id", sa.text("created_at DESC")])
    index("ix_gold_communication_log_external_message_id", log, ["external_message_id"])
    index("ix_gold_communication_log_thread_id", log, ["thread_id"])
    index("ix_gold_communication_log_status_created", log, ["status", "created_at"])
    index("ix_gold_communication_log_phone_created", log, ["phone_id", "created_at"])
    index("ix_gold_communication_log_tenant_channel_created", log, ["tenant_id", "channel", "created_at"])
    index(
        "ux_comm_log_one_inflight",
        log,
        ["lead_journey_id"],
        unique=True,
        where="direction = 'OUTBOUND' AND origin = 'AUTOMATION' AND status IN ('QUEUED', 'SENDING')",
    )

    archive = "gold_communication_log_archive"
    op.create_table(archive, *communication_log_columns(), pk(archive))
    index("ix_gold_communication_log_archive_journey_created", archive, ["lead_journey_id", "created_at"])
    index("ix_gold_communication_log_archive_tenant_created", archive, ["tenant_id", "created_at"])

    # --- suppression, webhooks ---
    op.create_table(
        "suppression_list",
        id_column(),
        tenant_column(),
        text_column("channel", nullable=False),
        text_column("value", nullable=False),
        enum_column("reason", "suppression_reason_enum"),
        text_column("source"),
        int_column("bounce_count", 0),
        bool_column("is_permanent", True),
        ts_column("expires_at"),
        uuid_column("lead_journey_id"),
        jsonb_column("details", "{}"),
        *timestamps(),
        pk("suppression_list"),
        tenant_fk("suppression_list"),
        fk("suppression_list", "lead_journey_id", "gold_lead_journey", "SET NULL"),
        uq("suppression_list", "tenant_id", "channel", "value"),
        ck("suppression_list", "channel_valid", "channel IN ('EMAIL', 'WHATSAPP', 'ALL')"),
        ck("suppression_list", "value_lower", "value = lower(value)"),
    )
    tenant_index("suppression_list")
    index("ix_suppression_list_lead_journey_id", "suppression_list", ["lead_journey_id"])

    op.create_table(
        "webhook_events",
        id_column(),
        tenant_column(nullable=True),
        text_column("provider", nullable=False),
        text_column("event_type"),
        text_column("event_key", nullable=False),
        jsonb_column("payload", "{}"),
        jsonb_column("headers", "{}"),
        enum_column("status", "webhook_status_enum", default="RECEIVED"),
        text_column("error"),
        int_column("attempts", 0),
        uuid_column("lead_journey_id"),
        ts_column("received_at", nullable=False, now=True),
        ts_column("processed_at"),
        pk("webhook_events"),
        tenant_fk("webhook_events"),
        fk("webhook_events", "lead_journey_id", "gold_lead_journey", "SET NULL"),
        uq("webhook_events", "provider", "event_key"),
    )
    tenant_index("webhook_events")
    index("ix_webhook_events_lead_journey_id", "webhook_events", ["lead_journey_id"])
    index("ix_webhook_events_status_received", "webhook_events", ["status", "received_at"])

    # --- human review ---
    op.create_table(
        "human_review_queue",
        id_column(),
        tenant_column(),
        uuid_column("lead_journey_id", nullable=False),
        uuid_column("communication_id"),
        enum_column("reason", "review_reason_enum"),
        enum_column("priority", "review_priority_enum", default="MEDIUM"),
        enum_column("status", "review_status_enum", default="PENDING"),
        text_column("trigger_content"),
        int_column("trigger_sentiment_score"),
        jsonb_column("ai_analysis"),
        text_column("suggested_response"),
        sa.Column("confidence_score", sa.Float(), nullable=True),
        uuid_column("assigned_to"),
        ts_column("assigned_at"),
        ts_column("sla_due_at", nullable=False),
        bool_column("sla_breached", False),
        ts_column("sla_breached_at"),
        ts_column("first_human_action_at"),
        ts_column("escalated_at"),
        text_column("escalated_to"),
        int_column("escalation_level", 0),
        enum_column("resolution_action", "review_action_enum", nullable=True),
        text_column("resolution_notes"),
        text_column("response_content"),
        uuid_column("response_message_id"),
        text_column("resolved_by"),
        ts_column("resolved_at"),
        *timestamps(),
        pk("human_review_queue"),
        tenant_fk("human_review_queue"),
        fk("human_review_queue", "lead_journey_id", "gold_lead_journey", "CASCADE"),
        # SET NULL: the weekly archive deletes old log rows that reviews may point at.
        fk("human_review_queue", "communication_id", "gold_communication_log", "SET NULL"),
        fk("human_review_queue", "assigned_to", "users", "SET NULL"),
        uq("human_review_queue", "communication_id"),
    )
    reviews = "human_review_queue"
    tenant_index(reviews)
    index("ix_human_review_queue_tenant_status_priority", reviews, ["tenant_id", "status", "priority"])
    index("ix_human_review_queue_assigned_status", reviews, ["assigned_to", "status"])
    index(
        "ix_human_review_queue_sla_open", reviews, ["sla_due_at"], where="status IN ('PENDING', 'ASSIGNED')"
    )
    index("ix_human_review_queue_journey", reviews, ["lead_journey_id"])

    op.create_table(
        "hitl_audit_log",
        id_column(),
        tenant_column(),
        uuid_column("review_id", nullable=False),
        text_column("action", nullable=False),
        text_column("performed_by"),
        ts_column("performed_at", nullable=False, now=True),
        jsonb_column("previous_state"),
        jsonb_column("new_state"),
        text_column("notes"),
        text_column("ip_address"),
        text_column("user_agent"),
        pk("hitl_audit_log"),
        tenant_fk("hitl_audit_log"),
        fk("hitl_audit_log", "review_id", "human_review_queue", "CASCADE"),
    )
    tenant_index("hitl_audit_log")
    index("ix_hitl_audit_log_review_performed", "hitl_audit_log", ["review_id", "performed_at"])

    # --- reporting and operations ---
    counters = (
        "wa_new_contacts_sent",
        "wa_followups_sent",
        "wa_replies_received",
        "wa_quota_used",
        "wa_quota_remaining",
        "email_cold_sent",
        "email_cold_opens",
        "email_cold_clicks",
        "email_cold_replies",
        "email_cold_bounces",
    )
    later_counters = (
        "email_warm_sent",
        "email_warm_opens",
        "leads_contacted",
        "leads_replied",
        "leads_positive_replies",
        "leads_converted",
        "leads_marked_dead",
        "reviews_created",
        "reviews_resolved",
        "reviews_sla_breached",
    )
    op.create_table(
        "outreach_daily_stats",
        id_column(),
        tenant_column(),
        date_column("stat_date", nullable=False),
        *(int_column(name, 0) for name in counters),
        sa.Column("email_cold_bounce_rate", sa.Numeric(7, 4), server_default=sa.text("0"), nullable=False),
        *(int_column(name, 0) for name in later_counters),
        sa.Column("sentiment_avg", sa.Numeric(7, 2), nullable=True),
        jsonb_column("report"),
        ts_column("computed_at", nullable=False, now=True),
        *timestamps(),
        pk("outreach_daily_stats"),
        tenant_fk("outreach_daily_stats"),
        uq("outreach_daily_stats", "tenant_id", "stat_date"),
    )
    tenant_index("outreach_daily_stats")

    op.create_table(
        "alerts",
        id_column(),
        tenant_column(nullable=True),
        text_column("alert_type", nullable=False),
        enum_column("severity", "alert_severity_enum"),
        enum_column("status", "alert_status_enum", default="OPEN"),
        text_column("dedup_key", nullable=False),
        text_column("subject"),
        text_column("title", nullable=False),
        text_column("message", nullable=False, default=""),
        jsonb_column("details", "{}"),
        int_column("occurrences", 1),
        ts_column("first_seen_at", nullable=False, now=True),
        ts_column("last_seen_at", nullable=False, now=True),
        ts_column("acknowledged_at"),
        text_column("acknowledged_by"),
        ts_column("resolved_at"),
        text_column("resolved_by"),
        ts_column("silenced_until"),
        int_column("escalation_level", 1),
        ts_column("last_notified_at"),
        ts_column("escalated_at"),
        *timestamps(),
        pk("alerts"),
        tenant_fk("alerts"),
    )
    index(
        "ux_alerts_dedup_open",
        "alerts",
        ["dedup_key"],
        unique=True,
        where="status IN ('OPEN', 'ACKNOWLEDGED', 'SILENCED')",
    )
    index("ix_alerts_status_severity", "alerts", ["status", "severity"])
    index("ix_alerts_tenant_created", "alerts", ["tenant_id", "created_at"])

    op.create_table(
        "system_state",
        text_column("key", nullable=False),
        tenant_column(nullable=True),
        jsonb_column("value", "{}"),
        ts_column("updated_at", nullable=False, now=True),
        text_column("updated_by"),
        pk("system_state", "key"),
        tenant_fk("system_state"),
    )
    tenant_index("system_state")

    op.create_table(
        "audit_log",
        id_column(),
        tenant_column(nullable=True),
        text_column("actor_type", nullable=False),
        text_column("actor_id"),
        text_column("actor_label"),
        text_column("action", nullable=False),
        text_column("entity_type"),
        text_column("entity_id"),
        text_column("reason"),
        jsonb_column("before"),
        jsonb_column("after"),
        text_column("ip_address"),
        text_column("request_id"),
        ts_column("created_at", nullable=False, now=True),
        pk("audit_log"),
        tenant_fk("audit_log"),
    )
    index("ix_audit_log_tenant_created", "audit_log", ["tenant_id", sa.text("created_at DESC")])
    index("ix_audit_log_entity", "audit_log", ["entity_type", "entity_id"])

    op.create_table(
        "idempotency_keys",
        id_column(),
        tenant_column(),
        text_column("key", nullable=False),
        text_column("method", nullable=False),
        text_column("path", nullable=False),
        text_column("request_hash", nullable=False),
        int_column("status_code"),
        jsonb_column("response_body"),
        ts_column("locked_at"),
        ts_column("created_at", nullable=False, now=True),
        pk("idempotency_keys"),
        tenant_fk("idempotency_keys"),
        uq("idempotency_keys", "tenant_id", "key"),
    )
    tenant_index("idempotency_keys")
    index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)  # drops its indexes and constraints too
    op.execute(f"DROP SEQUENCE IF EXISTS {PHONE_ID_SEQUENCE}")
    for name in reversed(ENUMS):
        op.execute(f"DROP TYPE IF EXISTS {name}")
