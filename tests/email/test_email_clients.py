"""The Instantly and Resend clients against the sandbox over HTTP, and the Svix recipe."""

from __future__ import annotations

from typing import Any

import pytest

from cerniq.providers.errors import (
    AmbiguousProviderError,
    AuthProviderError,
    PermanentProviderError,
    TransientProviderError,
)
from cerniq.providers.instantly.client import InstantlyClient
from cerniq.providers.resend.client import ResendClient
from cerniq.providers.resend.svix import SignatureError, sign, verify
from cerniq.sandbox import SandboxHandle
from tests.email.conftest import INSTANTLY_KEY, RESEND_KEY

SCHEDULE = {
    "name": "Lucru",
    "timing": {"from": "09:00", "to": "18:00"},
    "days": {"1": True},
    "timezone": "Europe/Bucharest",
}
STEP = [{"subject": "{{subject}}", "body": "{{body}}", "delay": 0}]


def test_svix_test_vector_and_rejections() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = {
        "svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "svix-timestamp": "1614265330",
        "svix-signature": f"v1,bm90IHRoaXMgb25l {signature}",  # rotation: any v1 entry may match
    }
    assert verify(secret, headers, body, now=1614265330 + 299) == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    with pytest.raises(SignatureError) as stale:
        verify(secret, headers, body, now=1614265330 + 301)
    assert stale.value.reason == "stale"
    with pytest.raises(SignatureError) as future:
        verify(secret, headers, body, now=1614265330 - 301)
    assert future.value.reason == "stale"
    with pytest.raises(SignatureError) as tampered:
        verify(secret, headers, body + b" ", now=1614265330)
    assert tampered.value.reason == "bad_signature"
    with pytest.raises(SignatureError) as missing:
        verify(secret, {"svix-id": "x", "svix-timestamp": "1"}, body, now=1)
    assert missing.value.reason == "missing_headers"
    v2_only = {**headers, "svix-signature": signature.replace("v1,", "v2,")}
    with pytest.raises(SignatureError):
        verify(secret, v2_only, body, now=1614265330)


async def test_instantly_client_campaign_leads_and_analytics(sandbox: SandboxHandle) -> None:
    async with InstantlyClient(api_key=INSTANTLY_KEY, base_url=sandbox.url("instantly"), timeout=2) as client:
        campaign = await client.create_campaign(
            name="Fermieri", schedule=SCHEDULE, steps=STEP, email_list=["ana@outreach.ro"], daily_limit=50
        )
        assert campaign.status_name == "DRAFT"
        assert (await client.activate_campaign(campaign.id)).status_name == "ACTIVE"
        leads = [
            {"email": "ion@ferma.ro", "custom_variables": {"subject": "Ofertă", "body": "Bună ziua"}},
            {"email": "ion@ferma.ro"},
        ]
        result = await client.add_leads(campaign.id, leads)
        assert [c.index for c in result.created_leads] == [0]
        assert result.duplicate_email_count == 1
        again = await client.add_leads(campaign.id, leads[:1])
        assert again.created_leads == [] and again.skipped_count == 1
        found = await client.find_leads(emails=["ion@ferma.ro"])
        assert [lead.campaign for lead in found] == [campaign.id]
        assert found[0].payload == {"subject": "Ofertă", "body": "Bună ziua"}
        assert await client.campaign_analytics([campaign.id]) == []
        sandbox.control("POST", "/_control/instantly/send-pending")
        (stats,) = await client.campaign_analytics([campaign.id])
        assert stats.emails_sent_count == 1
        assert [c.id for c in await client.list_campaigns()] == [campaign.id]
        assert (await client.pause_campaign(campaign.id)).status_name == "PAUSED"
        await client.delete_lead(found[0].id)
        await client.delete_lead(found[0].id)  # already gone: not an error
        assert await client.find_leads(campaign_id=campaign.id) == []
        assert await client.block_emails(["rau@ferma.ro", "ferma-rea.ro"]) == 2


async def test_instantly_client_classifies_failures(sandbox: SandboxHandle) -> None:
    async with InstantlyClient(api_key="wrong", base_url=sandbox.url("instantly"), timeout=2) as bad:
        with pytest.raises(AuthProviderError):
            await bad.list_campaigns()
    async with InstantlyClient(api_key=INSTANTLY_KEY, base_url=sandbox.url("instantly"), timeout=2) as client:
        campaign = await client.create_campaign(name="X", schedule=SCHEDULE, steps=STEP)
        sandbox.control("POST", "/_control/instantly/faults", {"mode": "http_429", "retry_after": 7})
        with pytest.raises(TransientProviderError) as limited:
            await client.add_leads(campaign.id, [{"email": "a@ferma.ro"}])
        assert limited.value.retry_after == 7
        sandbox.control(
            "POST", "/_control/instantly/faults", {"mode": "drop_after_accept", "path": "leads/add"}
        )
        with pytest.raises(AmbiguousProviderError):
            await client.add_leads(campaign.id, [{"email": "a@ferma.ro"}])
        retry = await client.add_leads(campaign.id, [{"email": "a@ferma.ro"}])
        assert retry.created_leads == [] and retry.skipped_count == 1  # the lost add did happen, once
        with pytest.raises(PermanentProviderError) as missing:
            await client.get_campaign("no-such-campaign")
        assert missing.value.status_code == 404


async def test_resend_client_idempotent_send_and_errors(sandbox: SandboxHandle) -> None:
    email: dict[str, Any] = {
        "from": "Cerniq <vanzari@cerniq.app>",
        "to": ["ion@ferma.ro"],
        "subject": "Ofertă",
        "html": "<p>Bună ziua</p>",
        "text": "Bună ziua",
        "tags": [{"name": "lead_id", "value": "b7f0c2a4-0000-4000-8000-000000000001"}],
    }
    async with ResendClient(api_key=RESEND_KEY, base_url=sandbox.url("resend"), timeout=2) as client:
        sandbox.control("POST", "/_control/resend/faults", {"mode": "drop_after_accept"})
        with pytest.raises(AmbiguousProviderError):
            await client.send_email(email, idempotency_key="send/email_warm/1")
        first = await client.send_email(email, idempotency_key="send/email_warm/1")
        assert await client.send_email(email, idempotency_key="send/email_warm/1") == first
        assert len(sandbox.control("GET", "/_control/resend/emails")) == 1
        with pytest.raises(PermanentProviderError) as mismatch:
            await client.send_email({**email, "subject": "Alt"}, idempotency_key="send/email_warm/1")
        assert mismatch.value.error_code == "invalid_idempotent_request"
        sandbox.control("POST", "/_control/resend/faults", {"mode": "http_503", "retry_after": 2})
        with pytest.raises(TransientProviderError):
            await client.send_email(email, idempotency_key="send/email_warm/2")
        sandbox.control("POST", "/_control/resend/faults", {"mode": "http_500"})
        with pytest.raises(AmbiguousProviderError):
            await client.send_email(email, idempotency_key="send/email_warm/3")
        with pytest.raises(PermanentProviderError):
            await client.send_email({**email, "to": []}, idempotency_key="send/email_warm/4")
        fetched = await client.get_email(first)
        assert fetched.to == ["ion@ferma.ro"]
        batch = await client.send_batch([email, email], idempotency_key="batch/1")
        assert len(batch.ids) == 2
        hook = await client.create_webhook("http://127.0.0.1:9/hook", ["email.bounced"])
        assert hook.signing_secret and hook.signing_secret.startswith("whsec_")
        assert [w.id for w in await client.list_webhooks()] == [hook.id]
    async with ResendClient(api_key="re_wrong", base_url=sandbox.url("resend"), timeout=2) as bad:
        with pytest.raises(AuthProviderError):
            await bad.send_email(email, idempotency_key="k")
