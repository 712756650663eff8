"""Operator actions of the email channels: clean bounces (runbook 6.1 step 8), the suppression
list, the vendor webhooks."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import Principal
from cerniq.auth.service import record_audit
from cerniq.config import get_settings
from cerniq.email import repository, vendors
from cerniq.email.config import email_settings
from cerniq.errors import ValidationFailed
from cerniq.kit.clock import utcnow
from cerniq.logging import get_logger
from cerniq.models import EmailCampaign
from cerniq.providers.errors import ProviderError

__all__ = ["RESEND_EVENTS", "clean_bounces", "ensure_default_campaign", "setup_webhooks", "suppression_view"]

log = get_logger("cerniq.email")

RESEND_EVENTS = (
    "email.sent",
    "email.delivered",
    "email.delivery_delayed",
    "email.bounced",
    "email.complained",
    "email.opened",
    "email.clicked",
    "email.failed",
    "email.suppressed",
)
_LOOKUP_CHUNK = 100


async def clean_bounces(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    """Take every suppressed address out of future sends: queued email to them is SKIPPED, the
    addresses go on Instantly's block list (no campaign mails them again) and their leads are
    deleted from our Instantly campaigns. Reports what was removed; vendor errors are listed,
    not raised (what could be done here stays done)."""
    tenant_id = principal.tenant_id
    entries = await repository.active_email_suppressions(session, tenant_id, utcnow())
    emails = sorted({e.value for e in entries})
    skipped = await repository.skip_queued_to(session, tenant_id, emails, "SUPPRESSED")
    removed: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    blocklisted = 0
    campaigns = await repository.mirrored_campaigns(session, tenant_id)
    if emails and (campaigns or get_settings().instantly_api_key.get_secret_value()):
        client = vendors.instantly()
        try:
            blocklisted = await client.block_emails(emails)
        except ProviderError as exc:
            errors.append({"step": "blocklist", "error": str(exc)[:300]})
        for campaign in campaigns:
            gone: list[str] = []
            try:
                for start in range(0, len(emails), _LOOKUP_CHUNK):
                    chunk = emails[start : start + _LOOKUP_CHUNK]
                    for lead in await client.find_leads(
                        campaign_id=campaign.instantly_campaign_id, emails=chunk
                    ):
                        if lead.campaign not in (None, campaign.instantly_campaign_id):
                            continue
                        await client.delete_lead(lead.id)
                        gone.append((lead.email or "").lower())
            except ProviderError as exc:
                errors.append({"step": "remove", "campaignId": str(campaign.id), "error": str(exc)[:300]})
            if gone:
                removed.append(
                    {
                        "campaignId": str(campaign.id),
                        "instantlyCampaignId": campaign.instantly_campaign_id,
                        "name": campaign.name,
                        "removed": sorted(gone),
                    }
                )
    reasons: dict[str, int] = {}
    for entry in entries:
        reasons[entry.reason.value] = reasons.get(entry.reason.value, 0) + 1
    result = {
        "suppressedAddresses": len(emails),
        "byReason": reasons,
        "messagesSkipped": len(skipped),
        "blocklisted": blocklisted,
        "removedFromCampaigns": removed,
        "removedTotal": sum(len(r["removed"]) for r in removed),
        "errors": errors,
    }
    await record_audit(
        session,
        principal,
        "email.clean_bounces",
        entity_type="suppression_list",
        after={k: v for k, v in result.items() if k != "removedFromCampaigns"},
    )
    log.info(
        "email.clean_bounces", tenant=str(tenant_id), removed=result["removedTotal"], skipped=len(skipped)
    )
    return result


async def suppression_view(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, Any]:
    entries = await repository.active_email_suppressions(session, tenant_id, utcnow())
    return {
        "suppressions": [
            {
                "email": e.value,
                "reason": e.reason.value,
                "source": e.source,
                "bounceCount": e.bounce_count,
                "permanent": e.is_permanent,
                "expiresAt": e.expires_at.isoformat() if e.expires_at else None,
                "createdAt": e.created_at.isoformat(),
            }
            for e in entries
        ],
        "meta": {"total": len(entries)},
    }


async def setup_webhooks(base_url: str | None = None) -> dict[str, Any]:
    """Subscribe our endpoints at both vendors (idempotent: an existing subscription is kept).

    Instantly gets ``all_events`` with our secret in the configured header; Resend gets the email
    events and answers a ``whsec_`` signing secret, returned here to be set as
    ``CERNIQ_RESEND_WEBHOOK_SECRET`` (unless it is the one already configured)."""
    settings = get_settings()
    root = (base_url or settings.public_base_url).rstrip("/")
    out: dict[str, Any] = {}
    secret = settings.instantly_webhook_secret.get_secret_value()
    if settings.instantly_api_key.get_secret_value():
        if not secret:
            raise ValidationFailed("set CERNIQ_INSTANTLY_WEBHOOK_SECRET first", code="WEBHOOK_NOT_CONFIGURED")
        url = f"{root}/api/v1/webhooks/instantly"
        client = vendors.instantly()
        existing = [w for w in await client.list_webhooks() if w.target_hook_url == url]
        header = email_settings().instantly_webhook_header
        if existing:
            out["instantly"] = {"id": existing[0].id, "url": url, "created": False}
        else:
            hook = await client.create_webhook(
                target_hook_url=url, event_type="all_events", headers={header: secret}, name="cerniq"
            )
            out["instantly"] = {"id": hook.id, "url": url, "created": True, "header": header}
    if settings.resend_api_key.get_secret_value():
        url = f"{root}/api/v1/webhooks/resend"
        resend = vendors.resend()
        found = [w for w in await resend.list_webhooks() if w.endpoint == url]
        if found:
            out["resend"] = {"id": found[0].id, "url": url, "created": False}
        else:
            created = await resend.create_webhook(url, RESEND_EVENTS)
            out["resend"] = {
                "id": created.id,
                "url": url,
                "created": True,
                "signingSecret": created.signing_secret,
                "secretConfigured": created.signing_secret
                == settings.resend_webhook_secret.get_secret_value(),
            }
    return out


async def ensure_default_campaign(
    session: AsyncSession, principal: Principal, *, name: str = "Cerniq - email rece"
) -> EmailCampaign:
    """The tenant's default cold campaign (mapped to no sequence: it takes every cold message no
    step or sequence campaign claims), created at Instantly and activated if there is none.
    Idempotent; for set-up scripts and the demo."""
    for campaign in await repository.list_campaigns(session, principal.tenant_id):
        if (
            campaign.sequence_id is None
            and campaign.sequence_step_id is None
            and campaign.instantly_campaign_id
        ):
            return campaign
    from cerniq.email.campaigns import create_campaign

    return await create_campaign(session, principal, name=name)
