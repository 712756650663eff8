"""Console: the audit log (admin only; there is no JSON API that lets other roles read it).

Newest first, keyset-paged on (created_at, id) over ``ix_audit_log_tenant_created``; filters by
action and actor (prefixes), entity type and a date range in the operator's time zone."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cerniq.config import get_settings
from cerniq.console import i18n, web
from cerniq.console.repository_ops import AuditFilters, audit_page
from cerniq.errors import ValidationFailed
from cerniq.kit.db import transaction

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 50

i18n.add_strings(
    {
        "audit_action": {"ro": "Acțiune", "en": "Action"},
        "audit_actor": {"ro": "Autor", "en": "Actor"},
        "audit_entity": {"ro": "Entitate", "en": "Entity"},
        "audit_entity_type": {"ro": "Tip entitate", "en": "Entity type"},
        "audit_from": {"ro": "De la (zi)", "en": "From (day)"},
        "audit_to": {"ro": "Până la (zi, inclusiv)", "en": "To (day, inclusive)"},
        "audit_change": {"ro": "Schimbare", "en": "Change"},
        "audit_none": {"ro": "Nicio înregistrare.", "en": "No entries."},
        "audit_older": {"ro": "Mai vechi", "en": "Older"},
        "audit_newest": {"ro": "Cele mai noi", "en": "Newest"},
        "audit_prefix_hint": {"ro": "început, ex. review.", "en": "prefix, e.g. review."},
    }
)


def _day(raw: str, field: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(f"{field} is a day (YYYY-MM-DD)", details={"field": field}) from None


def _cursor(raw: str) -> tuple[datetime, uuid.UUID] | None:
    if not raw:
        return None
    at, _, row_id = raw.partition("~")
    try:
        return datetime.fromisoformat(at), uuid.UUID(row_id)
    except ValueError:
        raise ValidationFailed("the page link is not valid; start from the newest entries") from None


@router.get("/audit")
async def audit_log_page(request: Request) -> Response:
    found = await web.admin_page(request)
    if isinstance(found, Response):
        return found
    principal, csrf = found
    q = request.query_params
    params = {k: (q.get(k) or "").strip()[:200] for k in ("action", "actor", "entity", "from", "to")}
    tz = get_settings().tz
    entries: list[Any] = []
    error = None
    try:
        start, end = _day(params["from"], "from"), _day(params["to"], "to")
        filters = AuditFilters(
            action=params["action"] or None,
            actor=params["actor"] or None,
            entity_type=params["entity"] or None,
            since=datetime.combine(start, time(), tz) if start else None,
            until=datetime.combine(end + timedelta(days=1), time(), tz) if end else None,
        )
        before = _cursor(q.get("before", ""))
        async with transaction() as session:
            entries = await audit_page(
                session, principal.tenant_id, filters, before=before, limit=PAGE_SIZE + 1
            )
    except ValidationFailed as exc:
        error = web.error_text(exc)
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    active = {k: v for k, v in params.items() if v}
    older = None
    if more:
        last = entries[-1]
        older = urlencode({**active, "before": f"{last.created_at.isoformat()}~{last.id}"})
    context: dict[str, Any] = {
        "entries": entries,
        "params": params,
        "older": older,
        "newest": urlencode(active),
        "paged": bool(q.get("before")),
    }
    if error:
        context["error"] = error
    return await web.render(request, "audit.html", principal, csrf, **context)
