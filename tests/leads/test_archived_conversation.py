"""A conversation stays readable from the lead's detail after the weekly archive moved it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.models import GoldCommunicationLog, GoldCommunicationLogArchive
from cerniq.models.enums import Channel, Direction, MessageStatus
from cerniq.ops.maintenance import archive_old_messages
from tests.fixtures.outreach import add_leads


async def test_archived_messages_still_show_in_the_lead_detail(
    tenant: Any, api: Any, admin_headers: dict[str, str]
) -> None:
    (lead,) = await add_leads(tenant, 1)
    old = utcnow() - timedelta(days=120)
    async with transaction() as session:
        session.add_all(
            [
                GoldCommunicationLog(
                    tenant_id=tenant.id,
                    lead_journey_id=lead,
                    channel=Channel.WHATSAPP,
                    direction=Direction.OUTBOUND,
                    status=MessageStatus.READ,
                    content="Mesaj vechi trimis",
                    created_at=old,
                    sent_at=old,
                ),
                GoldCommunicationLog(
                    tenant_id=tenant.id,
                    lead_journey_id=lead,
                    channel=Channel.WHATSAPP,
                    direction=Direction.INBOUND,
                    status=MessageStatus.RECEIVED,
                    content="Răspuns recent",
                ),
            ]
        )
    await archive_old_messages()
    async with transaction() as session:
        archived = (
            await session.execute(select(func.count()).select_from(GoldCommunicationLogArchive))
        ).scalar_one()
    assert archived == 1

    body = (await api.get(f"/api/v1/outreach/leads/{lead}", headers=admin_headers)).json()
    texts = {m["contentPreview"]: m["archived"] for m in body["communications"]}
    assert texts == {"Mesaj vechi trimis": True, "Răspuns recent": False}
