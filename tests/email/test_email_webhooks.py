"""Email webhooks: the sandbox's real deliveries (recorded, then handed byte for byte to our
ingest endpoint), authentication, and what each event does to rows, leads and suppression."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import func, select

from cerniq.kit.db import transaction
from cerniq.models import GoldCommunicationLog, HumanReview, SuppressionEntry, WebhookEvent
from cerniq.models.enums import (
    Channel,
    Direction,
    LeadState,
    MessageStatus,
    ReviewPriority,
    ReviewReason,
    SuppressionReason,
    WebhookStatus,
)
from cerniq.providers.resend.svix import signature_headers
from cerniq.sandbox import SandboxHandle, WebhookRecorder
from tests.email.conftest import (
    INSTANTLY_SECRET,
    RESEND_SECRET,
    add_email_lead,
    forward,
    get_journey,
    get_row,
    instantly_api,
    make_campaign,
    queue_email,
    resend_emails,
    status_is,
)
from tests.fixtures.outreach import wait_for

RESEND_PATH = "/api/v1/webhooks/resend"
INSTANTLY_PATH = "/api/v1/webhooks/instantly"


def rejected(provider: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "cerniq_email_webhook_rejected_total", {"provider": provider, "reason": reason}
    )
    return value or 0.0


async def recorded(recorder: WebhookRecorder, predicate: Any, timeout: float = 10.0) -> list[Any]:
    return await asyncio.to_thread(recorder.wait_for, predicate, timeout)


def subscribe_resend(sandbox: SandboxHandle, recorder: WebhookRecorder) -> None:
    import httpx

    events = [
        "email.sent",
        "email.delivered",
        "email.bounced",
        "email.complained",
        "email.opened",
        "email.clicked",
        "email.delivery_delayed",
    ]
    response = httpx.post(
        sandbox.url("resend") + "/webhooks",
        json={"endpoint": f"{recorder.url}/resend", "events": events},
        headers={"Authorization": "Bearer re_sandbox_key"},
    )
    assert response.json()["signing_secret"] == RESEND_SECRET


def subscribe_instantly(sandbox: SandboxHandle, recorder: WebhookRecorder) -> None:
    with instantly_api(sandbox) as client:
        client.post(
            "/webhooks",
            json={
                "target_hook_url": f"{recorder.url}/instantly",
                "event_type": "all_events",
                "headers": {"X-Webhook-Secret": INSTANTLY_SECRET},
            },
        ).raise_for_status()


async def warm_sent(
    tenant: Any, n: int, *, email: str | None = None, mobile: str | None = None
) -> tuple[uuid.UUID, uuid.UUID]:
    lead = await add_email_lead(tenant, n, email=email, mobile=mobile, state=LeadState.WARM_REPLY)
    row_id = await queue_email(lead, Channel.EMAIL_WARM, origin="OPERATOR")
    await wait_for(lambda: status_is(row_id, MessageStatus.SENT))
    return lead, row_id


def of_type(kind: str) -> Any:
    return lambda reqs: any(r.body and r.body.get("type") == kind for r in reqs)


def index_of(recorder: WebhookRecorder, kind: str, key: str = "type") -> int:
    for i, request in enumerate(recorder.requests):
        if request.body and request.body.get(key) == kind:
            return i
    raise AssertionError(f"no {kind} delivery")


async def processed(event_id: str) -> bool:
    async with transaction() as session:
        row = await session.get(WebhookEvent, uuid.UUID(event_id))
        return row is not None and row.status != WebhookStatus.RECEIVED


async def event_rows(provider: str) -> list[WebhookEvent]:
    async with transaction() as session:
        query = select(WebhookEvent).where(WebhookEvent.provider == provider)
        return list((await session.execute(query)).scalars())


# --- Resend ------------------------------------------------------------------------------------


async def test_a_good_resend_signature_is_processed_once_and_a_bad_or_old_one_is_rejected(
    tenant: Any, sandbox: SandboxHandle, worker: Any, recorder: WebhookRecorder, api: Any
) -> None:
    subscribe_resend(sandbox, recorder)
    _lead, row_id = await warm_sent(tenant, 1)
    await recorded(recorder, of_type("email.delivered"))
    index = index_of(recorder, "email.delivered")
    original = recorder.requests[index]

    forged = dict(original.headers)
    forged["svix-signature"] = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    before_bad = rejected("resend", "bad_signature")
    bad = await api.post(RESEND_PATH, content=original.raw, headers=forged)
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "INVALID_SIGNATURE"
    assert rejected("resend", "bad_signature") == before_bad + 1

    old = int(time.time()) - 6 * 60
    stale_headers = {
        "content-type": "application/json",
        **signature_headers(RESEND_SECRET, original.headers["svix-id"], old, original.raw),
    }
    before_stale = rejected("resend", "stale")
    stale = await api.post(RESEND_PATH, content=original.raw, headers=stale_headers)
    assert stale.status_code == 401
    assert rejected("resend", "stale") == before_stale + 1
    unsigned = await api.post(RESEND_PATH, content=original.raw, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401
    assert await event_rows("resend") == []  # nothing forged or stale was stored

    first = await forward(recorder, api, RESEND_PATH, index)
    assert first.status_code == 200 and first.json()["duplicate"] is False
    again = await forward(recorder, api, RESEND_PATH, index)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    (stored,) = await event_rows("resend")
    await wait_for(lambda: processed(str(stored.id)))
    (stored,) = await event_rows("resend")
    assert stored.status == WebhookStatus.PROCESSED
    assert stored.tenant_id == tenant.id
    row = await get_row(row_id)
    assert row.status == MessageStatus.DELIVERED
    assert row.delivered_at is not None


async def test_a_hard_bounce_suppresses_the_address_and_opens_a_low_review_for_an_email_only_lead(
    tenant: Any, sandbox: SandboxHandle, worker: Any, recorder: WebhookRecorder, api: Any
) -> None:
    subscribe_resend(sandbox, recorder)
    lead, row_id = await warm_sent(tenant, 1, email="bounce.ion@ferma1.ro")
    await recorded(recorder, of_type("email.bounced"))
    response = await forward(recorder, api, RESEND_PATH, index_of(recorder, "email.bounced"))
    assert response.status_code == 200
    await wait_for(lambda: status_is(row_id, MessageStatus.BOUNCED))
    row = await get_row(row_id)
    assert row.bounce_type == "hard"
    assert "550 5.1.1" in (row.bounce_reason or "")
    async with transaction() as session:
        entry = (await session.execute(select(SuppressionEntry))).scalar_one()
        review = (await session.execute(select(HumanReview))).scalar_one()
    assert (entry.value, entry.reason, entry.is_permanent) == (
        "bounce.ion@ferma1.ro",
        SuppressionReason.HARD_BOUNCE,
        True,
    )
    assert review.priority == ReviewPriority.LOW
    assert review.reason == ReviewReason.BOUNCE_DETECTED
    assert review.lead_journey_id == lead

    # The next message to that address is never sent.
    next_row = await queue_email(lead, Channel.EMAIL_WARM, origin="OPERATOR")
    await wait_for(lambda: status_is(next_row, MessageStatus.SKIPPED))
    assert len(resend_emails(sandbox)) == 1


async def test_a_bounce_of_a_lead_reachable_on_whatsapp_opens_no_review(
    tenant: Any, sandbox: SandboxHandle, worker: Any, recorder: WebhookRecorder, api: Any
) -> None:
    subscribe_resend(sandbox, recorder)
    _lead, row_id = await warm_sent(tenant, 1, email="bounce@ferma1.ro", mobile="+40722000111")
    await recorded(recorder, of_type("email.bounced"))
    await forward(recorder, api, RESEND_PATH, index_of(recorder, "email.bounced"))
    await wait_for(lambda: status_is(row_id, MessageStatus.BOUNCED))
    async with transaction() as session:
        reviews = (await session.execute(select(func.count()).select_from(HumanReview))).scalar_one()
    assert reviews == 0


async def test_soft_bounces_suppress_only_after_the_threshold(
    tenant: Any, sandbox: SandboxHandle, worker: Any, recorder: WebhookRecorder, api: Any
) -> None:
    subscribe_resend(sandbox, recorder)
    lead = await add_email_lead(tenant, 1, email="softbounce@ferma1.ro", state=LeadState.WARM_REPLY)
    for attempt in range(1, 4):
        row_id = await queue_email(lead, Channel.EMAIL_WARM, origin="OPERATOR", content=f"Mesaj {attempt}")
        await wait_for(lambda row_id=row_id: status_is(row_id, MessageStatus.SENT, MessageStatus.BOUNCED))
        await recorded(
            recorder,
            lambda reqs, n=attempt: sum(1 for r in reqs if r.body and r.body["type"] == "email.bounced") >= n,
        )
        bounces = [i for i, r in enumerate(recorder.requests) if r.body and r.body["type"] == "email.bounced"]
        await forward(recorder, api, RESEND_PATH, bounces[attempt - 1])
        await wait_for(lambda row_id=row_id: status_is(row_id, MessageStatus.BOUNCED))
        assert (await get_row(row_id)).bounce_type == "soft"
        async with transaction() as session:
            entries = (await session.execute(select(SuppressionEntry))).scalars().all()
        if attempt < 3:
            assert entries == []
        else:
            (entry,) = entries
            assert entry.reason == SuppressionReason.SOFT_BOUNCE
            assert entry.bounce_count == 3
            assert entry.is_permanent is False and entry.expires_at is not None


async def test_a_complaint_opts_the_lead_out_of_email(
    tenant: Any, sandbox: SandboxHandle, worker: Any, recorder: WebhookRecorder, api: Any
) -> None:
    subscribe_resend(sandbox, recorder)
    lead, _row_id = await warm_sent(tenant, 1, email="complain@ferma1.ro", mobile="+40722000222")
    await recorded(recorder, of_type("email.complained"))
    await forward(recorder, api, RESEND_PATH, index_of(recorder, "email.complained"))

    async def opted_out() -> bool:
        return bool((await get_journey(lead)).email_opted_out)

    await wait_for(opted_out)
    async with transaction() as session:
        entry = (await session.execute(select(SuppressionEntry))).scalar_one()
    assert entry.reason == SuppressionReason.COMPLAINT
    journey = await get_journey(lead)
    assert journey.whatsapp_opted_out is False  # only email


async def test_out_of_order_events_never_move_a_row_back(
    tenant: Any, sandbox: SandboxHandle, worker: Any, recorder: WebhookRecorder, api: Any
) -> None:
    subscribe_resend(sandbox, recorder)
    _lead, row_id = await warm_sent(tenant, 1)
    email_id = (await get_row(row_id)).external_message_id
    sandbox.control("POST", "/_control/resend/events", {"email_id": email_id, "type": "email.opened"})
    await recorded(recorder, of_type("email.opened"))
    await recorded(recorder, of_type("email.delivered"))
    await forward(recorder, api, RESEND_PATH, index_of(recorder, "email.opened"))
    await wait_for(lambda: status_is(row_id, MessageStatus.OPENED))
    await forward(recorder, api, RESEND_PATH, index_of(recorder, "email.delivered"))
    await asyncio.sleep(1.0)
    row = await get_row(row_id)
    assert row.status == MessageStatus.OPENED
    assert row.opened_at is not None


# --- Instantly ---------------------------------------------------------------------------------


async def cold_sent(
    tenant: Any, sandbox: SandboxHandle, n: int, email: str
) -> tuple[Any, uuid.UUID, uuid.UUID]:
    campaign = await make_campaign(tenant)
    lead = await add_email_lead(tenant, n, email=email)
    row_id = await queue_email(lead, Channel.EMAIL_COLD)
    await wait_for(lambda: status_is(row_id, MessageStatus.SENT))
    return campaign, lead, row_id


async def test_instantly_deliveries_need_our_secret_header(
    tenant: Any, sandbox: SandboxHandle, worker: Any, recorder: WebhookRecorder, api: Any
) -> None:
    campaign, _lead, _row = await cold_sent(tenant, sandbox, 1, "ion@ferma1.ro")
    subscribe_instantly(sandbox, recorder)
    sandbox.control("POST", "/_control/instantly/send-pending")
    await recorded(
        recorder, lambda reqs: any(r.body and r.body.get("event_type") == "email_sent" for r in reqs)
    )
    request = recorder.requests[index_of(recorder, "email_sent", "event_type")]
    assert request.headers["X-Webhook-Secret"] == INSTANTLY_SECRET
    before = rejected("instantly", "bad_secret")
    wrong = await api.post(INSTANTLY_PATH, content=request.raw, headers={"X-Webhook-Secret": "guess"})
    assert wrong.status_code == 401
    assert rejected("instantly", "bad_secret") == before + 1
    missing = await api.post(
        INSTANTLY_PATH, content=request.raw, headers={"content-type": "application/json"}
    )
    assert missing.status_code == 401
    assert await event_rows("instantly") == []
    accepted = await forward(recorder, api, INSTANTLY_PATH, index_of(recorder, "email_sent", "event_type"))
    assert accepted.status_code == 200
    (stored,) = await event_rows("instantly")
    await wait_for(lambda: processed(str(stored.id)))
    (stored,) = await event_rows("instantly")
    assert stored.status == WebhookStatus.PROCESSED
    assert stored.tenant_id == tenant.id
    assert json.loads(request.raw)["campaign_id"] == campaign.instantly_campaign_id


async def test_an_email_reply_goes_through_the_reply_pipeline(
    tenant: Any, sandbox: SandboxHandle, worker: Any, recorder: WebhookRecorder, api: Any
) -> None:
    _campaign, lead, row_id = await cold_sent(tenant, sandbox, 1, "ion@ferma1.ro")
    subscribe_instantly(sandbox, recorder)
    sandbox.control("POST", "/_control/instantly/send-pending")
    sandbox.control(
        "POST",
        "/_control/instantly/events",
        {
            "event_type": "reply_received",
            "email": "ion@ferma1.ro",
            "text": "Da, ne interesează. Trimiteți oferta.",
        },
    )
    await recorded(
        recorder, lambda reqs: any(r.body and r.body.get("event_type") == "reply_received" for r in reqs)
    )
    response = await forward(
        recorder, api, INSTANTLY_PATH, index_of(recorder, "reply_received", "event_type")
    )
    assert response.status_code == 200

    async def inbound() -> bool:
        async with transaction() as session:
            query = select(GoldCommunicationLog).where(GoldCommunicationLog.direction == Direction.INBOUND)
            return (await session.execute(query)).scalar_one_or_none() is not None

    await wait_for(inbound)
    async with transaction() as session:
        reply = (
            await session.execute(
                select(GoldCommunicationLog).where(GoldCommunicationLog.direction == Direction.INBOUND)
            )
        ).scalar_one()
    assert reply.channel == Channel.EMAIL_COLD
    assert reply.content == "Da, ne interesează. Trimiteți oferta."
    assert reply.email == "ion@ferma1.ro"
    assert (await get_journey(lead)).current_state == LeadState.WARM_REPLY
    assert (await get_row(row_id)).status == MessageStatus.REPLIED


async def test_an_instantly_bounce_and_an_unsubscribe(
    tenant: Any, sandbox: SandboxHandle, worker: Any, recorder: WebhookRecorder, api: Any
) -> None:
    campaign, lead, row_id = await cold_sent(tenant, sandbox, 1, "bounce.x@ferma1.ro")
    other = await add_email_lead(tenant, 2, email="unsub.y@ferma2.ro", mobile="+40722000333")
    other_row = await queue_email(other, Channel.EMAIL_COLD)
    await wait_for(lambda: status_is(other_row, MessageStatus.SENT))
    subscribe_instantly(sandbox, recorder)
    sandbox.control("POST", "/_control/instantly/config", {"event_delay": 0.02})
    sandbox.control("POST", "/_control/instantly/send-pending")
    await recorded(
        recorder,
        lambda reqs: (
            {"email_bounced", "lead_unsubscribed"} <= {r.body.get("event_type") for r in reqs if r.body}
        ),
    )
    for kind in ("email_bounced", "lead_unsubscribed"):
        assert (
            await forward(recorder, api, INSTANTLY_PATH, index_of(recorder, kind, "event_type"))
        ).status_code == 200
    await wait_for(lambda: status_is(row_id, MessageStatus.BOUNCED))

    async def other_opted_out() -> bool:
        return bool((await get_journey(other)).email_opted_out)

    await wait_for(other_opted_out)
    async with transaction() as session:
        entries = {e.value: e.reason for e in (await session.execute(select(SuppressionEntry))).scalars()}
    assert entries["bounce.x@ferma1.ro"] == SuppressionReason.HARD_BOUNCE
    assert entries["unsub.y@ferma2.ro"] == SuppressionReason.UNSUBSCRIBE
    assert (await get_row(other_row)).unsubscribed_at is not None
    assert (await get_journey(lead)).email_opted_out is False  # a bounce is not an opt-out
    assert campaign.instantly_campaign_id
