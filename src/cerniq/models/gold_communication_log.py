"""``gold_communication_log``: every message in and out, and the WhatsApp quota ledger."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, Index, UniqueConstraint, text

from cerniq.models.base import Base
from cerniq.models.columns import EagerDefaults
from cerniq.models.communication_log_columns import CommunicationLogColumns


def _fk(column: str, target: str, ondelete: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint([column], [target], ondelete=ondelete)


class GoldCommunicationLog(CommunicationLogColumns, EagerDefaults, Base):
    """A row is one message of a lead journey on one channel, inbound or outbound. An outbound
    message exists here (QUEUED) before any job sends it; its status then follows the send
    (SENDING, SENT, DELIVERED, READ, REPLIED, FAILED, AMBIGUOUS, BOUNCED, SKIPPED).
    ``quota_cost = 1`` rows are the ledger Redis quota counters are rebuilt from."""

    __tablename__ = "gold_communication_log"
    __table_args__ = (
        _fk("tenant_id", "tenants.id", "CASCADE"),
        _fk("lead_journey_id", "gold_lead_journey.id", "CASCADE"),
        _fk("template_id", "outreach_templates.id", "SET NULL"),
        _fk("template_version_id", "template_versions.id", "SET NULL"),
        _fk("phone_id", "wa_phone_numbers.id", "SET NULL"),
        _fk("email_campaign_id", "email_campaigns.id", "SET NULL"),
        _fk("sequence_id", "outreach_sequences.id", "SET NULL"),
        _fk("enrollment_id", "sequence_enrollments.id", "SET NULL"),
        UniqueConstraint("idempotency_key"),
        CheckConstraint(
            "origin IN ('AUTOMATION', 'AI', 'OPERATOR', 'REVIEW', 'TEST', 'WEBHOOK')", name="origin_valid"
        ),
        CheckConstraint("quota_cost >= 0", name="quota_cost_non_negative"),
        Index("ix_gold_communication_log_journey_created", "lead_journey_id", text("created_at DESC")),
        Index("ix_gold_communication_log_external_message_id", "external_message_id"),
        Index("ix_gold_communication_log_thread_id", "thread_id"),
        Index("ix_gold_communication_log_status_created", "status", "created_at"),
        Index("ix_gold_communication_log_phone_created", "phone_id", "created_at"),
        Index("ix_gold_communication_log_tenant_channel_created", "tenant_id", "channel", "created_at"),
        # The console's activity feed and today's dashboard figures (migration 0003).
        Index("ix_gold_communication_log_tenant_updated", "tenant_id", "updated_at"),
        # The quota ledger of one phone's business day (migration 0007).
        Index(
            "ix_gold_communication_log_quota_day",
            "quota_date",
            "phone_id",
            postgresql_where=text("quota_date IS NOT NULL"),
        ),
        # The delivery poll's pick: open outbound WhatsApp messages by send time (migration 0008).
        Index(
            "ix_gold_communication_log_wa_open",
            "sent_at",
            postgresql_where=text(
                "channel = 'WHATSAPP' AND direction = 'OUTBOUND' AND status IN ('SENT', 'DELIVERED')"
            ),
        ),
        # At most one automated outbound message in flight per lead: dispatch relies on it.
        Index(
            "ux_comm_log_one_inflight",
            "lead_journey_id",
            unique=True,
            postgresql_where=text(
                "direction = 'OUTBOUND' AND origin = 'AUTOMATION' AND status IN ('QUEUED', 'SENDING')"
            ),
        ),
    )
