"""``api_tokens``: bearer tokens for the REST API, stored only as SHA-256 hashes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, Timestamps, UUIDPk
from cerniq.models.columns import USER_ROLE, EagerDefaults
from cerniq.models.enums import Role


class ApiToken(UUIDPk, TenantScoped, Timestamps, EagerDefaults, Base):
    """A row is one API token of a tenant: the SHA-256 hex of the secret, a short prefix to
    recognise it by, its role, and when it was last used, expires or was revoked."""

    __tablename__ = "api_tokens"

    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[str] = mapped_column(Text, unique=True)
    token_prefix: Mapped[str] = mapped_column(Text)
    role: Mapped[Role] = mapped_column(USER_ROLE, default=Role.OPERATOR, server_default=Role.OPERATOR.value)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
