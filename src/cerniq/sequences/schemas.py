"""Request bodies of the sequence endpoints (``/api/v1/outreach/sequences``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

StepChannel = Literal["WHATSAPP", "EMAIL_COLD", "EMAIL_WARM"]
# The console's "EMAIL" is cold email: automation never writes warm mail first.
SequenceChannel = Literal["WHATSAPP", "EMAIL", "EMAIL_COLD", "EMAIL_WARM"]
CODE_PATTERN = r"^[A-Za-z0-9_.-]+$"


class StepIn(BaseModel):
    """One step. ``delayHours`` counts from enrollment for step 1 (default 0) and from the
    previous step's send for the others (default 24)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    delayHours: int | None = Field(default=None, ge=0, le=720)
    delayMinutes: int = Field(default=0, ge=0, le=59)
    channel: StepChannel = "WHATSAPP"
    templateId: uuid.UUID
    skipIfReplied: bool = True
    skipIfOpened: bool = False
    subjectOverride: str | None = Field(default=None, max_length=200)
    contentOverride: str | None = Field(default=None, min_length=10, max_length=4096)


class SequenceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=3, max_length=100)
    code: str | None = Field(default=None, min_length=1, max_length=64, pattern=CODE_PATTERN)
    description: str | None = Field(default=None, max_length=500)
    primaryChannel: SequenceChannel = "WHATSAPP"
    fallbackChannel: SequenceChannel | None = None
    respectBusinessHours: bool = True
    stopOnReply: bool = True
    stopOnBounce: bool = True
    isDefault: bool = False
    isActive: bool = True
    steps: list[StepIn] = Field(min_length=1, max_length=10)


class SequencePatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=3, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    primaryChannel: SequenceChannel | None = None
    fallbackChannel: SequenceChannel | None = None
    isActive: bool | None = None
    isDefault: bool | None = None
    respectBusinessHours: bool | None = None
    stopOnReply: bool | None = None
    stopOnBounce: bool | None = None


class StepsReplace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[StepIn] = Field(min_length=1, max_length=10)


class EnrollRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    leadIds: list[Annotated[str, Field(max_length=100)]] = Field(
        min_length=1, max_length=1000, description="journey ids or company ids"
    )
    startStep: int = Field(default=1, ge=1, le=10)
    scheduledStart: datetime | None = Field(
        default=None, description="when the enrollment starts (naive times are Europe/Bucharest)"
    )


class LeadEnrollRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sequenceId: uuid.UUID
    startStep: int = Field(default=1, ge=1, le=10)
    scheduledStart: datetime | None = None


class PauseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)
