"""``outreach_templates``: message templates (spintax and ``{{variables}}``) per channel."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, Timestamps, UUIDPk
from cerniq.models.columns import CHANNEL, EagerDefaults, counter, flag, json_list, text_column
from cerniq.models.enums import Channel


class OutreachTemplate(UUIDPk, TenantScoped, Timestamps, EagerDefaults, Base):
    """A row is one message template of a tenant for one channel: subject and content (the
    current version's text), declared variables, optional media, approval and usage stats."""

    __tablename__ = "outreach_templates"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        Index("ix_outreach_templates_tenant_channel_active", "tenant_id", "channel", "is_active"),
    )

    name: Mapped[str] = mapped_column(Text)
    code: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[Channel] = mapped_column(CHANNEL)
    subject: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str] = text_column("")
    # [{"name": "companyName", "required": true}, ...]
    variables: Mapped[list[Any]] = json_list()
    language: Mapped[str] = text_column("ro")
    has_media: Mapped[bool] = flag(False)
    media_type: Mapped[str | None] = mapped_column(Text)  # image | document | video
    media_url: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = flag(True)
    is_approved: Mapped[bool] = flag(False)
    current_version: Mapped[int] = counter(1)
    times_used: Mapped[int] = counter()
    replies: Mapped[int] = counter()
    positive_replies: Mapped[int] = counter()
