"""Column helpers and the shared PostgreSQL enum types used by the model files.

Each helper sets a Python default and the matching server default, so rows inserted by the ORM
and rows inserted by hand (the runbook's psql lines, imports) get the same values. Nullability
follows the ``Mapped[...]`` annotation unless a helper says otherwise.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Boolean, Integer, Text, false, func, text, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import MappedColumn, mapped_column

from cerniq.models.enums import (
    AlertSeverity,
    AlertStatus,
    Channel,
    Direction,
    EnrollmentStatus,
    LeadState,
    MessageStatus,
    PhoneStatus,
    ReviewAction,
    ReviewPriority,
    ReviewReason,
    ReviewStatus,
    Role,
    SequenceStatus,
    SuppressionReason,
    WebhookStatus,
    pg_enum,
)

# One SQLAlchemy type object per PostgreSQL enum type, shared by every column of that type.
CURRENT_STATE = pg_enum(LeadState, "current_state_enum")
CHANNEL = pg_enum(Channel, "channel_enum")
MESSAGE_DIRECTION = pg_enum(Direction, "message_direction_enum")
MESSAGE_STATUS = pg_enum(MessageStatus, "message_status_enum")
PHONE_STATUS = pg_enum(PhoneStatus, "phone_status_enum")
REVIEW_PRIORITY = pg_enum(ReviewPriority, "review_priority_enum")
REVIEW_REASON = pg_enum(ReviewReason, "review_reason_enum")
REVIEW_STATUS = pg_enum(ReviewStatus, "review_status_enum")
REVIEW_ACTION = pg_enum(ReviewAction, "review_action_enum")
USER_ROLE = pg_enum(Role, "user_role_enum")
SEQUENCE_STATUS = pg_enum(SequenceStatus, "sequence_status_enum")
ENROLLMENT_STATUS = pg_enum(EnrollmentStatus, "enrollment_status_enum")
ALERT_SEVERITY = pg_enum(AlertSeverity, "alert_severity_enum")
ALERT_STATUS = pg_enum(AlertStatus, "alert_status_enum")
WEBHOOK_STATUS = pg_enum(WebhookStatus, "webhook_status_enum")
SUPPRESSION_REASON = pg_enum(SuppressionReason, "suppression_reason_enum")

DEFAULT_TIMEZONE = "Europe/Bucharest"


def text_column(default: str | None = None, **kwargs: Any) -> MappedColumn[Any]:
    """A TEXT column, optionally with a constant default."""
    if default is not None:
        kwargs.setdefault("default", default)
        kwargs.setdefault("server_default", default)
    return mapped_column(Text, **kwargs)


def flag(default: bool) -> MappedColumn[Any]:
    """A NOT NULL boolean with a default."""
    return mapped_column(
        Boolean, nullable=False, default=default, server_default=true() if default else false()
    )


def counter(default: int = 0) -> MappedColumn[Any]:
    """A NOT NULL integer with a default (counters, limits, scores)."""
    return mapped_column(Integer, nullable=False, default=default, server_default=text(str(default)))


def json_object(*, nullable: bool = False) -> MappedColumn[Any]:
    """A JSONB object column, ``{}`` by default."""
    return mapped_column(JSONB, nullable=nullable, default=dict, server_default=text("'{}'::jsonb"))


def json_list() -> MappedColumn[Any]:
    """A NOT NULL JSONB array column, ``[]`` by default."""
    return mapped_column(JSONB, nullable=False, default=list, server_default=text("'[]'::jsonb"))


def created_now() -> MappedColumn[Any]:
    """An insert timestamp (``now()``), for tables that are appended to and never updated."""
    return mapped_column(nullable=False, server_default=func.now())


class EagerDefaults:
    """Fetch server-generated defaults with RETURNING on INSERT, so async code never triggers a
    lazy load by reading them after a flush.

    Not on UPDATE ("auto"): ``updated_at`` is set by the application, and the one value the
    database computes on update (``gold_lead_journey.engagement_stage``) is never read in Python.
    Fetching it made every changed row its own ``UPDATE ... RETURNING`` round trip; without it a
    flush of many rows is one batched statement."""

    __mapper_args__: ClassVar[dict[str, Any]] = {"eager_defaults": "auto"}
