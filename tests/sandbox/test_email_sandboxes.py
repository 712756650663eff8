"""The fake Instantly and Resend over raw HTTP: contract shapes, behaviour, webhooks, faults."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cerniq.providers.resend.svix import SignatureError, verify
from cerniq.sandbox import SandboxHandle, WebhookRecorder

INSTANTLY_KEY = "sandbox-instantly-key"
RESEND_KEY = "re_sandbox_key"
SCHEDULE = {
    "schedules": [
        {
            "name": "Lucru",
            "timing": {"from": "09:00", "to": "18:00"},
            "days": {"1": True, "2": True, "3": True, "4": True, "5": True},
            "timezone": "Europe/Bucharest",
        }
    ]
}
SENDER = "Cerniq <vanzari@cerniq.app>"


@pytest.fixture
def instantly(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sandbox.url("instantly") + "/api/v2",
        headers={"Authorization": f"Bearer {INSTANTLY_KEY}"},
        timeout=5,
    ) as client:
        yield client


@pytest.fixture
def resend(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sandbox.url("resend"), headers={"Authorization": f"Bearer {RESEND_KEY}"}, timeout=5
    ) as client:
        yield client


def campaign(instantly: httpx.Client, name: str = "Fermieri", **extra: Any) -> dict[str, Any]:
    response = instantly.post("/campaigns", json={"name": name, "campaign_schedule": SCHEDULE, **extra})
    assert response.status_code == 200, response.text
    return dict(response.json())


def add(instantly: httpx.Client, campaign_id: str, emails: list[str], **flags: Any) -> dict[str, Any]:
    response = instantly.post(
        "/leads/add", json={"campaign_id": campaign_id, "leads": [{"email": e} for e in emails], **flags}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- Instantly ---------------------------------------------------------------------------------


def test_instantly_refuses_missing_and_wrong_keys_in_its_error_shape(sandbox: SandboxHandle) -> None:
    with httpx.Client(base_url=sandbox.url("instantly")) as client:
        missing = client.get("/api/v2/campaigns")
        wrong = client.get("/api/v2/campaigns", headers={"Authorization": "Bearer nope"})
    assert missing.status_code == 401
    assert missing.json() == {
        "statusCode": 401,
        "error": "Unauthorized",
        "message": "Missing Authorization header",
    }
    assert wrong.status_code == 401
    assert wrong.json()["statusCode"] == 401


def test_campaign_lifecycle_draft_active_paused(instantly: httpx.Client) -> None:
    created = campaign(instantly, email_list=["ana@outreach.ro"])
    assert created["status"] == 0
    assert created["id"] and created["timestamp_created"].endswith("Z")
    assert instantly.post(f"/campaigns/{created['id']}/activate").json()["status"] == 1
    assert instantly.post(f"/campaigns/{created['id']}/pause").json()["status"] == 2
    assert instantly.get(f"/campaigns/{created['id']}").json()["status"] == 2
    missing = instantly.post("/campaigns", json={"campaign_schedule": SCHEDULE})
    assert missing.status_code == 400
    assert "name" in missing.json()["message"]
    assert instantly.get("/campaigns/unknown-id").status_code == 404


def test_bulk_add_applies_skip_flags_block_list_and_validation(instantly: httpx.Client) -> None:
    first = campaign(instantly, "A")
    second = campaign(instantly, "B")
    assert instantly.post("/block-lists-entries", json={"bl_value": "blocat@ferma.ro"}).status_code == 200
    result = add(
        instantly,
        first["id"],
        ["ion@ferma.ro", "ION@ferma.ro", "not-an-email", "blocat@ferma.ro"],
        skip_if_in_campaign=True,
    )
    assert result["leads_uploaded"] == 1
    assert result["duplicate_email_count"] == 1
    assert result["invalid_email_count"] == 1
    assert result["in_blocklist"] == 1
    assert [c["index"] for c in result["created_leads"]] == [0]
    again = add(instantly, first["id"], ["ion@ferma.ro"], skip_if_in_campaign=True)
    assert again["leads_uploaded"] == 0 and again["skipped_count"] == 1
    elsewhere = add(instantly, second["id"], ["ion@ferma.ro"], skip_if_in_workspace=True)
    assert elsewhere["leads_uploaded"] == 0 and elsewhere["skipped_count"] == 1
    both = instantly.post(
        "/leads/add", json={"campaign_id": first["id"], "list_id": "x", "leads": [{"email": "a@b.ro"}]}
    )
    assert both.status_code == 400
    too_many = instantly.post(
        "/leads/add",
        json={"campaign_id": first["id"], "leads": [{"email": f"x{i}@b.ro"} for i in range(1001)]},
    )
    assert too_many.status_code == 400
    found = instantly.post("/leads/list", json={"contacts": ["ion@ferma.ro"]}).json()
    assert [lead["campaign"] for lead in found["items"]] == [first["id"]]


def test_lists_page_with_a_cursor(instantly: httpx.Client) -> None:
    created = campaign(instantly)
    add(instantly, created["id"], [f"l{i}@ferma.ro" for i in range(5)])
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        body = {"campaign": created["id"], "limit": 2, **({"starting_after": cursor} if cursor else {})}
        page = instantly.post("/leads/list", json=body).json()
        seen += [lead["email"] for lead in page["items"]]
        cursor = page["next_starting_after"]
        if not cursor:
            break
    assert sorted(seen) == sorted(f"l{i}@ferma.ro" for i in range(5))
    assert instantly.get("/campaigns", params={"limit": 101}).status_code == 400


def test_sends_events_analytics_and_webhooks_with_our_header(
    sandbox: SandboxHandle, instantly: httpx.Client, webhook_recorder: WebhookRecorder
) -> None:
    sandbox.control("POST", "/_control/instantly/config", {"auto_send": False, "event_delay": 0.05})
    created = campaign(instantly, email_list=["ana@outreach.ro"])
    hook = instantly.post(
        "/webhooks",
        json={
            "target_hook_url": f"{webhook_recorder.url}/in",
            "event_type": "all_events",
            "headers": {"X-Webhook-Secret": "s3cret"},
        },
    )
    assert hook.status_code == 200 and hook.json()["headers"] == {"X-Webhook-Secret": "s3cret"}
    instantly.post(f"/campaigns/{created['id']}/activate")
    add(instantly, created["id"], ["bounce1@ferma.ro", "reply@ferma.ro", "ok@ferma.ro"])
    assert instantly.get("/campaigns/analytics", params={"id": created["id"]}).json() == []
    assert sandbox.control("POST", "/_control/instantly/send-pending") == {"sent": 3}

    def kinds(reqs: list[Any]) -> set[str]:
        return {r.body["event_type"] for r in reqs if r.body}

    webhook_recorder.wait_for(lambda reqs: {"email_bounced", "reply_received"} <= kinds(reqs))
    for request in webhook_recorder.requests:
        assert request.headers.get("X-Webhook-Secret") == "s3cret"
        assert {"timestamp", "event_type", "workspace", "campaign_id", "campaign_name"} <= set(request.body)
    reply = next(r.body for r in webhook_recorder.requests if r.body["event_type"] == "reply_received")
    assert reply["lead_email"] == "reply@ferma.ro" and reply["reply_text"]
    stats = instantly.get("/campaigns/analytics", params={"id": created["id"]}).json()
    assert len(stats) == 1
    assert stats[0]["emails_sent_count"] == 3
    assert stats[0]["bounced_count"] == 1
    assert stats[0]["reply_count"] == 1
    legacy = instantly.get(f"/campaign/{created['id']}/analytics").json()
    assert legacy["bounced"] == 1 and legacy["sent"] == 3


def test_bounce_protect_moves_a_campaign_to_status_minus_2(
    sandbox: SandboxHandle, instantly: httpx.Client
) -> None:
    sandbox.control(
        "POST",
        "/_control/instantly/config",
        {"auto_send": False, "bounce_protect_rate": 0.2, "bounce_protect_min_sent": 2},
    )
    created = campaign(instantly)
    instantly.post(f"/campaigns/{created['id']}/activate")
    add(instantly, created["id"], ["ok@ferma.ro", "bounce@ferma.ro"])
    sandbox.control("POST", "/_control/instantly/send-pending")
    sandbox.control(
        "POST", "/_control/instantly/events", {"event_type": "email_bounced", "email": "bounce@ferma.ro"}
    )
    assert instantly.get(f"/campaigns/{created['id']}").json()["status"] == -2


def test_webhooks_are_disabled_after_repeated_failures(
    sandbox: SandboxHandle, instantly: httpx.Client, webhook_recorder: WebhookRecorder
) -> None:
    sandbox.control("POST", "/_control/instantly/config", {"auto_send": False, "webhook_disable_after": 2})
    created = campaign(instantly)
    hook = instantly.post("/webhooks", json={"target_hook_url": f"{webhook_recorder.url}/x"}).json()
    instantly.post(f"/campaigns/{created['id']}/activate")
    add(instantly, created["id"], ["a@ferma.ro", "b@ferma.ro"])
    webhook_recorder.fail_next(100)
    sandbox.control("POST", "/_control/instantly/send-pending")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and instantly.get(f"/webhooks/{hook['id']}").json()["status"] == 1:
        time.sleep(0.05)
    assert instantly.get(f"/webhooks/{hook['id']}").json()["status"] == -1
    assert instantly.post(f"/webhooks/{hook['id']}/resume").json()["status"] == 1


def test_instantly_faults_lose_the_answer_after_acting(
    sandbox: SandboxHandle, instantly: httpx.Client
) -> None:
    created = campaign(instantly)
    sandbox.control("POST", "/_control/instantly/faults", {"mode": "drop_after_accept", "path": "leads/add"})
    with pytest.raises(httpx.RemoteProtocolError):
        instantly.post("/leads/add", json={"campaign_id": created["id"], "leads": [{"email": "x@ferma.ro"}]})
    assert len(sandbox.control("GET", "/_control/instantly/leads", email="x@ferma.ro")) == 1
    sandbox.control("POST", "/_control/instantly/faults", {"mode": "http_503", "target": "read"})
    assert instantly.get("/campaigns").status_code == 503


# --- Resend ------------------------------------------------------------------------------------


def test_resend_auth_user_agent_and_validation(sandbox: SandboxHandle, resend: httpx.Client) -> None:
    with httpx.Client(base_url=sandbox.url("resend")) as client:
        missing = client.post("/emails", json={})
        wrong = client.post("/emails", json={}, headers={"Authorization": "Bearer re_wrong"})
        no_agent = client.post(
            "/emails", json={}, headers={"Authorization": f"Bearer {RESEND_KEY}", "User-Agent": ""}
        )
    assert missing.status_code == 401 and missing.json()["name"] == "missing_api_key"
    assert wrong.status_code == 403
    assert no_agent.status_code == 403
    no_to = resend.post("/emails", json={"from": SENDER, "subject": "s", "text": "t"})
    assert no_to.status_code == 422
    assert no_to.json() == {
        "statusCode": 422,
        "message": "Missing `to` field.",
        "name": "missing_required_field",
    }
    unverified = resend.post(
        "/emails", json={"from": "x@altceva.ro", "to": "a@b.ro", "subject": "s", "text": "t"}
    )
    assert unverified.status_code == 403 and unverified.json()["name"] == "validation_error"
    bad_tag = resend.post(
        "/emails",
        json={
            "from": SENDER,
            "to": "a@b.ro",
            "subject": "s",
            "text": "t",
            "tags": [{"name": "lead id", "value": "1"}],
        },
    )
    assert bad_tag.status_code == 422
    too_many = resend.post(
        "/emails", json={"from": SENDER, "to": [f"a{i}@b.ro" for i in range(51)], "subject": "s", "text": "t"}
    )
    assert too_many.status_code == 422


def test_resend_idempotency_replays_conflicts_and_rejects_bad_keys(
    sandbox: SandboxHandle, resend: httpx.Client
) -> None:
    body = {"from": SENDER, "to": "ion@ferma.ro", "subject": "Ofertă", "text": "Bună ziua"}
    first = resend.post("/emails", json=body, headers={"Idempotency-Key": "send/email_warm/1"})
    again = resend.post("/emails", json=body, headers={"Idempotency-Key": "send/email_warm/1"})
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    other = resend.post(
        "/emails", json={**body, "subject": "Alt"}, headers={"Idempotency-Key": "send/email_warm/1"}
    )
    assert other.status_code == 409 and other.json()["name"] == "invalid_idempotent_request"
    too_long = resend.post("/emails", json=body, headers={"Idempotency-Key": "k" * 257})
    assert too_long.status_code == 400 and too_long.json()["name"] == "invalid_idempotency_key"
    emails = sandbox.control("GET", "/_control/resend/emails", to="ion@ferma.ro")
    assert len(emails) == 1
    got = resend.get(f"/emails/{first.json()['id']}").json()
    assert got["object"] == "email" and got["to"] == ["ion@ferma.ro"]
    assert "ratelimit-limit" in first.headers


def test_resend_in_flight_key_is_409_and_lost_answer_replays(
    sandbox: SandboxHandle, resend: httpx.Client
) -> None:
    body = {"from": SENDER, "to": "ion@ferma.ro", "subject": "Ofertă", "text": "Bună ziua"}
    sandbox.control("POST", "/_control/resend/faults", {"mode": "drop_after_accept"})
    with pytest.raises(httpx.RemoteProtocolError):
        resend.post("/emails", json=body, headers={"Idempotency-Key": "k-1"})
    replay = resend.post("/emails", json=body, headers={"Idempotency-Key": "k-1"})
    assert replay.status_code == 200
    assert len(sandbox.control("GET", "/_control/resend/emails")) == 1
    sandbox.control("POST", "/_control/resend/faults", {"mode": "hang_after_accept", "delay": 1.0})
    with httpx.Client(base_url=sandbox.url("resend"), headers=resend.headers, timeout=0.3) as quick:
        with pytest.raises(httpx.ReadTimeout):
            quick.post("/emails", json=body, headers={"Idempotency-Key": "k-2"})
        busy = quick.post("/emails", json=body, headers={"Idempotency-Key": "k-2"})
    assert busy.status_code == 409 and busy.json()["name"] == "concurrent_idempotent_requests"


def test_resend_batch_strict_and_permissive(resend: httpx.Client) -> None:
    good = {"from": SENDER, "to": "a@ferma.ro", "subject": "s", "text": "t"}
    bad = {"from": SENDER, "subject": "s", "text": "t"}
    strict = resend.post("/emails/batch", json=[good, bad])
    assert strict.status_code == 422
    permissive = resend.post(
        "/emails/batch", json=[good, bad, good], headers={"x-batch-validation": "permissive"}
    )
    assert permissive.status_code == 200
    assert len(permissive.json()["data"]) == 2
    assert permissive.json()["errors"][0]["index"] == 1
    assert resend.post("/emails/batch", json=[good] * 101).status_code == 422


def test_resend_rate_limit_answers_429_with_retry_after(sandbox: SandboxHandle, resend: httpx.Client) -> None:
    sandbox.control("POST", "/_control/resend/config", {"rate_per_second": 0.01, "rate_limit_enabled": True})
    first = resend.get("/emails/none")
    limited = resend.get("/emails/none")
    assert first.status_code == 404
    assert first.headers["ratelimit-limit"] == "0.01"
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["name"] == "rate_limit_exceeded"


def test_resend_webhooks_are_signed_with_svix_and_retries_keep_the_id(
    sandbox: SandboxHandle, resend: httpx.Client, webhook_recorder: WebhookRecorder
) -> None:
    sandbox.control("POST", "/_control/resend/config", {"event_delay": 0.02, "retry_scale": 0.0001})
    created = resend.post(
        "/webhooks", json={"endpoint": f"{webhook_recorder.url}/r", "events": ["email.bounced"]}
    )
    secret = created.json()["signing_secret"]
    assert secret.startswith("whsec_")
    webhook_recorder.fail_next(1)
    sent = resend.post(
        "/emails",
        json={
            "from": SENDER,
            "to": "bounce@ferma.ro",
            "subject": "s",
            "text": "t",
            "tags": [{"name": "a", "value": "b"}],
        },
    )
    assert sent.status_code == 200
    requests = webhook_recorder.wait_for(lambda reqs: len(reqs) >= 2)
    assert requests[0].headers["svix-id"] == requests[1].headers["svix-id"]
    for request in requests[:2]:
        assert verify(secret, request.headers, request.raw) == request.headers["svix-id"]
    body = json.loads(requests[1].raw)
    assert body["type"] == "email.bounced"
    assert body["data"]["tags"] == {"a": "b"}
    assert body["data"]["bounce"]["type"] == "Permanent"
    forged = dict(requests[1].headers)
    with pytest.raises(SignatureError):
        verify(secret, forged, requests[1].raw + b" ")
    assert resend.get(f"/emails/{sent.json()['id']}").json()["last_event"] == "bounced"
