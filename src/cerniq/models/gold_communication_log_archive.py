"""``gold_communication_log_archive``: communication log rows older than the retention window."""

from __future__ import annotations

from sqlalchemy import Index

from cerniq.models.base import Base
from cerniq.models.columns import EagerDefaults
from cerniq.models.communication_log_columns import CommunicationLogColumns


class GoldCommunicationLogArchive(CommunicationLogColumns, EagerDefaults, Base):
    """A row is one archived message, moved verbatim from ``gold_communication_log`` by the
    weekly maintenance. Same columns in the same order; no foreign keys or unique constraints,
    so an archived row always fits whatever was deleted since."""

    __tablename__ = "gold_communication_log_archive"
    __table_args__ = (
        Index("ix_gold_communication_log_archive_journey_created", "lead_journey_id", "created_at"),
        Index("ix_gold_communication_log_archive_tenant_created", "tenant_id", "created_at"),
    )
