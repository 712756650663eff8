"""A/B variants: dispatch records the picked version, the send and the reply count against it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from cerniq.auth.principal import system_principal
from cerniq.kit.db import transaction
from cerniq.messaging.dispatch import dispatch
from cerniq.models import GoldCommunicationLog, OutreachTemplate, TemplateVersion, WaPhoneNumber
from cerniq.models.enums import Direction, MessageStatus
from cerniq.templates import service as templates
from tests.fixtures.outreach import add_leads, add_phones, add_sequence, count_messages, wait_for
from tests.webhooks.payloads import received


async def test_sends_and_replies_count_against_the_picked_variant(
    tenant: Any, sandbox: Any, worker: Any, api: Any
) -> None:
    await add_phones(tenant, 2)
    await add_sequence(tenant)
    async with transaction() as session:
        first = (
            await session.execute(select(OutreachTemplate).where(OutreachTemplate.name == "Prim contact"))
        ).scalar_one()
        await templates.add_variant(
            session,
            system_principal(tenant.id),
            first.id,
            content="Salutare de la Cerniq pentru {{companyName}}, varianta B.",
            label="B",
            weight=50,
        )
    await add_leads(tenant, 12)
    assert (await dispatch()).whatsapp == 12

    async def all_sent() -> bool:
        return await count_messages(status=MessageStatus.SENT) == 12

    await wait_for(all_sent, timeout=60)
    async with transaction() as session:
        rows = (await session.execute(select(GoldCommunicationLog))).scalars().all()
        versions = {v.id: v for v in (await session.execute(select(TemplateVersion))).scalars()}
        template = await session.get(OutreachTemplate, first.id)
        sent_from = {p.id: p.phone_number for p in (await session.execute(select(WaPhoneNumber))).scalars()}
    # the base text has no version row (the fixture's template was made without one); variant B has
    variant_rows = [r for r in rows if r.template_version_id is not None]
    base_rows = [r for r in rows if r.template_version_id is None]
    assert variant_rows and base_rows, "with two 50/50 texts, twelve messages use both"
    assert all("varianta B" in (r.content_rendered or "") for r in variant_rows)
    assert not any("varianta B" in (r.content_rendered or "") for r in base_rows)
    (variant_id,) = {r.template_version_id for r in variant_rows}
    assert versions[variant_id].times_used == len(variant_rows)
    assert template is not None and template.times_used == 12

    # a positive reply to one of them counts as a reply and a positive reply of its variant
    row = variant_rows[0]
    reply = received(
        row.phone_number or "",
        "Da, sunt interesat! Cât costă?",
        chat_id=int(row.thread_id or 1),
        account_phone=sent_from[row.phone_id],
    )
    response = await api.post(f"/api/v1/webhooks/timelinesai/{tenant.webhook_token}", json=reply)
    assert response.status_code == 200

    async def analyzed() -> bool:
        async with transaction() as session:
            inbound = (
                await session.execute(
                    select(func.count())
                    .select_from(GoldCommunicationLog)
                    .where(
                        GoldCommunicationLog.direction == Direction.INBOUND,
                        GoldCommunicationLog.sentiment_analyzed_at.is_not(None),
                    )
                )
            ).scalar_one()
        return bool(inbound)

    await wait_for(analyzed, timeout=60)
    async with transaction() as session:
        version = await session.get(TemplateVersion, row.template_version_id)
    assert version is not None
    assert version.replies == 1
    assert version.positive_replies == 1
