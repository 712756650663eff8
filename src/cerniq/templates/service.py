"""Templates as a product: CRUD with an immutable version history, lint on save, previews,
A/B variants picked by weight, and the usage counters the send path and replies feed.

The spintax and rendering functions live in :mod:`cerniq.templates.spintax` and
:mod:`cerniq.templates.render`; this module stores, checks and picks texts. Services flush,
never commit: the request, task or CLI owns the transaction.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import Principal
from cerniq.auth.service import record_audit
from cerniq.errors import Conflict, NotFound, ValidationFailed
from cerniq.kit.pagination import PageParams
from cerniq.models import GoldCommunicationLog, GoldCompany, GoldContact, OutreachTemplate, TemplateVersion
from cerniq.models.enums import Channel
from cerniq.replies.bands import POSITIVE_REPLY_SCORE
from cerniq.templates import repository
from cerniq.templates.render import STANDARD_VARIABLES, LintIssue, lead_variables, lint, render
from cerniq.templates.spintax import SpintaxError, Template, Variable, parse

EMAIL_CHANNELS: tuple[Channel, ...] = (Channel.EMAIL_COLD, Channel.EMAIL_WARM)
TEMPLATE_CHANNELS: tuple[Channel, ...] = (Channel.WHATSAPP, *EMAIL_CHANNELS)
"""A reply whose sentiment score is at least this counts as positive (DESIGN §9 routing)."""

# Lint issues that block saving: the text does not parse, or there is no text at all. The rest
# (unknown variables, duplicate options, links) are warnings returned with the saved template.
BLOCKING_CODES = frozenset(
    {
        "UNBALANCED_BRACES",
        "EMPTY_GROUP",
        "EMPTY_OPTION",
        "SINGLE_OPTION_GROUP",
        "INVALID_VARIABLE_NAME",
        "EMPTY_TEMPLATE",
    }
)


class TemplateInvalid(ValidationFailed):
    """A template text that does not parse; ``details.issues`` lists the lint issues with positions."""

    code = "TEMPLATE_INVALID"


# ------------------------------------------------------------------------------------ channels


def parse_channel_filter(raw: str | None) -> tuple[Channel, ...]:
    """``WHATSAPP``, ``EMAIL_COLD``, ``EMAIL_WARM`` or ``EMAIL`` (both email channels)."""
    if raw is None or not raw.strip():
        return ()
    value = raw.strip().upper()
    if value == "EMAIL":
        return EMAIL_CHANNELS
    try:
        channel = Channel(value)
    except ValueError:
        channel = None
    if channel not in TEMPLATE_CHANNELS:
        raise ValidationFailed(
            f"unknown channel {raw!r}: use WHATSAPP, EMAIL_COLD, EMAIL_WARM or EMAIL",
            details={"field": "channel"},
        )
    assert channel is not None
    return (channel,)


def channel_for_create(raw: str) -> Channel:
    """The stored channel of a new template; the console's ``EMAIL`` is cold email."""
    return Channel.EMAIL_COLD if raw.upper() == "EMAIL" else Channel(raw.upper())


def channels_compatible(template_channel: Channel, step_channel: Channel) -> bool:
    """A WhatsApp step needs a WhatsApp template; an email step any email template."""
    if step_channel == Channel.WHATSAPP or template_channel == Channel.WHATSAPP:
        return step_channel == template_channel
    return template_channel in EMAIL_CHANNELS and step_channel in EMAIL_CHANNELS


# ------------------------------------------------------------------------------------ lint


def _line_column(source: str, position: int | None) -> tuple[int | None, int | None]:
    if position is None:
        return None, None
    line = source.count("\n", 0, position) + 1
    column = position - (source.rfind("\n", 0, position) + 1) + 1
    return line, column


def issue_view(
    issue: LintIssue, source: str, *, field_name: str = "content", severity: str | None = None
) -> dict[str, Any]:
    line, column = _line_column(source, issue.position)
    return {
        "code": issue.code,
        "message": issue.message,
        "position": issue.position,
        "line": line,
        "column": column,
        "severity": severity or issue.severity,
        "field": field_name,
    }


def detect_variables(*texts: str | None) -> list[dict[str, Any]]:
    """The ``{{variables}}`` of the texts in order of appearance: required when some occurrence
    has no inline default; ``defaultValue`` is the first inline default met."""
    found: dict[str, dict[str, Any]] = {}
    for text in texts:
        if not text:
            continue
        try:
            template = parse(text)
        except SpintaxError:
            continue
        for node in template.walk():
            if not isinstance(node, Variable):
                continue
            entry = found.setdefault(node.name, {"name": node.name, "required": False, "defaultValue": None})
            if node.default is None:
                entry["required"] = True
            elif entry["defaultValue"] is None:
                entry["defaultValue"] = node.default
    return list(found.values())


@dataclass
class LintReport:
    """Save-time lint of a template's texts: ``errors`` block saving, ``warnings`` do not."""

    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    variables: list[dict[str, Any]] = field(default_factory=list)
    variant_count: int | None = None

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def issues(self) -> list[dict[str, Any]]:
        return self.errors + self.warnings

    def raise_if_invalid(self) -> None:
        if self.errors:
            first = self.errors[0]
            where = f" at line {first['line']}, column {first['column']}" if first["line"] else ""
            raise TemplateInvalid(
                f"the {first['field']} does not parse{where}: {first['message']}",
                details={"issues": self.issues},
            )


def lint_texts(
    content: str,
    *,
    subject: str | None = None,
    channel: Channel = Channel.WHATSAPP,
    first_message: bool = False,
    declared: Sequence[Mapping[str, Any]] = (),
) -> LintReport:
    """Lint content (and subject) as saving does.

    Variables are checked against the names a lead can supply (:data:`STANDARD_VARIABLES`): a
    variable with neither a value source nor an inline default is reported (as a warning:
    dispatch holds such leads for review). A declared ``defaultValue`` does not count, since
    rendering only uses inline defaults (``{{name|default}}``). ``first_message`` adds the
    no-link check of a first WhatsApp message.
    """
    report = LintReport()
    available = set(STANDARD_VARIABLES)
    required = [str(v["name"]) for v in declared if v.get("required")]
    texts: list[tuple[str, str]] = [("content", content)]
    if subject:
        texts.append(("subject", subject))
    for field_name, text in texts:
        issues = lint(
            text,
            available_variables=available,
            required=_required_with_defaults(text, required) if field_name == "content" else (),
            first_message=first_message and channel == Channel.WHATSAPP and field_name == "content",
        )
        for issue in issues:
            if issue.code in BLOCKING_CODES:
                report.errors.append(issue_view(issue, text, field_name=field_name, severity="error"))
            else:
                report.warnings.append(issue_view(issue, text, field_name=field_name, severity="warning"))
    if report.valid:
        report.variables = detect_variables(content, subject)
        report.variant_count = parse(content).variant_count()
    return report


def _required_with_defaults(text: str, required: Sequence[str]) -> list[str]:
    """Declared-required names whose every use has an inline default: lint reports those as
    ``MISSING_REQUIRED_VARIABLE``; the others already come out as ``UNRESOLVED_VARIABLE``."""
    try:
        template = parse(text)
    except SpintaxError:
        return []
    bare = {n.name for n in template.walk() if isinstance(n, Variable) and n.default is None}
    return [name for name in required if name not in bare]


def lint_view(
    content: str, *, channel: str = "WHATSAPP", subject: str | None = None, first_message: bool | None = None
) -> dict[str, Any]:
    """``POST /templates/lint``: what saving this text would say, for the live editor."""
    stored = channel_for_create(channel)
    report = lint_texts(
        content,
        subject=subject,
        channel=stored,
        first_message=bool(first_message),
    )
    if not content.strip() and not report.errors:
        report.errors.append(
            {
                "code": "EMPTY_TEMPLATE",
                "message": "the template is empty",
                "position": 0,
                "line": 1,
                "column": 1,
                "severity": "error",
                "field": "content",
            }
        )
    return {
        "valid": report.valid,
        "issues": report.issues,
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "variablesDetected": report.variables,
        "variantCount": report.variant_count,
        "length": len(content),
    }


# ------------------------------------------------------------------------------------ views


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def stats_view(times_used: int, replies: int, positive: int) -> dict[str, Any]:
    return {
        "timesUsed": times_used,
        "replies": replies,
        "positiveReplies": positive,
        "replyRate": _rate(replies, times_used),
        "positiveReplyRate": _rate(positive, times_used),
    }


def template_view(template: OutreachTemplate, *, live_variants: int = 0) -> dict[str, Any]:
    return {
        "id": str(template.id),
        "name": template.name,
        "code": template.code,
        "description": template.description,
        "channel": template.channel.value,
        "subject": template.subject,
        "content": template.content,
        "variables": list(template.variables or []),
        "language": template.language,
        "hasMedia": template.has_media,
        "mediaType": template.media_type,
        "mediaUrl": template.media_url,
        "isActive": template.is_active,
        "isApproved": template.is_approved,
        "currentVersion": template.current_version,
        "abVariants": live_variants,
        "stats": stats_view(template.times_used, template.replies, template.positive_replies),
        "createdAt": _iso(template.created_at),
        "updatedAt": _iso(template.updated_at),
    }


def version_view(version: TemplateVersion, template: OutreachTemplate) -> dict[str, Any]:
    return {
        "id": str(version.id),
        "versionNumber": version.version_number,
        "label": version.version_label,
        "subject": version.subject,
        "content": version.content,
        "variables": list(version.variables or []),
        "changeNotes": version.change_notes,
        "isAbVariant": version.is_ab_variant,
        "abWeight": version.ab_weight,
        "isCurrent": not version.is_ab_variant and version.version_number == template.current_version,
        "createdBy": version.created_by,
        "createdAt": _iso(version.created_at),
        "stats": stats_view(version.times_used, version.replies, version.positive_replies)
        | {"opens": version.opens},
    }


# ------------------------------------------------------------------------------------ CRUD


async def get_template(
    session: AsyncSession, tenant_id: uuid.UUID, template_id: uuid.UUID | str, *, for_update: bool = False
) -> OutreachTemplate:
    """The tenant's template, or NotFound (also for another tenant's id or a malformed one)."""
    key = _as_uuid(template_id)
    template = (
        None if key is None else await repository.get_template(session, tenant_id, key, for_update=for_update)
    )
    if template is None:
        raise NotFound(f"template {template_id} not found", details={"id": str(template_id)})
    return template


async def resolve_template(session: AsyncSession, tenant_id: uuid.UUID, id_or_code: str) -> OutreachTemplate:
    """A template by id or by code (for the CLI), or NotFound."""
    if _as_uuid(id_or_code) is None:
        template = await repository.get_template_by_code(session, tenant_id, id_or_code)
        if template is None:
            raise NotFound(f"template {id_or_code} not found", details={"id": id_or_code})
        return template
    return await get_template(session, tenant_id, id_or_code)


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def list_view(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    page: PageParams,
    *,
    channel: str | None = None,
    is_active: bool | None = None,
    search: str | None = None,
) -> dict[str, Any]:
    """``GET /templates``: ``{"data": [...], "meta": {page, limit, total, pages, filters}}``."""
    channels = parse_channel_filter(channel)
    rows, total = await repository.list_templates(
        session,
        tenant_id,
        channels=channels,
        is_active=is_active,
        search=search,
        offset=page.offset,
        limit=page.limit,
    )
    counts = await repository.live_variant_counts(session, [t.id for t in rows])
    return {
        "data": [template_view(t, live_variants=counts.get(t.id, 0)) for t in rows],
        "meta": page.meta(total, channel=channel, isActive=is_active, search=search or None),
    }


async def _add_version(
    session: AsyncSession,
    template: OutreachTemplate,
    *,
    content: str,
    subject: str | None,
    variables: list[Any],
    change_notes: str | None,
    created_by: str | None,
    label: str | None = None,
    ab_weight: int = 0,
    is_ab_variant: bool = False,
) -> TemplateVersion:
    await repository.lock_template_row(session, template.id)
    number = await repository.max_version_number(session, template.id) + 1
    version = TemplateVersion(
        id=uuid.uuid4(),
        tenant_id=template.tenant_id,
        template_id=template.id,
        version_number=number,
        version_label=label or f"v{number}",
        subject=subject,
        content=content,
        variables=variables,
        change_notes=change_notes,
        is_ab_variant=is_ab_variant,
        ab_weight=ab_weight,
        created_by=created_by,
    )
    session.add(version)
    await session.flush([version])
    return version


def _variables_of(declared: Sequence[Any] | None, content: str, subject: str | None) -> list[dict[str, Any]]:
    if declared is None:
        return detect_variables(content, subject)
    out = []
    for item in declared:
        data = item.model_dump() if hasattr(item, "model_dump") else dict(item)
        out.append(
            {
                "name": data["name"],
                "required": bool(data.get("required", True)),
                "defaultValue": data.get("defaultValue"),
            }
        )
    return out


async def create_template(
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    channel: str,
    content: str,
    subject: str | None = None,
    code: str | None = None,
    description: str | None = None,
    variables: Sequence[Any] | None = None,
    language: str = "ro",
    has_media: bool = False,
    media_type: str | None = None,
    media_url: str | None = None,
    is_active: bool = True,
    is_approved: bool = False,
    change_notes: str | None = None,
) -> tuple[OutreachTemplate, list[dict[str, Any]]]:
    """Create a template and its version 1. Returns the template and the lint warnings.

    Raises :class:`TemplateInvalid` (400) when the content or subject does not parse, and
    Conflict when ``code`` is taken.
    """
    stored_channel = channel_for_create(channel)
    if stored_channel in EMAIL_CHANNELS and not (subject or "").strip():
        raise ValidationFailed("an email template needs a subject", details={"field": "subject"})
    declared = _variables_of(variables, content, subject)
    report = lint_texts(content, subject=subject, channel=stored_channel, declared=declared)
    report.raise_if_invalid()
    if code and await repository.get_template_by_code(session, principal.tenant_id, code) is not None:
        raise Conflict(f"a template with code {code!r} exists", code="TEMPLATE_CODE_TAKEN")
    template = OutreachTemplate(
        id=uuid.uuid4(),
        tenant_id=principal.tenant_id,
        name=name,
        code=code,
        description=description,
        channel=stored_channel,
        subject=subject or None,
        content=content,
        variables=declared,
        language=language,
        has_media=has_media,
        media_type=media_type if has_media else None,
        media_url=media_url if has_media else None,
        is_active=is_active,
        is_approved=is_approved,
        current_version=1,
    )
    session.add(template)
    await session.flush([template])
    await _add_version(
        session,
        template,
        content=content,
        subject=template.subject,
        variables=declared,
        change_notes=change_notes or "created",
        created_by=principal.actor,
    )
    await record_audit(
        session,
        principal,
        "template.create",
        entity_type="template",
        entity_id=template.id,
        after={"name": name, "channel": stored_channel.value, "code": code, "version": 1},
    )
    return template, report.warnings


async def update_template(
    session: AsyncSession, principal: Principal, template_id: uuid.UUID | str, changes: Mapping[str, Any]
) -> tuple[OutreachTemplate, list[dict[str, Any]]]:
    """Apply a PATCH. A new content or subject writes a new version (and needs re-approval
    unless ``isApproved`` comes with it). Returns the template and the lint warnings."""
    template = await get_template(session, principal.tenant_id, template_id, for_update=True)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}

    def change(attr: str, key: str, value: Any) -> None:
        if getattr(template, attr) != value:
            before[key] = getattr(template, attr)
            after[key] = value
            setattr(template, attr, value)

    content = changes.get("content")
    subject = changes.get("subject", template.subject)
    new_text = (content is not None and content != template.content) or subject != template.subject
    warnings: list[dict[str, Any]] = []
    if template.channel in EMAIL_CHANNELS and "subject" in changes and not (subject or "").strip():
        raise ValidationFailed("an email template needs a subject", details={"field": "subject"})
    if new_text or changes.get("variables") is not None:
        text = content if content is not None else template.content
        declared = (
            _variables_of(changes["variables"], text, subject)
            if changes.get("variables") is not None
            else (detect_variables(text, subject) if content is not None else list(template.variables or []))
        )
        report = lint_texts(text, subject=subject, channel=template.channel, declared=declared)
        report.raise_if_invalid()
        warnings = report.warnings
        change("variables", "variables", declared)
        if new_text:
            change("content", "content", text)
            change("subject", "subject", subject or None)
            version = await _add_version(
                session,
                template,
                content=text,
                subject=subject or None,
                variables=declared,
                change_notes=changes.get("changeNotes"),
                created_by=principal.actor,
            )
            change("current_version", "currentVersion", version.version_number)
            if "isApproved" not in changes or changes["isApproved"] is None:
                change("is_approved", "isApproved", False)
    simple = {
        "name": "name",
        "description": "description",
        "isActive": "is_active",
        "isApproved": "is_approved",
        "hasMedia": "has_media",
        "mediaType": "media_type",
        "mediaUrl": "media_url",
    }
    nullable = {"description", "mediaType", "mediaUrl"}
    for key, attr in simple.items():
        if key in changes and (changes[key] is not None or key in nullable):
            change(attr, key, changes[key])
    if template.has_media:
        if template.channel != Channel.WHATSAPP:
            raise ValidationFailed(
                "media is only supported on WhatsApp templates", details={"field": "hasMedia"}
            )
        if not template.media_type or not template.media_url:
            raise ValidationFailed("hasMedia needs mediaType and mediaUrl", details={"field": "mediaUrl"})
    if before:
        await session.flush()
        await record_audit(
            session,
            principal,
            "template.update",
            entity_type="template",
            entity_id=template.id,
            reason=changes.get("changeNotes"),
            before=_audit_values(before),
            after=_audit_values(after),
        )
    return template, warnings


def _audit_values(values: Mapping[str, Any]) -> dict[str, Any]:
    # Message texts can be long; the version history keeps them, the audit row notes the change.
    return {
        k: (f"<{len(v)} characters>" if k == "content" and isinstance(v, str) else v)
        for k, v in values.items()
    }


async def delete_template(session: AsyncSession, principal: Principal, template_id: uuid.UUID | str) -> None:
    """Soft delete (``is_active = false``); 409 while a live sequence step sends it."""
    template = await get_template(session, principal.tenant_id, template_id, for_update=True)
    users = await repository.steps_using(session, principal.tenant_id, template.id)
    if users:
        raise Conflict(
            "the template is used by sequence steps; change those steps first",
            code="TEMPLATE_IN_USE",
            details={"steps": users},
        )
    if template.is_active:
        template.is_active = False
        await session.flush()
        await record_audit(
            session,
            principal,
            "template.delete",
            entity_type="template",
            entity_id=template.id,
            before={"isActive": True},
            after={"isActive": False},
        )


async def detail_view(
    session: AsyncSession, tenant_id: uuid.UUID, template_id: uuid.UUID | str
) -> dict[str, Any]:
    """``GET /templates/{id}``: the template, its ``versions`` (newest first), ``stats``,
    ``variants`` (the current text and live A/B variants with their share and results) and
    the sequence steps that use it."""
    template = await get_template(session, tenant_id, template_id)
    versions = await repository.versions_of(session, template.id)
    pool = _Pool.build(template, [v for v in versions if _pickable(v, template)])
    view = template_view(template, live_variants=len(pool.entries) - 1)
    view["versions"] = [version_view(v, template) for v in versions]
    view["variants"] = [
        {
            "versionId": str(entry.version.id) if entry.version else None,
            "versionNumber": entry.version.version_number if entry.version else template.current_version,
            "label": entry.label,
            "isControl": entry.control,
            "weight": entry.weight,
            "stats": stats_view(
                entry.version.times_used, entry.version.replies, entry.version.positive_replies
            )
            | {"opens": entry.version.opens}
            if entry.version
            else stats_view(0, 0, 0) | {"opens": 0},
        }
        for entry in pool.entries
    ]
    view["usedBy"] = await repository.steps_using(session, tenant_id, template.id)
    return view


# ------------------------------------------------------------------------------------ A/B variants


async def add_variant(
    session: AsyncSession,
    principal: Principal,
    template_id: uuid.UUID | str,
    *,
    content: str,
    label: str,
    weight: int,
    subject: str | None = None,
    change_notes: str | None = None,
) -> tuple[TemplateVersion, list[dict[str, Any]]]:
    """Add an A/B variant: a version row (``is_ab_variant``) taking ``weight`` percent of the
    sends; the current text keeps the rest. Live variants may not take more than 100 %."""
    template = await get_template(session, principal.tenant_id, template_id, for_update=True)
    declared = detect_variables(content, subject)
    report = lint_texts(content, subject=subject, channel=template.channel, declared=declared)
    report.raise_if_invalid()
    versions = await repository.versions_of(session, template.id)
    taken = sum(v.ab_weight for v in versions if v.is_ab_variant and v.ab_weight > 0)
    if taken + weight > 100:
        raise ValidationFailed(
            f"live variants would take {taken + weight} % of sends; at most 100 % (now {taken} %)",
            code="VARIANT_WEIGHT_TOO_HIGH",
            details={"field": "weight", "taken": taken},
        )
    version = await _add_version(
        session,
        template,
        content=content,
        subject=subject or None,
        variables=declared,
        change_notes=change_notes,
        created_by=principal.actor,
        label=label,
        ab_weight=weight,
        is_ab_variant=True,
    )
    await record_audit(
        session,
        principal,
        "template.variant.create",
        entity_type="template",
        entity_id=template.id,
        after={"versionId": str(version.id), "label": label, "weight": weight},
    )
    return version, report.warnings


async def update_variant(
    session: AsyncSession,
    principal: Principal,
    template_id: uuid.UUID | str,
    version_id: uuid.UUID | str,
    *,
    label: str | None = None,
    weight: int | None = None,
) -> TemplateVersion:
    """Change a variant's label or weight (0 retires it; its history and stats stay)."""
    template = await get_template(session, principal.tenant_id, template_id, for_update=True)
    key = _as_uuid(version_id)
    version = (
        None
        if key is None
        else await repository.get_version(session, principal.tenant_id, template.id, key, for_update=True)
    )
    if version is None or not version.is_ab_variant:
        raise NotFound(f"variant {version_id} not found", details={"id": str(version_id)})
    before = {"label": version.version_label, "weight": version.ab_weight}
    if weight is not None and weight != version.ab_weight:
        versions = await repository.versions_of(session, template.id)
        taken = sum(
            v.ab_weight for v in versions if v.is_ab_variant and v.ab_weight > 0 and v.id != version.id
        )
        if taken + weight > 100:
            raise ValidationFailed(
                f"live variants would take {taken + weight} % of sends; at most 100 %",
                code="VARIANT_WEIGHT_TOO_HIGH",
                details={"field": "weight", "taken": taken},
            )
        version.ab_weight = weight
    if label is not None:
        version.version_label = label
    await session.flush()
    await record_audit(
        session,
        principal,
        "template.variant.update",
        entity_type="template",
        entity_id=template.id,
        before=before,
        after={"versionId": str(version.id), "label": version.version_label, "weight": version.ab_weight},
    )
    return version


def _pickable(version: TemplateVersion, template: OutreachTemplate) -> bool:
    if version.is_ab_variant:
        return version.ab_weight > 0
    return version.version_number == template.current_version


@dataclass(frozen=True)
class _Entry:
    content: str
    subject: str | None
    version: TemplateVersion | None
    weight: int
    label: str
    control: bool


@dataclass(frozen=True)
class _Pool:
    """The texts a send may use: the current text (control) and the live variants."""

    entries: tuple[_Entry, ...]

    @classmethod
    def build(cls, template: OutreachTemplate, versions: Sequence[TemplateVersion]) -> _Pool:
        variants = [v for v in versions if v.is_ab_variant and v.ab_weight > 0]
        current = next(
            (v for v in versions if not v.is_ab_variant and v.version_number == template.current_version),
            None,
        )
        # A text changed behind our back (SQL) has no version row of its own: attribute nothing.
        if current is not None and current.content != template.content:
            current = None
        taken = sum(v.ab_weight for v in variants)
        scale = 100 / taken if taken > 100 else 1.0
        control = _Entry(
            template.content,
            template.subject,
            current,
            max(0, 100 - taken),
            current.version_label or f"v{current.version_number}" if current else "current",
            True,
        )
        entries = [control] + [
            _Entry(
                v.content,
                v.subject or template.subject,
                v,
                round(v.ab_weight * scale),
                v.version_label or f"v{v.version_number}",
                False,
            )
            for v in sorted(variants, key=lambda v: v.version_number)
        ]
        return cls(tuple(entries))

    def pick(self, template_id: uuid.UUID, seed: object) -> _Entry:
        live = [e for e in self.entries if e.weight > 0]
        if len(live) <= 1:
            return live[0] if live else self.entries[0]
        total = sum(e.weight for e in live)
        # sha256, not hash(): the same message picks the same text in every process.
        digest = hashlib.sha256(f"ab:{template_id}:{seed}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") % total
        for entry in live:
            if point < entry.weight:
                return entry
            point -= entry.weight
        return live[-1]


class VariantPick(NamedTuple):
    """The text a message uses: ``(content, subject, version_id)``."""

    content: str
    subject: str | None
    version_id: uuid.UUID | None


class _HasSession(Protocol):
    session: AsyncSession


class VariantCache:
    """Live variants per template, loaded once (e.g. per dispatch batch)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._pools: dict[tuple[uuid.UUID, int, str], _Pool] = {}

    async def pool(self, template: OutreachTemplate) -> _Pool:
        key = (template.id, template.current_version, template.content)
        pool = self._pools.get(key)
        if pool is None:
            versions = await repository.pickable_versions(self.session, template.id, template.current_version)
            pool = _Pool.build(template, versions)
            self._pools[key] = pool
        return pool


async def pick_variant(
    session_or_cache: AsyncSession | VariantCache | _HasSession, template: OutreachTemplate, seed: object
) -> VariantPick:
    """Pick the text of one message among the template's current text and its live A/B
    variants, by weight, deterministically for ``seed`` (the message id): a retry, a
    re-render or another worker picks the same text. ``version_id`` is the
    ``template_versions`` row to record on the message (None for a text with no version row).
    """
    if isinstance(session_or_cache, VariantCache):
        cache = session_or_cache
    elif isinstance(session_or_cache, AsyncSession):
        cache = VariantCache(session_or_cache)
    else:
        cache = VariantCache(session_or_cache.session)
    entry = (await cache.pool(template)).pick(template.id, seed)
    return VariantPick(entry.content, entry.subject, entry.version.id if entry.version else None)


# ------------------------------------------------------------------------------------ outcomes


class Outcome(StrEnum):
    SENT = "SENT"
    OPENED = "OPENED"
    REPLIED = "REPLIED"
    POSITIVE_REPLY = "POSITIVE_REPLY"


_TEMPLATE_COLUMNS = {
    Outcome.SENT: "times_used",
    Outcome.REPLIED: "replies",
    Outcome.POSITIVE_REPLY: "positive_replies",
}
_VERSION_COLUMNS = {
    Outcome.SENT: "times_used",
    Outcome.OPENED: "opens",
    Outcome.REPLIED: "replies",
    Outcome.POSITIVE_REPLY: "positive_replies",
}


async def record_variant_outcome(
    session: AsyncSession,
    *,
    template_id: uuid.UUID | None,
    template_version_id: uuid.UUID | None,
    outcome: Outcome | str,
    count: int = 1,
) -> None:
    """Add one outcome (sent, opened, replied, positive reply) to the template's and the
    version's counters, in single UPDATEs. Call it once per event, inside the transaction
    that records the event (so a retried event that is recognised as done never counts twice).
    """
    kind = Outcome(outcome)
    if template_id is not None and kind in _TEMPLATE_COLUMNS:
        await repository.bump_template(session, template_id, **{_TEMPLATE_COLUMNS[kind]: count})
    if template_version_id is not None:
        await repository.bump_version(session, template_version_id, **{_VERSION_COLUMNS[kind]: count})


async def record_message_outcome(
    session: AsyncSession, message: GoldCommunicationLog, outcome: Outcome | str
) -> None:
    """:func:`record_variant_outcome` for an outbound log row (its template and version)."""
    await record_variant_outcome(
        session,
        template_id=message.template_id,
        template_version_id=message.template_version_id,
        outcome=outcome,
    )


async def record_reply(
    session: AsyncSession, message: GoldCommunicationLog, *, sentiment_score: int | None
) -> None:
    """A reply to the outbound ``message``: counts a reply, and a positive reply when the
    sentiment score is at least :data:`POSITIVE_REPLY_SCORE`. When the score is only known
    later, call this with ``None`` and later ``record_message_outcome(..., POSITIVE_REPLY)``."""
    await record_message_outcome(session, message, Outcome.REPLIED)
    if sentiment_score is not None and sentiment_score >= POSITIVE_REPLY_SCORE:
        await record_message_outcome(session, message, Outcome.POSITIVE_REPLY)


# ------------------------------------------------------------------------------------ preview


def lead_template_variables(company: GoldCompany | None, contact: GoldContact | None) -> dict[str, str]:
    """The variables dispatch renders a lead's message with."""
    company_fields: dict[str, object] = {}
    if company is not None:
        company_fields = {
            "denumire": company.denumire,
            "judet": company.judet,
            "localitate": company.localitate,
            "sector": company.sector,
            "is_agricultural": company.is_agricultural,
            "cui": company.cui,
        }
    contact_fields = (
        None
        if contact is None
        else {"full_name": contact.full_name, "prenume": contact.prenume, "nume": contact.nume}
    )
    return lead_variables(company_fields, contact_fields)


async def preview(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    template_id: uuid.UUID | str,
    *,
    personalization: Mapping[str, object] | None = None,
    lead_id: str | None = None,
    seed: str | None = None,
    spintax_variant: str | None = None,
    variant_id: uuid.UUID | None = None,
    first_message: bool | None = None,
) -> dict[str, Any]:
    """Render the template for a lead (``lead_id``) or given values (``personalization``,
    which win over the lead's). With ``seed`` the result is deterministic (the same seed
    always renders the same text and picks the same A/B variant); ``spintaxVariant`` in the
    answer re-renders exactly that text. ``missingVariables`` would block a real send."""
    template = await get_template(session, tenant_id, template_id)
    values: dict[str, str] = {}
    lead_view: dict[str, Any] | None = None
    if lead_id:
        key = _as_uuid(lead_id)
        records = None if key is None else await repository.lead_records(session, tenant_id, key)
        if records is None:
            raise NotFound(f"lead {lead_id} not found", details={"leadId": lead_id})
        journey, company, contact = records
        values.update(lead_template_variables(company, contact))
        lead_view = {"id": str(journey.id), "companyName": company.denumire if company else None}
    for name, value in (personalization or {}).items():
        if value is None or not str(value).strip():
            values.pop(name, None)
        else:
            values[name] = str(value)
    if variant_id is not None:
        version = await repository.get_version(session, tenant_id, template.id, variant_id)
        if version is None:
            raise NotFound(f"variant {variant_id} not found", details={"variantId": str(variant_id)})
        picked = VariantPick(version.content, version.subject or template.subject, version.id)
    elif seed is not None:
        picked = await pick_variant(session, template, seed)
    else:
        pool = await VariantCache(session).pool(template)
        control = pool.entries[0]
        picked = VariantPick(
            control.content, control.subject, control.version.id if control.version else None
        )
    parsed: Template = parse(picked.content)
    rendered = render(parsed, values, seed=seed, variant=spintax_variant)
    subject = None
    if picked.subject:
        # Dispatch renders the subject with the message's seed too; without a seed, follow the variant.
        subject = render(picked.subject, values, seed=seed if seed is not None else spintax_variant).text
    if first_message is None:
        first_message = template.channel == Channel.WHATSAPP and await repository.first_steps_using(
            session, tenant_id, template.id
        )
    required = [str(v["name"]) for v in template.variables or [] if v.get("required")]
    # A standard variable with an inline default is fine without a value (no "unknown" noise);
    # one without a default is reported as unresolved for this recipient.
    defaulted = {n.name for n in parsed.walk() if isinstance(n, Variable) and n.default is not None}
    bare = {n.name for n in parsed.walk() if isinstance(n, Variable) and n.default is None}
    available = set(values) | ((STANDARD_VARIABLES & defaulted) - bare)
    issues = [
        issue_view(issue, picked.content)
        for issue in lint(
            picked.content,
            available_variables=available,
            required=_required_with_defaults(
                picked.content, [r for r in required if r in parsed.variables()]
            ),
            first_message=bool(first_message) and template.channel == Channel.WHATSAPP,
        )
    ]
    return {
        "preview": rendered.text,
        "subject": subject,
        "spintaxVariant": rendered.variant,
        "variablesUsed": rendered.variables_used,
        "missingVariables": rendered.missing_variables,
        "sendable": not rendered.missing_variables and bool(rendered.text.strip()),
        "lint": issues,
        "variantCount": parsed.variant_count(),
        "versionId": str(picked.version_id) if picked.version_id else None,
        "channel": template.channel.value,
        "length": len(rendered.text),
        "lead": lead_view,
    }
