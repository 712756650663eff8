"""GDPR: a person's data on request (art. 15) and its erasure (art. 17) everywhere, with the
counts analytics need kept and the person suppressed for good."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from cerniq.analytics import service as analytics
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.models import (
    AuditEntry,
    GoldCommunicationLog,
    GoldCommunicationLogArchive,
    GoldContact,
    GoldLeadJourney,
    HitlAuditEntry,
    HumanReview,
    SuppressionEntry,
    WebhookEvent,
)
from cerniq.models.enums import Channel, Direction, MessageStatus, ReviewReason, Role, SuppressionReason
from cerniq.ops import maintenance
from tests.fixtures.outreach import add_leads

PHONE = "+40722000001"  # add_leads numbers lead n as +40722xxxxxx
EMAIL = "office1@ferma1.ro"


async def seed(tenant: Any) -> dict[str, Any]:
    journey_id, other_id = await add_leads(tenant, 2, email=True)
    now = utcnow()
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        journey.first_contact_at = now
        session.add(
            GoldContact(
                tenant_id=tenant.id,
                company_id=journey.lead_id,
                prenume="Ion",
                nume="Popescu",
                full_name="Ion Popescu",
                functie="Administrator",
                email=EMAIL,
                phone=PHONE,
                whatsapp_number=PHONE,
            )
        )

        def msg(**kw: Any) -> GoldCommunicationLog:
            base: dict[str, Any] = {
                "tenant_id": tenant.id,
                "lead_journey_id": journey_id,
                "channel": Channel.WHATSAPP,
                "direction": Direction.OUTBOUND,
                "status": MessageStatus.SENT,
                "phone_number": PHONE,
                "sent_at": now,
                "quota_cost": 1,
                "content": "Bună ziua domnule Popescu",
            }
            return GoldCommunicationLog(**(base | kw))

        reply = msg(
            direction=Direction.INBOUND,
            status=MessageStatus.RECEIVED,
            content="Da, sunt interesat, Ion Popescu",
            sentiment_score=70,
            quota_cost=0,
            sent_at=None,
            webhook_payload={"from": PHONE, "text": "Da"},
        )
        old = msg(
            content="mesaj vechi către Ion", created_at=now - timedelta(days=120), sent_at=None, quota_cost=0
        )
        queued = msg(status=MessageStatus.QUEUED, content="follow-up pentru Ion", sent_at=None, quota_cost=0)
        session.add_all([msg(), reply, old, queued])
        await session.flush()
        review = HumanReview(
            tenant_id=tenant.id,
            lead_journey_id=journey_id,
            communication_id=reply.id,
            reason=next(iter(ReviewReason)),
            trigger_content="Da, sunt interesat, Ion Popescu",
            sla_due_at=now + timedelta(hours=2),
        )
        session.add(review)
        await session.flush()
        # audit trails that name the person: a lead edit, a takeover reason, a reviewer's note
        session.add_all(
            [
                AuditEntry(
                    tenant_id=tenant.id,
                    actor_type="user",
                    action="lead.update",
                    entity_type="lead",
                    entity_id=str(journey_id),
                    before={"email": "vechi@ferma.ro", "mobileE164": PHONE, "currentState": "COLD"},
                    after={"email": EMAIL, "internalNotes": "sună-l pe Ion după 10", "currentState": "COLD"},
                ),
                AuditEntry(
                    tenant_id=tenant.id,
                    actor_type="user",
                    action="lead.takeover",
                    entity_type="lead",
                    entity_id=str(journey_id),
                    reason="Ion Popescu a cerut să fie sunat",
                ),
                HitlAuditEntry(
                    tenant_id=tenant.id,
                    review_id=review.id,
                    action="RESOLVE",
                    notes="am vorbit cu Ion Popescu la " + PHONE,
                    new_state={"status": "RESOLVED"},
                ),
            ]
        )
        session.add_all(
            [
                WebhookEvent(
                    tenant_id=tenant.id,
                    provider="timelinesai",
                    event_key="evt-1",
                    payload={"message": {"from": PHONE.lstrip("+"), "text": "Da, sunt interesat"}},
                ),
                WebhookEvent(
                    tenant_id=tenant.id,
                    provider="timelinesai",
                    event_key="evt-2",
                    payload={"message": {"from": "40722000002", "text": "altcineva"}},
                ),
            ]
        )
    await maintenance.archive_old_messages()  # the old message now lives in the archive
    await get_redis().set(f"lead:chat:{PHONE}", "chat-1")
    return {"journey": journey_id, "other": other_id, "queued": queued.id}


async def test_export_returns_everything_held_and_is_audited(tenant: Any, api: Any, make_token: Any) -> None:
    seeded = await seed(tenant)
    operator = await make_token(tenant, Role.OPERATOR, "op")
    r = await api.get(f"/api/v1/outreach/leads/{seeded['journey']}/personal-data", headers=operator)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["identifiers"] == {"emails": [EMAIL], "phones": [PHONE]}
    assert [c["full_name"] for c in data["contacts"]] == ["Ion Popescu"]
    assert len(data["messages"]) == 4
    assert [m["content"] for m in data["messages"] if m["archived"]] == ["mesaj vechi către Ion"]
    assert [w["event_key"] for w in data["webhookEvents"]] == ["evt-1"]
    assert len(data["reviews"]) == 1
    assert data["company"]["denumire"] == "Agro Ferma 1 SRL"
    viewer = await make_token(tenant, Role.VIEWER, "viewer")
    r = await api.get(f"/api/v1/outreach/leads/{seeded['journey']}/personal-data", headers=viewer)
    assert r.status_code == 403
    r = await api.get(f"/api/v1/outreach/leads/{uuid.uuid4()}/personal-data", headers=operator)
    assert r.status_code == 404
    async with transaction() as session:
        n = (
            await session.execute(select(func.count()).where(AuditEntry.action == "gdpr.export"))
        ).scalar_one()
    assert n == 1


async def test_erase_anonymizes_everywhere_keeps_counts_and_suppresses(
    tenant: Any, api: Any, make_token: Any, admin_headers: dict[str, str]
) -> None:
    seeded = await seed(tenant)
    journey_id = seeded["journey"]
    async with transaction() as session:
        before = await analytics.compute(session, tenant.id, analytics.today())
    operator = await make_token(tenant, Role.OPERATOR, "op")
    url = f"/api/v1/outreach/leads/{journey_id}/personal-data"
    assert (await api.delete(url, headers=operator)).status_code == 403

    r = await api.delete(url + "?reason=request%20R-17", headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["erased"]["messages"] == 3 and r.json()["erased"]["archived_messages"] == 1

    async with transaction() as session:
        contact = (await session.execute(select(GoldContact))).scalar_one()
        assert (contact.full_name, contact.email, contact.phone, contact.whatsapp_number) == (
            "[erased]",
            None,
            None,
            None,
        )
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        assert (journey.email, journey.mobile_e164, journey.whatsapp_opted_out, journey.email_opted_out) == (
            None,
            None,
            True,
            True,
        )
        live = (await session.execute(select(GoldCommunicationLog))).scalars().all()
        archived = (await session.execute(select(GoldCommunicationLogArchive))).scalars().all()
        assert len(live) == 3 and len(archived) == 1  # rows kept
        assert {m.content for m in [*live, *archived]} == {"[erased]"}
        assert {m.phone_number for m in live} == {None} and all(m.webhook_payload is None for m in live)
        queued = await session.get(GoldCommunicationLog, seeded["queued"])
        assert queued is not None and queued.status == MessageStatus.SKIPPED  # never sent
        review = (await session.execute(select(HumanReview))).scalar_one()
        assert review.trigger_content == "[erased]"
        events = {e.event_key: e.payload for e in (await session.execute(select(WebhookEvent))).scalars()}
        assert events["evt-1"] == {"erased": True}
        assert events["evt-2"]["message"]["from"] == "40722000002"  # someone else: untouched
        supp = {
            (s.channel, s.value, s.reason, s.is_permanent)
            for s in (await session.execute(select(SuppressionEntry))).scalars()
        }
        assert supp == {
            ("EMAIL", EMAIL, SuppressionReason.GDPR_ERASURE, True),
            ("WHATSAPP", PHONE, SuppressionReason.GDPR_ERASURE, True),
        }
        after = await analytics.compute(session, tenant.id, analytics.today())
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "gdpr.erase"))
        ).scalar_one()
    assert after == before  # analytics counts unchanged
    assert await get_redis().get(f"lead:chat:{PHONE}") is None
    assert audit.reason == "request R-17"
    assert PHONE not in json.dumps(audit.after) and "Popescu" not in json.dumps(audit.after)
    async with transaction() as session:
        trail = (
            (
                await session.execute(
                    select(AuditEntry).where(AuditEntry.action.in_(["lead.update", "lead.takeover"]))
                )
            )
            .scalars()
            .all()
        )
        notes = (await session.execute(select(HitlAuditEntry))).scalars().all()
    text = json.dumps([[e.reason, e.before, e.after] for e in trail] + [n.notes for n in notes])
    for person in ("Popescu", "Ion", EMAIL, PHONE, PHONE.lstrip("+"), "vechi@ferma.ro"):
        assert person not in text, person
    update_entry = next(e for e in trail if e.action == "lead.update")
    assert (
        update_entry.before is not None and update_entry.before["currentState"] == "COLD"
    )  # who did what stays
    assert [n.new_state for n in notes] == [{"status": "RESOLVED"}]

    # the other lead is untouched
    async with transaction() as session:
        other = await session.get(GoldLeadJourney, seeded["other"])
        assert other is not None and other.mobile_e164 == "+40722000002"

    # erasing twice is harmless; the export now shows nothing personal but the suppression
    assert (await api.delete(url, headers=admin_headers)).status_code == 200
    data = (await api.get(url, headers=admin_headers)).json()
    assert "Popescu" not in json.dumps(data["contacts"] + data["messages"] + data["reviews"])


async def test_another_tenants_lead_is_404(tenant: Any, other_tenant: Any, api: Any, make_token: Any) -> None:
    seeded = await seed(tenant)
    other_admin = await make_token(other_tenant, Role.ADMIN, "other")
    url = f"/api/v1/outreach/leads/{seeded['journey']}/personal-data"
    assert (await api.get(url, headers=other_admin)).status_code == 404
    assert (await api.delete(url, headers=other_admin)).status_code == 404
    async with transaction() as session:
        await session.execute(update(GoldLeadJourney).values(internal_notes="x"))
        journey = await session.get(GoldLeadJourney, seeded["journey"])
        assert journey is not None and journey.mobile_e164 == PHONE
