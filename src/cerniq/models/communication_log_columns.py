"""The columns of ``gold_communication_log``, shared with its archive table.

Both tables are built from :class:`CommunicationLogColumns` alone, so their columns are the same
and in the same order, and ``INSERT INTO gold_communication_log_archive SELECT * FROM
gold_communication_log`` (the runbook's weekly archive) keeps working as columns are added.
Foreign keys and unique constraints live only on the live table (its ``__table_args__``).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import SmallInteger, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.kit.clock import utcnow
from cerniq.models.columns import (
    CHANNEL,
    MESSAGE_DIRECTION,
    MESSAGE_STATUS,
    counter,
    flag,
    text_column,
)
from cerniq.models.enums import Channel, Direction, MessageStatus

ORIGINS = ("AUTOMATION", "AI", "OPERATOR", "REVIEW", "TEST", "WEBHOOK")

#: How long before an event of a message (sent, opened, clicked, bounced; received for inbound
#: rows, stamped with the vendor's clock) its ``updated_at`` may be: it is set with every change,
#: so it is never earlier than them but for clock skew between the vendor and us.
UPDATED_AT_SKEW: Final = timedelta(hours=1)


def touched_since(model: Any, moment: datetime) -> Any:
    """``model``'s rows with an event at or after ``moment`` are among these: one range of the
    ``(tenant_id, updated_at)`` index instead of every row of the tenant."""
    return model.updated_at >= moment - UPDATED_AT_SKEW


class CommunicationLogColumns:
    """Every column of a communication log row, in table order."""

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=uuid.uuid4, server_default=text("gen_random_uuid()")
    )
    tenant_id: Mapped[uuid.UUID]
    lead_journey_id: Mapped[uuid.UUID]
    channel: Mapped[Channel] = mapped_column(CHANNEL)
    direction: Mapped[Direction] = mapped_column(MESSAGE_DIRECTION)
    status: Mapped[MessageStatus] = mapped_column(
        MESSAGE_STATUS, default=MessageStatus.QUEUED, server_default=MessageStatus.QUEUED.value
    )
    # Who produced the message: AUTOMATION, AI, OPERATOR, REVIEW, TEST or WEBHOOK (inbound).
    origin: Mapped[str] = text_column("AUTOMATION")
    template_id: Mapped[uuid.UUID | None]
    template_version_id: Mapped[uuid.UUID | None]
    content: Mapped[str] = text_column("")
    content_rendered: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    # TimelinesAI message uid, Instantly lead/email id or Resend email id.
    external_message_id: Mapped[str | None] = mapped_column(Text)
    # TimelinesAI chat id or email thread; replies are matched on it.
    thread_id: Mapped[str | None] = mapped_column(Text)
    phone_id: Mapped[str | None] = mapped_column(Text)
    phone_number: Mapped[str | None] = mapped_column(Text)
    # The lead's address for email messages (recipient outbound, sender inbound).
    email: Mapped[str | None] = mapped_column(Text)
    email_campaign_id: Mapped[uuid.UUID | None]
    sequence_id: Mapped[uuid.UUID | None]
    sequence_step: Mapped[int | None]
    enrollment_id: Mapped[uuid.UUID | None]
    # The quota ledger: 1 for a new WhatsApp contact, 0 otherwise.
    quota_cost: Mapped[int] = mapped_column(SmallInteger, default=0, server_default=text("0"))
    quota_date: Mapped[date | None]  # business day the quota was spent on
    is_ai_generated: Mapped[bool] = flag(False)
    sentiment_score: Mapped[int | None]
    sentiment_analyzed_at: Mapped[datetime | None]
    intent_classification: Mapped[str | None] = mapped_column(Text)
    bounce_type: Mapped[str | None] = mapped_column(Text)
    bounce_reason: Mapped[str | None] = mapped_column(Text)
    click_url: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    retry_count: Mapped[int] = counter(0)
    max_retries: Mapped[int] = counter(3)
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    raw_request: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    raw_response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    webhook_payload: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    status_updated_at: Mapped[datetime | None]
    scheduled_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    replied_at: Mapped[datetime | None]
    bounced_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    clicked_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(Text)
    # set by the application (see models.base.Timestamps): a batch of new rows is one INSERT
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)
