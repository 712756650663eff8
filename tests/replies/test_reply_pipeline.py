"""The reply pipeline end to end: webhook -> inbound row -> lead moves -> triage -> action."""

# The fixtures come from tests.webhooks.fixtures (imported below, used as parameters).
# ruff: noqa: F811

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.leads.state import transition
from cerniq.messaging.dispatch import dispatch
from cerniq.models import GoldCommunicationLog, GoldLeadJourney, HumanReview, SuppressionEntry, Tenant
from cerniq.models.enums import (
    Direction,
    EnrollmentStatus,
    LeadState,
    MessageStatus,
    ReviewPriority,
    SuppressionReason,
    WebhookStatus,
)
from tests.fixtures.outreach import add_leads, add_phones, add_sequence, count_messages, wait_for
from tests.webhooks import payloads
from tests.webhooks.fixtures import (  # noqa: F401 - fixtures used by name
    AppServer,
    app_server,
    contacted_lead,
    enrollments_of,
    full_worker,
    journey_of,
    messages_of,
    pipeline_worker,
    reviews_available,
    subscribe,
    webhook_events,
    wh_sandbox,
    wh_sandbox_server,
)


def url(tenant: Any) -> str:
    return f"/api/v1/webhooks/timelinesai/{tenant.webhook_token}"


async def reply(api: Any, tenant: Any, lead: Any, text: str, **kwargs: Any) -> dict[str, Any]:
    """Deliver a reply of ``lead`` (as TimelinesAI would) and wait until it is triaged."""
    body = payloads.received(lead.mobile, text, chat_id=int(lead.chat_id), **kwargs)
    response = await api.post(url(tenant), json=body)
    assert response.status_code == 200, response.text
    uid = body["message"]["message_uid"]

    async def triaged() -> bool:
        rows = [
            m for m in await messages_of(lead.journey_id, Direction.INBOUND) if m.external_message_id == uid
        ]
        return bool(rows) and rows[0].sentiment_analyzed_at is not None

    await wait_for(triaged)
    return body


async def reviews_of(journey_id: Any) -> list[HumanReview]:
    async with transaction() as session:
        query = select(HumanReview).where(HumanReview.lead_journey_id == journey_id)
        return list((await session.execute(query)).scalars())


async def test_a_sandbox_reply_makes_the_lead_warm_and_stops_its_sequence(
    wh_sandbox: Any, app_server: AppServer, full_worker: Any, tenant: Any
) -> None:
    await add_phones(tenant, 1)
    await add_sequence(tenant)
    (lead_id,) = await add_leads(tenant, 1)
    await subscribe(wh_sandbox, app_server, tenant)
    assert (await dispatch()).whatsapp == 1

    async def sent() -> bool:
        return await count_messages(status=MessageStatus.SENT) == 1

    await wait_for(sent)

    # our own API send came back as message:sent:new: recorded, not taken for an operator
    async def sent_event_handled() -> bool:
        events = await webhook_events(event_type="message:sent:new")
        return len(events) == 1 and events[0].status != WebhookStatus.RECEIVED

    await wait_for(sent_event_handled)
    journey = await journey_of(lead_id)
    assert journey.current_state == LeadState.CONTACTED_WA and not journey.is_human_controlled
    assert journey.next_action_at is not None  # the follow-up is scheduled
    # as when message:sent:new came before the send was recorded and no poll has run yet
    (ours,) = await messages_of(lead_id, Direction.OUTBOUND)
    async with transaction() as session:
        chatless = update(GoldCommunicationLog).where(GoldCommunicationLog.id == ours.id)
        await session.execute(chatless.values(thread_id=None))

    wh_sandbox.control(
        "POST",
        "/_control/timelinesai/reply",
        {
            "phone": journey.mobile_e164,
            "text": "Bună ziua! Da, suntem interesați. Puteți să ne trimiteți o ofertă?",
        },
    )

    async def replied() -> bool:
        rows = await messages_of(lead_id, Direction.INBOUND)
        return len(rows) == 1 and rows[0].sentiment_analyzed_at is not None

    await wait_for(replied)
    journey = await journey_of(lead_id)
    assert journey.current_state == LeadState.WARM_REPLY
    assert journey.reply_count == 1 and journey.last_reply_at is not None
    assert journey.next_action_at is None and journey.sequence_paused
    assert journey.sentiment_score > 0
    assert all(e.status == EnrollmentStatus.STOPPED for e in await enrollments_of(lead_id))
    (inbound,) = await messages_of(lead_id, Direction.INBOUND)
    assert inbound.status == MessageStatus.RECEIVED and inbound.thread_id == journey.wa_chat_id
    assert inbound.phone_id == "phone_01" and inbound.intent_classification == "INTERESTED"
    (outbound,) = await messages_of(lead_id, Direction.OUTBOUND)
    assert outbound.status == MessageStatus.REPLIED and outbound.replied_at is not None
    assert outbound.thread_id == inbound.thread_id  # answered before any delivery poll
    # auto-answers are off by default: a human sees it, with a drafted answer
    if reviews_available():
        (review,) = await reviews_of(lead_id)
        assert review.priority == ReviewPriority.MEDIUM and review.suggested_response
        assert review.communication_id == inbound.id
    # nothing more goes out automatically
    assert (await dispatch()).claimed == 0


@pytest.mark.parametrize("text", ["STOP", "nu mai scrieți", "dezabonare", "unsubscribe"])
async def test_an_opt_out_reply_suppresses_the_lead_and_nothing_more_is_sent(
    api: Any, tenant: Any, pipeline_worker: Any, text: str
) -> None:
    await add_phones(tenant, 1)
    lead = await contacted_lead(tenant, queue_followup=True)
    await reply(api, tenant, lead, text)

    journey = await journey_of(lead.journey_id)
    assert journey.whatsapp_opted_out and journey.opted_out_at is not None
    assert journey.current_state == LeadState.DEAD  # no channel left to reach it on
    async with transaction() as session:
        (entry,) = (await session.execute(select(SuppressionEntry))).scalars().all()
    assert (entry.channel, entry.value, entry.reason, entry.source) == (
        "WHATSAPP",
        lead.mobile,
        SuppressionReason.OPT_OUT,
        "reply",
    )
    followup = next(m for m in await messages_of(lead.journey_id) if m.id == lead.followup_id)
    assert followup.status == MessageStatus.SKIPPED
    assert all(e.status == EnrollmentStatus.STOPPED for e in await enrollments_of(lead.journey_id))

    # even if the lead were due again, dispatch queues nothing for it
    async with transaction() as session:
        row = await session.get(GoldLeadJourney, lead.journey_id)
        assert row is not None
        row.next_action_at = utcnow() - timedelta(minutes=1)
    report = await dispatch()
    assert report.whatsapp == 0
    assert await count_messages(status=MessageStatus.QUEUED) == 0
    if reviews_available():
        assert await reviews_of(lead.journey_id) == []  # a plain opt-out needs no human


async def test_an_opt_out_of_a_lead_with_email_keeps_it_reachable_by_email(
    api: Any, tenant: Any, pipeline_worker: Any
) -> None:
    await add_phones(tenant, 1)
    lead = await contacted_lead(tenant, email=True)
    await reply(api, tenant, lead, "Vă rog nu mai scrieți pe acest număr.")
    journey = await journey_of(lead.journey_id)
    assert journey.whatsapp_opted_out and not journey.email_opted_out
    assert journey.current_state == LeadState.WARM_REPLY


async def test_a_complaint_threatening_anpc_opens_an_urgent_review(
    api: Any, tenant: Any, pipeline_worker: Any
) -> None:
    await add_phones(tenant, 1)
    lead = await contacted_lead(tenant)
    await reply(
        api, tenant, lead, "Dacă mai primesc un mesaj fac plângere la ANPC și vorbesc cu avocatul meu!"
    )
    journey = await journey_of(lead.journey_id)
    assert journey.whatsapp_opted_out  # the threat is also an opt-out: both happen
    if reviews_available():
        (review,) = await reviews_of(lead.journey_id)
        assert review.priority in (ReviewPriority.URGENT, ReviewPriority.HIGH)
        assert review.trigger_content and "ANPC" in review.trigger_content
        assert review.suggested_response is None  # nothing may be sent to an opted-out lead
    else:
        assert journey.requires_human_review
        assert journey.human_review_priority in (ReviewPriority.URGENT, ReviewPriority.HIGH)


async def test_a_second_reply_is_counted_without_error(api: Any, tenant: Any, pipeline_worker: Any) -> None:
    await add_phones(tenant, 1)
    lead = await contacted_lead(tenant)
    await reply(api, tenant, lead, "Ce anume oferiți mai exact?")
    await reply(api, tenant, lead, "Și livrați și în județul Timiș?")
    journey = await journey_of(lead.journey_id)
    assert journey.current_state == LeadState.WARM_REPLY
    assert journey.reply_count == 2
    assert len(await messages_of(lead.journey_id, Direction.INBOUND)) == 2
    assert all(e.status == WebhookStatus.PROCESSED for e in await webhook_events())
    if reviews_available():
        assert len(await reviews_of(lead.journey_id)) == 2  # one per inbound message


async def test_a_reply_in_negotiation_keeps_the_lead_there(
    api: Any, tenant: Any, pipeline_worker: Any
) -> None:
    await add_phones(tenant, 1)
    lead = await contacted_lead(tenant)
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead.journey_id)
        assert journey is not None
        await transition(session, journey, LeadState.WARM_REPLY, trigger="MANUAL")
        await transition(session, journey, LeadState.NEGOTIATION, trigger="MANUAL")
    await reply(api, tenant, lead, "Am primit oferta, o discutăm mâine.")
    journey = await journey_of(lead.journey_id)
    assert journey.current_state == LeadState.NEGOTIATION and journey.reply_count == 1


async def test_an_out_of_office_answer_only_pushes_the_follow_up_back(
    api: Any, tenant: Any, pipeline_worker: Any
) -> None:
    await add_phones(tenant, 1)
    lead = await contacted_lead(tenant)
    before = utcnow()
    await reply(api, tenant, lead, "Sunt în concediu până pe 15. Vă răspund când revin.")
    journey = await journey_of(lead.journey_id)
    assert journey.current_state == LeadState.CONTACTED_WA
    assert journey.reply_count == 0
    assert journey.next_action_at is not None and journey.next_action_at >= before + timedelta(days=7)
    (enrollment,) = await enrollments_of(lead.journey_id)
    assert enrollment.status == EnrollmentStatus.ACTIVE and enrollment.next_step_at == journey.next_action_at
    (inbound,) = await messages_of(lead.journey_id, Direction.INBOUND)
    assert inbound.intent_classification == "OUT_OF_OFFICE"
    if reviews_available():
        assert await reviews_of(lead.journey_id) == []


async def test_not_interested_closes_the_lead(api: Any, tenant: Any, pipeline_worker: Any) -> None:
    await add_phones(tenant, 1)
    lead = await contacted_lead(tenant)
    await reply(api, tenant, lead, "Nu suntem interesați, mulțumim.")
    journey = await journey_of(lead.journey_id)
    assert journey.current_state == LeadState.DEAD
    assert journey.state_change_reason == "not interested"
    if reviews_available():
        assert await reviews_of(lead.journey_id) == []


async def test_an_interested_reply_is_answered_automatically_when_the_tenant_allows_it(
    api: Any, tenant: Any, pipeline_worker: Any
) -> None:
    async with transaction() as session:
        row = await session.get(Tenant, tenant.id)
        assert row is not None
        row.settings = {**(row.settings or {}), "auto_reply_enabled": True}
    await add_phones(tenant, 1)
    lead = await contacted_lead(tenant)
    await reply(api, tenant, lead, "Da, sunt foarte interesat! Sunați-mă mâine.")
    answers = [m for m in await messages_of(lead.journey_id, Direction.OUTBOUND) if m.origin == "AI"]
    assert len(answers) == 1
    answer = answers[0]
    assert answer.is_ai_generated and answer.status == MessageStatus.QUEUED
    assert answer.phone_id == "phone_01" and answer.content.startswith("Bună ziua")
    if reviews_available():
        assert await reviews_of(lead.journey_id) == []


async def test_an_auto_answer_is_not_sent_to_a_lead_under_takeover(
    api: Any, tenant: Any, pipeline_worker: Any
) -> None:
    async with transaction() as session:
        row = await session.get(Tenant, tenant.id)
        assert row is not None
        row.settings = {"auto_reply_enabled": True}
    await add_phones(tenant, 1)
    lead = await contacted_lead(tenant)
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead.journey_id)
        assert journey is not None
        journey.is_human_controlled = True
    await reply(api, tenant, lead, "Da, sunt foarte interesat! Sunați-mă mâine.")
    async with transaction() as session:
        ai = (
            await session.execute(select(GoldCommunicationLog).where(GoldCommunicationLog.origin == "AI"))
        ).scalars()
        assert list(ai) == []
    if reviews_available():
        (review,) = await reviews_of(lead.journey_id)
        assert review.suggested_response  # the human gets the draft instead
