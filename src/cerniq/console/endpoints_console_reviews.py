"""Console: the review queue (tabs by priority, SLA countdown, resolve actions)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cerniq.console import web
from cerniq.errors import CerniqError
from cerniq.kit.db import transaction
from cerniq.kit.pagination import PageParams
from cerniq.models.enums import ReviewPriority, Role
from cerniq.reviews import service as reviews_service
from cerniq.reviews.schemas import ResolveBody

router = APIRouter(prefix="/console", include_in_schema=False)

REVIEW_ACTIONS = {
    "APPROVE": Role.OPERATOR,
    "EDIT": Role.OPERATOR,
    "REJECT": Role.OPERATOR,
    "IGNORE": Role.OPERATOR,
    "TAKEOVER": Role.OPERATOR,
}


@router.get("/reviews")
async def reviews_page(request: Request) -> Response:
    found = web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    tab = request.query_params.get("tab", "URGENT").upper()
    if tab not in {p.value for p in ReviewPriority}:
        tab = "URGENT"
    async with transaction() as session:
        listing = await reviews_service.list_view(
            session, principal, priority=tab, page=PageParams(page=1, limit=50)
        )
    counts = listing["counts"]
    by_priority = counts.get("byPriority", counts)
    tabs = [(p, int(by_priority.get(p, 0) or 0)) for p in ("URGENT", "HIGH", "MEDIUM", "LOW")]
    return await web.render(
        request, "reviews.html", principal, csrf, tab=tab, tabs=tabs, reviews=listing["reviews"]
    )


@router.post("/reviews/{review_id}/resolve")
async def resolve_review(review_id: uuid.UUID, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    action = form.get("action", "").upper()
    back = web.safe_next(form.get("next"), "/console/reviews")
    if action not in REVIEW_ACTIONS:
        return web.redirect(back, error=f"VALIDATION_ERROR: unknown action {action!r}")
    body = ResolveBody(
        action=action,
        editedContent=form.get("editedContent") or None,
        notes=form.get("notes") or None,
    )
    try:
        async with transaction() as session:
            await reviews_service.resolve(
                session, principal, review_id, body, user_agent=request.headers.get("user-agent")
            )
    except CerniqError as exc:
        return web.redirect(back, error=web.error_text(exc))
    return web.redirect(back, flash="done")
