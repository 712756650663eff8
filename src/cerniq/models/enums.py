"""The domain's enumerations. Each is a PostgreSQL enum type of the same values."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Enum as SAEnum


class LeadState(StrEnum):
    COLD = "COLD"
    CONTACTED_WA = "CONTACTED_WA"
    CONTACTED_EMAIL = "CONTACTED_EMAIL"
    WARM_REPLY = "WARM_REPLY"
    NEGOTIATION = "NEGOTIATION"
    CONVERTED = "CONVERTED"
    DEAD = "DEAD"
    PAUSED = "PAUSED"


class Channel(StrEnum):
    WHATSAPP = "WHATSAPP"
    EMAIL_COLD = "EMAIL_COLD"
    EMAIL_WARM = "EMAIL_WARM"
    PHONE = "PHONE"
    MANUAL = "MANUAL"


class Direction(StrEnum):
    OUTBOUND = "OUTBOUND"
    INBOUND = "INBOUND"


class MessageStatus(StrEnum):
    QUEUED = "QUEUED"
    SENDING = "SENDING"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    READ = "READ"
    REPLIED = "REPLIED"
    RECEIVED = "RECEIVED"
    OPENED = "OPENED"
    CLICKED = "CLICKED"
    BOUNCED = "BOUNCED"
    FAILED = "FAILED"
    AMBIGUOUS = "AMBIGUOUS"
    SKIPPED = "SKIPPED"


class PhoneStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    OFFLINE = "OFFLINE"
    BANNED = "BANNED"
    RECONNECTING = "RECONNECTING"
    QUARANTINE = "QUARANTINE"


class ReviewPriority(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    URGENT = "URGENT"


class ReviewReason(StrEnum):
    NEGATIVE_SENTIMENT = "NEGATIVE_SENTIMENT"
    KEYWORD_TRIGGER = "KEYWORD_TRIGGER"
    BOUNCE_DETECTED = "BOUNCE_DETECTED"
    COMPLAINT = "COMPLAINT"
    MANUAL_FLAG = "MANUAL_FLAG"
    AI_UNCERTAIN = "AI_UNCERTAIN"
    AI_FLAGGED = "AI_FLAGGED"
    AI_DRAFT = "AI_DRAFT"
    QUESTION = "QUESTION"


class ReviewStatus(StrEnum):
    PENDING = "PENDING"
    ASSIGNED = "ASSIGNED"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"
    ESCALATED = "ESCALATED"
    EXPIRED = "EXPIRED"


class ReviewAction(StrEnum):
    APPROVED = "APPROVED"
    EDITED = "EDITED"
    REJECTED = "REJECTED"
    TAKEOVER = "TAKEOVER"
    IGNORED = "IGNORED"
    MARKED_DEAD = "MARKED_DEAD"
    LEAD_PAUSED = "LEAD_PAUSED"


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


class SequenceStatus(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    ARCHIVED = "ARCHIVED"


class EnrollmentStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    STOPPED = "STOPPED"


class AlertSeverity(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class AlertStatus(StrEnum):
    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"
    SILENCED = "SILENCED"


class WebhookStatus(StrEnum):
    RECEIVED = "RECEIVED"
    PROCESSED = "PROCESSED"
    QUARANTINED = "QUARANTINED"
    IGNORED = "IGNORED"
    REJECTED = "REJECTED"


class SuppressionReason(StrEnum):
    HARD_BOUNCE = "HARD_BOUNCE"
    SOFT_BOUNCE = "SOFT_BOUNCE"
    COMPLAINT = "COMPLAINT"
    UNSUBSCRIBE = "UNSUBSCRIBE"
    OPT_OUT = "OPT_OUT"
    GDPR_ERASURE = "GDPR_ERASURE"
    MANUAL = "MANUAL"


def pg_enum(enum_cls: type[StrEnum], name: str) -> SAEnum:
    """A PostgreSQL enum column type storing the member values."""
    return SAEnum(
        enum_cls,
        name=name,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )
