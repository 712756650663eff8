"""Cold-email campaigns mirrored from Instantly: create, list, pause, resume, analytics.

A row of ``email_campaigns`` maps our sequence step (or sequence, or the tenant's default) to an
Instantly campaign and mirrors its status (Instantly's numbers, -2 Bounce Protect and -1
Accounts Unhealthy included) and its counters (``stats``, refreshed hourly by
``email:cold:analytics``). We are the authority on pauses: a campaign paused here (by an operator
or the deliverability breaker) is paused again at Instantly if it shows up active there, and only
an operator's resume (audited, with a breaker grace period) lifts it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth.principal import Principal, system_principal
from cerniq.auth.service import record_audit
from cerniq.config import get_settings
from cerniq.email import repository, vendors
from cerniq.email.config import email_settings
from cerniq.errors import CerniqError, Conflict, NotFound, ValidationFailed
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.logging import get_logger
from cerniq.models import EmailCampaign, OutreachSequence, OutreachSequenceStep
from cerniq.ops import alerts
from cerniq.providers.errors import ProviderError
from cerniq.providers.instantly.schemas import Campaign, CampaignAnalytics, campaign_status_name

__all__ = [
    "ACCEPTING",
    "WAITING",
    "VendorError",
    "campaign_view",
    "create_campaign",
    "fetch_analytics",
    "get_view",
    "list_view",
    "pause_campaign",
    "resume_campaign",
]

log = get_logger("cerniq.email")

#: Statuses in which leads are added to a campaign.
ACCEPTING = frozenset({"DRAFT", "ACTIVE", "RUNNING_SUBSEQUENCES"})
#: Statuses in which cold messages wait (paused here or held by Instantly).
WAITING = frozenset({"PAUSED", "BOUNCE_PROTECT", "ACCOUNTS_UNHEALTHY", "ACCOUNT_SUSPENDED"})
HISTORY_KEEP = 200


class VendorError(CerniqError):
    """Instantly refused or could not be reached (502): nothing changed here."""

    status_code = 502
    code = "VENDOR_ERROR"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def campaign_view(campaign: EmailCampaign) -> dict[str, Any]:
    """The API shape of a campaign (``GET /api/v1/outreach/campaigns``)."""
    stats = {k: v for k, v in (campaign.stats or {}).items() if k not in ("history", "breaker")}
    return {
        "id": str(campaign.id),
        "name": campaign.name,
        "instantlyCampaignId": campaign.instantly_campaign_id,
        "status": campaign.status,
        "instantlyStatus": campaign.instantly_status,
        "sequenceId": str(campaign.sequence_id) if campaign.sequence_id else None,
        "sequenceStepId": str(campaign.sequence_step_id) if campaign.sequence_step_id else None,
        "sendingDomain": campaign.sending_domain,
        "pausedReason": campaign.paused_reason,
        "pausedAt": _iso(campaign.paused_at),
        "pausedBy": campaign.paused_by,
        "pausedByBreaker": campaign.paused_by_breaker,
        "breakerGraceUntil": _iso(campaign.breaker_grace_until),
        "breaker": (campaign.stats or {}).get("breaker"),
        "stats": stats,
        "lastAnalyticsAt": _iso(campaign.last_analytics_at),
        "createdAt": _iso(campaign.created_at),
    }


async def list_view(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, Any]:
    campaigns = [campaign_view(c) for c in await repository.list_campaigns(session, tenant_id)]
    counts: dict[str, int] = {}
    for item in campaigns:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    return {"campaigns": campaigns, "counts": counts, "meta": {"total": len(campaigns)}}


async def _get(
    session: AsyncSession, tenant_id: uuid.UUID, ref: str, *, for_update: bool = False
) -> EmailCampaign:
    campaign = await repository.get_campaign(session, tenant_id, ref, for_update=for_update)
    if campaign is None:
        raise NotFound(f"campaign {ref!r} not found", code="CAMPAIGN_NOT_FOUND")
    return campaign


async def get_view(session: AsyncSession, tenant_id: uuid.UUID, ref: str) -> dict[str, Any]:
    return campaign_view(await _get(session, tenant_id, ref))


def _domain(addresses: Sequence[str]) -> str | None:
    for address in addresses:
        if "@" in address:
            return address.rsplit("@", 1)[1].strip().lower() or None
    return None


def _apply_vendor(campaign: EmailCampaign, vendor: Campaign) -> None:
    campaign.instantly_status = vendor.status
    if vendor.email_list and not campaign.sending_domain:
        campaign.sending_domain = _domain(vendor.email_list)


async def create_campaign(
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    sequence_id: uuid.UUID | None = None,
    sequence_step_id: uuid.UUID | None = None,
    email_accounts: Sequence[str] = (),
    schedule: dict[str, Any] | None = None,
    steps: Sequence[dict[str, Any]] | None = None,
    daily_limit: int | None = None,
    activate: bool = True,
    instantly_campaign_id: str | None = None,
) -> EmailCampaign:
    """Create the campaign at Instantly (or link an existing one) and mirror it here.

    Without ``steps`` the campaign sends our rendered message: its one step is
    ``{{subject}}`` / ``{{body}}``, filled from each lead's custom variables.
    """
    name = name.strip()
    if not name:
        raise ValidationFailed("name is required", details={"field": "name"})
    await _check_mapping(session, principal.tenant_id, sequence_id, sequence_step_id)
    client = vendors.instantly()
    accounts = list(email_accounts) or list(email_settings().instantly_sender_accounts)
    try:
        if instantly_campaign_id:
            vendor = await client.get_campaign(instantly_campaign_id)
        else:
            vendor = await client.create_campaign(
                name=name,
                schedule=schedule or _default_schedule(),
                steps=steps or [{"subject": "{{subject}}", "body": "{{body}}", "delay": 0}],
                email_list=accounts,
                daily_limit=daily_limit,
                options={
                    "stop_on_reply": True,
                    "stop_on_auto_reply": False,
                    "open_tracking": True,
                    "link_tracking": True,
                    "insert_unsubscribe_header": True,
                },
            )
        if activate and vendor.status != 1:
            vendor = await client.activate_campaign(vendor.id)
    except ProviderError as exc:
        raise VendorError(f"Instantly: {exc.message}", details={"status": exc.status_code}) from exc
    if await repository.campaign_by_instantly_id(session, vendor.id) is not None:
        raise Conflict(f"Instantly campaign {vendor.id} is already mapped", code="CAMPAIGN_EXISTS")
    campaign = EmailCampaign(
        id=uuid.uuid4(),
        tenant_id=principal.tenant_id,
        name=name,
        instantly_campaign_id=vendor.id,
        sequence_id=sequence_id,
        sequence_step_id=sequence_step_id,
        status=campaign_status_name(vendor.status),
        instantly_status=vendor.status,
        sending_domain=_domain(vendor.email_list or accounts),
        stats={},
    )
    session.add(campaign)
    await session.flush()
    await record_audit(
        session,
        principal,
        "email.campaign.create",
        entity_type="email_campaign",
        entity_id=campaign.id,
        after={"name": name, "instantlyCampaignId": vendor.id, "status": campaign.status},
    )
    return campaign


def _default_schedule() -> dict[str, Any]:
    settings = get_settings()
    return {
        "name": "Program de lucru",
        "timing": {
            "from": settings.business_hours_start.strftime("%H:%M"),
            "to": settings.business_hours_end.strftime("%H:%M"),
        },
        # Instantly's keys "0".."6"; 0 = Sunday (inferred from its examples).
        "days": {str((d + 1) % 7): True for d in settings.business_days},
        "timezone": settings.timezone,
    }


async def _check_mapping(
    session: AsyncSession, tenant_id: uuid.UUID, sequence_id: uuid.UUID | None, step_id: uuid.UUID | None
) -> None:
    if sequence_id is not None:
        sequence = await session.get(OutreachSequence, sequence_id)
        if sequence is None or sequence.tenant_id != tenant_id:
            raise ValidationFailed("no such sequence in this tenant", details={"field": "sequenceId"})
    if step_id is not None:
        step = await session.get(OutreachSequenceStep, step_id)
        if step is None or step.tenant_id != tenant_id:
            raise ValidationFailed(
                "no such sequence step in this tenant", details={"field": "sequenceStepId"}
            )
        if sequence_id is not None and step.sequence_id != sequence_id:
            raise ValidationFailed("the step is not in that sequence", details={"field": "sequenceStepId"})


def _state(campaign: EmailCampaign) -> dict[str, Any]:
    return {
        "status": campaign.status,
        "instantlyStatus": campaign.instantly_status,
        "pausedByBreaker": campaign.paused_by_breaker,
        "pausedReason": campaign.paused_reason,
        "breakerGraceUntil": _iso(campaign.breaker_grace_until),
    }


def mark_paused(campaign: EmailCampaign, *, reason: str, by: str, breaker: bool) -> None:
    """Pause here (cold messages for it wait from now on)."""
    campaign.status = "PAUSED"
    campaign.paused_reason = reason[:1000]
    campaign.paused_at = utcnow()
    campaign.paused_by = by
    campaign.paused_by_breaker = breaker


async def pause_at_instantly(campaign: EmailCampaign) -> str | None:
    """Pause the campaign at Instantly; returns an error text instead of raising."""
    if not campaign.instantly_campaign_id:
        return None
    try:
        vendor = await vendors.instantly().pause_campaign(campaign.instantly_campaign_id)
    except (ProviderError, CerniqError) as exc:
        log.warning("email.campaign.pause_failed", campaign=str(campaign.id), error=str(exc)[:300])
        return str(exc)[:500]
    _apply_vendor(campaign, vendor)
    return None


async def pause_campaign(
    session: AsyncSession, principal: Principal, ref: str, *, reason: str | None
) -> dict[str, Any]:
    """An operator's pause: here first (nothing more is added), then at Instantly. If Instantly
    cannot be reached the pause still holds here and the next analytics cycle repeats it there."""
    campaign = await _get(session, principal.tenant_id, ref, for_update=True)
    before = _state(campaign)
    mark_paused(campaign, reason=reason or "operator pause", by=principal.actor, breaker=False)
    error = await pause_at_instantly(campaign)
    await record_audit(
        session,
        principal,
        "email.campaign.pause",
        entity_type="email_campaign",
        entity_id=campaign.id,
        reason=reason,
        before=before,
        after=_state(campaign),
    )
    return {**campaign_view(campaign), "instantly": {"synced": error is None, "error": error}}


async def resume_campaign(
    session: AsyncSession, principal: Principal, ref: str, *, reason: str | None
) -> dict[str, Any]:
    """An operator's resume (runbook 6.1 step 9): Instantly first (nothing changes here if it
    refuses), then ACTIVE here with a breaker grace period, audited; the ``bounce:high`` alert
    of the campaign is resolved and its waiting messages go out."""
    from cerniq.email.cold import release_waiting

    campaign = await _get(session, principal.tenant_id, ref, for_update=True)
    before = _state(campaign)
    if campaign.instantly_campaign_id:
        try:
            vendor = await vendors.instantly().activate_campaign(campaign.instantly_campaign_id)
        except ProviderError as exc:
            raise VendorError(
                f"Instantly did not resume the campaign: {exc.message}", details={"status": exc.status_code}
            ) from exc
        _apply_vendor(campaign, vendor)
        campaign.status = campaign_status_name(vendor.status)
        if campaign.status in WAITING - {"PAUSED"}:
            pass  # Instantly holds it (bounce protect, unhealthy accounts): mirror that
        elif campaign.status == "PAUSED":
            campaign.status = "ACTIVE"
    else:
        campaign.status = "ACTIVE"
    was_breaker = campaign.paused_by_breaker
    campaign.paused_by_breaker = False
    campaign.paused_reason = None
    campaign.paused_at = None
    campaign.paused_by = None
    campaign.breaker_grace_until = utcnow() + email_settings().email_breaker_grace
    await alerts.resolve_condition(
        session,
        "bounce:high",
        subject=_alert_subject(campaign),
        tenant_id=campaign.tenant_id,
        resolved_by=principal.actor,
    )
    released = await release_waiting(session, campaign)
    await record_audit(
        session,
        principal,
        "email.campaign.resume",
        entity_type="email_campaign",
        entity_id=campaign.id,
        reason=reason,
        before=before,
        after={**_state(campaign), "wasPausedByBreaker": was_breaker, "messagesReleased": released},
    )
    return {**campaign_view(campaign), "messagesReleased": released}


def _alert_subject(campaign: EmailCampaign) -> str:
    return f"campaign:{campaign.id}"


# --- analytics ---------------------------------------------------------------------------------


def _stats(
    counts: CampaignAnalytics, previous: dict[str, Any], now: datetime, window: timedelta
) -> dict[str, Any]:
    sent = counts.emails_sent_count
    bounced = counts.bounced_count
    history = [h for h in previous.get("history") or [] if isinstance(h, dict)]
    history.append({"at": _iso(now), "sent": sent, "bounced": bounced})
    # Keep the snapshots inside the window plus the newest one before it (the window's baseline).
    cutoff = now - window
    older = [h for h in history if _parse(h.get("at")) < cutoff]
    history = ([older[-1]] if older else []) + [h for h in history if _parse(h.get("at")) >= cutoff]
    return {
        **{k: v for k, v in previous.items() if k == "breaker"},
        "leads": counts.leads_count,
        "contacted": counts.contacted_count,
        "sent": sent,
        "opened": counts.open_count,
        "openedUnique": counts.open_count_unique,
        "replied": counts.reply_count,
        "repliedUnique": counts.reply_count_unique,
        "autoReplies": counts.reply_count_automatic,
        "clicked": counts.link_click_count,
        "bounced": bounced,
        "unsubscribed": counts.unsubscribed_count,
        "completed": counts.completed_count,
        "opportunities": counts.total_opportunities,
        "bounceRate": round(100.0 * bounced / sent, 2) if sent else 0.0,
        "fetchedAt": _iso(now),
        "history": history[-HISTORY_KEEP:],
    }


def _parse(value: object) -> datetime:
    from cerniq.providers.instantly.schemas import parse_iso

    parsed = parse_iso(value)
    if parsed is None:
        return datetime.min.replace(tzinfo=utcnow().tzinfo)
    return parsed


def window_counts(campaign: EmailCampaign, now: datetime, window: timedelta) -> tuple[int, int]:
    """Sends and bounces of the campaign within the rolling window, from the analytics snapshots:
    the newest cumulative counters minus the last snapshot taken before the window opened (zero
    when the campaign has none that old)."""
    history = [h for h in (campaign.stats or {}).get("history") or [] if isinstance(h, dict)]
    if not history:
        return 0, 0
    latest = history[-1]
    cutoff = now - window
    baseline = {"sent": 0, "bounced": 0}
    for snapshot in history:
        if _parse(snapshot.get("at")) <= cutoff:
            baseline = snapshot
    sent = int(latest.get("sent", 0)) - int(baseline.get("sent", 0))
    bounced = int(latest.get("bounced", 0)) - int(baseline.get("bounced", 0))
    return max(sent, 0), max(bounced, 0)


async def fetch_analytics(*, tenant_id: uuid.UUID | None = None) -> dict[str, Any]:
    """``email:cold:analytics``: mirror every mapped campaign's status and counters, re-pause
    at Instantly what is paused here, then run the deliverability breaker."""
    from cerniq.email.breaker import run_breaker

    now = utcnow()
    window = email_settings().email_breaker_window
    async with transaction() as session:
        campaigns = await repository.mirrored_campaigns(session, tenant_id)
        ids = [c.instantly_campaign_id for c in campaigns if c.instantly_campaign_id]
    if not ids:
        report = await run_breaker(tenant_id=tenant_id)
        return {"campaigns": 0, "updated": 0, "repaused": 0, "breaker": report}
    client = vendors.instantly()
    vendor_campaigns = {c.id: c for c in await client.list_campaigns()}
    counters: dict[str, CampaignAnalytics] = {}
    for start in range(0, len(ids), 100):
        for item in await client.campaign_analytics(ids[start : start + 100]):
            counters[item.campaign_id] = item
    updated = repaused = 0
    to_repause: list[uuid.UUID] = []
    async with transaction() as session:
        for campaign in await repository.mirrored_campaigns(session, tenant_id):
            instantly_id = campaign.instantly_campaign_id or ""
            vendor = vendor_campaigns.get(instantly_id)
            if vendor is not None:
                campaign.instantly_status = vendor.status
                name = campaign_status_name(vendor.status)
                if campaign.status == "PAUSED":
                    if name in ACCEPTING:
                        to_repause.append(campaign.id)
                elif name != campaign.status:
                    log.info(
                        "email.campaign.status", campaign=str(campaign.id), before=campaign.status, after=name
                    )
                    campaign.status = name
                if vendor.email_list and not campaign.sending_domain:
                    campaign.sending_domain = _domain(vendor.email_list)
            elif campaign.instantly_campaign_id:
                campaign.stats = {**(campaign.stats or {}), "missingAtInstantly": True}
            item = counters.get(instantly_id) or CampaignAnalytics(campaign_id=instantly_id)
            campaign.stats = _stats(item, dict(campaign.stats or {}), now, window)
            campaign.last_analytics_at = now
            updated += 1
    for campaign_id in to_repause:
        async with transaction() as session:
            held = await repository.lock_campaign(session, campaign_id)
            if held is None or held.status != "PAUSED":
                continue
            if await pause_at_instantly(held) is None:
                repaused += 1
                await record_audit(
                    session,
                    system_principal(held.tenant_id, "email-analytics"),
                    "email.campaign.repause",
                    entity_type="email_campaign",
                    entity_id=held.id,
                    reason="paused here but active at Instantly",
                    after=_state(held),
                )
    report = await run_breaker(tenant_id=tenant_id)
    return {"campaigns": len(ids), "updated": updated, "repaused": repaused, "breaker": report}
