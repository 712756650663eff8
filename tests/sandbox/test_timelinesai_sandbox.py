"""The fake TimelinesAI over raw HTTP: contract shapes, behaviour, webhooks, faults and controls."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cerniq.providers.timelinesai.schemas import AccountEvent, MessageEvent, parse_webhook
from cerniq.sandbox import SandboxHandle, WebhookRecorder, run_sandbox_in_thread
from cerniq.sandbox.replies import REPLIES

TOKEN = "sandbox-timelinesai-token"
TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}$")
ACCOUNT = "+40700000001"
CONTACT = "+40722111222"


@pytest.fixture
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sandbox.url("timelinesai"), headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    ) as client:
        yield client


def send(api: httpx.Client, phone: str = CONTACT, text: str = "Bună ziua", account: str = ACCOUNT) -> str:
    response = api.post("/messages", json={"phone": phone, "whatsapp_account_phone": account, "text": text})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    return str(body["data"]["message_uid"])


def subscribe(api: httpx.Client, recorder: WebhookRecorder, event_type: str) -> dict[str, Any]:
    response = api.post(
        "/webhooks", json={"event_type": event_type, "url": f"{recorder.url}/hook/secret-token"}
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


def by_event(event_type: str) -> Any:
    return lambda reqs: any(r.body and r.body.get("event_type") == event_type for r in reqs)


# --- auth and envelopes ------------------------------------------------------------------------


def test_missing_and_wrong_token_answer_401_in_the_contract_shape(sandbox: SandboxHandle) -> None:
    with httpx.Client(base_url=sandbox.url("timelinesai")) as client:
        missing = client.get("/whatsapp_accounts")
        wrong = client.get("/whatsapp_accounts", headers={"Authorization": "Bearer nope"})
    assert missing.status_code == 401
    assert missing.json() == {
        "status": "error",
        "message": "Missing credentials",
        "error_code": "missing_credentials",
    }
    assert wrong.status_code == 401
    assert wrong.json()["message"] == "Invalid or expired token"
    assert wrong.json()["error_code"] == "invalid_token"


def test_accounts_list_in_envelope_with_vendor_timestamps(api: httpx.Client) -> None:
    body = api.get("/whatsapp_accounts").json()
    assert body["status"] == "ok"
    accounts = body["data"]["whatsapp_accounts"]
    assert [a["phone"] for a in accounts] == [f"+4070000000{n}" for n in range(1, 6)]
    first = accounts[0]
    assert first["id"] == "40700000001@s.whatsapp.net"
    assert first["account_name"] == "Cerniq Sales 1"
    assert first["status"] == "active"
    assert TS.match(first["connected_on"])
    assert body["data"]["has_more_pages"] is False


def test_validation_errors_name_the_field(api: httpx.Client) -> None:
    bad = api.post(
        "/messages", json={"phone": "0722 111 222", "whatsapp_account_phone": ACCOUNT, "text": "x"}
    )
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "validation_error"
    assert bad.json()["errors"][0]["fields"] == ["phone"]
    no_text = api.post("/messages", json={"phone": CONTACT, "whatsapp_account_phone": ACCOUNT})
    assert no_text.status_code == 400
    assert no_text.json()["errors"][0]["fields"] == ["text"]
    unknown = api.post(
        "/messages", json={"phone": CONTACT, "whatsapp_account_phone": "+40799999999", "text": "x"}
    )
    assert unknown.status_code == 404
    assert unknown.json()["error_code"] == "not_found"


# --- sending, status, chats --------------------------------------------------------------------


def test_send_creates_one_chat_and_status_progresses(api: httpx.Client, sandbox: SandboxHandle) -> None:
    uid = send(api)
    message = api.get(f"/messages/{uid}").json()["data"]
    assert message["status"] == "Pending"
    assert message["from_me"] is True
    assert message["origin"] == "Public API"
    assert TS.match(message["timestamp"])
    uid2 = send(api, text="Al doilea mesaj")
    chats = api.get("/chats", params={"phone": CONTACT}).json()["data"]["chats"]
    assert len(chats) == 1
    assert chats[0]["last_message_uid"] == uid2
    time.sleep(0.35)
    assert api.get(f"/messages/{uid}").json()["data"]["status"] == "Read"
    history = api.get(f"/messages/{uid}/status_history").json()["data"]
    assert [h["status"] for h in history] == ["Pending", "Sent", "Delivered", "Read"]
    seen = sandbox.control("GET", "/_control/timelinesai/messages", phone=CONTACT)
    assert [m["uid"] for m in seen] == [uid, uid2]


def test_recipient_matching_invalid_pattern_ends_failed(api: httpx.Client) -> None:
    uid = send(api, phone="+40722120000")
    time.sleep(0.15)
    message = api.get(f"/messages/{uid}").json()["data"]
    assert message["status"] == "Failed"
    assert "not registered on WhatsApp" in message["failure_reason"]


def test_send_in_chat_and_history_filters(api: httpx.Client, sandbox: SandboxHandle) -> None:
    send(api)
    chat_id = api.get("/chats", params={"phone": CONTACT}).json()["data"]["chats"][0]["id"]
    response = api.post(f"/chats/{chat_id}/messages", json={"text": "Revin cu detalii"})
    assert response.status_code == 200
    sandbox.control("POST", "/_control/timelinesai/reply", {"chat_id": chat_id, "text": "Mulțumesc!"})
    page = api.get(f"/chats/{chat_id}/messages", params={"sorting_order": "asc"}).json()["data"]
    assert [m["text"] for m in page["messages"]] == ["Bună ziua", "Revin cu detalii", "Mulțumesc!"]
    inbound = api.get(f"/chats/{chat_id}/messages", params={"from_me": "false"}).json()["data"]["messages"]
    assert [m["text"] for m in inbound] == ["Mulțumesc!"]
    assert api.post("/chats/999/messages", json={"text": "x"}).status_code == 404


def test_chat_history_pages_by_fifty(api: httpx.Client, sandbox: SandboxHandle) -> None:
    sandbox.control("POST", "/_control/timelinesai/config", {"rate_limit_enabled": False})
    for n in range(51):
        send(api, text=f"m{n}")
    chat_id = api.get("/chats", params={"phone": CONTACT}).json()["data"]["chats"][0]["id"]
    first = api.get(f"/chats/{chat_id}/messages", params={"page": 1}).json()["data"]
    second = api.get(f"/chats/{chat_id}/messages", params={"page": 2}).json()["data"]
    assert len(first["messages"]) == 50
    assert first["has_more_pages"] is True
    assert [m["text"] for m in second["messages"]] == ["m0"]
    assert second["has_more_pages"] is False


# --- accounts ----------------------------------------------------------------------------------


def test_account_states_list_binary_and_block_sends(api: httpx.Client, sandbox: SandboxHandle) -> None:
    sandbox.control("POST", "/_control/timelinesai/accounts", {"phone": "+40700000002", "state": "banned"})
    sandbox.control(
        "POST", "/_control/timelinesai/accounts", {"phone": "+40700000003", "state": "disconnected"}
    )
    statuses = {
        a["phone"]: a["status"] for a in api.get("/whatsapp_accounts").json()["data"]["whatsapp_accounts"]
    }
    assert statuses["+40700000002"] == "disconnected"
    assert statuses["+40700000003"] == "disconnected"
    banned = api.post(
        "/messages", json={"phone": CONTACT, "whatsapp_account_phone": "+40700000002", "text": "x"}
    )
    assert banned.status_code == 403
    assert "banned" in banned.json()["message"]
    inactive = api.post(
        "/messages", json={"phone": CONTACT, "whatsapp_account_phone": "+40700000003", "text": "x"}
    )
    assert inactive.status_code == 400
    assert inactive.json()["error_code"] == "account_inactive"
    assert sandbox.control("GET", "/_control/timelinesai/messages") == []


def test_send_without_account_uses_most_recently_connected(api: httpx.Client, sandbox: SandboxHandle) -> None:
    sandbox.control(
        "POST", "/_control/timelinesai/accounts", {"phone": "+40700000004", "state": "disconnected"}
    )
    sandbox.control("POST", "/_control/timelinesai/accounts", {"phone": "+40700000004", "state": "connected"})
    uid = api.post("/messages", json={"phone": CONTACT, "text": "x"}).json()["data"]["message_uid"]
    assert api.get(f"/messages/{uid}").json()["data"]["sender_phone"] == "+40700000004"


def test_account_changes_post_account_events(
    api: httpx.Client, sandbox: SandboxHandle, webhook_recorder: WebhookRecorder
) -> None:
    subscribe(api, webhook_recorder, "whatsapp:account:disconnected")
    subscribe(api, webhook_recorder, "whatsapp:account:connected")
    sandbox.control(
        "POST", "/_control/timelinesai/accounts", {"phone": "+40700000005", "state": "disconnected"}
    )
    sandbox.control("POST", "/_control/timelinesai/accounts", {"phone": "+40700000005", "state": "connected"})
    requests = webhook_recorder.wait_for(lambda reqs: len(reqs) == 2)
    events = [parse_webhook(r.body) for r in requests]
    assert all(isinstance(e, AccountEvent) for e in events)
    kinds = sorted(r.body["event_type"] for r in requests)
    assert kinds == ["whatsapp:account:connected", "whatsapp:account:disconnected"]
    disconnected = next(r.body for r in requests if r.body["event_type"].endswith("disconnected"))
    assert disconnected["whatsapp_account"]["id"] == "40700000005@s.whatsapp.net"
    assert disconnected["whatsapp_account"]["status"] == "disconnected"
    assert TS.match(disconnected["whatsapp_account"]["disconnected_on"])


# --- webhooks and replies ----------------------------------------------------------------------


def test_sent_and_received_webhooks_have_the_contract_shape(
    api: httpx.Client, sandbox: SandboxHandle, webhook_recorder: WebhookRecorder
) -> None:
    subscribe(api, webhook_recorder, "message:sent:new")
    subscribe(api, webhook_recorder, "message:received:new")
    uid = send(api)
    sent = webhook_recorder.wait_for(by_event("message:sent:new"))[0]
    assert sent.path == "/hook/secret-token"
    assert set(sent.body) == {"event_type", "chat", "whatsapp_account", "message"}
    assert sent.body["message"]["message_uid"] == uid
    assert sent.body["message"]["direction"] == "sent"
    assert sent.body["message"]["origin"] == "Public API"
    assert sent.body["message"]["sender"]["phone"] == ACCOUNT
    assert sent.body["message"]["recipient"]["phone"] == CONTACT

    sandbox.control("POST", "/_control/timelinesai/reply", {"phone": CONTACT, "text": "Da, sunt interesat."})
    received = webhook_recorder.wait_for(by_event("message:received:new"))
    body = next(r.body for r in received if r.body["event_type"] == "message:received:new")
    assert set(body["chat"]) >= {"full_name", "chat_url", "chat_id", "is_group", "phone"}
    assert body["chat"]["phone"] == CONTACT
    assert body["chat"]["is_group"] is False
    assert set(body["whatsapp_account"]) == {"full_name", "email", "phone"}
    assert body["whatsapp_account"]["phone"] == ACCOUNT
    message = body["message"]
    assert set(message) >= {
        "text",
        "direction",
        "origin",
        "timestamp",
        "received_timestamp",
        "message_uid",
        "sender",
        "recipient",
    }
    assert message["direction"] == "received"
    assert message["text"] == "Da, sunt interesat."
    assert message["sender"] == {"full_name": CONTACT, "phone": CONTACT}
    assert message["recipient"]["phone"] == ACCOUNT
    assert TS.match(message["timestamp"])
    event = parse_webhook(body)
    assert isinstance(event, MessageEvent)
    assert event.message.from_me is False


def test_operator_message_posts_sent_event_with_whatsapp_origin(
    api: httpx.Client, sandbox: SandboxHandle, webhook_recorder: WebhookRecorder
) -> None:
    subscribe(api, webhook_recorder, "message:sent:new")
    sandbox.control(
        "POST",
        "/_control/timelinesai/operator-message",
        {"phone": CONTACT, "account_phone": ACCOUNT, "text": "Vă sun eu mâine."},
    )
    body = webhook_recorder.wait_for(lambda reqs: len(reqs) == 1)[0].body
    assert body["message"]["origin"] == "WhatsApp"
    assert body["message"]["direction"] == "sent"
    assert body["message"]["text"] == "Vă sun eu mâine."


def test_replies_follow_probability_mix_and_seed(
    api: httpx.Client, sandbox: SandboxHandle, webhook_recorder: WebhookRecorder
) -> None:
    sandbox.control(
        "POST",
        "/_control/timelinesai/config",
        {"reply_probability": 1.0, "reply_delay": 0.05, "reply_mix": {"opt_out": 1.0}},
    )
    subscribe(api, webhook_recorder, "message:received:new")
    phones = [f"+4072300000{n}" for n in range(1, 5)]
    for phone in phones:
        send(api, phone=phone)
    requests = webhook_recorder.wait_for(lambda reqs: len(reqs) == 4)
    texts = {r.body["chat"]["phone"]: r.body["message"]["text"] for r in requests}
    assert set(texts) == set(phones)
    assert all(text in REPLIES["opt_out"] for text in texts.values())

    # Same seed, same sends: the same replies (whatever the order they arrive in).
    sandbox.reset()
    webhook_recorder.clear()
    sandbox.control(
        "POST",
        "/_control/timelinesai/config",
        {"reply_probability": 1.0, "reply_delay": 0.05, "reply_mix": {"opt_out": 1.0}},
    )
    subscribe(api, webhook_recorder, "message:received:new")
    for phone in phones:
        send(api, phone=phone)
    again = webhook_recorder.wait_for(lambda reqs: len(reqs) == 4)
    assert {r.body["chat"]["phone"]: r.body["message"]["text"] for r in again} == texts
    # The contact read the message before answering.
    uid = sandbox.control("GET", "/_control/timelinesai/messages", phone=phones[0])[0]["uid"]
    assert api.get(f"/messages/{uid}").json()["data"]["status"] == "Read"


def test_no_replies_at_probability_zero(
    api: httpx.Client, sandbox: SandboxHandle, webhook_recorder: WebhookRecorder
) -> None:
    subscribe(api, webhook_recorder, "message:received:new")
    for n in range(5):
        send(api, phone=f"+4072400000{n + 1}")
    time.sleep(0.3)
    assert webhook_recorder.requests == []
    assert sandbox.control("GET", "/_control/timelinesai/messages", direction="inbound") == []


def test_forced_reply_by_kind(api: httpx.Client, sandbox: SandboxHandle) -> None:
    send(api)
    reply = sandbox.control("POST", "/_control/timelinesai/reply", {"phone": CONTACT, "kind": "complaint"})
    assert reply["text"] in REPLIES["complaint"]
    assert reply["from_me"] is False


def test_failed_deliveries_retry_then_count_errors_without_disabling(
    api: httpx.Client, sandbox: SandboxHandle, webhook_recorder: WebhookRecorder
) -> None:
    hook = subscribe(api, webhook_recorder, "message:sent:new")
    webhook_recorder.fail_next(3, status=500)
    send(api)
    webhook_recorder.wait_for(lambda reqs: len(reqs) == 3)
    deadline = time.monotonic() + 3
    while (
        not sandbox.control("GET", "/_control/timelinesai/webhook-deliveries") and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    [delivery] = sandbox.control("GET", "/_control/timelinesai/webhook-deliveries")
    assert delivery["ok"] is False
    assert delivery["attempts"] == 3
    stored = api.get(f"/webhooks/{hook['id']}").json()["data"]
    assert stored["errors_counter"] == 1
    assert stored["enabled"] is True
    # The next delivery succeeds on its second attempt.
    webhook_recorder.fail_next(1, status=503)
    send(api, text="din nou")
    webhook_recorder.wait_for(lambda reqs: len(reqs) == 5)
    deadline = time.monotonic() + 3
    while len(sandbox.control("GET", "/_control/timelinesai/webhook-deliveries")) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert api.get(f"/webhooks/{hook['id']}").json()["data"]["errors_counter"] == 0


def test_slow_receiver_does_not_delay_the_send(
    api: httpx.Client, sandbox: SandboxHandle, webhook_recorder: WebhookRecorder
) -> None:
    subscribe(api, webhook_recorder, "message:sent:new")
    webhook_recorder.delay = 0.8
    started = time.monotonic()
    send(api)
    assert time.monotonic() - started < 0.5
    webhook_recorder.wait_for(lambda reqs: len(reqs) == 1)


def test_webhook_crud(api: httpx.Client, webhook_recorder: WebhookRecorder) -> None:
    first = subscribe(api, webhook_recorder, "message:received:new")
    second = subscribe(api, webhook_recorder, "message:sent:new")
    assert [w["id"] for w in api.get("/webhooks").json()["data"]] == [first["id"], second["id"]]
    updated = api.put(f"/webhooks/{first['id']}", json={"enabled": False}).json()["data"]
    assert updated["enabled"] is False
    assert updated["event_type"] == "message:received:new"
    assert api.delete(f"/webhooks/{second['id']}").json() == {"status": "ok"}
    assert api.get(f"/webhooks/{second['id']}").status_code == 404
    bad = api.post("/webhooks", json={"event_type": "message:bogus", "url": "http://x"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["fields"] == ["event_type"]
    bad_url = api.post("/webhooks", json={"event_type": "message:sent:new", "url": "ftp://x"})
    assert bad_url.json()["errors"][0]["fields"] == ["url"]


# --- faults and limits -------------------------------------------------------------------------


def test_http_faults_hit_the_next_sends_only(api: httpx.Client, sandbox: SandboxHandle) -> None:
    sandbox.control(
        "POST", "/_control/timelinesai/faults", {"mode": "http_503", "count": 2, "retry_after": 3}
    )
    first = api.post("/messages", json={"phone": CONTACT, "whatsapp_account_phone": ACCOUNT, "text": "x"})
    assert first.status_code == 503
    assert first.headers["Retry-After"] == "3"
    assert api.get("/whatsapp_accounts").status_code == 200  # reads are not hit by send faults
    assert (
        api.post(
            "/messages", json={"phone": CONTACT, "whatsapp_account_phone": ACCOUNT, "text": "x"}
        ).status_code
        == 503
    )
    send(api)
    assert len(sandbox.control("GET", "/_control/timelinesai/messages")) == 1


def test_fault_scoped_to_one_account(api: httpx.Client, sandbox: SandboxHandle) -> None:
    sandbox.control(
        "POST", "/_control/timelinesai/faults", {"mode": "http_429", "account_phone": "+40700000002"}
    )
    send(api, account=ACCOUNT)
    limited = api.post(
        "/messages", json={"phone": CONTACT, "whatsapp_account_phone": "+40700000002", "text": "x"}
    )
    assert limited.status_code == 429
    assert limited.json()["error"] == "Too Many Requests"


def test_drop_after_accept_records_the_message_and_cuts_the_response(
    api: httpx.Client, sandbox: SandboxHandle
) -> None:
    sandbox.control("POST", "/_control/timelinesai/faults", {"mode": "drop_after_accept"})
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/messages", json={"phone": CONTACT, "whatsapp_account_phone": ACCOUNT, "text": "pierdut"})
    [message] = sandbox.control("GET", "/_control/timelinesai/messages")
    assert message["text"] == "pierdut"


def test_timeout_fault_holds_then_rejects_without_accepting(
    api: httpx.Client, sandbox: SandboxHandle
) -> None:
    sandbox.control("POST", "/_control/timelinesai/faults", {"mode": "timeout", "delay": 0.3})
    with pytest.raises(httpx.ReadTimeout):
        api.post(
            "/messages",
            json={"phone": CONTACT, "whatsapp_account_phone": ACCOUNT, "text": "x"},
            timeout=0.1,
        )
    sandbox.control("POST", "/_control/timelinesai/faults", {"mode": "timeout", "delay": 0.1})
    late = api.post("/messages", json={"phone": CONTACT, "whatsapp_account_phone": ACCOUNT, "text": "x"})
    assert late.status_code == 504
    assert sandbox.control("GET", "/_control/timelinesai/messages") == []


def test_ban_fault_bans_the_account_on_its_next_send(api: httpx.Client, sandbox: SandboxHandle) -> None:
    sandbox.control("POST", "/_control/timelinesai/faults", {"mode": "ban", "account_phone": ACCOUNT})
    response = api.post("/messages", json={"phone": CONTACT, "whatsapp_account_phone": ACCOUNT, "text": "x"})
    assert response.status_code == 403
    assert "banned" in response.json()["message"]
    accounts = sandbox.control("GET", "/_control/timelinesai/accounts")
    assert next(a for a in accounts if a["phone"] == ACCOUNT)["state"] == "banned"


def test_rate_limit_answers_429_past_the_burst(api: httpx.Client, sandbox: SandboxHandle) -> None:
    sandbox.control(
        "POST", "/_control/timelinesai/config", {"rate_limit_per_second": 1, "rate_limit_burst": 2}
    )
    codes = [api.get("/whatsapp_accounts").status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200]
    assert 429 in codes[3:]
    sandbox.control("POST", "/_control/timelinesai/config", {"rate_limit_enabled": False})
    assert all(api.get("/whatsapp_accounts").status_code == 200 for _ in range(10))


def test_reset_restores_start_up_state(api: httpx.Client, sandbox: SandboxHandle) -> None:
    send(api)
    sandbox.control("POST", "/_control/timelinesai/accounts", {"phone": "+40700000099", "state": "connected"})
    sandbox.control("POST", "/_control/timelinesai/config", {"reply_probability": 1})
    sandbox.reset()
    state = sandbox.control("GET", "/_control/state")["vendors"]["timelinesai"]
    assert len(state["accounts"]) == 5
    assert state["messages"] == {"outbound": 0, "inbound": 0}
    assert state["config"]["reply_probability"] == 0.0


def test_start_up_options_shape_the_workspace() -> None:
    with run_sandbox_in_thread(accounts=2, timelinesai_token="other-token", seed=3) as handle:
        with httpx.Client(base_url=handle.url("timelinesai")) as client:
            accounts = client.get("/whatsapp_accounts", headers={"Authorization": "Bearer other-token"})
        assert [a["phone"] for a in accounts.json()["data"]["whatsapp_accounts"]] == [
            "+40700000001",
            "+40700000002",
        ]


# --- Slack -------------------------------------------------------------------------------------


def test_slack_incoming_webhook_is_recorded(sandbox: SandboxHandle) -> None:
    with httpx.Client(base_url=sandbox.base_url) as client:
        ok = client.post("/slack/services/T000/B000/XXXX", json={"text": "Telefon phone_03 BANNED"})
        assert ok.status_code == 200
        assert ok.text == "ok"
        assert client.post("/slack/services/T000/B000/XXXX", json={}).text == "no_text"
        sandbox.control("POST", "/_control/slack/faults", {"mode": "http_500"})
        assert client.post("/slack/services/T000/B000/XXXX", json={"text": "x"}).status_code == 500
    [message] = sandbox.control("GET", "/_control/slack/messages")
    assert message["text"] == "Telefon phone_03 BANNED"
    assert message["path"] == "T000/B000/XXXX"
