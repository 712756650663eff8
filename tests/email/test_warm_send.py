"""Warm email through Resend: only replied leads, html + text, tags, idempotent retries."""

from __future__ import annotations

from typing import Any

from cerniq.models.enums import Channel, LeadState, MessageStatus, SuppressionReason
from cerniq.sandbox import SandboxHandle
from tests.email.conftest import add_email_lead, get_journey, get_row, queue_email, resend_emails, status_is
from tests.fixtures.outreach import wait_for


async def test_a_warm_lead_gets_an_email_with_html_text_and_tags(
    tenant: Any, sandbox: SandboxHandle, worker: Any
) -> None:
    lead = await add_email_lead(tenant, 1, state=LeadState.WARM_REPLY)
    row_id = await queue_email(
        lead,
        Channel.EMAIL_WARM,
        content="Bună ziua,\n\nVă trimit oferta <semințe & îngrășăminte>.",
        origin="OPERATOR",
    )
    await wait_for(lambda: status_is(row_id, MessageStatus.SENT))
    (email,) = resend_emails(sandbox)
    row = await get_row(row_id)
    assert row.external_message_id == email["id"]
    assert email["idempotency_key"] == f"send/email_warm/{row_id}"
    assert email["to"] == ["office1@agrocampia1.ro"]
    assert email["from"] == "Cerniq Vânzări <vanzari@cerniq.app>"
    assert email["subject"] == "Semințe pentru sezonul de primăvară"
    assert email["text"] == "Bună ziua,\n\nVă trimit oferta <semințe & îngrășăminte>."
    assert "<p>Vă trimit oferta &lt;semințe &amp; îngrășăminte&gt;.</p>" in email["html"]
    assert {t["name"]: t["value"] for t in email["tags"]} == {
        "lead_id": str(lead),
        "tenant_id": str(tenant.id),
        "message_id": str(row_id),
    }
    journey = await get_journey(lead)
    assert journey.current_state == LeadState.WARM_REPLY
    assert journey.last_channel_used == Channel.EMAIL_WARM


async def test_a_send_retried_after_a_dropped_answer_is_delivered_once(
    tenant: Any, sandbox: SandboxHandle, worker: Any
) -> None:
    lead = await add_email_lead(tenant, 1, state=LeadState.NEGOTIATION)
    sandbox.control("POST", "/_control/resend/faults", {"mode": "drop_after_accept"})
    row_id = await queue_email(lead, Channel.EMAIL_WARM, origin="OPERATOR")
    await wait_for(lambda: status_is(row_id, MessageStatus.SENT))
    emails = resend_emails(sandbox)
    assert len(emails) == 1
    row = await get_row(row_id)
    assert row.external_message_id == emails[0]["id"]
    assert row.retry_count == 2  # two calls with one key: one email


async def test_a_cold_lead_is_never_sent_through_resend(
    tenant: Any, sandbox: SandboxHandle, worker: Any, admin_headers: dict[str, str], api: Any
) -> None:
    lead = await add_email_lead(tenant, 1, state=LeadState.COLD)
    refused = await api.post(
        f"/api/v1/outreach/leads/{lead}/send-message",
        json={"channel": "EMAIL_WARM", "content": "Bună ziua"},
        headers=admin_headers,
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "LEAD_NOT_WARM"
    # Even a row written behind the API's back is refused by the job itself.
    row_id = await queue_email(lead, Channel.EMAIL_WARM, origin="OPERATOR")
    await wait_for(lambda: status_is(row_id, MessageStatus.FAILED))
    row = await get_row(row_id)
    assert row.error_code == "LEAD_NOT_WARM"
    assert "WARM_REPLY or NEGOTIATION" in (row.error_message or "")
    assert resend_emails(sandbox) == []


async def test_send_message_with_email_warm_goes_out_through_resend(
    tenant: Any, sandbox: SandboxHandle, worker: Any, admin_headers: dict[str, str], api: Any
) -> None:
    lead = await add_email_lead(tenant, 1, state=LeadState.WARM_REPLY)
    response = await api.post(
        f"/api/v1/outreach/leads/{lead}/send-message",
        json={"channel": "EMAIL_WARM", "content": "Vă sun mâine la 10."},
        headers=admin_headers,
    )
    assert response.status_code in (200, 201, 202), response.text
    message_id = response.json()["messageId"]

    async def sent() -> bool:
        import uuid

        return await status_is(uuid.UUID(message_id), MessageStatus.SENT)

    await wait_for(sent)
    (email,) = resend_emails(sandbox)
    assert email["text"] == "Vă sun mâine la 10."
    assert email["subject"]


async def test_a_suppressed_warm_address_is_never_sent_to(
    tenant: Any, sandbox: SandboxHandle, worker: Any
) -> None:
    from cerniq.kit.db import transaction
    from cerniq.models import SuppressionEntry

    lead = await add_email_lead(tenant, 1, state=LeadState.WARM_REPLY)
    async with transaction() as session:
        session.add(
            SuppressionEntry(
                tenant_id=tenant.id,
                channel="ALL",
                value="office1@agrocampia1.ro",
                reason=SuppressionReason.COMPLAINT,
                source="test",
            )
        )
    row_id = await queue_email(lead, Channel.EMAIL_WARM, origin="OPERATOR")
    await wait_for(lambda: status_is(row_id, MessageStatus.SKIPPED))
    assert (await get_row(row_id)).error_code == "SUPPRESSED"
    assert resend_emails(sandbox) == []
