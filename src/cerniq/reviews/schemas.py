"""Request bodies of the review endpoints (response shapes are built in the service)."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cerniq.models.enums import Channel


class ResolveAction(StrEnum):
    """What the reviewer decided. APPROVE sends the AI draft, EDIT the edited draft, CUSTOM the
    reviewer's own answer; the others send nothing."""

    APPROVE = "APPROVE"
    EDIT = "EDIT"
    CUSTOM = "CUSTOM"
    REJECT = "REJECT"
    MARK_DEAD = "MARK_DEAD"
    PAUSE_LEAD = "PAUSE_LEAD"
    TAKEOVER = "TAKEOVER"
    IGNORE = "IGNORE"


# The other vocabularies of the wider spec (OAS, HITL, UI), accepted as synonyms.
ACTION_ALIASES: dict[str, ResolveAction] = {
    "APPROVED": ResolveAction.APPROVE,
    "APPROVE_AI_RESPONSE": ResolveAction.APPROVE,
    "EDITED": ResolveAction.EDIT,
    "MODIFY": ResolveAction.EDIT,
    "SEND_CUSTOM_RESPONSE": ResolveAction.CUSTOM,
    "RESPOND": ResolveAction.CUSTOM,
    "REJECTED": ResolveAction.REJECT,
    "MARK_AS_DEAD": ResolveAction.MARK_DEAD,
    "MARKED_DEAD": ResolveAction.MARK_DEAD,
    "LEAD_PAUSED": ResolveAction.PAUSE_LEAD,
    "HUMAN_TAKEOVER": ResolveAction.TAKEOVER,
    "IGNORED": ResolveAction.IGNORE,
}

MAX_CONTENT = 4096


class AssignBody(BaseModel):
    """``POST /reviews/{id}/assign``."""

    model_config = ConfigDict(extra="forbid")

    userId: uuid.UUID = Field(description="The user (of this tenant) who takes the review")
    notes: str | None = Field(default=None, max_length=2000)


class ResolveBody(BaseModel):
    """``POST /reviews/{id}/resolve``."""

    model_config = ConfigDict(extra="forbid")

    action: ResolveAction = Field(
        description="APPROVE | EDIT | CUSTOM | REJECT | MARK_DEAD | PAUSE_LEAD | TAKEOVER | IGNORE"
    )
    editedContent: str | None = Field(default=None, max_length=MAX_CONTENT)
    customResponse: str | None = Field(default=None, max_length=MAX_CONTENT)
    notes: str | None = Field(default=None, max_length=2000)
    channel: Channel | None = Field(
        default=None, description="WHATSAPP or EMAIL_WARM; default: the channel of the conversation"
    )
    subject: str | None = Field(default=None, max_length=200, description="Email subject (EMAIL_WARM)")

    @field_validator("action", mode="before")
    @classmethod
    def _alias(cls, value: object) -> object:
        if isinstance(value, str):
            name = value.strip().upper()
            return ACTION_ALIASES.get(name, name)
        return value


class EscalateBody(BaseModel):
    """``POST /reviews/{id}/escalate`` (runbook 5.1 step 4)."""

    model_config = ConfigDict(extra="forbid")

    escalateTo: str = Field(
        min_length=1, max_length=100, description='"manager", "team_lead", "on_call" or a user id'
    )
    reason: str = Field(
        min_length=10, max_length=1000, description='"SLA_BREACH_UNRESPONDED" or at least 10 characters'
    )

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        value = value.strip()
        if len(value) < 10:
            raise ValueError("the reason needs at least 10 characters")
        return value
