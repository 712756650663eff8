"""Console: cold-email campaigns (mirrored to Instantly) with their status, leads, sends and
bounce rates, and pause / resume.

The list reads :func:`cerniq.email.campaigns.list_view` and the bounce rates of
:func:`cerniq.email.analytics.deliverability_view` (the breaker's rolling window); pause and
resume call :mod:`cerniq.email.campaigns`, which also pause / resume at Instantly and write the
audit rows. The JSON API lets operators do both, so the console does too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cerniq.console import i18n, web
from cerniq.email import analytics as email_analytics
from cerniq.email import campaigns as email_campaigns
from cerniq.kit.db import transaction
from cerniq.models.enums import Role

router = APIRouter(prefix="/console", include_in_schema=False)

BACK = "/console/campaigns"

i18n.add_strings(
    {
        "cmp_none": {"ro": "Nicio campanie de e-mail.", "en": "No email campaigns."},
        "cmp_name": {"ro": "Campanie", "en": "Campaign"},
        "cmp_instantly": {"ro": "Stare Instantly", "en": "Instantly status"},
        "cmp_sent": {"ro": "Trimise", "en": "Sent"},
        "cmp_bounced": {"ro": "Returnate", "en": "Bounced"},
        "cmp_bounce_rate": {"ro": "Rată de returnare", "en": "Bounce rate"},
        "cmp_bounce_window": {"ro": "Returnare (fereastră)", "en": "Bounce rate (window)"},
        "cmp_domain": {"ro": "Domeniu", "en": "Domain"},
        "cmp_paused_reason": {"ro": "Motivul pauzei", "en": "Pause reason"},
        "cmp_breaker": {"ro": "oprită automat", "en": "breaker"},
        "cmp_overall": {"ro": "Rată de returnare globală", "en": "Overall bounce rate"},
        "cmp_threshold": {"ro": "prag", "en": "threshold"},
        "cmp_not_synced": {
            "ro": "Campania e oprită aici, dar Instantly nu a confirmat",
            "en": "The campaign is paused here but Instantly did not confirm",
        },
    }
)


def _rows(listing: dict[str, Any], deliverability: dict[str, Any]) -> list[dict[str, Any]]:
    windows = {c["id"]: c for c in deliverability.get("campaigns", [])}
    rows = []
    for campaign in listing["campaigns"]:
        stats = campaign.get("stats") or {}
        window = windows.get(campaign["id"], {})
        rows.append(
            {
                **campaign,
                "leads": stats.get("leads"),
                "sent": stats.get("sent"),
                "bounced": stats.get("bounced"),
                # Percentages from the service; pct() takes fractions.
                "lifetimeRate": float(stats["bounceRate"]) / 100
                if stats.get("bounceRate") is not None
                else None,
                "windowRate": float(window["bounceRate"]) / 100
                if window.get("bounceRate") is not None
                else None,
            }
        )
    return rows


@router.get("/campaigns")
async def campaigns_page(request: Request) -> Response:
    found = await web.signed_in(request)
    if found is None:
        return web.to_login(request)
    principal, csrf = found
    async with transaction() as session:
        listing = await email_campaigns.list_view(session, principal.tenant_id)
        deliverability = await email_analytics.deliverability_view(session, principal.tenant_id)
    return await web.render(
        request,
        "campaigns.html",
        principal,
        csrf,
        campaigns=_rows(listing, deliverability),
        counts=listing["counts"],
        overall={
            "rate": float(deliverability["bounceRate"]) / 100,
            "threshold": float(deliverability["threshold"]) / 100,
            "above": deliverability["aboveThreshold"],
            "sent": deliverability["sent"],
            "bounced": deliverability["bounced"],
        },
    )


@router.post("/campaigns/{campaign_id}/pause")
async def campaign_pause(campaign_id: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    reason = form.get("reason", "").strip()[:500] or None
    return await web.act(
        BACK,
        lambda session: email_campaigns.pause_campaign(session, principal, campaign_id, reason=reason),
        then=_paused,
    )


def _paused(result: dict[str, Any]) -> Response:
    synced = result.get("instantly") or {}
    if synced.get("synced") is False:
        # Paused here; the next analytics cycle repeats the pause at Instantly.
        return web.redirect(BACK, flash="done", error=f"VENDOR_ERROR: {synced.get('error') or 'not synced'}")
    return web.redirect(BACK, flash="done")


@router.post("/campaigns/{campaign_id}/resume")
async def campaign_resume(campaign_id: str, request: Request) -> Response:
    principal, form = await web.guard(request, Role.OPERATOR)
    reason = form.get("reason", "").strip()[:500] or None
    return await web.act(
        BACK, lambda session: email_campaigns.resume_campaign(session, principal, campaign_id, reason=reason)
    )
