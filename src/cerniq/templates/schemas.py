"""Request bodies of the template endpoints (``/api/v1/outreach/templates``)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The API accepts our channel names and the console's "EMAIL" (both email channels when
# filtering; a cold-email template when creating: automation only ever writes cold mail).
TemplateChannel = Literal["WHATSAPP", "EMAIL_COLD", "EMAIL_WARM", "EMAIL"]
MediaType = Literal["image", "document", "video"]

VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
CODE_PATTERN = r"^[A-Za-z0-9_.-]+$"


class TemplateVariable(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=64, pattern=VARIABLE_NAME)
    required: bool = True
    defaultValue: str | None = Field(default=None, max_length=500)


def _check_media(has_media: bool | None, media_type: str | None, media_url: str | None) -> None:
    if has_media and (not media_type or not media_url):
        raise ValueError("hasMedia needs mediaType (image, document or video) and mediaUrl")
    if media_url and not media_url.lower().startswith(("https://", "http://")):
        raise ValueError("mediaUrl must be an http(s) URL")


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=3, max_length=100)
    code: str | None = Field(default=None, min_length=1, max_length=64, pattern=CODE_PATTERN)
    description: str | None = Field(default=None, max_length=500)
    channel: TemplateChannel
    subject: str | None = Field(default=None, max_length=200)
    content: str = Field(min_length=10, max_length=4096)
    variables: list[TemplateVariable] | None = Field(default=None, max_length=50)
    language: str = Field(default="ro", min_length=2, max_length=8)
    hasMedia: bool = False
    mediaType: MediaType | None = None
    mediaUrl: str | None = Field(default=None, max_length=2000)
    isActive: bool = True
    isApproved: bool = False
    changeNotes: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _rules(self) -> TemplateCreate:
        if self.channel != "WHATSAPP" and not self.subject:
            raise ValueError("an email template needs a subject")
        if self.hasMedia and self.channel != "WHATSAPP":
            raise ValueError("media is only supported on WhatsApp templates")
        _check_media(self.hasMedia, self.mediaType, self.mediaUrl)
        return self


class TemplatePatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=3, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    subject: str | None = Field(default=None, max_length=200)
    content: str | None = Field(default=None, min_length=10, max_length=4096)
    variables: list[TemplateVariable] | None = Field(default=None, max_length=50)
    hasMedia: bool | None = None
    mediaType: MediaType | None = None
    mediaUrl: str | None = Field(default=None, max_length=2000)
    isActive: bool | None = None
    isApproved: bool | None = None
    changeNotes: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _rules(self) -> TemplatePatch:
        _check_media(self.hasMedia, self.mediaType, self.mediaUrl)
        return self


class VariantCreate(BaseModel):
    """An A/B variant: ``weight`` is the share of sends (percent) it takes from the current text."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    content: str = Field(min_length=10, max_length=4096)
    label: str = Field(min_length=1, max_length=50)
    weight: int = Field(ge=1, le=100)
    subject: str | None = Field(default=None, max_length=200)
    changeNotes: str | None = Field(default=None, max_length=500)


class VariantPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    label: str | None = Field(default=None, min_length=1, max_length=50)
    weight: int | None = Field(default=None, ge=0, le=100, description="0 retires the variant")


PersonalizationValue = str | int | float | None


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    personalization: dict[str, PersonalizationValue] | None = None
    leadId: str | None = Field(default=None, max_length=64)
    seed: str | int | None = Field(default=None, description="same seed, same text (string or integer)")
    spintaxVariant: str | None = Field(default=None, max_length=2000)
    variantId: uuid.UUID | None = None
    firstMessage: bool | None = None

    @model_validator(mode="after")
    def _rules(self) -> PreviewRequest:
        if self.seed is not None and self.spintaxVariant is not None:
            raise ValueError("give a seed or a spintaxVariant, not both")
        if isinstance(self.seed, str) and len(self.seed) > 200:
            raise ValueError("seed: at most 200 characters")
        if self.personalization is not None and len(self.personalization) > 100:
            raise ValueError("at most 100 personalization values")
        return self


class LintRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(max_length=4096)
    channel: TemplateChannel = "WHATSAPP"
    subject: str | None = Field(default=None, max_length=200)
    firstMessage: bool | None = None
