"""Dispatch promises exactly the quota the phones have left, across its batches and while the
phone queues are already reserving quota for rows dispatched a moment earlier; and what it
writes for each lead: the QUEUED row, the enrollment, the lead's columns and the job."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from cerniq.config import get_settings
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.messaging.dispatch import dispatch
from cerniq.models import (
    GoldCommunicationLog,
    GoldLeadJourney,
    OutreachSequence,
    OutreachSequenceStep,
    SequenceEnrollment,
)
from cerniq.models.enums import Channel, Direction, EnrollmentStatus, MessageStatus
from cerniq.quota.guardian import QuotaGuardian
from cerniq.worker.names import phone_queue
from cerniq.worker.queues import get_queue
from tests.fixtures.outreach import add_leads, add_phones, add_sequence, count_messages

PHONES, QUOTA = 3, 4


@pytest.fixture(autouse=True)
def _always_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERNIQ_BUSINESS_HOURS_ALWAYS_OPEN", "true")
    get_settings.cache_clear()


async def _per_phone() -> dict[str, int]:
    async with transaction() as session:
        rows = (await session.execute(select(GoldCommunicationLog.phone_id))).scalars().all()
    counts: dict[str, int] = {}
    for phone in rows:
        assert phone is not None
        counts[phone] = counts.get(phone, 0) + 1
    return counts


async def test_every_unit_of_quota_is_promised_across_batches(tenant: Any) -> None:
    await add_phones(tenant, PHONES, quota=QUOTA)
    await add_sequence(tenant)
    await add_leads(tenant, PHONES * QUOTA + 1)

    report = await dispatch(batch_size=5)

    assert report.whatsapp == PHONES * QUOTA
    assert report.waiting_quota == 1
    assert report.batches == 3
    assert sorted((await _per_phone()).values()) == [QUOTA] * PHONES


async def test_a_row_reserved_but_still_queued_is_counted_once(tenant: Any) -> None:
    """A phone's job reserves the quota in Redis and only then commits the row as SENDING: a
    dispatch reading in between must not count that row both as spent and as promised."""
    await add_phones(tenant, PHONES, quota=QUOTA)
    await add_sequence(tenant)
    await add_leads(tenant, PHONES * QUOTA + 1)

    first = await dispatch(batch_size=5, max_batches=1)
    assert first.whatsapp == 5
    async with transaction() as session:
        queued = (await session.execute(select(GoldCommunicationLog))).scalars().all()
    assert {m.status for m in queued} == {MessageStatus.QUEUED}
    # the send job of two of the rows has reserved (Redis) but not yet committed SENDING
    day = BusinessClock.from_settings(get_settings()).business_day(utcnow())
    guardian = QuotaGuardian(get_redis())
    for message in queued[:2]:
        assert message.phone_id is not None
        reservation = await guardian.reserve(
            phone_id=message.phone_id,
            day=day,
            reservation_id=str(message.id),
            cost=1,
            limit=QUOTA,
            followup_cap=500,
        )
        assert reservation.allowed

    rest = await dispatch(batch_size=5)

    assert rest.whatsapp == PHONES * QUOTA - 5
    assert rest.waiting_quota == 1
    assert await count_messages(status=MessageStatus.QUEUED) == PHONES * QUOTA
    assert sorted((await _per_phone()).values()) == [QUOTA] * PHONES


async def test_the_rows_and_jobs_a_dispatch_writes(tenant: Any) -> None:
    phones = await add_phones(tenant, 2, quota=QUOTA)
    sequence_id = await add_sequence(tenant)
    leads = await add_leads(tenant, 3)
    before = utcnow()

    report = await dispatch(batch_size=2)

    assert (report.claimed, report.whatsapp, report.batches) == (3, 3, 2)
    async with transaction() as session:
        rows = (await session.execute(select(GoldCommunicationLog))).scalars().all()
        enrollments = {e.id: e for e in (await session.execute(select(SequenceEnrollment))).scalars()}
        journeys = {j.id: j for j in (await session.execute(select(GoldLeadJourney))).scalars()}
        sequence = await session.get(OutreachSequence, sequence_id)
        step = (
            await session.execute(
                select(OutreachSequenceStep).where(
                    OutreachSequenceStep.sequence_id == sequence_id, OutreachSequenceStep.step_number == 1
                )
            )
        ).scalar_one()
    assert sequence is not None and sequence.total_enrolled == 3
    assert sorted(r.lead_journey_id for r in rows) == sorted(leads)
    for row in rows:
        journey = journeys[row.lead_journey_id]
        enrollment = enrollments[row.enrollment_id] if row.enrollment_id else None
        assert enrollment is not None and enrollment.lead_journey_id == journey.id
        assert (enrollment.sequence_id, enrollment.current_step, enrollment.total_steps) == (
            sequence_id,
            0,
            2,
        )
        assert enrollment.status == EnrollmentStatus.ACTIVE and enrollment.enrolled_at >= before
        assert (row.status, row.channel, row.direction, row.origin) == (
            MessageStatus.QUEUED,
            Channel.WHATSAPP,
            Direction.OUTBOUND,
            "AUTOMATION",
        )
        assert (row.template_id, row.sequence_id, row.sequence_step) == (step.template_id, sequence_id, 1)
        assert row.template_version_id is None  # no versions recorded for these templates
        assert row.content.startswith("{Bună ziua|Salut}")
        company = row.content_rendered or ""
        assert company.startswith(("Bună ziua, de la Agro Ferma", "Salut, de la Agro Ferma"))
        assert row.raw_request == {"variant": "0" if company.startswith("Bună") else "1"}
        assert row.phone_id in phones and row.phone_number == journey.mobile_e164
        assert row.idempotency_key == f"wa/{row.id}"
        assert (row.quota_cost, row.quota_date, row.retry_count, row.max_retries) == (0, None, 0, 3)
        assert row.created_by == "dispatch" and row.created_at >= before
        assert journey.assigned_phone_id == row.phone_id and journey.assigned_at is not None
        assert journey.next_action_at is None
        assert journey.current_sequence_id == sequence_id and journey.sequence_started_at is not None
        job = await get_queue(phone_queue(row.phone_id)).getJobState(f"wa-{row.id}")
        assert job == "prioritized"  # a new contact waits behind follow-ups
