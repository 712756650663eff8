"""Webhook ingest: authentication, raw storage first, deduplication, quarantine, sweeper, retention."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from cerniq.auth.principal import system_principal
from cerniq.errors import Conflict
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.models import AuditEntry, GoldCommunicationLog, HumanReview, WebhookEvent
from cerniq.models.enums import Direction, MessageStatus, WebhookStatus
from cerniq.webhooks import registry, repository, service
from cerniq.worker import names
from tests.fixtures.outreach import add_leads, add_phones, wait_for
from tests.webhooks import payloads
from tests.webhooks.fixtures import (
    contacted_lead,
    count_rows,
    job_state,
    messages_of,
    reviews_available,
    run_cli,
    webhook_events,
)


def url(tenant: Any) -> str:
    return f"/api/v1/webhooks/timelinesai/{tenant.webhook_token}"


def metric(provider: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "cerniq_webhooks_received_total", {"provider": provider, "outcome": outcome}
    )
    return value or 0.0


async def test_an_unknown_token_is_refused_with_401_and_counted(api: Any, tenant: Any) -> None:
    before = metric("timelinesai", "unauthorized")
    body = payloads.received("+40722000001", "Bună ziua")
    response = await api.post("/api/v1/webhooks/timelinesai/not-the-token", json=body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "INVALID_WEBHOOK_TOKEN"
    # a token that is a prefix of the real one is not accepted either
    response = await api.post(f"/api/v1/webhooks/timelinesai/{tenant.webhook_token[:-1]}", json=body)
    assert response.status_code == 401
    assert metric("timelinesai", "unauthorized") == before + 2
    assert await webhook_events() == []


async def test_malformed_json_is_stored_quarantined_and_answered_200(api: Any, tenant: Any) -> None:
    response = await api.post(
        url(tenant),
        content=b'{"event_type": "message:received:new", ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    (event,) = await webhook_events()
    assert event.status == WebhookStatus.QUARANTINED
    assert event.tenant_id == tenant.id
    assert event.payload == {"raw": '{"event_type": "message:received:new", '}
    assert event.error is not None and "malformed JSON" in event.error

    # the vendor retries the same body: a no-op
    again = await api.post(url(tenant), content=b'{"event_type": "message:received:new", ')
    assert again.status_code == 200
    assert again.json() == {"received": True, "duplicate": True}
    assert len(await webhook_events()) == 1

    # a JSON array, and a message event missing its parts: stored and quarantined too
    assert (await api.post(url(tenant), json=[1, 2])).status_code == 200
    broken = {"event_type": "message:received:new", "chat": {"chat_id": 5}}
    assert (await api.post(url(tenant), json=broken)).status_code == 200
    events = await webhook_events(status=WebhookStatus.QUARANTINED)
    assert len(events) == 3
    errors = sorted(e.error or "" for e in events)
    assert any("not an object" in e for e in errors)
    assert any("message" in e and "whatsapp_account" in e for e in errors)


async def test_secrets_are_not_stored_with_the_headers(api: Any, tenant: Any) -> None:
    body = payloads.account_event("whatsapp:account:connected", phone="+40700000009")
    await api.post(
        url(tenant),
        json=body,
        headers={"Authorization": "Bearer abc", "X-Webhook-Secret": "s3cret", "X-Request-ID": "r-1"},
    )
    (event,) = await webhook_events()
    assert event.headers.get("x-request-id") == "r-1"
    assert not {"authorization", "x-webhook-secret"} & set(event.headers)
    assert "s3cret" not in json.dumps(event.headers)


async def test_the_same_reply_delivered_three_times_is_processed_once(
    api: Any, tenant: Any, pipeline_worker: Any
) -> None:
    await add_phones(tenant, 1)
    lead = await contacted_lead(tenant)
    body = payloads.received(lead.mobile, "Bună ziua, despre ce e vorba?", chat_id=int(lead.chat_id))
    answers = [await api.post(url(tenant), json=body) for _ in range(3)]
    assert [a.json()["duplicate"] for a in answers] == [False, True, True]

    async def triaged() -> bool:
        rows = await messages_of(lead.journey_id, Direction.INBOUND)
        return len(rows) == 1 and rows[0].sentiment_analyzed_at is not None

    await wait_for(triaged)
    (event,) = await webhook_events()
    assert event.status == WebhookStatus.PROCESSED
    assert event.event_key == body["message"]["message_uid"]
    assert event.lead_journey_id == lead.journey_id
    (inbound,) = await messages_of(lead.journey_id, Direction.INBOUND)
    assert inbound.external_message_id == body["message"]["message_uid"]
    assert inbound.status == MessageStatus.RECEIVED
    assert await job_state(names.AI_SENTIMENT, f"ai-{inbound.id}") == "completed"
    # a question opens exactly one review (MEDIUM)
    if reviews_available():
        reviews = await count_rows(HumanReview, lead_journey_id=lead.journey_id)
        assert reviews == 1
    else:
        assert await count_rows(HumanReview) == 0

    # processing the stored event again (a replayed job) changes nothing either
    assert await service.process_event(event.id) == "already-processed"
    assert len(await messages_of(lead.journey_id, Direction.INBOUND)) == 1


async def test_a_reply_from_an_unknown_number_is_quarantined_listed_and_replayable(
    api: Any, tenant: Any, pipeline_worker: Any
) -> None:
    await add_phones(tenant, 1)
    body = payloads.received("+40722000777", "Bună ziua, am primit un mesaj de la voi?", chat_id=4242)
    assert (await api.post(url(tenant), json=body)).status_code == 200

    async def quarantined() -> bool:
        return len(await webhook_events(status=WebhookStatus.QUARANTINED)) == 1

    await wait_for(quarantined)
    (event,) = await webhook_events()
    assert event.error is not None and event.error.startswith("no matching lead")

    code, out = await run_cli("webhooks", "quarantine", "--provider", "timelinesai")
    assert code == 0, out
    assert str(event.id) in out
    assert "no matching lead" in out
    assert "message:received:new" in out

    # the operator imports the lead, then replays the event
    await add_leads(tenant, 1, start=777)
    code, out = await run_cli("webhooks", "replay", str(event.id))
    assert code == 0, out
    assert "processed" in out
    (event,) = await webhook_events()
    assert event.status == WebhookStatus.PROCESSED
    async with transaction() as session:
        rows = (await session.execute(select(GoldCommunicationLog))).scalars().all()
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "webhook.replay"))
        ).scalars()
        replays = [a.entity_id for a in audit]
    assert [r.direction for r in rows] == [Direction.INBOUND]
    assert replays == [str(event.id)]


async def test_replay_refuses_a_processed_event_without_force(api: Any, tenant: Any) -> None:
    await api.post(
        url(tenant), json=payloads.account_event("whatsapp:account:connected", phone="+40700000009")
    )
    (event,) = await webhook_events()
    assert await service.process_event(event.id) == "ignored"  # no phone with that number
    async with transaction() as session:
        await session.execute(
            update(WebhookEvent).where(WebhookEvent.id == event.id).values(status=WebhookStatus.PROCESSED)
        )
    with pytest.raises(Conflict) as refused:
        await service.replay(str(event.id)[:8], system_principal(tenant.id))
    assert refused.value.error_code == "ALREADY_PROCESSED"
    replayed, outcome = await service.replay(str(event.id), system_principal(tenant.id), force=True)
    assert outcome == "ignored" and replayed.status == WebhookStatus.IGNORED

    code, out = await run_cli("webhooks", "show", str(event.id)[:8])
    assert code == 0, out
    assert "IGNORED" in out and "whatsapp:account:connected" in out and "+40700000009" in out


async def test_instantly_and_resend_deliveries_are_kept_even_without_a_processor(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.load_sources()
    # as before the email feature registers its sources (or when its module is broken)
    monkeypatch.setattr(registry, "_sources", {"timelinesai": registry._sources["timelinesai"]})
    instantly = {
        "event_type": "reply_received",
        "lead_email": "ion@ferma.ro",
        "timestamp": "2026-03-02T10:00:00Z",
    }
    resend = {"type": "email.delivered", "created_at": "2026-03-02T10:00:00Z", "data": {"email_id": "e-1"}}
    assert (await api.post("/api/v1/webhooks/instantly", json=instantly)).json()["duplicate"] is False
    assert (await api.post("/api/v1/webhooks/resend", json=resend)).json()["duplicate"] is False
    assert (await api.post("/api/v1/webhooks/resend", json=resend)).json()["duplicate"] is True
    events = await webhook_events()
    assert sorted((e.provider, e.event_type, e.status, e.error) for e in events) == [
        ("instantly", "reply_received", WebhookStatus.QUARANTINED, "no processor"),
        ("resend", "email.delivered", WebhookStatus.QUARANTINED, "no processor"),
    ]


async def test_an_oversized_body_is_refused(api: Any, tenant: Any) -> None:
    response = await api.post(url(tenant), content=b"x" * (service.MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert await webhook_events() == []


async def test_the_sweeper_requeues_events_whose_job_was_lost(tenant: Any, pipeline_worker: Any) -> None:
    await add_phones(tenant, 1)
    lead = await contacted_lead(tenant)
    body = payloads.received(lead.mobile, "Ce anume oferiți mai exact?", chat_id=int(lead.chat_id))
    async with transaction() as session:
        # stored, but the process died before its job reached Redis
        event_id = await repository.insert_event(
            session,
            provider="timelinesai",
            event_key=body["message"]["message_uid"],
            event_type=body["event_type"],
            tenant_id=tenant.id,
            payload=body,
            headers={},
            status=WebhookStatus.RECEIVED,
            error=None,
        )
        await session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == event_id)
            .values(received_at=utcnow() - timedelta(minutes=2))
        )
    assert event_id is not None
    report = await service.sweep()
    assert report["requeued"] == 1

    async def processed() -> bool:
        return (await webhook_events())[0].status == WebhookStatus.PROCESSED

    await wait_for(processed)
    assert len(await messages_of(lead.journey_id, Direction.INBOUND)) == 1
    # nothing left to sweep; a second sweep is a no-op
    assert (await service.sweep())["requeued"] == 0


async def test_old_payloads_are_pruned_but_redeliveries_stay_no_ops(api: Any, tenant: Any) -> None:
    old = payloads.account_event("whatsapp:account:connected", phone="+40700000008")
    new = payloads.account_event("whatsapp:account:connected", phone="+40700000009")
    await api.post(url(tenant), json=old)
    await api.post(url(tenant), json=new)
    async with transaction() as session:
        await session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.event_key.like("%40700000008%"))
            .values(received_at=utcnow() - timedelta(days=31))
        )
    assert await service.prune_payloads(timedelta(days=30)) == 1
    assert await service.prune_payloads(timedelta(days=30)) == 0
    events = {e.event_key: e for e in await webhook_events()}
    pruned = [e for k, e in events.items() if "40700000008" in k]
    kept = [e for k, e in events.items() if "40700000009" in k]
    assert pruned[0].payload == {"pruned": True} and pruned[0].headers == {}
    assert kept[0].payload == new
    again = await api.post(url(tenant), json=old)
    assert again.json()["duplicate"] is True
    with pytest.raises(Conflict) as refused:
        await service.replay(str(pruned[0].id), system_principal(tenant.id))
    assert refused.value.error_code == "PAYLOAD_PRUNED"
