"""The deliverability breaker (runbook 6.1, ADR-0066): ``monitor:email:deliverability``.

Per campaign and per sending domain, the bounce rate over a rolling window
(``email_breaker_window``, default 24 h) is judged once the window holds at least
``email_breaker_min_sample`` sends (default 20). Above ``email_bounce_threshold`` (3 %) the
campaign (or every campaign of the domain) is paused here at once (so nothing more is added to
it), then at Instantly, ``bounce:high`` (HIGH) is raised and the reason is recorded on the
campaign and in the audit log. Two sources are read, and either can trip it: the analytics
snapshots of Instantly's counters (hourly) and our own log rows (bounce webhooks as they come).
Resuming is an operator's act (:func:`cerniq.email.campaigns.resume_campaign`), after which the
breaker leaves the campaign alone for ``email_breaker_grace``.

The same breaker counts WhatsApp ban and block signals per phone (sends refused as banned or
blocked, ban incidents, WhatsApp opt-outs of the phone's leads): above ``wa_block_threshold``
of the phone's sends in the window the phone is PAUSED and ``wa:blocks:high`` is raised.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cerniq.auth.principal import system_principal
from cerniq.auth.service import record_audit
from cerniq.config import get_settings
from cerniq.email import repository
from cerniq.email.campaigns import _alert_subject, _state, mark_paused, pause_at_instantly, window_counts
from cerniq.email.config import EmailSettings, email_settings
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.logging import get_logger
from cerniq.models import EmailCampaign
from cerniq.models.enums import PhoneStatus
from cerniq.ops import alerts

__all__ = ["Rate", "evaluate_phones", "rate_of", "run_breaker", "sender_domain"]

log = get_logger("cerniq.email.breaker")
ACTOR = "deliverability-breaker"
WA_ALERT = "wa:blocks:high"


@dataclass(frozen=True)
class Rate:
    sent: int
    bounced: int
    source: str

    @property
    def rate(self) -> float:
        return self.bounced / self.sent if self.sent else 0.0

    def judged(self, settings: EmailSettings) -> bool:
        return self.sent >= settings.email_breaker_min_sample

    def trips(self, settings: EmailSettings) -> bool:
        return self.judged(settings) and self.rate > settings.email_bounce_threshold

    def api(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "bounced": self.bounced,
            "bounceRate": round(100.0 * self.rate, 2),
            "source": self.source,
        }


def rate_of(rates: list[Rate], settings: EmailSettings) -> Rate:
    """The rate that speaks: the worst judged one, else the one with the largest sample."""
    judged = [r for r in rates if r.judged(settings)]
    if judged:
        return max(judged, key=lambda r: r.rate)
    return max(rates, key=lambda r: (r.sent, r.rate)) if rates else Rate(0, 0, "none")


def sender_domain() -> str | None:
    """The domain warm mail (Resend) is sent from."""
    sender = get_settings().resend_from
    address = sender.rsplit("<", 1)[-1].rstrip(">").strip()
    return address.rsplit("@", 1)[1].lower() if "@" in address else None


@dataclass
class BreakerReport:
    checked: int = 0
    tripped: list[dict[str, Any]] = field(default_factory=list)
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)
    phones_paused: list[str] = field(default_factory=list)

    def api(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "tripped": self.tripped,
            "domains": self.domains,
            "phonesPaused": self.phones_paused,
        }


async def campaign_rates(
    campaigns: list[EmailCampaign],
    log_counts: dict[uuid.UUID, tuple[int, int]],
    now: datetime,
    settings: EmailSettings,
) -> dict[uuid.UUID, list[Rate]]:
    out: dict[uuid.UUID, list[Rate]] = {}
    for campaign in campaigns:
        sent, bounced = window_counts(campaign, now, settings.email_breaker_window)
        logged = log_counts.get(campaign.id, (0, 0))
        out[campaign.id] = [Rate(sent, bounced, "instantly"), Rate(logged[0], logged[1], "log")]
    return out


def domain_rates(
    campaigns: list[EmailCampaign],
    rates: dict[uuid.UUID, list[Rate]],
    warm: dict[uuid.UUID, tuple[int, int]],
    warm_domain: str | None,
) -> dict[tuple[uuid.UUID, str], list[Rate]]:
    """Per (tenant, sending domain): the campaigns' rates summed per source, plus warm mail when
    it leaves from the same domain."""
    sums: dict[tuple[uuid.UUID, str], dict[str, list[int]]] = {}
    for campaign in campaigns:
        if not campaign.sending_domain:
            continue
        key = (campaign.tenant_id, campaign.sending_domain)
        per_source = sums.setdefault(key, {})
        for rate in rates.get(campaign.id, []):
            total = per_source.setdefault(rate.source, [0, 0])
            total[0] += rate.sent
            total[1] += rate.bounced
    if warm_domain:
        for tenant_id, (sent, bounced) in warm.items():
            per_source = sums.setdefault((tenant_id, warm_domain), {})
            total = per_source.setdefault("log", [0, 0])
            total[0] += sent
            total[1] += bounced
    return {key: [Rate(v[0], v[1], source) for source, v in per.items()] for key, per in sums.items()}


async def run_breaker(*, tenant_id: uuid.UUID | None = None) -> dict[str, Any]:
    """Judge every campaign and sending domain (and every active phone); pause what trips."""
    settings = email_settings()
    now = utcnow()
    since = now - settings.email_breaker_window
    report = BreakerReport()
    trips: dict[uuid.UUID, tuple[str, Rate, str]] = {}
    async with transaction() as session:
        campaigns = await repository.mirrored_campaigns(session, tenant_id)
        log_counts = await repository.log_counts_by_campaign(session, since, tenant_id)
        warm = await repository.warm_counts(session, since, tenant_id)
        await repository.purge_expired_suppressions(session, now)
    rates = await campaign_rates(campaigns, log_counts, now, settings)
    report.checked = len(campaigns)
    for campaign in campaigns:
        rate = rate_of(rates[campaign.id], settings)
        if rate.trips(settings) and _can_trip(campaign, now):
            trips[campaign.id] = ("campaign", rate, _alert_subject(campaign))
    for (tenant, domain), domain_rate_list in domain_rates(campaigns, rates, warm, sender_domain()).items():
        rate = rate_of(domain_rate_list, settings)
        report.domains[domain] = {**rate.api(), "tenantId": str(tenant), "tripped": rate.trips(settings)}
        if not rate.trips(settings):
            continue
        newly = 0
        for campaign in campaigns:
            same_domain = campaign.tenant_id == tenant and campaign.sending_domain == domain
            if same_domain and campaign.id not in trips and _can_trip(campaign, now):
                trips[campaign.id] = ("domain", rate, f"domain:{domain}")
                newly += 1
        warm_sent = warm.get(tenant, (0, 0))[0] if domain == sender_domain() else 0
        if not newly and not warm_sent:
            continue  # the campaigns' own alerts already say it
        async with transaction() as session:
            await alerts.trigger(
                session,
                "bounce:high",
                subject=f"domain:{domain}",
                tenant_id=tenant,
                message=(
                    f"sending domain {domain}: bounce rate {100 * rate.rate:.1f}% "
                    f"({rate.bounced}/{rate.sent}) over {_hours(settings)} h is above "
                    f"{100 * settings.email_bounce_threshold:g}%"
                ),
                details={**rate.api(), "domain": domain},
            )
    for campaign_id, (scope, rate, subject) in trips.items():
        tripped = await _trip(campaign_id, scope, rate, subject, settings)
        if tripped is not None:
            report.tripped.append(tripped)
    report.phones_paused = await evaluate_phones(tenant_id=tenant_id)
    if report.tripped:
        log.warning("email.breaker.tripped", campaigns=[t["campaignId"] for t in report.tripped])
    return report.api()


def _can_trip(campaign: EmailCampaign, now: datetime) -> bool:
    if campaign.status == "PAUSED":
        return False
    return campaign.breaker_grace_until is None or campaign.breaker_grace_until <= now


def _hours(settings: EmailSettings) -> str:
    return f"{settings.email_breaker_window.total_seconds() / 3600:g}"


async def _trip(
    campaign_id: uuid.UUID, scope: str, rate: Rate, subject: str, settings: EmailSettings
) -> dict[str, Any] | None:
    """Pause here (committed before Instantly is called), then at Instantly; alert and audit."""
    now = utcnow()
    async with transaction() as session:
        campaign = await repository.lock_campaign(session, campaign_id)
        if campaign is None or campaign.status == "PAUSED" or not _can_trip(campaign, now):
            return None
        before = _state(campaign)
        what = "campaign" if scope == "campaign" else f"sending domain {campaign.sending_domain}"
        reason = (
            f"bounce:high: {what} bounce rate {100 * rate.rate:.1f}% ({rate.bounced}/{rate.sent}, "
            f"{rate.source}) over {_hours(settings)} h is above {100 * settings.email_bounce_threshold:g}%"
        )
        mark_paused(campaign, reason=reason, by=ACTOR, breaker=True)
        breaker = {
            **rate.api(),
            "scope": scope,
            "at": now.isoformat(),
            "threshold": settings.email_bounce_threshold,
        }
        campaign.stats = {**(campaign.stats or {}), "breaker": breaker}
        await alerts.trigger(
            session,
            "bounce:high",
            subject=_alert_subject(campaign),
            tenant_id=campaign.tenant_id,
            message=f"{campaign.name}: {reason}; campaign paused here and at Instantly",
            details={
                **breaker,
                "campaignId": str(campaign.id),
                "instantlyCampaignId": campaign.instantly_campaign_id,
            },
        )
        await record_audit(
            session,
            system_principal(campaign.tenant_id, ACTOR),
            "email.campaign.breaker_pause",
            entity_type="email_campaign",
            entity_id=campaign.id,
            reason=reason,
            before=before,
            after=_state(campaign),
        )
        tenant_id = campaign.tenant_id
    async with transaction() as session:
        campaign = await repository.lock_campaign(session, campaign_id)
        if campaign is None:
            return None
        error = await pause_at_instantly(campaign)
        if error is not None:
            campaign.stats = {**(campaign.stats or {}), "breaker": {**breaker, "instantlyError": error}}
    return {
        "campaignId": str(campaign_id),
        "tenantId": str(tenant_id),
        "scope": scope,
        "subject": subject,
        "reason": reason,
        "instantlyPaused": error is None,
        **rate.api(),
    }


async def evaluate_phones(*, tenant_id: uuid.UUID | None = None) -> list[str]:
    """Pause every active phone whose ban/block signals pass ``wa_block_threshold`` of its sends."""
    from cerniq.phones import service as phones

    settings = email_settings()
    now = utcnow()
    since = now - settings.email_breaker_window
    paused: list[str] = []
    async with transaction() as session:
        candidates = [
            p
            for p in await repository.active_phones(session)
            if tenant_id is None or p.tenant_id == tenant_id
        ]
        if not candidates:
            return []
        sends = await repository.wa_sends_by_phone(session, since)
        signals = await repository.wa_block_signals_by_phone(session, since)
        for phone in candidates:
            sent = sends.get(phone.id, 0)
            count = signals.get(phone.id, 0)
            if sent < settings.wa_block_min_sample or count / sent <= settings.wa_block_threshold:
                continue
            resumed = await repository.last_phone_resume(session, phone.id)
            if resumed is not None and resumed + settings.email_breaker_grace > now:
                continue
            reason = (
                f"WhatsApp ban/block signals {count}/{sent} ({100 * count / sent:.1f}%) over "
                f"{_hours(settings)} h are above {100 * settings.wa_block_threshold:g}%"
            )
            if phone.status != PhoneStatus.ACTIVE:
                continue
            await phones.change_status(
                session, phone, PhoneStatus.PAUSED, reason=reason, actor=ACTOR, incident_kind="BREAKER_PAUSED"
            )
            await alerts.trigger(
                session,
                WA_ALERT,
                subject=phone.id,
                tenant_id=phone.tenant_id,
                message=f"{phone.phone_label or phone.id} paused: {reason}",
                details={"phoneId": phone.id, "signals": count, "sent": sent},
            )
            paused.append(phone.id)
    return paused
