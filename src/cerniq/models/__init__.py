"""The ORM tables, one file per table. Importing this package registers all of them on
``Base.metadata`` (Alembic's env.py and the tests rely on that)."""

from cerniq.models.alert import Alert
from cerniq.models.api_token import ApiToken
from cerniq.models.audit_log import AuditEntry
from cerniq.models.base import Base, TenantScoped, Timestamps, UUIDPk
from cerniq.models.email_campaign import EmailCampaign
from cerniq.models.gold_communication_log import GoldCommunicationLog
from cerniq.models.gold_communication_log_archive import GoldCommunicationLogArchive
from cerniq.models.gold_company import GoldCompany
from cerniq.models.gold_contact import GoldContact
from cerniq.models.gold_lead_journey import GoldLeadJourney
from cerniq.models.hitl_audit_log import HitlAuditEntry
from cerniq.models.human_review import HumanReview
from cerniq.models.idempotency_key import IdempotencyKey
from cerniq.models.lead_state_history import LeadStateHistory
from cerniq.models.outreach_daily_stats import OutreachDailyStats
from cerniq.models.outreach_sequence import OutreachSequence
from cerniq.models.outreach_sequence_step import OutreachSequenceStep
from cerniq.models.outreach_template import OutreachTemplate
from cerniq.models.phone_incident import PhoneIncident
from cerniq.models.sequence_enrollment import SequenceEnrollment
from cerniq.models.suppression_entry import SuppressionEntry
from cerniq.models.system_state import SystemState
from cerniq.models.template_version import TemplateVersion
from cerniq.models.tenant import Tenant
from cerniq.models.user import User
from cerniq.models.wa_phone_number import PHONE_ID_SEQUENCE, WaPhoneNumber
from cerniq.models.wa_quota_usage import WaQuotaUsage
from cerniq.models.webhook_event import WebhookEvent

__all__ = [
    "PHONE_ID_SEQUENCE",
    "Alert",
    "ApiToken",
    "AuditEntry",
    "Base",
    "EmailCampaign",
    "GoldCommunicationLog",
    "GoldCommunicationLogArchive",
    "GoldCompany",
    "GoldContact",
    "GoldLeadJourney",
    "HitlAuditEntry",
    "HumanReview",
    "IdempotencyKey",
    "LeadStateHistory",
    "OutreachDailyStats",
    "OutreachSequence",
    "OutreachSequenceStep",
    "OutreachTemplate",
    "PhoneIncident",
    "SequenceEnrollment",
    "SuppressionEntry",
    "SystemState",
    "TemplateVersion",
    "Tenant",
    "TenantScoped",
    "Timestamps",
    "UUIDPk",
    "User",
    "WaPhoneNumber",
    "WaQuotaUsage",
    "WebhookEvent",
]
