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
    campaign = await make_campaign(tenant)
    leads = [await add_email_lead(tenant, n) for n in range(1, 6)]
    rows = [await queue_email(lead, Channel.EMAIL_COLD) for lead in leads]

    async def all_sent() -> bool:
        return all([await status_is(r, MessageStatus.SENT) for r in rows])

    await wait_for(all_sent)
    added = instantly_leads(sandbox, campaign_id=campaign.instantly_campaign_id)
    assert sorted(lead["email"] for lead in added) == sorted(
        f"office{n}@agrocampia{n}.ro" for n in range(1, 6)
    )
    ids = {(await get_row(r)).external_message_id for r in rows}
    assert ids == {lead["id"] for lead in added}


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
