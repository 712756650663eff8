"""``system_state``: small named switches and markers (emergency stop, last run times)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.kit.clock import utcnow
from cerniq.models.base import Base
from cerniq.models.columns import EagerDefaults, json_object


class SystemState(EagerDefaults, Base):
    """A row is one named piece of system state, e.g. ``emergency_stop`` -> ``{"active": true,
    "reason": ...}``, optionally for one tenant, with who changed it last."""

    __tablename__ = "system_state"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    value: Mapped[dict[str, Any]] = json_object()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(Text)
