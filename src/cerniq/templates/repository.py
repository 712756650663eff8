"""SQL for templates, their versions (history and A/B variants) and their usage counters."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Integer, Table, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from cerniq.models import (
    GoldCompany,
    GoldContact,
    GoldLeadJourney,
    OutreachSequence,
    OutreachSequenceStep,
    OutreachTemplate,
    TemplateVersion,
)
from cerniq.models.enums import Channel, SequenceStatus

_LIKE_ESCAPE = re.compile(r"([\\%_])")


def like_pattern(term: str) -> str:
    return "%" + _LIKE_ESCAPE.sub(r"\\\1", term.strip()) + "%"


async def list_templates(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    channels: Sequence[Channel] = (),
    is_active: bool | None = None,
    search: str | None = None,
    offset: int = 0,
    limit: int = 20,
) -> tuple[list[OutreachTemplate], int]:
    conditions: list[Any] = [OutreachTemplate.tenant_id == tenant_id]
    if channels:
        conditions.append(OutreachTemplate.channel.in_(channels))
    if is_active is not None:
        conditions.append(OutreachTemplate.is_active.is_(is_active))
    if search and search.strip():
        pattern = like_pattern(search)
        conditions.append(
            or_(
                OutreachTemplate.name.ilike(pattern, escape="\\"),
                OutreachTemplate.code.ilike(pattern, escape="\\"),
                OutreachTemplate.description.ilike(pattern, escape="\\"),
                OutreachTemplate.content.ilike(pattern, escape="\\"),
            )
        )
    total = int(
        (
            await session.execute(select(func.count()).select_from(OutreachTemplate).where(*conditions))
        ).scalar_one()
    )
    query = (
        select(OutreachTemplate)
        .where(*conditions)
        .order_by(OutreachTemplate.created_at.desc(), OutreachTemplate.id)
        .offset(offset)
        .limit(limit)
    )
    return list((await session.execute(query)).scalars()), total


async def get_template(
    session: AsyncSession, tenant_id: uuid.UUID, template_id: uuid.UUID, *, for_update: bool = False
) -> OutreachTemplate | None:
    query = select(OutreachTemplate).where(
        OutreachTemplate.tenant_id == tenant_id, OutreachTemplate.id == template_id
    )
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_template_by_code(
    session: AsyncSession, tenant_id: uuid.UUID, code: str
) -> OutreachTemplate | None:
    query = select(OutreachTemplate).where(
        OutreachTemplate.tenant_id == tenant_id, OutreachTemplate.code == code
    )
    return (await session.execute(query)).scalar_one_or_none()


async def templates_by_ids(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, OutreachTemplate]:
    if not ids:
        return {}
    query = select(OutreachTemplate).where(
        OutreachTemplate.tenant_id == tenant_id, OutreachTemplate.id.in_(ids)
    )
    return {t.id: t for t in (await session.execute(query)).scalars()}


async def versions_of(session: AsyncSession, template_id: uuid.UUID) -> list[TemplateVersion]:
    """Every version of a template, newest first."""
    query = (
        select(TemplateVersion)
        .where(TemplateVersion.template_id == template_id)
        .order_by(TemplateVersion.version_number.desc())
    )
    return list((await session.execute(query)).scalars())


async def get_version(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    template_id: uuid.UUID,
    version_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> TemplateVersion | None:
    query = select(TemplateVersion).where(
        TemplateVersion.tenant_id == tenant_id,
        TemplateVersion.template_id == template_id,
        TemplateVersion.id == version_id,
    )
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def max_version_number(session: AsyncSession, template_id: uuid.UUID) -> int:
    query = select(func.coalesce(func.max(TemplateVersion.version_number), 0)).where(
        TemplateVersion.template_id == template_id
    )
    return int((await session.execute(query)).scalar_one())


async def pickable_versions(
    session: AsyncSession, template_id: uuid.UUID, current_version: int
) -> list[TemplateVersion]:
    """The current version row and the live A/B variants (weight > 0) of a template."""
    query = (
        select(TemplateVersion)
        .where(
            TemplateVersion.template_id == template_id,
            or_(
                TemplateVersion.version_number == current_version,
                (TemplateVersion.is_ab_variant.is_(True)) & (TemplateVersion.ab_weight > 0),
            ),
        )
        .order_by(TemplateVersion.version_number)
    )
    return list((await session.execute(query)).scalars())


async def live_variant_counts(
    session: AsyncSession, template_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    if not template_ids:
        return {}
    query = (
        select(TemplateVersion.template_id, func.count())
        .where(
            TemplateVersion.template_id.in_(template_ids),
            TemplateVersion.is_ab_variant.is_(True),
            TemplateVersion.ab_weight > 0,
        )
        .group_by(TemplateVersion.template_id)
    )
    return {row[0]: int(row[1]) for row in await session.execute(query)}


async def steps_using(
    session: AsyncSession, tenant_id: uuid.UUID, template_id: uuid.UUID
) -> list[dict[str, Any]]:
    """Active steps of sequences that are not archived which send this template."""
    query = (
        select(OutreachSequence.id, OutreachSequence.name, OutreachSequenceStep.step_number)
        .join(OutreachSequence, OutreachSequence.id == OutreachSequenceStep.sequence_id)
        .where(
            OutreachSequenceStep.tenant_id == tenant_id,
            OutreachSequenceStep.template_id == template_id,
            OutreachSequenceStep.is_active.is_(True),
            OutreachSequence.status != SequenceStatus.ARCHIVED,
        )
        .order_by(OutreachSequence.name, OutreachSequenceStep.step_number)
    )
    return [
        {"sequenceId": str(row[0]), "sequenceName": row[1], "stepNumber": row[2]}
        for row in await session.execute(query)
    ]


async def first_steps_using(session: AsyncSession, tenant_id: uuid.UUID, template_id: uuid.UUID) -> bool:
    """Whether the template is the first WhatsApp step of some sequence (a first contact)."""
    query = (
        select(OutreachSequenceStep.id)
        .where(
            OutreachSequenceStep.tenant_id == tenant_id,
            OutreachSequenceStep.template_id == template_id,
            OutreachSequenceStep.step_number == 1,
            OutreachSequenceStep.channel == Channel.WHATSAPP,
        )
        .limit(1)
    )
    return (await session.execute(query)).first() is not None


async def bump_template(session: AsyncSession, template_id: uuid.UUID, **increments: int) -> None:
    """Add to a template's counters in one UPDATE (no lost increments under concurrency)."""
    await _bump(session, OutreachTemplate, template_id, increments)


async def bump_version(session: AsyncSession, version_id: uuid.UUID, **increments: int) -> None:
    await _bump(session, TemplateVersion, version_id, increments)


Counted = type[OutreachTemplate] | type[TemplateVersion]


async def _bump(session: AsyncSession, model: Counted, row_id: uuid.UUID, increments: dict[str, int]) -> None:
    if session.identity_map.get(identity_key(model, row_id)) is not None:
        # The session holds this row as an object: the ORM UPDATE keeps the object in step.
        values = {name: getattr(model, name) + amount for name, amount in increments.items()}
        await session.execute(update(model).where(model.id == row_id).values(**values))
        return
    # Otherwise (the send paths) the same UPDATE as a Core statement built once per set of
    # counters: no ORM bulk-update machinery for an object that is not there.
    names = tuple(sorted(increments))
    params: dict[str, Any] = {f"add_{name}": increments[name] for name in names}
    await session.execute(_bump_statement(model, names), {"row_id": row_id, **params})


@lru_cache(maxsize=64)
def _bump_statement(model: Counted, names: tuple[str, ...]) -> Any:
    table = cast(Table, model.__table__)
    return (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values({name: table.c[name] + bindparam(f"add_{name}", type_=Integer) for name in names})
    )


async def lock_template_row(session: AsyncSession, template_id: uuid.UUID) -> None:
    """Serialize version numbering of one template (versions are numbered under this lock)."""
    await session.execute(
        select(OutreachTemplate.id).where(OutreachTemplate.id == template_id).with_for_update()
    )


async def lead_records(
    session: AsyncSession, tenant_id: uuid.UUID, key: uuid.UUID
) -> tuple[GoldLeadJourney, GoldCompany | None, GoldContact | None] | None:
    """A tenant's lead by journey id or company id, with its company and primary contact."""
    query = (
        select(GoldLeadJourney)
        .where(
            GoldLeadJourney.tenant_id == tenant_id,
            or_(GoldLeadJourney.id == key, GoldLeadJourney.lead_id == key),
        )
        .limit(1)
    )
    journey = (await session.execute(query)).scalar_one_or_none()
    if journey is None:
        return None
    company = await session.get(GoldCompany, journey.lead_id)
    contact = (
        await session.get(GoldContact, journey.primary_contact_id) if journey.primary_contact_id else None
    )
    return journey, company, contact
