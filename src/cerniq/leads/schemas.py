"""Request bodies of the lead endpoints (response shapes are built in the service)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from cerniq.models.enums import Channel, LeadState

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class LeadPatch(BaseModel):
    """``PATCH /leads/{id}``. Absent fields are left alone; ``null`` clears the optional ones
    (preferredChannel, notes, assignedToUser). A state change needs a ``reason``."""

    model_config = ConfigDict(extra="forbid")

    currentState: LeadState | None = None
    reason: str | None = Field(default=None, max_length=500, description="Why (required to change state)")
    preferredChannel: Channel | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50, description="Replaces the tags")
    customFields: dict[str, Any] | None = Field(
        default=None, description="Replaces the custom fields (a JSON object)"
    )
    notes: str | None = Field(default=None, max_length=10_000, description="Internal notes")
    assignedToUser: uuid.UUID | None = None
