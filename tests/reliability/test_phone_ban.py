"""A phone banned mid-run (runbook 2.2): no further sends from it, its leads move to other
ACTIVE phones on the next dispatch, its queued rows are SKIPPED, a phone:banned alert opens."""

from __future__ import annotations

import collections
from typing import Any

import pytest
from sqlalchemy import select

from cerniq.kit.db import transaction
from cerniq.messaging.dispatch import dispatch
from cerniq.models import Alert, GoldLeadJourney, WaPhoneNumber
from cerniq.models.enums import LeadState, MessageStatus, PhoneStatus
from tests.fixtures.outreach import add_leads, add_phones, add_sequence, count_messages, wait_for
from tests.reliability.conftest import rows, sent_messages

pytestmark = pytest.mark.reliability


async def test_banned_phone_stops_and_its_leads_move_to_the_other_phones(
    tenant: Any, sandbox: Any, phone_worker: Any
) -> None:
    phones = await add_phones(tenant, 3)
    await add_sequence(tenant)
    await add_leads(tenant, 12)
    # the first send from phone_01's account gets it banned by WhatsApp
    sandbox.control(
        "POST",
        "/_control/timelinesai/faults",
        json={"mode": "ban", "count": 1, "account_phone": "+40700000001"},
    )
    report = await dispatch()
    assert report.whatsapp == 12

    async def banned() -> bool:
        async with transaction() as session:
            phone = await session.get(WaPhoneNumber, phones[0])
            return phone is not None and phone.status == PhoneStatus.BANNED

    await wait_for(banned, timeout=20)

    async def first_round_done() -> bool:
        return await count_messages(status=MessageStatus.QUEUED) == 0 and (
            await count_messages(status=MessageStatus.SENDING) == 0
        )

    await wait_for(first_round_done, timeout=20)
    skipped = await rows(status=MessageStatus.SKIPPED)
    assert skipped and all(r.phone_id == phones[0] and r.error_code == "PHONE_BANNED" for r in skipped)
    async with transaction() as session:
        moved = list(
            (
                await session.execute(
                    select(GoldLeadJourney).where(
                        GoldLeadJourney.id.in_([r.lead_journey_id for r in skipped])
                    )
                )
            ).scalars()
        )
        alerts = list(
            (await session.execute(select(Alert).where(Alert.alert_type == "phone:banned"))).scalars()
        )
    assert all(j.assigned_phone_id is None and j.next_action_at is not None for j in moved)
    assert [a.subject for a in alerts] == [phones[0]]

    again = await dispatch()
    assert again.whatsapp == len(skipped)

    async def all_sent() -> bool:
        return await count_messages(status=MessageStatus.SENT) == 12

    await wait_for(all_sent, timeout=30)
    messages = sent_messages(sandbox)
    assert not [m for m in messages if m["account_phone"] == "+40700000001"]
    per_lead = collections.Counter(m["recipient_phone"] for m in messages)
    assert len(per_lead) == 12 and set(per_lead.values()) == {1}
    async with transaction() as session:
        journeys = list((await session.execute(select(GoldLeadJourney))).scalars())
    assert {j.assigned_phone_id for j in journeys} <= {phones[1], phones[2]}
    assert all(j.current_state == LeadState.CONTACTED_WA for j in journeys)
