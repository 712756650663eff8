"""Request bodies of the phone endpoints."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cerniq.models.enums import PhoneStatus


class PhoneCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phoneNumber: str = Field(min_length=6, max_length=32, description="E.164, or a Romanian national number")
    label: str = Field(min_length=1, max_length=100)
    timelinesaiAccountId: str | None = Field(default=None, max_length=200)
    dailyQuotaLimit: int | None = Field(default=None, ge=0, le=1000)
    priority: int | None = Field(default=None, ge=1, le=100)
    isEnabled: bool = True


class PhonePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, min_length=1, max_length=100)
    isEnabled: bool | None = None
    priority: int | None = Field(default=None, ge=1, le=100)
    dailyQuotaLimit: int | None = Field(default=None, ge=0, le=1000)
    timelinesaiAccountId: str | None = Field(default=None, max_length=200)
    status: PhoneStatus | None = None
    reason: str | None = Field(default=None, max_length=500)
