"""``idempotency_keys``: responses of our own API remembered per ``Idempotency-Key``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, UUIDPk
from cerniq.models.columns import EagerDefaults, created_now


class IdempotencyKey(UUIDPk, TenantScoped, EagerDefaults, Base):
    """A row is one idempotent API request of a tenant: the key, the request it was first used
    with (method, path, body hash), and the response to replay, or a lock while it runs."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("tenant_id", "key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    key: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    request_hash: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int | None]
    response_body: Mapped[Any | None] = mapped_column(JSONB)
    locked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_now()
