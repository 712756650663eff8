"""Request bodies of the email endpoints."""

from __future__ import annotations

import re
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["CampaignCreate", "CampaignSchedule", "CampaignStep", "ReasonBody"]

_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ReasonBody(BaseModel):
    """Optional body of pause/resume: why (kept in the audit log)."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=1000)


class CampaignSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str = Field(default="09:00", description="HH:MM, 24 h")
    end: str = Field(default="18:00", description="HH:MM, 24 h")
    days: list[int] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5], description="0 = Sunday ... 6 = Saturday"
    )
    timezone: str = "Europe/Bucharest"

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _TIME.match(value):
            raise ValueError("use HH:MM (24 h)")
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if not value or any(d < 0 or d > 6 for d in value):
            raise ValueError("days are 0 (Sunday) to 6 (Saturday)")
        return sorted(set(value))

    def instantly(self) -> dict[str, Any]:
        return {
            "name": "Program de lucru",
            "timing": {"from": self.start, "to": self.end},
            "days": {str(d): True for d in self.days},
            "timezone": self.timezone,
        }


class CampaignStep(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str = Field(min_length=1, max_length=500)
    body: str = Field(min_length=1, max_length=50_000)
    delayDays: int = Field(default=0, ge=0, le=365)


class CampaignCreate(BaseModel):
    """``POST /api/v1/outreach/campaigns``. Without ``steps`` the campaign sends our rendered
    message (``{{subject}}`` / ``{{body}}`` custom variables of each lead)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    sequenceId: uuid.UUID | None = None
    sequenceStepId: uuid.UUID | None = None
    emailAccounts: list[str] = Field(default_factory=list, max_length=200)
    schedule: CampaignSchedule | None = None
    steps: list[CampaignStep] | None = Field(default=None, max_length=20)
    dailyLimit: int | None = Field(default=None, ge=1, le=100_000)
    activate: bool = True
    instantlyCampaignId: str | None = Field(default=None, max_length=100)
    """Link an existing Instantly campaign instead of creating one."""

    @field_validator("emailAccounts")
    @classmethod
    def _accounts(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", address):
                raise ValueError(f"{address!r} is not an email address")
        return value
