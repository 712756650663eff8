"""The sequence engine with real dispatch: enrolled leads are sent their step, the next step is
scheduled on the business clock, skip conditions hold, and the default content is sendable."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from cerniq.auth.principal import system_principal
from cerniq.config import get_settings
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import transaction
from cerniq.messaging.dispatch import dispatch
from cerniq.models import (
    GoldCommunicationLog,
    GoldLeadJourney,
    OutreachSequence,
    OutreachTemplate,
    SequenceEnrollment,
)
from cerniq.models.enums import Channel, Direction, EnrollmentStatus, MessageStatus
from cerniq.sequences import engine
from cerniq.sequences import service as sequences
from cerniq.sequences.schemas import StepIn
from cerniq.templates import service as templates
from cerniq.templates.render import lead_variables, lint, render
from tests.fixtures.outreach import add_leads, add_phones

BUCHAREST = ZoneInfo("Europe/Bucharest")


async def make_sequence(
    tenant: Any,
    *,
    skip_if_replied: tuple[bool, ...] = (True, True, True),
    skip_if_opened: tuple[bool, ...] = (False, False, False),
    stop_on_reply: bool = True,
    channel: str = "WHATSAPP",
) -> tuple[OutreachSequence, list[OutreachTemplate]]:
    principal = system_principal(tenant.id, "test")
    subject = None if channel == "WHATSAPP" else "Pentru {{companyName}}"
    async with transaction() as session:
        made = []
        for n, text in enumerate(
            (
                "{Bună ziua|Salut}! Cerniq scrie pentru {{companyName}} din {{judet|zona dvs}}.",
                "Revin pentru {{companyName}}: ați avut timp să vă uitați?",
                "Ultimul mesaj pentru {{companyName}}, vă mulțumim.",
            ),
            start=1,
        ):
            template, _ = await templates.create_template(
                session, principal, name=f"Pas {n}", channel=channel, content=text, subject=subject
            )
            made.append(template)
        steps = [
            StepIn(
                templateId=t.id,
                delayHours=(0, 72, 120)[i],
                channel=channel,
                skipIfReplied=skip_if_replied[i],
                skipIfOpened=skip_if_opened[i],
            )
            for i, t in enumerate(made)
        ]
        sequence, _ = await sequences.create_sequence(
            session, principal, name="Secvență test", steps=steps, stop_on_reply=stop_on_reply
        )
    return sequence, made


async def enroll(tenant: Any, sequence: OutreachSequence, leads: list[uuid.UUID]) -> dict[str, Any]:
    async with transaction() as session:
        return await sequences.enroll_leads(
            session, system_principal(tenant.id, "test"), sequence.id, [str(x) for x in leads]
        )


@pytest.fixture
def always_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERNIQ_BUSINESS_HOURS_ALWAYS_OPEN", "true")
    get_settings.cache_clear()


async def test_dispatch_sends_an_enrolled_lead_its_step(tenant: Any, always_open: None) -> None:
    await add_phones(tenant, 1)
    sequence, made = await make_sequence(tenant)
    enrolled, idle = await add_leads(tenant, 2)
    result = await enroll(tenant, sequence, [enrolled])
    assert result["enrolled"] == 1

    report = await dispatch()
    assert report.whatsapp == 1

    async with transaction() as session:
        row = (await session.execute(select(GoldCommunicationLog))).scalar_one()
        journey = await session.get(GoldLeadJourney, enrolled)
        other = await session.get(GoldLeadJourney, idle)
    assert row.lead_journey_id == enrolled
    assert row.status == MessageStatus.QUEUED
    assert row.sequence_id == sequence.id and row.sequence_step == 1
    assert row.template_id == made[0].id
    variables = lead_variables({"denumire": "Agro Ferma 1 SRL", "judet": "Timiș", "localitate": "Lugoj"})
    expected = render(made[0].content, variables, seed=str(row.id)).text
    assert row.content_rendered == expected
    assert "Agro Ferma 1 SRL din Timiș" in expected
    assert journey is not None and journey.next_action_at is None  # in flight
    # the other lead had no enrollment and the tenant no default sequence: nothing for it
    assert other is not None and other.next_action_at is None


async def test_after_send_schedules_the_next_step_on_the_business_clock(tenant: Any) -> None:
    sequence, _ = await make_sequence(tenant)
    (lead,) = await add_leads(tenant, 1)
    result = await enroll(tenant, sequence, [lead])
    enrollment_id = uuid.UUID(result["enrollments"][0]["enrollmentId"])
    clock = BusinessClock.from_settings(get_settings())
    # Thursday 5 March 2026, 16:00 in Bucharest; +72 h is Sunday afternoon: closed
    sent_at = datetime(2026, 3, 5, 16, 0, tzinfo=BUCHAREST).astimezone(UTC)
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
        assert journey is not None
        await engine.after_send(session, journey, enrollment_id=enrollment_id, step_number=1, sent_at=sent_at)
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
        enrollment = await session.get(SequenceEnrollment, enrollment_id)
    assert journey is not None and enrollment is not None
    monday_opening = datetime(2026, 3, 9, 9, 0, tzinfo=BUCHAREST)
    assert journey.next_action_at == monday_opening
    assert enrollment.next_step_at == monday_opening
    assert clock.is_open(journey.next_action_at)
    assert enrollment.current_step == 1 and enrollment.messages_sent == 1

    # after the last step the enrollment completes and nothing more is due
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
        assert journey is not None
        await engine.after_send(session, journey, enrollment_id=enrollment_id, step_number=3, sent_at=sent_at)
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
        enrollment = await session.get(SequenceEnrollment, enrollment_id)
    assert enrollment is not None and enrollment.status == EnrollmentStatus.COMPLETED
    assert journey is not None and journey.next_action_at is None


async def add_inbound(tenant: Any, journey_id: uuid.UUID) -> None:
    async with transaction() as session:
        session.add(
            GoldCommunicationLog(
                tenant_id=tenant.id,
                lead_journey_id=journey_id,
                channel=Channel.WHATSAPP,
                direction=Direction.INBOUND,
                status=MessageStatus.RECEIVED,
                origin="WEBHOOK",
                content="Bună ziua, revin eu săptămâna viitoare.",
            )
        )


async def test_skip_if_replied_skips_the_step_and_reschedules_the_next(tenant: Any) -> None:
    sequence, made = await make_sequence(tenant, skip_if_replied=(True, True, False), stop_on_reply=False)
    replied, silent = await add_leads(tenant, 2)
    await enroll(tenant, sequence, [replied, silent])
    async with transaction() as session:
        for enrollment in (await session.execute(select(SequenceEnrollment))).scalars():
            enrollment.current_step = 1  # step 1 went out
    await add_inbound(tenant, replied)

    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, silent)
        assert journey is not None
        plan = await engine.next_step(session, journey)
    assert plan is not None and plan.step.step_number == 2 and plan.template is not None
    assert plan.template.id == made[1].id

    before = utcnow()
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, replied)
        assert journey is not None
        assert await engine.next_step(session, journey) is None
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, replied)
        enrollment = (
            await session.execute(
                select(SequenceEnrollment).where(SequenceEnrollment.lead_journey_id == replied)
            )
        ).scalar_one()
    assert enrollment.current_step == 2  # step 2 counts as done
    assert enrollment.status == EnrollmentStatus.ACTIVE
    assert journey is not None and journey.next_action_at is not None
    clock = BusinessClock.from_settings(get_settings())
    assert journey.next_action_at == clock.next_opening(journey.next_action_at)
    assert journey.next_action_at >= before + timedelta(hours=120)

    # when step 3 is due it is sent (it does not skip on reply)
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, replied)
        sequence_row = await session.get(OutreachSequence, sequence.id)
        enrollment = await session.get(SequenceEnrollment, enrollment.id)
        assert journey is not None and sequence_row is not None and enrollment is not None
        steps = await engine.active_steps(session, sequence.id)
        decision = await engine.resolve_step(
            session, journey, enrollment, sequence_row, steps, now=journey.next_action_at
        )
    assert decision.step is not None and decision.step.step_number == 3


async def test_a_reply_before_enrollment_does_not_skip(tenant: Any) -> None:
    sequence, _ = await make_sequence(tenant, stop_on_reply=False)
    (lead,) = await add_leads(tenant, 1)
    await add_inbound(tenant, lead)
    await enroll(tenant, sequence, [lead])
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
        assert journey is not None
        plan = await engine.next_step(session, journey)
    assert plan is not None and plan.step.step_number == 1


async def test_skip_if_opened_skips_after_an_open(tenant: Any) -> None:
    sequence, _ = await make_sequence(
        tenant,
        channel="EMAIL_COLD",
        skip_if_replied=(False, False, False),
        skip_if_opened=(False, True, False),
    )
    (lead,) = await add_leads(tenant, 1, email=True)
    result = await enroll(tenant, sequence, [lead])
    enrollment_id = uuid.UUID(result["enrollments"][0]["enrollmentId"])
    async with transaction() as session:
        enrollment = await session.get(SequenceEnrollment, enrollment_id)
        assert enrollment is not None
        enrollment.current_step = 1
        session.add(
            GoldCommunicationLog(
                tenant_id=tenant.id,
                lead_journey_id=lead,
                channel=Channel.EMAIL_COLD,
                direction=Direction.OUTBOUND,
                status=MessageStatus.OPENED,
                content="x",
                enrollment_id=enrollment_id,
                sequence_id=sequence.id,
                sequence_step=1,
                opened_at=utcnow(),
            )
        )
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
        assert journey is not None
        assert await engine.next_step(session, journey) is None
        enrollment = await session.get(SequenceEnrollment, enrollment_id)
    assert enrollment is not None and enrollment.current_step == 2


async def test_stop_on_reply(tenant: Any) -> None:
    sequence, _ = await make_sequence(tenant)
    (lead,) = await add_leads(tenant, 1)
    await enroll(tenant, sequence, [lead])
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
        assert journey is not None
        assert await engine.on_reply(session, journey) is True
    async with transaction() as session:
        enrollment = (await session.execute(select(SequenceEnrollment))).scalar_one()
        journey = await session.get(GoldLeadJourney, lead)
    assert enrollment.status == EnrollmentStatus.STOPPED and enrollment.stop_reason == "LEAD_REPLIED"
    assert enrollment.replies == 1
    assert journey is not None and journey.next_action_at is None


async def test_next_step_picks_the_ab_variant_for_the_message(tenant: Any) -> None:
    sequence, made = await make_sequence(tenant)
    (lead,) = await add_leads(tenant, 1)
    await enroll(tenant, sequence, [lead])
    principal = system_principal(tenant.id, "test")
    async with transaction() as session:
        await templates.add_variant(
            session, principal, made[0].id, content="Varianta B pentru {{companyName}}.", label="B", weight=50
        )
    seen: dict[uuid.UUID | None, str] = {}
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
        assert journey is not None
        for n in range(40):
            plan = await engine.next_step(session, journey, seed=f"message-{n}")
            assert plan is not None and plan.version_id is not None
            seen[plan.version_id] = plan.content
            template = await session.get(OutreachTemplate, made[0].id)
            assert template is not None
            assert (
                await templates.pick_variant(session, template, f"message-{n}")
            ).version_id == plan.version_id
    assert len(seen) == 2
    assert "Varianta B pentru {{companyName}}." in seen.values()
    assert made[0].content in seen.values()


async def test_default_content_is_idempotent_and_sendable(tenant: Any) -> None:
    async with transaction() as session:
        sequence, made = await sequences.ensure_default_content(session, tenant.id)
    async with transaction() as session:
        again, made_again = await sequences.ensure_default_content(session, tenant.id)
        count = (await session.execute(select(func.count()).select_from(OutreachSequence))).scalar_one()
        steps = await engine.active_steps(session, sequence.id)
    assert again.id == sequence.id and [t.id for t in made_again] == [t.id for t in made]
    assert count == 2
    assert sequence.name == "Cerniq WhatsApp standard" and sequence.is_default
    assert [(s.step_number, s.delay_hours, s.channel) for s in steps] == [
        (1, 0, Channel.WHATSAPP),
        (2, 72, Channel.WHATSAPP),
        (3, 120, Channel.WHATSAPP),
    ]
    assert {t.channel for t in made} == {Channel.WHATSAPP, Channel.EMAIL_COLD}
    full = lead_variables({"denumire": "Agro Sud SRL", "judet": "Iași"}, {"full_name": "Maria Ionescu"})
    bare = lead_variables({"denumire": "Agro Sud SRL"})
    for template in made:
        assert [i for i in lint(template.content, first_message=True)] == [], template.name
        for n in range(30):
            for values in (full, bare):
                text = render(template.content, values, seed=n)
                assert text.missing_variables == []
                assert "Agro Sud SRL" in text.text
                assert "{" not in text.text and "}" not in text.text
                if template.subject:
                    assert render(template.subject, values, seed=n).missing_variables == []
    first = next(t for t in made if t.code == "CERNIQ_WA_INIT")
    assert "Cerniq" in first.content


async def test_the_send_path_schedules_the_next_step_as_after_send(
    tenant: Any, always_open: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The WhatsApp send path reads the enrollment, its sequence and the following step with its
    # row lock (messaging.repository.lock_for_sent_many) and schedules with after_send_known_many.
    from cerniq.messaging import repository as messaging

    await add_phones(tenant, 1)
    sequence, _ = await make_sequence(tenant)
    (lead,) = await add_leads(tenant, 1)
    await enroll(tenant, sequence, [lead])
    assert (await dispatch()).whatsapp == 1
    async with transaction() as session:
        row = (await session.execute(select(GoldCommunicationLog))).scalar_one()
    assert row.enrollment_id is not None and row.sequence_step == 1
    monkeypatch.setenv("CERNIQ_BUSINESS_HOURS_ALWAYS_OPEN", "false")  # dispatched: back to the clock
    get_settings.cache_clear()
    sent_at = datetime(2026, 3, 5, 16, 0, tzinfo=BUCHAREST).astimezone(UTC)

    async def record(step: int) -> None:
        async with transaction() as session:
            found = (await messaging.lock_for_sent_many(session, [row.id])).get(row.id)
            assert found is not None
            await engine.after_send_known_many(
                session, [engine.KnownSend(found.journey, found.enrollment_id, step, sent_at, found.step)]
            )

    await record(1)
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
        enrollment = await session.get(SequenceEnrollment, row.enrollment_id)
    assert journey is not None and enrollment is not None
    monday_opening = datetime(2026, 3, 9, 9, 0, tzinfo=BUCHAREST)  # +72 h is a Sunday
    assert journey.next_action_at == monday_opening and enrollment.next_step_at == monday_opening
    assert enrollment.current_step == 1 and enrollment.messages_sent == 1
    assert journey.sequence_step == 1

    # the row's step is the last active one once the later steps are off: the enrollment completes
    async with transaction() as session:
        for step in await engine.active_steps(session, sequence.id):
            step.is_active = step.step_number == 1
    await record(1)
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
        enrollment = await session.get(SequenceEnrollment, row.enrollment_id)
    assert enrollment is not None and enrollment.status == EnrollmentStatus.COMPLETED
    assert enrollment.messages_sent == 2
    assert journey is not None and journey.next_action_at is None


async def test_two_sends_of_one_enrollment_in_one_batch_both_count(tenant: Any, always_open: None) -> None:
    # advance_enrollments merges a batch's sends per enrollment: one UPDATE cannot apply two
    # rows of its FROM list to the same enrollment, so each must be counted before it runs.
    from cerniq.sequences import repository as sequence_repository

    await add_phones(tenant, 1)
    sequence, _ = await make_sequence(tenant)
    (lead,) = await add_leads(tenant, 1)
    await enroll(tenant, sequence, [lead])
    async with transaction() as session:
        enrollment = (await session.execute(select(SequenceEnrollment))).scalar_one()
        first, later = utcnow() + timedelta(days=1), utcnow() + timedelta(days=3)
        current = await sequence_repository.advance_enrollments(
            session, [(enrollment.id, 2, later), (enrollment.id, 1, first), (uuid.uuid4(), 1, first)]
        )
    assert current == {enrollment.id: 2}  # the unknown enrollment is simply missing
    async with transaction() as session:
        stored = await session.get(SequenceEnrollment, enrollment.id)
    assert stored is not None
    assert (stored.current_step, stored.messages_sent) == (2, 2)
    assert stored.next_step_at == later  # the later step's due wins


async def test_enrollments_in_two_transactions_at_once_both_count(tenant: Any) -> None:
    # Each transaction read the sequence (total_enrolled 0) before the other committed: the
    # counter adds in the database instead of writing back what each one read.
    from cerniq.kit.db import session_maker

    sequence, _ = await make_sequence(tenant)
    first, second = await add_leads(tenant, 2)
    maker = session_maker()
    async with maker() as one, maker() as two:
        seen_by_one = await one.get(OutreachSequence, sequence.id)
        seen_by_two = await two.get(OutreachSequence, sequence.id)
        assert seen_by_one is not None and seen_by_two is not None
        assert seen_by_one.total_enrolled == seen_by_two.total_enrolled == 0
        lead_one = await one.get(GoldLeadJourney, first)
        assert lead_one is not None
        await engine.enroll(one, lead_one, seen_by_one)
        await one.commit()
        lead_two = await two.get(GoldLeadJourney, second)
        assert lead_two is not None
        await engine.enroll(two, lead_two, seen_by_two)
        assert seen_by_two.total_enrolled == 2  # the object shows the stored total
        await two.commit()
    async with transaction() as session:
        stored = await session.get(OutreachSequence, sequence.id)
    assert stored is not None and stored.total_enrolled == 2
