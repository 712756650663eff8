"""``tenants``: one customer organisation; every business row belongs to one."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import Text, text
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, Timestamps, UUIDPk
from cerniq.models.columns import EagerDefaults, flag, json_object


def new_webhook_token() -> str:
    """A long random secret for webhook URLs of vendors that sign nothing (TimelinesAI)."""
    return secrets.token_urlsafe(32)


class Tenant(UUIDPk, Timestamps, EagerDefaults, Base):
    """A row is one tenant: its slug, its settings (e.g. ``auto_reply_enabled``) and the secret
    token that authenticates its unsigned webhook URLs."""

    __tablename__ = "tenants"

    slug: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    settings: Mapped[dict[str, Any]] = json_object()
    # The server default covers rows inserted by hand; 256 random bits either way.
    webhook_token: Mapped[str] = mapped_column(
        Text,
        unique=True,
        default=new_webhook_token,
        server_default=text("replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')"),
    )
    is_active: Mapped[bool] = flag(True)
