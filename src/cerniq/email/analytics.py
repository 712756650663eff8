"""What the runbook reads (6.1 steps 1 and 3): deliverability rates and the bounces."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.email import repository
from cerniq.email.breaker import Rate, campaign_rates, domain_rates, rate_of, sender_domain
from cerniq.email.config import email_settings
from cerniq.kit.clock import utcnow
from cerniq.models import GoldCommunicationLog

__all__ = ["bounce_view", "bounces_view", "deliverability_view"]


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


async def deliverability_view(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, Any]:
    """``GET /api/v1/outreach/analytics/email-deliverability``: ``bounceRate`` (percent, over the
    breaker's rolling window, cold and warm mail), then per campaign and per sending domain."""
    settings = email_settings()
    now = utcnow()
    since = now - settings.email_breaker_window
    campaigns = await repository.mirrored_campaigns(session, tenant_id)
    log_counts = await repository.log_counts_by_campaign(session, since, tenant_id)
    warm = await repository.warm_counts(session, since, tenant_id)
    rates = await campaign_rates(campaigns, log_counts, now, settings)
    warm_sent, warm_bounced = warm.get(tenant_id, (0, 0))
    per_source: dict[str, list[int]] = {"instantly": [0, 0], "log": [warm_sent, warm_bounced]}
    campaign_items = []
    for campaign in campaigns:
        for rate in rates[campaign.id]:
            per_source[rate.source][0] += rate.sent
            per_source[rate.source][1] += rate.bounced
        speaking = rate_of(rates[campaign.id], settings)
        stats = campaign.stats or {}
        campaign_items.append(
            {
                "id": str(campaign.id),
                "name": campaign.name,
                "instantlyCampaignId": campaign.instantly_campaign_id,
                "status": campaign.status,
                "sendingDomain": campaign.sending_domain,
                "window": speaking.api(),
                "bounceRate": round(100.0 * speaking.rate, 2),
                "sent": int(stats.get("sent", 0) or 0),
                "bounced": int(stats.get("bounced", 0) or 0),
                "lifetimeBounceRate": float(stats.get("bounceRate", 0.0) or 0.0),
                "pausedByBreaker": campaign.paused_by_breaker,
                "pausedReason": campaign.paused_reason,
                "breakerGraceUntil": _iso(campaign.breaker_grace_until),
            }
        )
    # The instantly counters cover cold mail only; warm mail is in our log either way.
    per_source["instantly"][0] += warm_sent
    per_source["instantly"][1] += warm_bounced
    overall = rate_of([Rate(v[0], v[1], k) for k, v in per_source.items()], settings)
    domains = []
    for (tenant, domain), domain_list in domain_rates(campaigns, rates, warm, sender_domain()).items():
        if tenant != tenant_id:
            continue
        rate = rate_of(domain_list, settings)
        domains.append({"domain": domain, **rate.api(), "tripped": rate.trips(settings)})
    bounce_types = await repository.bounce_totals(session, tenant_id, since)
    return {
        "bounceRate": round(100.0 * overall.rate, 2),
        "threshold": round(100.0 * settings.email_bounce_threshold, 2),
        "aboveThreshold": overall.trips(settings),
        "sent": overall.sent,
        "bounced": overall.bounced,
        "source": overall.source,
        "window": {
            "hours": settings.email_breaker_window.total_seconds() / 3600,
            "from": _iso(since),
            "to": _iso(now),
            "minimumSample": settings.email_breaker_min_sample,
        },
        "bounceTypes": bounce_types,
        "warm": {"sent": warm_sent, "bounced": warm_bounced, "domain": sender_domain()},
        "campaigns": campaign_items,
        "domains": sorted(domains, key=lambda d: d["domain"]),
    }


def bounce_view(row: GoldCommunicationLog) -> dict[str, Any]:
    return {
        "email": row.email,
        "bounceType": row.bounce_type,
        "reason": row.bounce_reason,
        "timestamp": _iso(row.bounced_at or row.status_updated_at),
        "channel": row.channel.value,
        "campaignId": str(row.email_campaign_id) if row.email_campaign_id else None,
        "leadId": str(row.lead_journey_id),
        "messageId": str(row.id),
    }


async def bounces_view(session: AsyncSession, tenant_id: uuid.UUID, limit: int) -> dict[str, Any]:
    """``GET /api/v1/outreach/analytics/bounces?limit=N``: newest first."""
    rows = await repository.recent_bounces(session, tenant_id, limit)
    return {"bounces": [bounce_view(r) for r in rows], "meta": {"total": len(rows), "limit": limit}}
