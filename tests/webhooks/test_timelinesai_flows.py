"""TimelinesAI deliveries from the sandbox over real HTTP: subscription, account events, messages
typed on the phone by an operator."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.models import AuditEntry, WaPhoneNumber
from cerniq.models.enums import Direction, EnrollmentStatus, MessageStatus, PhoneStatus, WebhookStatus
from cerniq.webhooks import service
from tests.fixtures.outreach import add_phones, wait_for
from tests.webhooks.fixtures import (
    AppServer,
    contacted_lead,
    enrollments_of,
    journey_of,
    messages_of,
    run_cli,
    subscribe,
    webhook_events,
)


async def phone_status(phone_id: str) -> PhoneStatus:
    async with transaction() as session:
        phone = await session.get(WaPhoneNumber, phone_id)
        assert phone is not None
        return phone.status


async def test_register_subscribes_our_endpoint_once(
    wh_sandbox: Any, app_server: AppServer, tenant: Any
) -> None:
    first = await subscribe(wh_sandbox, app_server, tenant)
    assert [r["action"] for r in first] == ["created"] * len(service.TIMELINESAI_EVENTS)
    assert {r["eventType"] for r in first} >= {
        "message:received:new",
        "message:sent:new",
        "whatsapp:account:connected",
        "whatsapp:account:disconnected",
    }
    # an operator disabled one subscription in the TimelinesAI app
    disabled = first[0]["id"]
    async with httpx.AsyncClient(
        base_url=wh_sandbox.timelinesai_url, headers={"Authorization": "Bearer sandbox-timelinesai-token"}
    ) as vendor:
        assert (await vendor.put(f"/webhooks/{disabled}", json={"enabled": False})).status_code == 200

    code, out = await run_cli("webhooks", "register", "--public-url", app_server.url)
    assert code == 0, out
    assert out.count("kept") == len(service.TIMELINESAI_EVENTS) - 1
    assert "recreated" in out
    assert tenant.webhook_token not in out  # the secret is not printed
    subscriptions = wh_sandbox.control("GET", "/_control/timelinesai/state")["webhooks"]
    expected = service.timelinesai_url(app_server.url, tenant.webhook_token)
    assert len(subscriptions) == len(service.TIMELINESAI_EVENTS)
    assert all(w["url"] == expected and w["enabled"] for w in subscriptions)
    async with transaction() as session:
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "webhooks.register"))
        ).scalars()
        assert len(list(audit)) == 1


async def test_an_account_disconnect_takes_the_phone_offline_and_a_reconnect_back(
    wh_sandbox: Any, app_server: AppServer, pipeline_worker: Any, tenant: Any
) -> None:
    await add_phones(tenant, 2)
    await subscribe(wh_sandbox, app_server, tenant)
    wh_sandbox.control(
        "POST", "/_control/timelinesai/accounts", {"phone": "+40700000001", "state": "disconnected"}
    )

    async def offline() -> bool:
        return await phone_status("phone_01") == PhoneStatus.OFFLINE

    await wait_for(offline)
    assert await get_redis().get("phone:status:phone_01") == "OFFLINE"
    assert await phone_status("phone_02") == PhoneStatus.ACTIVE

    wh_sandbox.control(
        "POST", "/_control/timelinesai/accounts", {"phone": "+40700000001", "state": "connected"}
    )

    async def back() -> bool:
        return await phone_status("phone_01") == PhoneStatus.ACTIVE

    await wait_for(back)
    assert await get_redis().get("phone:status:phone_01") == "ACTIVE"
    events = await webhook_events()
    assert [e.event_type for e in events] == ["whatsapp:account:disconnected", "whatsapp:account:connected"]
    assert all(e.status == WebhookStatus.PROCESSED for e in events)


async def test_a_message_typed_on_the_phone_puts_the_lead_under_human_control(
    wh_sandbox: Any, app_server: AppServer, pipeline_worker: Any, tenant: Any
) -> None:
    await add_phones(tenant, 1)
    lead = await contacted_lead(tenant, queue_followup=True)
    await subscribe(wh_sandbox, app_server, tenant)
    text = "Bună ziua, sunt Andrei de la Cerniq, vă sun mâine la 10."
    wh_sandbox.control(
        "POST",
        "/_control/timelinesai/operator-message",
        {"phone": lead.mobile, "text": text, "account_phone": "+40700000001"},
    )

    async def taken_over() -> bool:
        return (await journey_of(lead.journey_id)).is_human_controlled

    await wait_for(taken_over)
    journey = await journey_of(lead.journey_id)
    assert journey.human_control_reason == "operator wrote from the phone"
    assert journey.next_action_at is None
    outbound = await messages_of(lead.journey_id, Direction.OUTBOUND)
    operator = [m for m in outbound if m.origin == "OPERATOR"]
    assert len(operator) == 1
    assert operator[0].status == MessageStatus.SENT and operator[0].content == text
    assert operator[0].phone_id == "phone_01"
    followup = next(m for m in outbound if m.id == lead.followup_id)
    assert followup.status == MessageStatus.SKIPPED  # automation stops under takeover
    assert all(e.status == EnrollmentStatus.STOPPED for e in await enrollments_of(lead.journey_id))
    async with transaction() as session:
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "lead.takeover"))
        ).scalars()
        assert [a.entity_id for a in audit] == [str(lead.journey_id)]
    (event,) = await webhook_events()
    assert event.status == WebhookStatus.PROCESSED and event.lead_journey_id == lead.journey_id
