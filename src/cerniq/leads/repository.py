"""SQL for leads: journeys, companies, contacts, and the set-based statements of the import.

The import statements take whole batches as arrays (``unnest``): one statement per table per
batch whatever its size, and a handful of bind parameters (asyncpg caps a statement at 32,767,
which a multi-row ``VALUES`` of 2,000 rows x 16 columns would exceed).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import Exists, Text, and_, any_, bindparam, func, literal, or_, select, text, union, union_all
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from cerniq.kit.unnest import arrays, unnest_from
from cerniq.models import (
    GoldCommunicationLog,
    GoldCommunicationLogArchive,
    GoldCompany,
    GoldContact,
    GoldLeadJourney,
    HumanReview,
    LeadStateHistory,
    OutreachSequence,
    SequenceEnrollment,
    User,
    WaPhoneNumber,
)
from cerniq.models.enums import Channel, LeadState, ReviewStatus

SortBy = Literal["nextActionAt", "lastContactAt", "sentimentScore", "createdAt", "companyName"]
SortOrder = Literal["asc", "desc"]

OPEN_REVIEW_STATUSES: Final = (
    ReviewStatus.PENDING,
    ReviewStatus.ASSIGNED,
    ReviewStatus.IN_PROGRESS,
    ReviewStatus.ESCALATED,
)


# ---------------------------------------------------------------------------------------------
# Import


async def lock_tenant_import(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Serialize imports of one tenant until the transaction ends (concurrent imports of the
    same CUI would otherwise both add its contacts)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('cerniq.leads.import:' || :tenant))"),
        {"tenant": str(tenant_id)},
    )


#: Company columns a duplicate CUI fills when they are empty (existing values win).
COMPANY_FILL_COLUMNS: Final = (
    "nr_reg_com",
    "judet",
    "localitate",
    "adresa",
    "cod_caen",
    "sector",
    "email_principal",
    "telefon_principal",
    "email_status",
    "hlr_reachable",
    "website",
    "lead_score",
)


async def companies_by_cui(
    session: AsyncSession, tenant_id: uuid.UUID, cuis: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The tenant's companies with these CUIs: id, is_agricultural and the fill columns."""
    columns = [GoldCompany.id, GoldCompany.cui, GoldCompany.is_agricultural] + [
        getattr(GoldCompany, name) for name in COMPANY_FILL_COLUMNS
    ]
    rows = await session.execute(
        select(*columns).where(GoldCompany.tenant_id == tenant_id, GoldCompany.cui == _text_array(cuis))
    )
    return {row.cui: dict(row._mapping) for row in rows}


def _text_array(values: Sequence[str]) -> Any:
    """``ANY(one array parameter)``, not an IN list of N parameters (a new prepared statement
    for every list length, and thousands of parameters)."""
    return any_(bindparam(None, list(values), type_=ARRAY(Text)))


def _uuid_array(values: Sequence[uuid.UUID]) -> Any:
    return any_(bindparam(None, list(values), type_=ARRAY(UUID(as_uuid=True))))


_COMPANY_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("cui", "text"),
    ("denumire", "text"),
    ("nr_reg_com", "text"),
    ("judet", "text"),
    ("localitate", "text"),
    ("adresa", "text"),
    ("cod_caen", "text"),
    ("sector", "text"),
    ("is_agricultural", "boolean"),
    ("email_principal", "text"),
    ("telefon_principal", "text"),
    ("email_status", "text"),
    ("hlr_reachable", "boolean"),
    ("website", "text"),
    ("lead_score", "integer"),
    ("raw", "text"),
)

_INSERT_COMPANIES: Final = text(
    f"""
    INSERT INTO gold_companies (
        tenant_id, cui, denumire, nr_reg_com, judet, localitate, adresa, cod_caen, sector,
        is_agricultural, email_principal, telefon_principal, email_status, hlr_reachable, website,
        lead_score, source, raw
    )
    SELECT CAST(:tenant_id AS uuid), v.cui, v.denumire, v.nr_reg_com, v.judet, v.localitate,
        v.adresa, v.cod_caen, v.sector, v.is_agricultural, v.email_principal, v.telefon_principal,
        v.email_status, v.hlr_reachable, v.website, v.lead_score, :source, CAST(v.raw AS jsonb)
    FROM {unnest_from(_COMPANY_COLUMNS)}
    ON CONFLICT (tenant_id, cui) DO NOTHING
    RETURNING id, cui
    """
)


async def insert_companies(
    session: AsyncSession, tenant_id: uuid.UUID, rows: Sequence[dict[str, Any]], *, source: str | None
) -> dict[str, uuid.UUID]:
    """Insert new companies (CUIs unique within ``rows``); ``{cui: id}`` of those inserted (a
    CUI another writer inserted meanwhile is skipped, and absent from the result)."""
    params: dict[str, Any] = {
        "tenant_id": tenant_id,
        "source": f"csv:{source}" if source else "csv",
        **arrays(rows, _COMPANY_COLUMNS),
    }
    return {row.cui: row.id for row in await session.execute(_INSERT_COMPANIES, params)}


_FILL_COMPANY_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("id", "uuid"),
    *((name, kind) for name, kind in _COMPANY_COLUMNS if name in COMPANY_FILL_COLUMNS),
    ("is_agricultural", "boolean"),
    ("raw", "text"),
)

_FILL_COMPANIES: Final = text(
    f"""
    UPDATE gold_companies AS c SET
        {", ".join(f"{col} = COALESCE(c.{col}, v.{col})" for col in COMPANY_FILL_COLUMNS)},
        is_agricultural = c.is_agricultural OR v.is_agricultural,
        raw = CAST(v.raw AS jsonb) || c.raw,
        updated_at = now()
    FROM {unnest_from(_FILL_COMPANY_COLUMNS)}
    WHERE c.id = v.id
    """
)


async def fill_companies(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Fill empty columns of existing companies (``rows`` carry ``id`` and the new values)."""
    await session.execute(_FILL_COMPANIES, arrays(rows, _FILL_COMPANY_COLUMNS))


_CONTACT_FIELDS: Final = (
    "id",
    "company_id",
    "prenume",
    "nume",
    "full_name",
    "functie",
    "email",
    "phone",
    "whatsapp_number",
    "consent_email",
    "consent_whatsapp",
    "is_primary",
)


async def contacts_of_companies(
    session: AsyncSession, tenant_id: uuid.UUID, company_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The existing contacts of ``company_ids`` (companies of ``tenant_id``, which the caller
    has just read by tenant), grouped by company, primary first."""
    columns = [getattr(GoldContact, name) for name in _CONTACT_FIELDS]
    # No tenant_id condition: the ids are already the tenant's, and with one the planner ANDs
    # in a scan of every contact of the tenant for each batch.
    rows = await session.execute(
        select(*columns)
        .where(GoldContact.company_id == _uuid_array(company_ids))
        .order_by(GoldContact.company_id, GoldContact.is_primary.desc(), GoldContact.created_at)
    )
    out: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row in rows:
        item = dict(row._mapping)
        out.setdefault(item["company_id"], []).append(item)
    return out


_NEW_CONTACT_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("id", "uuid"),
    ("company_id", "uuid"),
    ("prenume", "text"),
    ("nume", "text"),
    ("full_name", "text"),
    ("functie", "text"),
    ("email", "text"),
    ("phone", "text"),
    ("whatsapp_number", "text"),
    ("consent_email", "boolean"),
    ("consent_whatsapp", "boolean"),
    ("is_primary", "boolean"),
)

_INSERT_CONTACTS: Final = text(
    f"""
    INSERT INTO gold_contacts (
        id, tenant_id, company_id, prenume, nume, full_name, functie, email, phone, whatsapp_number,
        consent_email, consent_whatsapp, consent_source, consent_at, is_primary
    )
    SELECT v.id, CAST(:tenant_id AS uuid), v.company_id, v.prenume, v.nume, v.full_name, v.functie,
        v.email, v.phone, v.whatsapp_number, COALESCE(v.consent_email, false),
        COALESCE(v.consent_whatsapp, false),
        CASE WHEN v.consent_email OR v.consent_whatsapp THEN :consent_source END,
        CASE WHEN v.consent_email OR v.consent_whatsapp THEN now() END,
        v.is_primary
    FROM {unnest_from(_NEW_CONTACT_COLUMNS)}
    """
)


async def insert_contacts(
    session: AsyncSession, tenant_id: uuid.UUID, rows: Sequence[dict[str, Any]], *, consent_source: str
) -> None:
    """Insert new contacts (ids chosen by the caller)."""
    await session.execute(
        _INSERT_CONTACTS,
        {"tenant_id": tenant_id, "consent_source": consent_source, **arrays(rows, _NEW_CONTACT_COLUMNS)},
    )


_FILL_CONTACT_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("id", "uuid"),
    ("prenume", "text"),
    ("nume", "text"),
    ("full_name", "text"),
    ("functie", "text"),
    ("email", "text"),
    ("phone", "text"),
    ("whatsapp_number", "text"),
    ("consent_email", "boolean"),
    ("consent_whatsapp", "boolean"),
)

_FILL_CONTACTS: Final = text(
    f"""
    UPDATE gold_contacts AS c SET
        {", ".join(f"{n} = COALESCE(c.{n}, v.{n})" for n, _ in _FILL_CONTACT_COLUMNS[1:8])},
        consent_email = COALESCE(v.consent_email, c.consent_email),
        consent_whatsapp = COALESCE(v.consent_whatsapp, c.consent_whatsapp),
        consent_source = CASE WHEN v.consent_email OR v.consent_whatsapp
            THEN :consent_source ELSE c.consent_source END,
        consent_at = CASE WHEN v.consent_email OR v.consent_whatsapp THEN now() ELSE c.consent_at END,
        updated_at = now()
    FROM {unnest_from(_FILL_CONTACT_COLUMNS)}
    WHERE c.id = v.id
    """
)


async def fill_contacts(
    session: AsyncSession, rows: Sequence[dict[str, Any]], *, consent_source: str
) -> None:
    """Fill empty fields of existing contacts; consent flags take the given value."""
    await session.execute(
        _FILL_CONTACTS, {"consent_source": consent_source, **arrays(rows, _FILL_CONTACT_COLUMNS)}
    )


async def journeys_of_companies(
    session: AsyncSession, tenant_id: uuid.UUID, company_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """The journeys of ``company_ids`` (the columns an import may fill), by company id."""
    j = GoldLeadJourney
    rows = await session.execute(
        select(j.id, j.lead_id, j.email, j.mobile_e164, j.primary_contact_id).where(
            j.tenant_id == tenant_id, j.lead_id == _uuid_array(company_ids)
        )
    )
    return {row.lead_id: dict(row._mapping) for row in rows}


_NEW_JOURNEY_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("lead_id", "uuid"),
    ("primary_contact_id", "uuid"),
    ("email", "text"),
    ("mobile_e164", "text"),
    ("schedule", "boolean"),
)

_INSERT_JOURNEYS: Final = text(
    f"""
    WITH ins AS (
        INSERT INTO gold_lead_journey (
            tenant_id, lead_id, primary_contact_id, email, mobile_e164, next_action_at,
            state_changed_at, state_change_reason
        )
        SELECT CAST(:tenant_id AS uuid), v.lead_id, v.primary_contact_id, v.email, v.mobile_e164,
            CASE WHEN v.schedule THEN CAST(:now AS timestamptz) END, CAST(:now AS timestamptz), :reason
        FROM {unnest_from(_NEW_JOURNEY_COLUMNS)}
        ON CONFLICT (tenant_id, lead_id) DO NOTHING
        RETURNING id
    ), history AS (
        INSERT INTO lead_state_history (
            tenant_id, lead_journey_id, from_state, to_state, trigger, reason, actor
        )
        SELECT CAST(:tenant_id AS uuid), ins.id, NULL, 'COLD', 'IMPORT', :reason, :actor FROM ins
        RETURNING 1
    )
    SELECT count(*) FROM history
    """
)


async def insert_journeys(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    rows: Sequence[dict[str, Any]],
    *,
    now: datetime,
    actor: str,
    reason: str,
) -> int:
    """Create a COLD journey (and its IMPORT history row) per company; ``schedule`` makes it
    due now. Companies that already have one are skipped. Returns how many were created."""
    params = {"tenant_id": tenant_id, "now": now, "actor": actor, "reason": reason}
    params |= arrays(rows, _NEW_JOURNEY_COLUMNS)
    return int((await session.execute(_INSERT_JOURNEYS, params)).scalar_one())


_FILL_JOURNEY_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("id", "uuid"),
    ("primary_contact_id", "uuid"),
    ("email", "text"),
    ("mobile_e164", "text"),
)

_FILL_JOURNEYS: Final = text(
    f"""
    UPDATE gold_lead_journey AS j SET
        email = COALESCE(j.email, v.email),
        mobile_e164 = COALESCE(j.mobile_e164, v.mobile_e164),
        primary_contact_id = COALESCE(j.primary_contact_id, v.primary_contact_id),
        -- A lead that had no address could never have been contacted: it is due now.
        next_action_at = CASE
            WHEN j.current_state = 'COLD' AND j.next_action_at IS NULL
                AND j.email IS NULL AND j.mobile_e164 IS NULL
                AND (v.email IS NOT NULL OR v.mobile_e164 IS NOT NULL)
            THEN CAST(:now AS timestamptz) ELSE j.next_action_at END,
        updated_at = now()
    FROM {unnest_from(_FILL_JOURNEY_COLUMNS)}
    WHERE j.id = v.id
    """
)


async def fill_journeys(session: AsyncSession, rows: Sequence[dict[str, Any]], *, now: datetime) -> None:
    """Fill empty addresses and primary contact of existing journeys."""
    await session.execute(_FILL_JOURNEYS, {"now": now, **arrays(rows, _FILL_JOURNEY_COLUMNS)})


# ---------------------------------------------------------------------------------------------
# Reads


def _as_uuid(value: str | uuid.UUID) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def get_journey(
    session: AsyncSession, tenant_id: uuid.UUID, lead_id: str | uuid.UUID, *, for_update: bool = False
) -> GoldLeadJourney | None:
    """The tenant's journey whose id, or whose company's id, is ``lead_id`` (the runbook's
    ``{leadId}`` may be either); None for an unknown id, another tenant's, or a malformed one."""
    key = _as_uuid(lead_id)
    if key is None:
        return None
    query = select(GoldLeadJourney).where(
        GoldLeadJourney.tenant_id == tenant_id,
        or_(GoldLeadJourney.id == key, GoldLeadJourney.lead_id == key),
    )
    if for_update:
        query = query.with_for_update(of=GoldLeadJourney)
    return (await session.execute(query.limit(1))).scalar_one_or_none()


@dataclass(frozen=True)
class LeadFilters:
    """The list filters of ``GET /leads`` (digest §6)."""

    states: tuple[LeadState, ...] = ()
    channel: Channel | None = None
    assigned_phone: str | None = None
    assigned_to: uuid.UUID | None = None
    has_reply: bool | None = None
    needs_review: bool | None = None
    search: str | None = None
    min_sentiment: int | None = None
    max_sentiment: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    is_human_controlled: bool | None = None
    #: An open review (PENDING, ASSIGNED, IN_PROGRESS, ESCALATED) exists for the lead; unlike
    #: ``needs_review`` (the journey's flag, also set when dispatch blocks a lead) it reads the
    #: review queue itself.
    has_open_review: bool | None = None


_LIKE_ESCAPE = re.compile(r"([\\%_])")


def like_pattern(term: str) -> str:
    """``%term%`` with LIKE wildcards in ``term`` escaped (escape character ``\\``)."""
    escaped = _LIKE_ESCAPE.sub(r"\\\1", term)
    return f"%{escaped}%"


def _search_conditions(tenant_id: uuid.UUID, term: str) -> ColumnElement[bool]:
    """The journey matches ``term`` in its company's name, CUI, email or phone, or in its own
    email or WhatsApp number.

    Written as ``j.id IN (journeys matched on their columns UNION journeys of companies matched
    on theirs)``: an OR across the two joined tables cannot use an index, while each half of
    the union is a BitmapOr over the trigram (GIN) indexes of one table."""
    j, c = GoldLeadJourney, GoldCompany
    pattern = like_pattern(term)
    company: list[ColumnElement[bool]] = [
        c.denumire.ilike(pattern, escape="\\"),
        c.cui.ilike(pattern, escape="\\"),
        c.email_principal.ilike(pattern, escape="\\"),
        c.telefon_principal.ilike(pattern, escape="\\"),
    ]
    journey: list[ColumnElement[bool]] = [
        j.email.ilike(pattern, escape="\\"),
        j.mobile_e164.ilike(pattern, escape="\\"),
    ]
    compact = re.sub(r"[\s().\-/+]", "", term)
    if compact.upper().startswith("RO") and compact[2:].isdigit():
        company.append(c.cui == compact[2:])
    if compact.isdigit() and len(compact) >= 6:
        # "0722 123 456", "0040722123456": match the E.164 numbers on their national digits.
        national = compact.lstrip("0")
        if national.startswith("40") and len(national) == 11:
            national = national[2:]
        digits = like_pattern(national)
        journey.append(j.mobile_e164.like(digits, escape="\\"))
        company.append(c.telefon_principal.like(digits, escape="\\"))
    by_journey = select(j.id).where(j.tenant_id == tenant_id, or_(*journey))
    by_company = (
        select(j.id)
        .join(c, c.id == j.lead_id)
        .where(c.tenant_id == tenant_id, j.tenant_id == tenant_id, or_(*company))
    )
    return j.id.in_(union(by_journey, by_company))


def _open_review_exists() -> Exists:
    j, r = GoldLeadJourney, HumanReview
    return (
        select(r.id)
        .where(r.tenant_id == j.tenant_id, r.lead_journey_id == j.id, r.status.in_(OPEN_REVIEW_STATUSES))
        .exists()
    )


def _filter_conditions(tenant_id: uuid.UUID, f: LeadFilters) -> list[ColumnElement[bool]]:
    j = GoldLeadJourney
    conditions: list[ColumnElement[bool]] = [j.tenant_id == tenant_id]
    if f.states:
        conditions.append(j.current_state.in_(f.states))
    if f.channel is not None:
        conditions.append(j.last_channel_used == f.channel)
    if f.assigned_phone is not None:
        conditions.append(j.assigned_phone_id == f.assigned_phone)
    if f.assigned_to is not None:
        conditions.append(j.assigned_to_user == f.assigned_to)
    if f.has_reply is not None:
        conditions.append(j.reply_count > 0 if f.has_reply else j.reply_count == 0)
    if f.needs_review is not None:
        conditions.append(j.requires_human_review.is_(f.needs_review))
    if f.has_open_review is not None:
        if f.has_open_review:  # few leads have one: start from the open reviews
            r = HumanReview
            open_reviews = select(r.lead_journey_id).where(
                r.tenant_id == tenant_id, r.status.in_(OPEN_REVIEW_STATUSES)
            )
            conditions.append(j.id.in_(open_reviews))
        else:
            conditions.append(~_open_review_exists())
    if f.is_human_controlled is not None:
        conditions.append(j.is_human_controlled.is_(f.is_human_controlled))
    if f.min_sentiment is not None:
        conditions.append(j.sentiment_score >= f.min_sentiment)
    if f.max_sentiment is not None:
        conditions.append(j.sentiment_score <= f.max_sentiment)
    if f.created_after is not None:
        conditions.append(j.created_at >= f.created_after)
    if f.created_before is not None:
        conditions.append(j.created_at < f.created_before)
    if f.search:
        conditions.append(_search_conditions(tenant_id, f.search))
    return conditions


#: How many leads past the current page a listing counts before it says "more than".
COUNT_AHEAD = 10_000


@dataclass(frozen=True)
class LeadCount:
    """How many leads a listing matched: ``n`` exactly, or at least ``n`` when not ``exact``."""

    n: int
    exact: bool


def _sort_column(sort_by: SortBy) -> Any:
    j, c = GoldLeadJourney, GoldCompany
    return {
        "nextActionAt": j.next_action_at,
        "lastContactAt": j.last_contact_at,
        "sentimentScore": j.sentiment_score,
        "createdAt": j.created_at,
        "companyName": c.denumire,
    }[sort_by]


def _order_by(sort_by: SortBy, order: SortOrder) -> list[Any]:
    column = _sort_column(sort_by)
    j = GoldLeadJourney
    primary = column.asc() if order == "asc" else column.desc()
    tiebreak = j.id.asc() if order == "asc" else j.id.desc()
    return [primary.nulls_last(), tiebreak]


#: Sort columns that are never NULL (no second query for the leads without a value).
NOT_NULL_SORTS: Final = frozenset({"sentimentScore", "createdAt", "companyName"})


async def _page_ids(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    conditions: list[ColumnElement[bool]],
    sort_by: SortBy,
    order: SortOrder,
    limit: int,
    offset: int,
) -> list[uuid.UUID]:
    """The ids of one page of journeys in ``sort_by`` order, nulls last.

    Asked as one ``ORDER BY column NULLS LAST`` query, PostgreSQL sorts every matching lead
    (half a second at 1M leads): a btree index yields ASC NULLS LAST forwards and DESC NULLS
    FIRST backwards, never DESC NULLS LAST. So the leads with a value are paged in the index's
    own order (``(tenant_id, column, id)``, migration 0006), and the page is filled up from the
    leads without one, in id order, once those run out."""
    j, c = GoldLeadJourney, GoldCompany
    column = _sort_column(sort_by)

    def direction(expression: Any) -> Any:
        return expression.asc() if order == "asc" else expression.desc()

    def ids(*where: ColumnElement[bool]) -> Any:
        query = select(j.id).where(*conditions, *where)
        if sort_by == "companyName":  # walk the companies' (tenant_id, denumire) index
            query = query.join(c, c.id == j.lead_id).where(c.tenant_id == tenant_id)
        return query

    valued = column.is_not(None)
    never_null = sort_by in NOT_NULL_SORTS
    page = ids(*([] if never_null else [valued])).order_by(direction(column), direction(j.id))
    found = list((await session.execute(page.limit(limit).offset(offset))).scalars().all())
    if len(found) == limit or never_null:
        return found
    if found:
        skip = 0  # this page holds the last valued leads; the unvalued ones follow from the first
    else:
        counted = select(func.count()).select_from(ids(valued).subquery())
        skip = offset - int((await session.execute(counted)).scalar_one())
    rest = ids(column.is_(None)).order_by(direction(j.id)).limit(limit - len(found)).offset(skip)
    return found + list((await session.execute(rest)).scalars().all())


def _rows_query(conditions: Sequence[ColumnElement[bool]]) -> Any:
    """Journeys with their company, phone and sequence under ``conditions`` (unordered)."""
    j, c, p, s, e = GoldLeadJourney, GoldCompany, WaPhoneNumber, OutreachSequence, SequenceEnrollment
    return (
        select(
            j,
            c,
            p.id.label("phone_id"),
            p.phone_label,
            p.phone_number,
            p.status.label("phone_status"),
            s.name.label("sequence_name"),
            e.total_steps.label("sequence_total_steps"),
        )
        .join(c, c.id == j.lead_id)
        .outerjoin(p, p.id == j.assigned_phone_id)
        .outerjoin(s, s.id == j.current_sequence_id)
        .outerjoin(e, and_(e.lead_journey_id == j.id, e.sequence_id == j.current_sequence_id))
        .where(*conditions)
    )


async def list_leads(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    filters: LeadFilters,
    *,
    sort_by: SortBy,
    order: SortOrder,
    limit: int,
    offset: int,
) -> tuple[list[Any], LeadCount]:
    """One page of journeys with their company, phone and sequence (one query), and how many
    match the same filters (a second query on the journeys alone; a lower bound, not exact,
    when more than ``COUNT_AHEAD`` leads follow the page)."""
    j = GoldLeadJourney
    conditions = _filter_conditions(tenant_id, filters)
    # The page's ids are chosen on the journeys alone (joined to the companies only to sort by
    # name), then 25 of them are joined to their company, phone and sequence.
    ids = await _page_ids(session, tenant_id, conditions, sort_by, order, limit, offset)
    page = _rows_query([j.id.in_(ids)]).order_by(*_order_by(sort_by, order))
    rows: list[Any] = list((await session.execute(page)).all()) if ids else []
    # Counting every match of a broad filter reads the whole index range (a second or more at
    # 1M leads): count at most COUNT_AHEAD past this page, enough to page on.
    cap = offset + limit + COUNT_AHEAD
    matches = select(j.id).where(*conditions).limit(cap + 1).subquery()
    counted = int((await session.execute(select(func.count()).select_from(matches))).scalar_one())
    return rows, LeadCount(min(counted, cap), exact=counted <= cap)


async def leads_after(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    filters: LeadFilters,
    *,
    after: uuid.UUID | None,
    limit: int,
) -> list[Any]:
    """The next ``limit`` journeys under ``filters`` in id order after the journey ``after``
    (keyset paging: every page is one index range, however deep, for exports)."""
    j = GoldLeadJourney
    conditions = _filter_conditions(tenant_id, filters)
    if after is not None:
        conditions.append(j.id > after)
    query = _rows_query(conditions).order_by(j.id.asc()).limit(limit)
    return list((await session.execute(query)).all())


async def get_company(
    session: AsyncSession, tenant_id: uuid.UUID, company_id: uuid.UUID
) -> GoldCompany | None:
    return (
        await session.execute(
            select(GoldCompany).where(GoldCompany.tenant_id == tenant_id, GoldCompany.id == company_id)
        )
    ).scalar_one_or_none()


async def get_phone(session: AsyncSession, tenant_id: uuid.UUID, phone_id: str) -> WaPhoneNumber | None:
    return (
        await session.execute(
            select(WaPhoneNumber).where(WaPhoneNumber.tenant_id == tenant_id, WaPhoneNumber.id == phone_id)
        )
    ).scalar_one_or_none()


async def contacts(session: AsyncSession, tenant_id: uuid.UUID, company_id: uuid.UUID) -> list[GoldContact]:
    query = (
        select(GoldContact)
        .where(GoldContact.tenant_id == tenant_id, GoldContact.company_id == company_id)
        .order_by(GoldContact.is_primary.desc(), GoldContact.created_at)
    )
    return list((await session.execute(query)).scalars())


PREVIEW_CHARS: Final = 500


async def recent_communications(
    session: AsyncSession, tenant_id: uuid.UUID, journey_id: uuid.UUID, limit: int = 50
) -> list[Any]:
    """The journey's last ``limit`` messages, newest first, with a 500-character preview.

    Messages moved to ``gold_communication_log_archive`` by the weekly maintenance are included
    (``archived`` is true for them), so a conversation stays readable after archiving."""

    def part(log: Any, archived: bool) -> Any:
        return (
            select(
                log.id,
                log.channel,
                log.direction,
                log.status,
                func.left(func.coalesce(log.content_rendered, log.content), PREVIEW_CHARS).label("preview"),
                log.subject,
                log.sent_at,
                log.delivered_at,
                log.read_at,
                log.replied_at,
                log.created_at,
                log.is_ai_generated,
                log.phone_id,
                log.template_id,
                log.sentiment_score,
                log.origin,
                literal(archived).label("archived"),
            )
            .where(log.tenant_id == tenant_id, log.lead_journey_id == journey_id)
            .order_by(log.created_at.desc(), log.id.desc())
            .limit(limit)
        )

    merged = union_all(part(GoldCommunicationLog, False), part(GoldCommunicationLogArchive, True)).subquery()
    query = select(merged).order_by(merged.c.created_at.desc(), merged.c.id.desc()).limit(limit)
    return list((await session.execute(query)).all())


async def open_review(
    session: AsyncSession, tenant_id: uuid.UUID, journey_id: uuid.UUID
) -> HumanReview | None:
    """The journey's open review due first, if any."""
    query = (
        select(HumanReview)
        .where(
            HumanReview.tenant_id == tenant_id,
            HumanReview.lead_journey_id == journey_id,
            HumanReview.status.in_(OPEN_REVIEW_STATUSES),
        )
        .order_by(HumanReview.sla_due_at.asc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def sequence_with_enrollment(
    session: AsyncSession, tenant_id: uuid.UUID, journey_id: uuid.UUID, sequence_id: uuid.UUID
) -> tuple[OutreachSequence, SequenceEnrollment | None] | None:
    query = (
        select(OutreachSequence, SequenceEnrollment)
        .outerjoin(
            SequenceEnrollment,
            and_(
                SequenceEnrollment.sequence_id == OutreachSequence.id,
                SequenceEnrollment.lead_journey_id == journey_id,
            ),
        )
        .where(OutreachSequence.tenant_id == tenant_id, OutreachSequence.id == sequence_id)
    )
    row = (await session.execute(query)).first()
    return None if row is None else (row[0], row[1])


async def state_history(
    session: AsyncSession, tenant_id: uuid.UUID, journey_id: uuid.UUID, limit: int = 20
) -> list[LeadStateHistory]:
    query = (
        select(LeadStateHistory)
        .where(LeadStateHistory.tenant_id == tenant_id, LeadStateHistory.lead_journey_id == journey_id)
        .order_by(LeadStateHistory.created_at.desc(), LeadStateHistory.id.desc())
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def user_in_tenant(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    found = await session.execute(select(User.id).where(User.tenant_id == tenant_id, User.id == user_id))
    return found.first() is not None


async def company_names(
    session: AsyncSession, tenant_id: uuid.UUID, journey_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """``{journey id: company name}`` of the tenant's journeys among ``journey_ids``."""
    if not journey_ids:
        return {}
    j, c = GoldLeadJourney, GoldCompany
    rows = await session.execute(
        select(j.id, c.denumire)
        .join(c, c.id == j.lead_id)
        .where(j.tenant_id == tenant_id, j.id == _uuid_array(journey_ids))
    )
    return {row.id: row.denumire for row in rows}
