"""Request bodies of the phone action endpoints."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReasonBody(BaseModel):
    """An optional reason (pause, pause-all)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class BanBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500, description="Why the phone is banned (suspected cause)")


class TestSendBody(BaseModel):
    """Runbook 2.3 step 6: ``{"phoneId": "phone_21", "testNumber": "+40..."}``."""

    model_config = ConfigDict(extra="forbid")

    phoneId: str = Field(min_length=1, max_length=64)
    testNumber: str = Field(min_length=6, max_length=32, description="E.164, or a Romanian national number")
    text: str | None = Field(default=None, min_length=1, max_length=4096)
