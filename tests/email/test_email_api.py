"""The email API and CLI as the runbook (section 6.1) and an operator use them."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import pytest
from sqlalchemy import select, text

from cerniq.config import get_settings
from cerniq.kit.db import transaction
from cerniq.models import AuditEntry, EmailCampaign
from cerniq.models.enums import Channel, MessageStatus, Role, SuppressionReason
from cerniq.sandbox import SandboxHandle
from tests.email.conftest import (
    SENDERS,
    add_email_lead,
    instantly_leads,
    make_campaign,
    queue_email,
    status_is,
)
from tests.fixtures.outreach import wait_for


@pytest.fixture
def on_the_box(monkeypatch: pytest.MonkeyPatch, sandbox: SandboxHandle) -> None:
    """Local-operator mode, as on the server where the runbook's curl lines run."""
    monkeypatch.setenv("CERNIQ_LOCAL_OPERATOR_MODE", "true")
    get_settings.cache_clear()


async def bounced_lead(tenant: Any, n: int, email: str, bounce_type: str = "hard") -> Any:
    """A cold lead added to the campaign whose email then bounced (as a webhook would record)."""
    from cerniq.email.suppression import record_bounce
    from cerniq.models import GoldCommunicationLog, GoldLeadJourney

    lead = await add_email_lead(tenant, n, email=email)
    row_id = await queue_email(lead, Channel.EMAIL_COLD)
    await wait_for(lambda: status_is(row_id, MessageStatus.SENT))
    async with transaction() as session:
        row = await session.get(GoldCommunicationLog, row_id)
        journey = await session.get(GoldLeadJourney, lead)
        await record_bounce(
            session,
            tenant_id=tenant.id,
            email=email,
            bounce_type="hard" if bounce_type == "hard" else "soft",
            reason="550 5.1.1 user unknown",
            source="test",
            message=row,
            journey=journey,
        )
    return row_id


async def test_runbook_6_1_lines_work_on_the_box(
    tenant: Any, sandbox: SandboxHandle, worker: Any, local_api: Any, on_the_box: None
) -> None:
    campaign = await make_campaign(tenant)
    await bounced_lead(tenant, 1, "gresit@ferma1.ro")
    await bounced_lead(tenant, 2, "plin@ferma2.ro", "soft")
    ok_lead = await add_email_lead(tenant, 3)
    ok_row = await queue_email(ok_lead, Channel.EMAIL_COLD)
    await wait_for(lambda: status_is(ok_row, MessageStatus.SENT))

    # 1. curl -s .../analytics/email-deliverability | jq '.bounceRate'
    deliverability = await local_api.get("/api/v1/outreach/analytics/email-deliverability")
    assert deliverability.status_code == 200
    body = deliverability.json()
    assert isinstance(body["bounceRate"], float)
    assert body["bounceRate"] == pytest.approx(66.67)  # 2 of the 3 sent rows in the window bounced
    assert body["threshold"] == 3.0
    assert [c["id"] for c in body["campaigns"]] == [str(campaign.id)]
    assert body["domains"][0]["domain"] == "outreach-cerniq.ro"

    # 3. curl -s ".../analytics/bounces?limit=100" | jq '.bounces[] | {email, bounceType, timestamp}'
    bounces = await local_api.get("/api/v1/outreach/analytics/bounces?limit=100")
    assert bounces.status_code == 200
    items = bounces.json()["bounces"]
    assert {(b["email"], b["bounceType"]) for b in items} == {
        ("gresit@ferma1.ro", "hard"),
        ("plin@ferma2.ro", "soft"),
    }
    assert all(b["timestamp"] and b["reason"] == "550 5.1.1 user unknown" for b in items)
    too_few = await local_api.get("/api/v1/outreach/analytics/bounces?limit=0")
    assert too_few.status_code == 400 and too_few.json()["error"]["code"] == "VALIDATION_ERROR"

    # 4. the psql query
    async with transaction() as session:
        rows = (
            await session.execute(
                text(
                    """
                    SELECT email, bounce_reason, COUNT(*)
                    FROM gold_communication_log
                    WHERE status = 'BOUNCED'
                      AND created_at > NOW() - INTERVAL '24 hours'
                    GROUP BY email, bounce_reason
                    ORDER BY COUNT(*) DESC
                    LIMIT 20
                    """
                )
            )
        ).all()
    assert {r[0] for r in rows} == {"gresit@ferma1.ro", "plin@ferma2.ro"}

    # 8. curl -X POST .../email/clean-bounces: the hard bounce is suppressed (the soft one is not yet)
    assert len(instantly_leads(sandbox, campaign_id=campaign.instantly_campaign_id)) == 3
    cleaned = await local_api.post("/api/v1/outreach/email/clean-bounces")
    assert cleaned.status_code == 200, cleaned.text
    report = cleaned.json()
    assert report["suppressedAddresses"] == 1
    assert report["removedFromCampaigns"] == [
        {
            "campaignId": str(campaign.id),
            "instantlyCampaignId": campaign.instantly_campaign_id,
            "name": campaign.name,
            "removed": ["gresit@ferma1.ro"],
        }
    ]
    remaining = {
        lead["email"] for lead in instantly_leads(sandbox, campaign_id=campaign.instantly_campaign_id)
    }
    assert remaining == {"plin@ferma2.ro", "office3@agrocampia3.ro"}
    state = sandbox.control("GET", "/_control/state")
    assert "gresit@ferma1.ro" in state["vendors"]["instantly"]["blocklist"]
    async with transaction() as session:
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "email.clean_bounces"))
        ).scalar_one()
    assert audit.actor_type == "local"

    # 9. curl -X POST .../campaigns/{campaignId}/resume (our id or Instantly's)
    paused = await local_api.post(f"/api/v1/outreach/campaigns/{campaign.instantly_campaign_id}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "PAUSED"
    resumed = await local_api.post(f"/api/v1/outreach/campaigns/{campaign.instantly_campaign_id}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "ACTIVE"


async def test_campaigns_are_created_listed_and_scoped_to_the_tenant(
    tenant: Any,
    other_tenant: Any,
    sandbox: SandboxHandle,
    api: Any,
    admin_headers: dict[str, str],
    make_token: Any,
    vendors_closed: None,
) -> None:
    created = await api.post(
        "/api/v1/outreach/campaigns",
        json={
            "name": "Cereale Dobrogea",
            "emailAccounts": SENDERS,
            "schedule": {"start": "09:00", "end": "17:00", "days": [1, 2, 3, 4, 5]},
            "dailyLimit": 200,
        },
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert campaign["status"] == "ACTIVE"
    assert campaign["sendingDomain"] == "outreach-cerniq.ro"
    (vendor,) = sandbox.control("GET", "/_control/instantly/campaigns")
    assert vendor["id"] == campaign["instantlyCampaignId"]
    assert vendor["campaign_schedule"]["schedules"][0]["timing"] == {"from": "09:00", "to": "17:00"}
    assert vendor["sequences"][0]["steps"][0]["variants"][0] == {"subject": "{{subject}}", "body": "{{body}}"}

    listed = await api.get("/api/v1/outreach/campaigns", headers=admin_headers)
    assert listed.json()["meta"]["total"] == 1
    assert listed.json()["campaigns"][0]["stats"] == {}

    other_headers = await make_token(other_tenant, Role.ADMIN)
    assert (await api.get("/api/v1/outreach/campaigns", headers=other_headers)).json()["campaigns"] == []
    foreign = await api.post(f"/api/v1/outreach/campaigns/{campaign['id']}/pause", headers=other_headers)
    assert foreign.status_code == 404

    viewer = await make_token(tenant, Role.VIEWER)
    forbidden = await api.post(f"/api/v1/outreach/campaigns/{campaign['id']}/pause", headers=viewer)
    assert forbidden.status_code == 403

    bad = await api.post(
        "/api/v1/outreach/campaigns",
        json={"name": "X", "emailAccounts": ["not-an-address"]},
        headers=admin_headers,
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "VALIDATION_ERROR"
    unknown = await api.post("/api/v1/outreach/campaigns/nope/resume", headers=admin_headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "CAMPAIGN_NOT_FOUND"

    paused = await api.post(
        f"/api/v1/outreach/campaigns/{campaign['id']}/pause",
        json={"reason": "verificare listă"},
        headers=admin_headers,
    )
    assert paused.status_code == 200
    assert paused.json()["instantly"] == {"synced": True, "error": None}
    async with transaction() as session:
        actions = [
            a.action
            for a in (await session.execute(select(AuditEntry).order_by(AuditEntry.created_at))).scalars()
        ]
        row = (await session.execute(select(EmailCampaign))).scalar_one()
    assert actions[-2:] == ["email.campaign.create", "email.campaign.pause"]
    assert row.paused_reason == "verificare listă"


async def test_instantly_refusing_a_resume_changes_nothing_here(
    tenant: Any, sandbox: SandboxHandle, api: Any, admin_headers: dict[str, str], vendors_closed: None
) -> None:
    campaign = await make_campaign(tenant)
    await api.post(f"/api/v1/outreach/campaigns/{campaign.id}/pause", headers=admin_headers)
    sandbox.control("POST", "/_control/instantly/faults", {"mode": "http_500", "count": 1})
    refused = await api.post(f"/api/v1/outreach/campaigns/{campaign.id}/resume", headers=admin_headers)
    assert refused.status_code == 502
    assert refused.json()["error"]["code"] == "VENDOR_ERROR"
    async with transaction() as session:
        row = await session.get(EmailCampaign, campaign.id)
    assert row is not None and row.status == "PAUSED"


async def test_without_instantly_configured_the_api_answers_503(
    tenant: Any, api: Any, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERNIQ_INSTANTLY_API_KEY", "")
    get_settings.cache_clear()
    response = await api.post("/api/v1/outreach/campaigns", json={"name": "X"}, headers=admin_headers)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "INSTANTLY_NOT_CONFIGURED"


async def cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from cerniq.cli.main import main; main()",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    stdout, stderr = await process.communicate()
    return int(process.returncode or 0), stdout.decode(), stderr.decode()


async def test_the_cli_mirrors_the_runbook(tenant: Any, sandbox: SandboxHandle, worker: Any) -> None:
    campaign = await make_campaign(tenant)
    await bounced_lead(tenant, 1, "gresit@ferma1.ro")
    # Independent commands run side by side (each is a separate process, as an operator runs it).
    listed, bounces, checked, unexplained = await asyncio.gather(
        cli("email", "campaigns", "--json"),
        cli("email", "bounces", "--json"),
        cli("email", "deliverability", "--check"),
        cli("email", "resume", str(campaign.id)),
    )
    assert listed[0] == 0, listed[2]
    assert json.loads(listed[1])["campaigns"][0]["instantlyCampaignId"] == campaign.instantly_campaign_id
    assert bounces[0] == 0, bounces[2]
    assert json.loads(bounces[1])["bounces"][0]["email"] == "gresit@ferma1.ro"
    assert checked[0] == 0, checked[2]
    assert "bounce rate 100.0%" in checked[1]
    assert unexplained[0] != 0  # --reason is required: a resume is always explained
    code, out, err = await cli("email", "pause", str(campaign.id), "--reason", "domeniu în verificare")
    assert code == 0, err
    assert "PAUSED" in out
    code, out, err = await cli("email", "resume", str(campaign.id), "--reason", "lista curățată")
    assert code == 0, err
    assert "ACTIVE" in out
    (code, out, err), suppressed = await asyncio.gather(
        cli("email", "clean-bounces"), cli("email", "suppressions", "--json")
    )
    assert code == 0, err
    assert "1 lead(s) removed from campaigns" in out
    assert json.loads(suppressed[1])["suppressions"][0]["reason"] == SuppressionReason.HARD_BOUNCE.value
    async with transaction() as session:
        actions = {
            a.action for a in (await session.execute(select(AuditEntry))).scalars() if a.actor_type == "cli"
        }
    assert {"email.campaign.pause", "email.campaign.resume", "email.clean_bounces"} <= actions
    assert instantly_leads(sandbox, email="gresit@ferma1.ro") == []


async def test_the_default_campaign_is_created_once(
    tenant: Any, sandbox: SandboxHandle, vendors_closed: None
) -> None:
    from cerniq.auth.principal import system_principal
    from cerniq.email.service import ensure_default_campaign

    async with transaction() as session:
        first = await ensure_default_campaign(session, system_principal(tenant.id))
    async with transaction() as session:
        again = await ensure_default_campaign(session, system_principal(tenant.id))
    assert first.id == again.id
    assert len(sandbox.control("GET", "/_control/instantly/campaigns")) == 1
