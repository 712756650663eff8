"""Cold email through Instantly: the q:email:cold job end to end against the sandbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from cerniq.kit.db import transaction
from cerniq.models import LeadStateHistory, SuppressionEntry, SystemState
from cerniq.models.enums import Channel, LeadState, MessageStatus, SuppressionReason
from cerniq.sandbox import SandboxHandle
from tests.email.conftest import (
    add_email_lead,
    get_journey,
    get_row,
    instantly_leads,
    make_campaign,
    queue_email,
    resend_emails,
    status_is,
)
from tests.fixtures.outreach import add_leads, add_sequence, wait_for


async def test_a_lead_without_whatsapp_is_added_to_the_campaign_and_becomes_contacted_email(
    tenant: Any, sandbox: SandboxHandle, worker: Any
) -> None:
    from cerniq.messaging.dispatch import dispatch

    campaign = await make_campaign(tenant)
    await add_sequence(tenant)  # a WhatsApp sequence: the lead has no mobile, so email takes over
    (lead,) = await add_leads(tenant, 1, email=True)
    async with transaction() as session:
        from cerniq.models import GoldLeadJourney

        journey = await session.get(GoldLeadJourney, lead)
        assert journey is not None
        journey.mobile_e164 = None
    report = await dispatch()
    assert report.email == 1

    async def sent() -> bool:
        async with transaction() as session:
            from cerniq.models import GoldCommunicationLog

            rows = (await session.execute(select(GoldCommunicationLog))).scalars().all()
            return len(rows) == 1 and rows[0].status == MessageStatus.SENT

    await wait_for(sent)
    async with transaction() as session:
        from cerniq.models import GoldCommunicationLog

        row = (await session.execute(select(GoldCommunicationLog))).scalar_one()
        history = (await session.execute(select(LeadStateHistory))).scalars().all()
    journey = await get_journey(lead)
    leads = instantly_leads(sandbox, campaign_id=campaign.instantly_campaign_id)
    assert len(leads) == 1
    assert row.channel == Channel.EMAIL_COLD
    assert row.external_message_id == leads[0]["id"]
    assert row.email_campaign_id == campaign.id
    assert journey.current_state == LeadState.CONTACTED_EMAIL
    assert [(h.from_state, h.to_state, h.trigger) for h in history] == [
        (LeadState.COLD, LeadState.CONTACTED_EMAIL, "SEND")
    ]
    variables = leads[0]["payload"]
    assert variables["cerniq_message_id"] == str(row.id)
    assert variables["companyName"] == "Agro Ferma 1 SRL"
    assert "Agro Ferma 1 SRL" in variables["body"]
    assert resend_emails(sandbox) == []  # cold email never goes through Resend


async def test_several_queued_leads_go_in_one_bulk_add(
    tenant: Any, sandbox: SandboxHandle, worker: Any
) -> None:
    from cerniq.messaging.service import queue_message
    from cerniq.models import GoldLeadJourney

    campaign = await make_campaign(tenant)
    leads = [await add_email_lead(tenant, n) for n in range(1, 6)]
    rows = []
    async with transaction() as session:  # five rows committed together, as dispatch writes them
        for lead in leads:
            journey = await session.get(GoldLeadJourney, lead)
            assert journey is not None
            row = await queue_message(
                session, journey, channel=Channel.EMAIL_COLD, content="Bună ziua", origin="AUTOMATION"
            )
            rows.append(row.id)

    async def all_sent() -> bool:
        return all([await status_is(r, MessageStatus.SENT) for r in rows])

    await wait_for(all_sent)
    added = instantly_leads(sandbox, campaign_id=campaign.instantly_campaign_id)
    assert sorted(lead["email"] for lead in added) == sorted(
        f"office{n}@agrocampia{n}.ro" for n in range(1, 6)
    )
    recorded = [await get_row(r) for r in rows]
    assert {r.external_message_id for r in recorded} == {lead["id"] for lead in added}
    assert max(r.raw_response["batch"] for r in recorded) > 1  # one call carried several leads


async def test_a_lost_answer_is_retried_without_adding_the_lead_twice(
    tenant: Any, sandbox: SandboxHandle, worker: Any
) -> None:
    campaign = await make_campaign(tenant)
    lead = await add_email_lead(tenant, 1)
    sandbox.control("POST", "/_control/instantly/faults", {"mode": "drop_after_accept", "path": "leads/add"})
    row_id = await queue_email(lead, Channel.EMAIL_COLD)
    await wait_for(lambda: status_is(row_id, MessageStatus.SENT))
    row = await get_row(row_id)
    added = instantly_leads(sandbox, campaign_id=campaign.instantly_campaign_id)
    assert len(added) == 1
    assert row.external_message_id == added[0]["id"]
    assert row.error_code == "RESOLVED_AFTER_AMBIGUITY"
    assert (await get_journey(lead)).current_state == LeadState.CONTACTED_EMAIL


async def test_a_suppressed_address_is_never_sent_to(
    tenant: Any, sandbox: SandboxHandle, worker: Any
) -> None:
    await make_campaign(tenant)
    lead = await add_email_lead(tenant, 1, email="Office1@AgroCampia1.ro")
    async with transaction() as session:
        session.add(
            SuppressionEntry(
                tenant_id=tenant.id,
                channel="EMAIL",
                value="office1@agrocampia1.ro",
                reason=SuppressionReason.HARD_BOUNCE,
                source="test",
            )
        )
    row_id = await queue_email(lead, Channel.EMAIL_COLD)
    await wait_for(lambda: status_is(row_id, MessageStatus.SKIPPED))
    row = await get_row(row_id)
    assert row.error_code == "SUPPRESSED"
    assert instantly_leads(sandbox) == []
    assert (await get_journey(lead)).current_state == LeadState.COLD


async def test_the_emergency_stop_skips_cold_email(tenant: Any, sandbox: SandboxHandle, worker: Any) -> None:
    await make_campaign(tenant)
    lead = await add_email_lead(tenant, 1)
    async with transaction() as session:
        session.add(SystemState(key="emergency_stop", value={"active": True, "reason": "test"}))
    row_id = await queue_email(lead, Channel.EMAIL_COLD)
    await wait_for(lambda: status_is(row_id, MessageStatus.SKIPPED))
    assert (await get_row(row_id)).error_code == "EMERGENCY_STOP"
    assert instantly_leads(sandbox) == []


async def test_a_paused_campaign_gets_nothing_until_it_is_resumed(
    tenant: Any, sandbox: SandboxHandle, worker: Any
) -> None:
    from cerniq.auth.principal import system_principal
    from cerniq.email.campaigns import pause_campaign, resume_campaign

    campaign = await make_campaign(tenant)
    async with transaction() as session:
        await pause_campaign(session, system_principal(tenant.id), str(campaign.id), reason="test")
    lead = await add_email_lead(tenant, 1)
    row_id = await queue_email(lead, Channel.EMAIL_COLD)

    async def stamped() -> bool:
        row = await get_row(row_id)
        return row.email_campaign_id == campaign.id

    await wait_for(stamped)
    assert (await get_row(row_id)).status == MessageStatus.QUEUED
    assert instantly_leads(sandbox) == []
    async with transaction() as session:
        result = await resume_campaign(
            session, system_principal(tenant.id), str(campaign.id), reason="checked"
        )
    assert result["messagesReleased"] == 1
    await wait_for(lambda: status_is(row_id, MessageStatus.SENT))
    assert len(instantly_leads(sandbox, campaign_id=campaign.instantly_campaign_id)) == 1


async def test_a_lead_that_replied_is_not_put_in_a_cold_campaign(
    tenant: Any, sandbox: SandboxHandle, worker: Any
) -> None:
    await make_campaign(tenant)
    lead = await add_email_lead(tenant, 1, state=LeadState.WARM_REPLY)
    row_id = await queue_email(lead, Channel.EMAIL_COLD)
    await wait_for(lambda: status_is(row_id, MessageStatus.SKIPPED))
    assert (await get_row(row_id)).error_code == "LEAD_WARM_REPLY"
    assert instantly_leads(sandbox) == []


async def test_without_a_campaign_the_message_fails_and_alerts(
    tenant: Any, sandbox: SandboxHandle, worker: Any
) -> None:
    from cerniq.models import Alert

    lead = await add_email_lead(tenant, 1)
    row_id = await queue_email(lead, Channel.EMAIL_COLD)
    await wait_for(lambda: status_is(row_id, MessageStatus.FAILED))
    assert (await get_row(row_id)).error_code == "NO_CAMPAIGN"
    async with transaction() as session:
        alert = (await session.execute(select(Alert))).scalar_one()
    assert alert.alert_type == "email:campaign:missing"


async def test_instantly_statuses_are_mirrored_and_an_unhealthy_campaign_gets_nothing(
    tenant: Any, sandbox: SandboxHandle, worker: Any
) -> None:
    from cerniq.email.campaigns import fetch_analytics
    from cerniq.models import EmailCampaign

    campaign = await make_campaign(tenant)
    sandbox.control(
        "POST", f"/_control/instantly/campaigns/{campaign.instantly_campaign_id}/status", {"status": -1}
    )
    await fetch_analytics()
    async with transaction() as session:
        row = await session.get(EmailCampaign, campaign.id)
        assert row is not None
        assert (row.status, row.instantly_status) == ("ACCOUNTS_UNHEALTHY", -1)
    lead = await add_email_lead(tenant, 1)
    waiting = await queue_email(lead, Channel.EMAIL_COLD)

    async def delayed() -> bool:
        from cerniq.kit.ids import job_id
        from cerniq.worker.queues import get_queue

        return str(await get_queue("q:email:cold").getJobState(job_id("cold", waiting))) == "delayed"

    await wait_for(delayed)
    assert instantly_leads(sandbox) == []
    sandbox.control(
        "POST", f"/_control/instantly/campaigns/{campaign.instantly_campaign_id}/status", {"status": -2}
    )
    await fetch_analytics()
    async with transaction() as session:
        row = await session.get(EmailCampaign, campaign.id)
        assert row is not None and row.status == "BOUNCE_PROTECT"
    sandbox.control(
        "POST", f"/_control/instantly/campaigns/{campaign.instantly_campaign_id}/status", {"status": 1}
    )
    await fetch_analytics()
    await wait_for(lambda: status_is(waiting, MessageStatus.SENT))
    assert len(instantly_leads(sandbox)) == 1


async def test_a_pause_that_did_not_reach_instantly_is_repeated_by_the_analytics_cycle(
    tenant: Any, sandbox: SandboxHandle, vendors_closed: None
) -> None:
    from cerniq.auth.principal import system_principal
    from cerniq.email.campaigns import fetch_analytics, pause_campaign

    campaign = await make_campaign(tenant)
    sandbox.control("POST", "/_control/instantly/faults", {"mode": "http_503", "path": "campaigns/"})
    async with transaction() as session:
        result = await pause_campaign(session, system_principal(tenant.id), str(campaign.id), reason="test")
    assert result["status"] == "PAUSED"
    assert result["instantly"]["synced"] is False
    (state,) = sandbox.control("GET", "/_control/instantly/campaigns")
    assert state["status"] == 1
    report = await fetch_analytics()
    assert report["repaused"] == 1
    (state,) = sandbox.control("GET", "/_control/instantly/campaigns")
    assert state["status"] == 2


async def test_an_email_cold_step_goes_to_the_campaign_mapped_to_that_step(
    tenant: Any, sandbox: SandboxHandle, worker: Any
) -> None:
    from cerniq.messaging.dispatch import dispatch
    from cerniq.models import OutreachSequence, OutreachSequenceStep, OutreachTemplate

    async with transaction() as session:
        template = OutreachTemplate(
            tenant_id=tenant.id,
            name="Email rece",
            channel=Channel.EMAIL_COLD,
            subject="Pentru {{companyName}}",
            content="Bună ziua, {{companyName}}! Avem semințe certificate pentru sezonul acesta.",
        )
        session.add(template)
        await session.flush()
        sequence = OutreachSequence(tenant_id=tenant.id, name="Email întâi", is_default=True, is_active=True)
        session.add(sequence)
        await session.flush()
        step = OutreachSequenceStep(
            tenant_id=tenant.id,
            sequence_id=sequence.id,
            step_number=1,
            delay_hours=0,
            channel=Channel.EMAIL_COLD,
            template_id=template.id,
        )
        session.add(step)
        await session.flush()
        step_id = step.id
    default = await make_campaign(tenant, name="Implicit")
    mapped = await make_campaign(tenant, name="Pasul 1", sequence_step_id=step_id)
    (lead,) = await add_leads(tenant, 1, email=True)  # has a mobile too: the step says email
    report = await dispatch()
    assert report.email == 1

    async def contacted() -> bool:
        return (await get_journey(lead)).current_state == LeadState.CONTACTED_EMAIL

    await wait_for(contacted)
    assert instantly_leads(sandbox, campaign_id=default.instantly_campaign_id) == []
    (lead_at_instantly,) = instantly_leads(sandbox, campaign_id=mapped.instantly_campaign_id)
    assert lead_at_instantly["payload"]["subject"] == "Pentru Agro Ferma 1 SRL"
