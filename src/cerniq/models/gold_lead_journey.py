"""``gold_lead_journey``: the outreach state of one lead (company) of a tenant."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Computed, ForeignKey, Index, Text, UniqueConstraint, event, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm.attributes import set_committed_value

from cerniq.models.base import Base, TenantScoped, Timestamps, UUIDPk
from cerniq.models.columns import (
    CHANNEL,
    CURRENT_STATE,
    DEFAULT_TIMEZONE,
    REVIEW_PRIORITY,
    EagerDefaults,
    counter,
    flag,
    json_list,
    json_object,
    text_column,
)
from cerniq.models.enums import Channel, LeadState, ReviewPriority


class GoldLeadJourney(UUIDPk, TenantScoped, Timestamps, EagerDefaults, Base):
    """A row is one lead's journey through outreach: its state (COLD ... CONVERTED), the sticky
    WhatsApp phone and chat, the addresses we write to, opt-outs, sequence position, next due
    action, engagement counters, review and human-takeover flags."""

    __tablename__ = "gold_lead_journey"
    __table_args__ = (
        UniqueConstraint("tenant_id", "lead_id"),
        CheckConstraint("sentiment_score BETWEEN -100 AND 100", name="sentiment_score_range"),
        CheckConstraint("engagement_score BETWEEN 0 AND 100", name="engagement_score_range"),
        Index("ix_gold_lead_journey_tenant_state", "tenant_id", "current_state"),
        Index(
            "ix_gold_lead_journey_assigned_phone",
            "assigned_phone_id",
            postgresql_where=text("assigned_phone_id IS NOT NULL"),
        ),
        Index(
            "ix_gold_lead_journey_next_action",
            "next_action_at",
            postgresql_where=text("next_action_at IS NOT NULL"),
        ),
        Index(
            "ix_gold_lead_journey_needs_review",
            "tenant_id",
            postgresql_where=text("requires_human_review"),
        ),
        Index("ix_gold_lead_journey_sequence_step", "current_sequence_id", "sequence_step"),
        Index("ix_gold_lead_journey_tenant_created", "tenant_id", "created_at"),
        # Inbound matching: a WhatsApp reply by chat id or number, an email event by address.
        Index(
            "ix_gold_lead_journey_wa_chat",
            "tenant_id",
            "wa_chat_id",
            postgresql_where=text("wa_chat_id IS NOT NULL"),
        ),
        Index(
            "ix_gold_lead_journey_mobile",
            "tenant_id",
            "mobile_e164",
            postgresql_where=text("mobile_e164 IS NOT NULL"),
        ),
        Index(
            "ix_gold_lead_journey_email",
            "tenant_id",
            "email",
            postgresql_where=text("email IS NOT NULL"),
        ),
        # The lead list's search and filters (migration 0002).
        Index(
            "ix_gold_lead_journey_email_trgm",
            "email",
            postgresql_using="gin",
            postgresql_ops={"email": "gin_trgm_ops"},
        ),
        Index(
            "ix_gold_lead_journey_mobile_trgm",
            "mobile_e164",
            postgresql_using="gin",
            postgresql_ops={"mobile_e164": "gin_trgm_ops"},
        ),
        Index("ix_gold_lead_journey_tenant_channel", "tenant_id", "last_channel_used"),
        Index("ix_gold_lead_journey_has_reply", "tenant_id", postgresql_where=text("reply_count > 0")),
        # Today's figures of the dashboard and the daily roll-up: leads first contacted and
        # converted in a day (migration 0005).
        Index(
            "ix_gold_lead_journey_first_contact",
            "tenant_id",
            "first_contact_at",
            postgresql_where=text("first_contact_at IS NOT NULL"),
        ),
        # The leads list's sorts: one page is one range of an index (migration 0006; see
        # leads.repository._page_ids).
        Index("ix_gold_lead_journey_tenant_next_action_id", "tenant_id", "next_action_at", "id"),
        Index("ix_gold_lead_journey_tenant_last_contact_id", "tenant_id", "last_contact_at", "id"),
        Index("ix_gold_lead_journey_tenant_sentiment_id", "tenant_id", "sentiment_score", "id"),
        Index(
            "ix_gold_lead_journey_converted",
            "tenant_id",
            "converted_at",
            postgresql_where=text("converted_at IS NOT NULL"),
        ),
    )

    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("gold_companies.id", ondelete="CASCADE"), index=True
    )
    primary_contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("gold_contacts.id", ondelete="SET NULL")
    )
    mobile_e164: Mapped[str | None] = mapped_column(Text)  # WhatsApp-capable number
    email: Mapped[str | None] = mapped_column(Text)  # address we write to
    whatsapp_invalid: Mapped[bool] = flag(False)
    wa_chat_id: Mapped[str | None] = mapped_column(Text)  # TimelinesAI chat of the conversation

    # Sticky phone (assigned on the first WhatsApp contact).
    assigned_phone_id: Mapped[str | None] = mapped_column(
        Text, ForeignKey("wa_phone_numbers.id", ondelete="SET NULL")
    )
    assigned_at: Mapped[datetime | None]

    current_state: Mapped[LeadState] = mapped_column(
        CURRENT_STATE, default=LeadState.COLD, server_default=LeadState.COLD.value
    )
    # The runbook's name for current_state (its SQL filters on it); read-only.
    engagement_stage: Mapped[LeadState] = mapped_column(
        CURRENT_STATE, Computed("current_state", persisted=True), nullable=False
    )
    previous_state: Mapped[LeadState | None] = mapped_column(CURRENT_STATE)
    state_changed_at: Mapped[datetime | None]
    state_change_reason: Mapped[str | None] = mapped_column(Text)

    is_new_contact: Mapped[bool] = flag(True)
    quota_consumption_date: Mapped[date | None]
    first_contact_channel: Mapped[Channel | None] = mapped_column(CHANNEL)
    last_channel_used: Mapped[Channel | None] = mapped_column(CHANNEL)
    preferred_channel: Mapped[Channel | None] = mapped_column(CHANNEL)

    email_opted_out: Mapped[bool] = flag(False)
    whatsapp_opted_out: Mapped[bool] = flag(False)
    opted_out_at: Mapped[datetime | None]

    current_sequence_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("outreach_sequences.id", ondelete="SET NULL")
    )
    sequence_step: Mapped[int] = counter(0)
    sequence_started_at: Mapped[datetime | None]
    sequence_paused: Mapped[bool] = flag(False)
    next_action_at: Mapped[datetime | None]

    sentiment_score: Mapped[int] = counter(0)
    engagement_score: Mapped[int] = counter(0)
    reply_count: Mapped[int] = counter()
    open_count: Mapped[int] = counter()
    click_count: Mapped[int] = counter()
    messages_sent: Mapped[int] = counter()

    requires_human_review: Mapped[bool] = flag(False)
    human_review_reason: Mapped[str | None] = mapped_column(Text)
    human_review_priority: Mapped[ReviewPriority | None] = mapped_column(REVIEW_PRIORITY)
    is_human_controlled: Mapped[bool] = flag(False)
    human_controlled_by: Mapped[uuid.UUID | None]  # users.id of the operator (no FK: audit)
    human_controlled_at: Mapped[datetime | None]
    human_control_reason: Mapped[str | None] = mapped_column(Text)
    assigned_to_user: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    first_contact_at: Mapped[datetime | None]
    last_contact_at: Mapped[datetime | None]
    last_reply_at: Mapped[datetime | None]
    last_open_at: Mapped[datetime | None]
    converted_at: Mapped[datetime | None]

    timezone: Mapped[str] = text_column(DEFAULT_TIMEZONE)
    tags: Mapped[list[Any]] = json_list()
    custom_fields: Mapped[dict[str, Any]] = json_object()
    internal_notes: Mapped[str | None] = mapped_column(Text)


@event.listens_for(GoldLeadJourney, "after_update")
def _engagement_stage_follows_state(_mapper: Any, _connection: Any, target: GoldLeadJourney) -> None:
    """``engagement_stage`` is generated from ``current_state`` by the database. UPDATEs do not
    fetch it back (that would make every row of a batch its own round trip), so it is set here
    to the value the database computed, and stays readable after a flush without a lazy load."""
    set_committed_value(target, "engagement_stage", target.current_state)
