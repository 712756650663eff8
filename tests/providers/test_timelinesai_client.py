"""TimelinesAIClient against the sandbox over real HTTP: results, pagination and error classes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from cerniq.providers.errors import (
    AccountUnavailableError,
    AmbiguousProviderError,
    AuthProviderError,
    BannedProviderError,
    InvalidRecipientError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from cerniq.providers.timelinesai import (
    MessageEvent,
    TimelinesAIClient,
    WaMessageStatus,
    WhatsAppProvider,
    parse_webhook,
)
from cerniq.sandbox import SandboxHandle, WebhookRecorder, run_sandbox_in_thread
from cerniq.sandbox.replies import REPLIES

TOKEN = "sandbox-timelinesai-token"
ACCOUNT = "+40700000001"
CONTACT = "+40722333444"


@pytest.fixture(scope="module")
def sandbox_module() -> Iterator[SandboxHandle]:
    # 55 accounts: more than one 50-item page.
    handle = run_sandbox_in_thread(
        port=0,
        accounts=55,
        seed=11,
        reply_probability=0.0,
        reply_delay=0.05,
        status_delays={"sent": 0.15, "delivered": 0.3, "read": 0.45},
        webhook_timeout=1.0,
        webhook_retry_delay=0.05,
        fault_delay=1.5,
    )
    yield handle
    handle.stop()


@pytest.fixture
def sandbox(sandbox_module: SandboxHandle) -> SandboxHandle:
    sandbox_module.reset()
    return sandbox_module


@pytest_asyncio.fixture(scope="module")
async def module_client(sandbox_module: SandboxHandle) -> AsyncIterator[TimelinesAIClient]:
    # One client for the module, as in production (one per process).
    async with TimelinesAIClient(base_url=sandbox_module.url("timelinesai"), token=TOKEN, timeout=0.5) as c:
        yield c


@pytest.fixture
def client(module_client: TimelinesAIClient, sandbox: SandboxHandle) -> TimelinesAIClient:
    return module_client


@pytest.fixture
def recorder() -> Iterator[WebhookRecorder]:
    with WebhookRecorder() as r:
        yield r


def fault(sandbox: SandboxHandle, mode: str, **extra: Any) -> None:
    sandbox.control("POST", "/_control/timelinesai/faults", {"mode": mode, **extra})


def accepted(sandbox: SandboxHandle, **filters: Any) -> list[dict[str, Any]]:
    return list(sandbox.control("GET", "/_control/timelinesai/messages", **filters))


async def wait_status(client: TimelinesAIClient, uid: str, status: WaMessageStatus) -> None:
    for _ in range(100):
        if (await client.get_message(uid)).status is status:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{uid} never reached {status}")


async def test_client_satisfies_the_protocol() -> None:
    async with TimelinesAIClient(token="t") as instance:
        assert isinstance(instance, WhatsAppProvider)


# --- accounts ----------------------------------------------------------------------------------


async def test_list_accounts_follows_pages(client: TimelinesAIClient, sandbox: SandboxHandle) -> None:
    sandbox.control("POST", "/_control/timelinesai/accounts", {"phone": "+40700000007", "state": "banned"})
    accounts = await client.list_accounts()
    assert len(accounts) == 55
    assert accounts[0].phone == "+40700000001"
    assert accounts[-1].phone == "+40700000055"
    assert accounts[-1].id == "40700000055@s.whatsapp.net"
    assert accounts[0].connected_on is not None and accounts[0].connected_on.tzinfo is not None
    inactive = [a.phone for a in accounts if not a.is_active]
    assert inactive == ["+40700000007"]


# --- sending and reading -----------------------------------------------------------------------


async def test_send_to_phone_then_status_progresses_to_read(client: TimelinesAIClient) -> None:
    uid = await client.send_to_phone(account_phone=ACCOUNT, phone=CONTACT, text="Bună ziua, domnule Popescu!")
    message = await client.get_message(uid)
    assert message.uid == uid
    assert message.status is WaMessageStatus.PENDING
    assert message.from_me is True
    assert message.text == "Bună ziua, domnule Popescu!"
    assert message.timestamp is not None and message.timestamp.tzinfo is not None
    await wait_status(client, uid, WaMessageStatus.READ)
    history = await client.status_history(uid)
    assert [h.status for h in history] == [
        WaMessageStatus.PENDING,
        WaMessageStatus.SENT,
        WaMessageStatus.DELIVERED,
        WaMessageStatus.READ,
    ]


async def test_recipient_not_on_whatsapp_ends_failed(client: TimelinesAIClient) -> None:
    uid = await client.send_to_phone(account_phone=ACCOUNT, phone="+40722330000", text="Salut")
    await wait_status(client, uid, WaMessageStatus.FAILED)
    message = await client.get_message(uid)
    assert message.failure_reason and "not registered" in message.failure_reason


async def test_find_chat_send_in_chat_and_history(client: TimelinesAIClient, sandbox: SandboxHandle) -> None:
    assert await client.find_chat(CONTACT) is None
    first = await client.send_to_phone(account_phone=ACCOUNT, phone=CONTACT, text="Primul")
    # A chat with the same contact on another account must not be confused with ours.
    await client.send_to_phone(account_phone="+40700000002", phone=CONTACT, text="Alt cont")
    chat = await client.find_chat(CONTACT, account_id=ACCOUNT)
    assert chat is not None
    assert chat.phone == CONTACT
    assert chat.whatsapp_account_id == "40700000001@s.whatsapp.net"
    assert await client.find_chat(CONTACT, account_id="40700000003@s.whatsapp.net") is None
    assert (await client.get_chat(chat.id)).id == chat.id

    since = datetime.now(UTC)
    second = await client.send_in_chat(chat_id=chat.id, text="Al doilea")
    sandbox.control("POST", "/_control/timelinesai/reply", {"chat_id": chat.id, "text": "Sunt interesat"})
    history = await client.chat_messages(chat.id)
    assert [m.uid for m in history[:2]] == [first, second]
    assert [m.text for m in history] == ["Primul", "Al doilea", "Sunt interesat"]
    inbound = await client.chat_messages(chat.id, from_me=False)
    assert [m.text for m in inbound] == ["Sunt interesat"]
    recent = await client.chat_messages(chat.id, after=since - timedelta(milliseconds=1))
    assert [m.text for m in recent] == ["Al doilea", "Sunt interesat"]


async def test_chat_messages_follow_pages(client: TimelinesAIClient, sandbox: SandboxHandle) -> None:
    sandbox.control("POST", "/_control/timelinesai/config", {"rate_limit_enabled": False})
    for n in range(53):
        await client.send_to_phone(account_phone=ACCOUNT, phone=CONTACT, text=f"m{n}")
    chat = await client.find_chat(CONTACT)
    assert chat is not None
    messages = await client.chat_messages(chat.id, from_me=True)
    assert [m.text for m in messages] == [f"m{n}" for n in range(53)]


# --- error classes -----------------------------------------------------------------------------


async def test_bad_token_is_auth_error(sandbox: SandboxHandle) -> None:
    async with TimelinesAIClient(base_url=sandbox.url("timelinesai"), token="wrong") as bad:
        with pytest.raises(AuthProviderError) as caught:
            await bad.list_accounts()
    assert caught.value.status_code == 401
    assert caught.value.error_code == "invalid_token"
    assert isinstance(caught.value, PermanentProviderError)


async def test_malformed_number_is_invalid_recipient(
    client: TimelinesAIClient, sandbox: SandboxHandle
) -> None:
    with pytest.raises(InvalidRecipientError) as caught:
        await client.send_to_phone(account_phone=ACCOUNT, phone="0722 333 444", text="x")
    assert caught.value.status_code == 400
    assert caught.value.error_code == "validation_error"
    assert caught.value.raw["errors"][0]["fields"] == ["phone"]
    assert accepted(sandbox) == []


async def test_unknown_and_disconnected_accounts_are_unavailable(
    client: TimelinesAIClient, sandbox: SandboxHandle
) -> None:
    with pytest.raises(AccountUnavailableError) as unknown:
        await client.send_to_phone(account_phone="+40799999999", phone=CONTACT, text="x")
    assert unknown.value.status_code == 404
    sandbox.control("POST", "/_control/timelinesai/accounts", {"phone": ACCOUNT, "state": "disconnected"})
    with pytest.raises(AccountUnavailableError) as inactive:
        await client.send_to_phone(account_phone=ACCOUNT, phone=CONTACT, text="x")
    assert inactive.value.error_code == "account_inactive"


async def test_banned_account_is_a_ban(client: TimelinesAIClient, sandbox: SandboxHandle) -> None:
    chat_uid = await client.send_to_phone(account_phone=ACCOUNT, phone=CONTACT, text="înainte")
    chat_id = (await client.get_message(chat_uid)).chat_id
    assert chat_id is not None
    fault(sandbox, "ban", account_phone=ACCOUNT)
    with pytest.raises(BannedProviderError) as caught:
        await client.send_to_phone(account_phone=ACCOUNT, phone=CONTACT, text="x")
    assert caught.value.status_code == 403
    with pytest.raises(BannedProviderError):
        await client.send_in_chat(chat_id=chat_id, text="tot banat")
    [account] = [a for a in await client.list_accounts() if a.phone == ACCOUNT]
    assert account.is_active is False
    assert len(accepted(sandbox)) == 1


async def test_429_is_transient_with_retry_after(client: TimelinesAIClient, sandbox: SandboxHandle) -> None:
    fault(sandbox, "http_429", retry_after=2)
    with pytest.raises(TransientProviderError) as caught:
        await client.send_to_phone(account_phone=ACCOUNT, phone=CONTACT, text="x")
    assert caught.value.status_code == 429
    assert caught.value.retry_after == 2.0
    assert caught.value.retryable is True


async def test_real_rate_limit_is_transient(client: TimelinesAIClient, sandbox: SandboxHandle) -> None:
    sandbox.control(
        "POST", "/_control/timelinesai/config", {"rate_limit_per_second": 1, "rate_limit_burst": 0}
    )
    await client.list_webhooks()
    with pytest.raises(TransientProviderError) as caught:
        await client.list_webhooks()
    assert caught.value.status_code == 429
    assert caught.value.retry_after is None  # TimelinesAI documents no Retry-After


async def test_gateway_5xx_on_send_is_transient_but_plain_500_is_ambiguous(
    client: TimelinesAIClient, sandbox: SandboxHandle
) -> None:
    for mode in ("http_502", "http_503", "http_504"):
        fault(sandbox, mode)
        with pytest.raises(TransientProviderError) as transient:
            await client.send_to_phone(account_phone=ACCOUNT, phone=CONTACT, text="x")
        assert transient.value.status_code == int(mode[5:])
    fault(sandbox, "http_500")
    with pytest.raises(AmbiguousProviderError) as ambiguous:
        await client.send_to_phone(account_phone=ACCOUNT, phone=CONTACT, text="x")
    assert ambiguous.value.status_code == 500
    assert ambiguous.value.error_code == "internal_error"
    assert accepted(sandbox) == []


async def test_5xx_and_timeouts_on_reads_are_transient(
    client: TimelinesAIClient, sandbox: SandboxHandle
) -> None:
    fault(sandbox, "http_500", target="read")
    with pytest.raises(TransientProviderError):
        await client.list_accounts()
    fault(sandbox, "timeout", target="read", delay=1.0)
    with pytest.raises(TransientProviderError, match="ReadTimeout"):
        await client.list_webhooks()
    fault(sandbox, "drop_after_accept", target="read")
    with pytest.raises(TransientProviderError, match="RemoteProtocolError"):
        await client.list_accounts()
    assert len(await client.list_accounts()) == 55


async def test_refused_connection_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with TimelinesAIClient(base_url=f"http://127.0.0.1:{port}/timelinesai", token=TOKEN) as dead:
        with pytest.raises(TransientProviderError, match="ConnectError"):
            await dead.send_to_phone(account_phone=ACCOUNT, phone=CONTACT, text="x")


async def test_lost_response_after_accept_is_ambiguous_and_resolvable(
    client: TimelinesAIClient, sandbox: SandboxHandle
) -> None:
    before = datetime.now(UTC)
    fault(sandbox, "drop_after_accept")
    with pytest.raises(AmbiguousProviderError, match="RemoteProtocolError"):
        await client.send_to_phone(account_phone=ACCOUNT, phone=CONTACT, text="Ofertă specială")
    [seen] = accepted(sandbox, phone=CONTACT)  # the vendor took exactly one message
    found = await client.find_sent_message(
        account_phone=ACCOUNT, phone=CONTACT, text="Ofertă specială", since=before
    )
    assert found is not None
    assert found.uid == seen["uid"]
    await wait_status(client, found.uid, WaMessageStatus.DELIVERED)  # and it does get delivered


async def test_send_timeout_is_ambiguous_and_the_lookup_shows_nothing_was_sent(
    client: TimelinesAIClient, sandbox: SandboxHandle
) -> None:
    # A read timeout cannot tell "never accepted" from "accepted, answer lost": both are ambiguous.
    # The lookup resolves it; here the vendor accepted nothing, so a resend is safe.
    before = datetime.now(UTC)
    fault(sandbox, "timeout")
    with pytest.raises(AmbiguousProviderError, match="ReadTimeout"):
        await client.send_to_phone(account_phone=ACCOUNT, phone=CONTACT, text="Ofertă")
    assert accepted(sandbox) == []
    assert (
        await client.find_sent_message(account_phone=ACCOUNT, phone=CONTACT, text="Ofertă", since=before)
        is None
    )
    fault(sandbox, "hang_after_accept", delay=1.0)
    with pytest.raises(AmbiguousProviderError, match="ReadTimeout"):
        await client.send_to_phone(account_phone=ACCOUNT, phone=CONTACT, text="Ofertă")
    assert len(accepted(sandbox)) == 1
    assert await client.find_sent_message(account_phone=ACCOUNT, phone=CONTACT, text="Ofertă", since=before)


async def test_unknown_message_and_chat_are_permanent(client: TimelinesAIClient) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        await client.get_message("00000000-0000-0000-0000-000000000000")
    assert caught.value.status_code == 404
    with pytest.raises(PermanentProviderError):
        await client.send_in_chat(chat_id=424242, text="x")


# --- webhooks ----------------------------------------------------------------------------------


async def test_webhooks_deliver_sent_and_received_events(
    client: TimelinesAIClient, sandbox: SandboxHandle, recorder: WebhookRecorder
) -> None:
    sandbox.control(
        "POST",
        "/_control/timelinesai/config",
        {"reply_probability": 1.0, "reply_delay": 0.05, "reply_mix": {"question": 1.0}},
    )
    sent_hook = await client.create_webhook("message:sent:new", f"{recorder.url}/wa/sent-secret")
    received_hook = await client.create_webhook("message:received:new", f"{recorder.url}/wa/received-secret")
    assert [w.id for w in await client.list_webhooks()] == [sent_hook.id, received_hook.id]

    uid = await client.send_to_phone(account_phone=ACCOUNT, phone=CONTACT, text="Bună ziua")
    requests = await asyncio.to_thread(recorder.wait_for, lambda reqs: len(reqs) >= 2)
    events = {r.path: parse_webhook(r.body) for r in requests}
    sent = events["/wa/sent-secret"]
    received = events["/wa/received-secret"]
    assert isinstance(sent, MessageEvent)
    assert isinstance(received, MessageEvent)
    assert sent.event_type == "message:sent:new"
    assert sent.message.message_uid == uid
    assert sent.message.from_me is True
    assert received.event_type == "message:received:new"
    assert received.message.from_me is False
    assert received.message.text in REPLIES["question"]
    assert received.message.sender is not None and received.message.sender.phone == CONTACT
    assert received.whatsapp_account.phone == ACCOUNT
    assert received.chat.phone == CONTACT
    assert received.message.timestamp is not None and received.message.timestamp.tzinfo is not None
    # The reply is in the chat too, and our message was read before it.
    history = await client.chat_messages(received.chat.chat_id)
    assert [m.from_me for m in history] == [True, False]
    assert history[0].status is WaMessageStatus.READ

    await client.delete_webhook(sent_hook.id)
    assert [w.event_type for w in await client.list_webhooks()] == ["message:received:new"]


async def test_provider_errors_are_informative() -> None:
    error = TransientProviderError(
        "boom", status_code=503, error_code="x", retry_after=1.5, provider="timelinesai"
    )
    assert "status=503" in str(error)
    assert isinstance(error, ProviderError)


async def test_a_proxy_from_the_environment_carries_the_requests(
    sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nothing listens on: the proxy is unreachable
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    async with TimelinesAIClient(base_url=sandbox.url("timelinesai"), token=TOKEN, timeout=0.5) as proxied:
        with pytest.raises(TransientProviderError):
            await proxied.list_accounts()  # through the proxy, which refuses
    monkeypatch.delenv("HTTP_PROXY")
    async with TimelinesAIClient(base_url=sandbox.url("timelinesai"), token=TOKEN, timeout=0.5) as direct:
        assert len(await direct.list_accounts()) == 55
