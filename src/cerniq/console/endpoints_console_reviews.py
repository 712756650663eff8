"""Console: the review queue (tabs by priority, SLA countdown, resolve, assign and escalate)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.console import i18n, web
from cerniq.console.content_forms import validation_text
from cerniq.console.repository_ops import users_of
from cerniq.errors import ValidationFailed
from cerniq.kit.db import transaction
from cerniq.kit.pagination import PageParams
from cerniq.models.enums import ReviewPriority, Role
from cerniq.reviews import service as reviews_service
from cerniq.reviews.schemas import EscalateBody, ResolveBody

router = APIRouter(prefix="/console", include_in_schema=False)

i18n.add_strings(
    {
        "review_assign_to": {"ro": "Alocă lui", "en": "Assign to"},
        "review_assign": {"ro": "Alocă", "en": "Assign"},
        "review_to_me": {"ro": "mie", "en": "me"},
        "review_assigned_to": {"ro": "Alocată lui", "en": "Assigned to"},
        "review_escalate_to": {"ro": "Escaladează către", "en": "Escalate to"},
        "review_escalation_reason": {
            "ro": "Motivul escaladării (min. 10 caractere)",
            "en": "Why escalate (at least 10 characters)",
        },
        "escalation_manager": {"ro": "Manager", "en": "Manager"},
        "escalation_team_lead": {"ro": "Șef de echipă", "en": "Team lead"},
        "escalation_on_call": {"ro": "De gardă", "en": "On call"},
    }
)

ESCALATION_TARGETS = ("team_lead", "manager", "on_call")

REVIEW_ACTIONS = {
    "APPROVE": Role.OPERATOR,
    "EDIT": Role.OPERATOR,
    "REJECT": Role.OPERATOR,
    "IGNORE": Role.OPERATOR,
    "TAKEOVER": Role.OPERATOR,
}


@router.get("/reviews")
async def reviews_page(request: Request) -> Response:
    found = await web.signed_in(request)
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
        people = await users_of(session, principal.tenant_id, active_only=True)
    counts = listing["counts"]
    by_priority = counts.get("byPriority", counts)
    tabs = [(p, int(by_priority.get(p, 0) or 0)) for p in ("URGENT", "HIGH", "MEDIUM", "LOW")]
    return await web.render(
        request,
        "reviews.html",
        principal,
        csrf,
        tab=tab,
        tabs=tabs,
        reviews=listing["reviews"],
        people=[{"id": str(u.id), "label": u.display_name or u.email, "email": u.email} for u in people],
        names={str(u.id): u.display_name or u.email for u in people},
        escalation_targets=ESCALATION_TARGETS,
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
    user_agent = request.headers.get("user-agent")
    return await web.act(
        back,
        lambda session: reviews_service.resolve(session, principal, review_id, body, user_agent=user_agent),
    )


@router.post("/reviews/{review_id}/assign")
async def assign_review(review_id: uuid.UUID, request: Request) -> Response:
    """Give the review to a user of the tenant (``userId`` = an id or ``me``)."""
    principal, form = await web.guard(request, Role.OPERATOR)
    back = web.safe_next(form.get("next"), "/console/reviews")
    who = form.get("userId", "").strip()

    async def work(session: AsyncSession) -> None:
        if who == "me":
            if principal.user_id is None:
                raise ValidationFailed("signed in with an API token: pick a user to assign the review to")
            user_id = principal.user_id
        else:
            try:
                user_id = uuid.UUID(who)
            except ValueError:
                raise ValidationFailed("pick a user to assign the review to") from None
        await reviews_service.assign(
            session,
            principal,
            review_id,
            user_id,
            notes=form.get("notes") or None,
            user_agent=request.headers.get("user-agent"),
        )

    return await web.act(back, work)


@router.post("/reviews/{review_id}/escalate")
async def escalate_review(review_id: uuid.UUID, request: Request) -> Response:
    """Escalate to the team lead, the manager, on call or a user, with a reason."""
    principal, form = await web.guard(request, Role.OPERATOR)
    back = web.safe_next(form.get("next"), "/console/reviews")
    try:
        body = EscalateBody(escalateTo=form.get("escalateTo", ""), reason=form.get("reason", ""))
    except ValidationError as exc:
        return web.redirect(back, error=validation_text(exc))

    async def work(session: AsyncSession) -> None:
        await reviews_service.escalate(
            session,
            principal,
            review_id,
            escalate_to=body.escalateTo,
            reason=body.reason,
            user_agent=request.headers.get("user-agent"),
        )

    return await web.act(back, work)
