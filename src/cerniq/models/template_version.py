"""``template_versions``: the immutable text history of a template, also its A/B variants."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, Timestamps, UUIDPk
from cerniq.models.columns import EagerDefaults, counter, flag, json_list


class TemplateVersion(UUIDPk, TenantScoped, Timestamps, EagerDefaults, Base):
    """A row is one numbered version of a template (subject, content, variables, change notes),
    optionally an A/B variant with a weight; messages record which version they used."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("template_id", "version_number"),)

    template_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("outreach_templates.id", ondelete="CASCADE"))
    version_number: Mapped[int]
    version_label: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    variables: Mapped[list[Any]] = json_list()
    change_notes: Mapped[str | None] = mapped_column(Text)
    is_ab_variant: Mapped[bool] = flag(False)
    ab_weight: Mapped[int] = counter()
    times_used: Mapped[int] = counter()
    opens: Mapped[int] = counter()
    replies: Mapped[int] = counter()
    positive_replies: Mapped[int] = counter()
    created_by: Mapped[str | None] = mapped_column(Text)
