"""The deliverability breaker: bounce rate per campaign and sending domain over a rolling window,
pausing here and at Instantly; the WhatsApp ban/block signals per phone."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.models import Alert, AuditEntry, EmailCampaign, GoldCommunicationLog, PhoneIncident, WaPhoneNumber
from cerniq.models.enums import AlertSeverity, AlertStatus, Channel, Direction, MessageStatus, PhoneStatus
from cerniq.sandbox import SandboxHandle
from tests.email.conftest import (
    add_email_lead,
    get_row,
    instantly_leads,
    make_campaign,
    queue_email,
    status_is,
)
from tests.fixtures.outreach import add_leads, add_phones, wait_for


async def fill_campaign(
    tenant: Any, sandbox: SandboxHandle, campaign: Any, *, leads: int, bounces: int, start: int = 1
) -> None:
    """``leads`` cold leads added to ``campaign`` and emailed by the sandbox; ``bounces`` of them bounce."""
    rows = []
    for n in range(start, start + leads):
        email = f"bounce{n}@ferma{n}.ro" if n - start < bounces else f"office{n}@ferma{n}.ro"
        lead = await add_email_lead(tenant, n, email=email)
        rows.append(await queue_email(lead, Channel.EMAIL_COLD, campaign_id=campaign.id))

    async def all_added() -> bool:
        return all([await status_is(r, MessageStatus.SENT) for r in rows])

    await wait_for(all_added, timeout=30)
    sandbox.control("POST", "/_control/instantly/send-pending")

    async def bounced() -> bool:
        (state,) = [
            c
            for c in sandbox.control("GET", "/_control/instantly/campaigns")
            if c["id"] == campaign.instantly_campaign_id
        ]
        return int(state["analytics"]["bounced_count"]) == bounces

    await wait_for(bounced)


def sandbox_status(sandbox: SandboxHandle, instantly_id: str) -> int:
    (state,) = [c for c in sandbox.control("GET", "/_control/instantly/campaigns") if c["id"] == instantly_id]
    return int(state["status"])


async def load(campaign_id: uuid.UUID) -> EmailCampaign:
    async with transaction() as session:
        campaign = await session.get(EmailCampaign, campaign_id)
        assert campaign is not None
        return campaign


async def test_a_campaign_above_3_percent_is_paused_here_and_at_instantly_until_an_operator_resumes_it(
    tenant: Any, sandbox: SandboxHandle, worker: Any, local_api: Any, monkeypatch: Any
) -> None:
    from cerniq.config import get_settings
    from cerniq.email.campaigns import fetch_analytics

    campaign = await make_campaign(tenant)
    await fill_campaign(tenant, sandbox, campaign, leads=30, bounces=2)  # 6.7 %

    result = await fetch_analytics()  # one analytics cycle
    assert [t["campaignId"] for t in result["breaker"]["tripped"]] == [str(campaign.id)]
    paused = await load(campaign.id)
    assert paused.status == "PAUSED"
    assert paused.paused_by_breaker is True
    assert (
        paused.paused_reason is not None
        and "6.7%" in paused.paused_reason
        and "(2/30" in paused.paused_reason
    )
    assert paused.stats["sent"] == 30 and paused.stats["bounced"] == 2
    assert sandbox_status(sandbox, campaign.instantly_campaign_id) == 2
    async with transaction() as session:
        alert = (await session.execute(select(Alert).where(Alert.alert_type == "bounce:high"))).scalar_one()
        assert alert.subject == f"campaign:{campaign.id}"
        audit = (
            await session.execute(
                select(AuditEntry).where(AuditEntry.action == "email.campaign.breaker_pause")
            )
        ).scalar_one()
    assert alert.severity == AlertSeverity.HIGH and alert.status == AlertStatus.OPEN
    assert audit.reason == paused.paused_reason

    # Nothing more is added while it is paused.
    added_before = len(instantly_leads(sandbox, campaign_id=campaign.instantly_campaign_id))
    lead = await add_email_lead(tenant, 99)
    waiting = await queue_email(lead, Channel.EMAIL_COLD, campaign_id=campaign.id)

    async def waits() -> bool:
        from cerniq.kit.ids import job_id
        from cerniq.worker.queues import get_queue

        return str(await get_queue("q:email:cold").getJobState(job_id("cold", waiting))) == "delayed"

    await wait_for(waits)
    again = await fetch_analytics()
    assert again["breaker"]["tripped"] == []
    assert (await get_row(waiting)).status == MessageStatus.QUEUED
    assert len(instantly_leads(sandbox, campaign_id=campaign.instantly_campaign_id)) == added_before

    # The operator resumes it (runbook 6.1 step 9, a curl without a body on the box).
    monkeypatch.setenv("CERNIQ_LOCAL_OPERATOR_MODE", "true")
    get_settings.cache_clear()
    response = await local_api.post(f"/api/v1/outreach/campaigns/{campaign.id}/resume")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ACTIVE" and body["pausedByBreaker"] is False
    assert body["breakerGraceUntil"] is not None
    assert sandbox_status(sandbox, campaign.instantly_campaign_id) == 1
    await wait_for(lambda: status_is(waiting, MessageStatus.SENT))
    async with transaction() as session:
        resume = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "email.campaign.resume"))
        ).scalar_one()
        alert_after = (
            await session.execute(select(Alert).where(Alert.alert_type == "bounce:high"))
        ).scalar_one()
    assert resume.actor_type == "local"
    assert resume.before is not None and resume.before["pausedByBreaker"] is True
    assert alert_after.status == AlertStatus.RESOLVED

    # Within the grace period the breaker leaves it alone, though the rate is still high.
    third = await fetch_analytics()
    assert third["breaker"]["tripped"] == []
    assert (await load(campaign.id)).status == "ACTIVE"


async def test_below_the_minimum_sample_nothing_trips(
    tenant: Any, sandbox: SandboxHandle, worker: Any
) -> None:
    from cerniq.email.campaigns import fetch_analytics

    campaign = await make_campaign(tenant)
    await fill_campaign(tenant, sandbox, campaign, leads=10, bounces=2)  # 20 %, but 10 sends < 20
    result = await fetch_analytics()
    assert result["breaker"]["tripped"] == []
    assert (await load(campaign.id)).status == "ACTIVE"
    assert sandbox_status(sandbox, campaign.instantly_campaign_id) == 1


async def test_a_sending_domain_over_the_threshold_pauses_every_campaign_on_it(
    tenant: Any, sandbox: SandboxHandle, worker: Any
) -> None:
    from cerniq.email.campaigns import fetch_analytics

    first = await make_campaign(tenant, name="Timiș")
    second = await make_campaign(tenant, name="Arad")
    other = await make_campaign(tenant, name="Alt domeniu", email_accounts=["x@alt-domeniu.ro"])
    await fill_campaign(tenant, sandbox, first, leads=12, bounces=1, start=1)
    await fill_campaign(tenant, sandbox, second, leads=12, bounces=1, start=100)
    result = await fetch_analytics()
    tripped = {t["campaignId"]: t for t in result["breaker"]["tripped"]}
    assert set(tripped) == {str(first.id), str(second.id)}
    assert {t["scope"] for t in tripped.values()} == {"domain"}
    assert result["breaker"]["domains"]["outreach-cerniq.ro"]["tripped"] is True
    assert (await load(other.id)).status == "ACTIVE"
    async with transaction() as session:
        subjects = {a.subject for a in (await session.execute(select(Alert))).scalars()}
    assert "domain:outreach-cerniq.ro" in subjects


async def test_rates_are_judged_over_the_rolling_window(
    tenant: Any, sandbox: SandboxHandle, worker: Any
) -> None:
    """Old bounces leave the window: a snapshot older than the window is the baseline."""
    from cerniq.email.breaker import run_breaker
    from cerniq.email.campaigns import fetch_analytics

    campaign = await make_campaign(tenant)
    await fill_campaign(tenant, sandbox, campaign, leads=25, bounces=2)
    async with transaction() as session:
        row = await session.get(EmailCampaign, campaign.id)
        assert row is not None
        long_ago = (utcnow() - timedelta(hours=30)).isoformat()
        row.stats = {"history": [{"at": long_ago, "sent": 25, "bounced": 2}]}
        # Our log agrees the bounces are old.
        await session.execute(
            GoldCommunicationLog.__table__.update()
            .where(GoldCommunicationLog.email_campaign_id == campaign.id)
            .values(sent_at=utcnow() - timedelta(hours=30))
        )
    result = await fetch_analytics()
    assert result["breaker"]["tripped"] == []
    assert (await run_breaker())["tripped"] == []
    assert (await load(campaign.id)).status == "ACTIVE"


async def test_whatsapp_ban_and_block_signals_pause_a_phone(tenant: Any, sandbox: SandboxHandle) -> None:
    from cerniq.email.breaker import run_breaker

    (phone_id, healthy_id) = await add_phones(tenant, 2)
    leads = await add_leads(tenant, 22)
    now = utcnow()
    async with transaction() as session:
        for index, lead in enumerate(leads):
            for phone in (phone_id, healthy_id):
                session.add(
                    GoldCommunicationLog(
                        tenant_id=tenant.id,
                        lead_journey_id=lead,
                        channel=Channel.WHATSAPP,
                        direction=Direction.OUTBOUND,
                        status=MessageStatus.FAILED
                        if (phone == phone_id and index < 3)
                        else MessageStatus.SENT,
                        error_code="PHONE_BANNED" if (phone == phone_id and index < 3) else None,
                        content="Bună ziua",
                        phone_id=phone,
                        sent_at=now - timedelta(hours=1),
                        status_updated_at=now - timedelta(hours=1),
                        origin="AUTOMATION",
                    )
                )
    result = await run_breaker()
    assert result["phonesPaused"] == [phone_id]
    async with transaction() as session:
        phones = {p.id: p for p in (await session.execute(select(WaPhoneNumber))).scalars()}
        incident = (
            await session.execute(select(PhoneIncident).where(PhoneIncident.kind == "BREAKER_PAUSED"))
        ).scalar_one()
        alert = (
            await session.execute(select(Alert).where(Alert.alert_type == "wa:blocks:high"))
        ).scalar_one()
    assert phones[phone_id].status == PhoneStatus.PAUSED
    assert phones[healthy_id].status == PhoneStatus.ACTIVE
    assert incident.phone_id == phone_id and "3/22" in (incident.reason or "")
    assert alert.subject == phone_id
