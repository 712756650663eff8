"""``/api/v1/outreach/leads``: import a CSV, list and filter leads, one lead, operator edits."""

from __future__ import annotations

import io
import uuid
from datetime import datetime
from typing import Any, Final

from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile

from cerniq.auth.dependencies import Operator, Session, Viewer
from cerniq.errors import CerniqError, ValidationFailed
from cerniq.kit.pagination import PageParams
from cerniq.leads import service
from cerniq.leads.importer import CsvReader, decode_csv_bytes
from cerniq.leads.repository import LeadFilters, SortBy, SortOrder
from cerniq.leads.schemas import LeadPatch
from cerniq.models.enums import Channel

router = APIRouter(prefix="/api/v1/outreach/leads", tags=["leads"])

MAX_UPLOAD_BYTES: Final = 50 * 1024 * 1024
_MULTIPART_SLACK: Final = 64 * 1024  # boundaries and part headers around the file


class FileTooLarge(CerniqError):
    status_code = 413
    code = "PAYLOAD_TOO_LARGE"


def _too_large() -> FileTooLarge:
    return FileTooLarge(
        f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; split it or use "
        "`cerniq leads import FILE.csv` on the server",
        details={"maxBytes": MAX_UPLOAD_BYTES},
    )


_UPLOAD_SCHEMA: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "The CSV (UTF-8)"}
                    },
                }
            }
        },
    }
}


@router.post("/import", openapi_extra=_UPLOAD_SCHEMA)
async def import_leads(
    request: Request,
    principal: Operator,
    session: Session,
    dryRun: bool = Query(False, description="Validate and count, write nothing"),
) -> dict[str, Any]:
    """Import leads from a CSV upload (multipart field `file`, at most 50 MB).

    Returns the import report with 200 even when some rows failed: `{rows, created, merged,
    skipped, errors: [{line, field, reason, value}], warnings, ...}`; line numbers are the file's
    physical lines (header = 1). A file that cannot be read as a lead CSV (empty, binary, not
    UTF-8, no `denumire`/`cui` header) is a 400 `INVALID_CSV`; a larger one is a 413."""
    # The body is read here, after authentication, and refused early when it is too big.
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_UPLOAD_BYTES + _MULTIPART_SLACK:
        raise _too_large()
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ValidationFailed(
            "send the CSV as multipart/form-data in a field named 'file'", details={"field": "file"}
        )
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationFailed(
                "the multipart field 'file' (the CSV) is missing", details={"field": "file"}
            )
        data = await upload.read(MAX_UPLOAD_BYTES + 1)
        filename = upload.filename or "upload.csv"
    if len(data) > MAX_UPLOAD_BYTES:
        raise _too_large()
    text = decode_csv_bytes(data)
    del data
    reader = CsvReader(io.StringIO(text, newline=""))
    report = await service.import_leads(
        session, principal.tenant_id, reader, principal=principal, source=filename, dry_run=dryRun
    )
    return report.to_dict()


@router.get("")
async def list_leads(
    principal: Viewer,
    session: Session,
    state: str | None = Query(None, description="A state, or several separated by commas"),
    channel: Channel | None = Query(None, description="Last channel used"),
    assignedPhone: str | None = Query(None, description="Sticky phone id, e.g. phone_03"),
    assignedTo: uuid.UUID | None = Query(None, description="Assigned user id"),
    hasReply: bool | None = Query(None),
    needsReview: bool | None = Query(None),
    search: str | None = Query(None, max_length=200, description="Company name, CUI, email or phone"),
    minSentiment: int | None = Query(None, ge=-100, le=100),
    maxSentiment: int | None = Query(None, ge=-100, le=100),
    createdAfter: datetime | None = Query(None),
    createdBefore: datetime | None = Query(None),
    isHumanControlled: bool | None = Query(None),
    hasOpenReview: bool | None = Query(None, description="An open review exists in the review queue"),
    sortBy: SortBy = Query("nextActionAt"),
    sortOrder: SortOrder = Query("asc"),
    page: int = Query(1, ge=1, le=1_000_000, description="Page number, from 1"),
    limit: int = Query(20, ge=1, le=100, description="Items per page (max 100)"),
) -> dict[str, Any]:
    """Leads of the caller's tenant, filtered, sorted (nulls last) and paged:
    `{"data": [...], "meta": {page, limit, total, pages, filters}}`."""
    filters = LeadFilters(
        states=service.parse_states(state),
        channel=channel,
        assigned_phone=assignedPhone,
        assigned_to=assignedTo,
        has_reply=hasReply,
        needs_review=needsReview,
        search=search,
        min_sentiment=minSentiment,
        max_sentiment=maxSentiment,
        created_after=createdAfter,
        created_before=createdBefore,
        is_human_controlled=isHumanControlled,
        has_open_review=hasOpenReview,
    )
    return await service.list_leads(
        session,
        principal.tenant_id,
        filters,
        PageParams(page=page, limit=limit),
        sort_by=sortBy,
        order=sortOrder,
    )


@router.get("/{lead_id}")
async def get_lead(lead_id: str, principal: Viewer, session: Session) -> dict[str, Any]:
    """One lead by its journey id (or its company id): journey fields, `isHumanControlled`,
    `assignedPhone` {id, label, phoneNumber, status}, company, contacts, last 50
    communications, sequence, pendingReview, stateHistory."""
    return await service.lead_detail(session, principal.tenant_id, lead_id)


@router.patch("/{lead_id}")
async def patch_lead(lead_id: str, body: LeadPatch, principal: Operator, session: Session) -> dict[str, Any]:
    """Operator edit: `currentState` (with `reason`), `preferredChannel`, `tags`,
    `customFields`, `notes`, `assignedToUser`. Audited; an invalid state move is a 409."""
    journey = await service.update_lead(session, principal, lead_id, body)
    return await service.detail_of(session, journey)
