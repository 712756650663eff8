"""Human takeover, release, operators' own messages and phone reassignment, over HTTP against real
PostgreSQL and Redis, with the sandbox (TimelinesAI) and a worker for the sends."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from cerniq.config import get_settings
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.messaging.service import queue_message
from cerniq.models import (
    AuditEntry,
    GoldCommunicationLog,
    GoldLeadJourney,
    HitlAuditEntry,
    OutreachSequence,
    SequenceEnrollment,
    WaPhoneNumber,
)
from cerniq.models.enums import (
    Channel,
    Direction,
    EnrollmentStatus,
    LeadState,
    MessageStatus,
    PhoneStatus,
    ReviewPriority,
    Role,
)
from cerniq.quota.guardian import QuotaGuardian
from cerniq.sequences import engine
from cerniq.worker.queues import get_queue
from tests.fixtures.outreach import add_sequence, wait_for
from tests.messaging.conftest import sandbox, sandbox_server, sent_messages
from tests.reviews.seed import inbound, journey_row, open_for, warm_lead

__all__ = ["sandbox", "sandbox_server"]

URL = "/api/v1/outreach/leads"


@pytest.fixture
async def operator(tenant: Any, make_token: Any) -> dict[str, str]:
    return dict(await make_token(tenant, Role.OPERATOR, "ops"))


@pytest.fixture
async def viewer(tenant: Any, make_token: Any) -> dict[str, str]:
    return dict(await make_token(tenant, Role.VIEWER, "viewer"))


async def messages_of(journey_id: uuid.UUID) -> list[GoldCommunicationLog]:
    async with transaction() as session:
        rows = await session.execute(
            select(GoldCommunicationLog)
            .where(
                GoldCommunicationLog.lead_journey_id == journey_id,
                GoldCommunicationLog.direction == Direction.OUTBOUND,
            )
            .order_by(GoldCommunicationLog.created_at)
        )
        return list(rows.scalars())


async def queue_automated(journey_id: uuid.UUID, text: str, origin: str = "AUTOMATION") -> uuid.UUID:
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        row = await queue_message(session, journey, channel=Channel.WHATSAPP, content=text, origin=origin)
        return row.id


async def start_worker() -> Any:
    from cerniq.worker.runner import WorkerProcess

    process = WorkerProcess(get_settings(), lock_duration_ms=5000, stalled_interval_ms=2000, grace_seconds=5)
    await process.start()
    return process


async def stop_worker(process: Any) -> None:
    from cerniq.messaging.vendors import close_vendors

    await process.stop()
    await close_vendors()


# ---------------------------------------------------------------------------------------------
# Takeover


async def test_under_takeover_no_automated_message_goes_out_but_the_operators_does(
    api: Any, tenant: Any, sandbox: Any, operator: dict[str, str]
) -> None:
    lead = await warm_lead(tenant, state=LeadState.COLD, phones=2)
    sequence = await add_sequence(tenant)
    async with transaction() as session:  # the lead is in a sequence whose step is already queued
        journey = await session.get(GoldLeadJourney, lead)
        sequence_row = await session.get(OutreachSequence, sequence)
        assert journey is not None and sequence_row is not None
        await engine.enroll(session, journey, sequence_row)
    follow_up = await queue_automated(lead, "Revin cu oferta noastră automată.")
    ai_answer = await queue_automated(lead, "Răspuns generat automat.", origin="AI")

    response = await api.post(
        f"{URL}/{lead}/takeover", json={"reason": "Clientul vrea să vorbească cu un om"}, headers=operator
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["isHumanControlled"] is True
    assert body["messagesSkipped"] == 2 and body["sequencesStopped"] == 1
    rows = {m.id: m for m in await messages_of(lead)}
    for row_id in (follow_up, ai_answer):
        assert rows[row_id].status == MessageStatus.SKIPPED
        assert rows[row_id].error_code == "HUMAN_TAKEOVER"
    journey = await journey_row(lead)
    assert journey.human_control_reason == "Clientul vrea să vorbească cu un om"
    assert journey.human_controlled_at is not None
    assert journey.next_action_at is None
    async with transaction() as session:
        enrollment = (await session.execute(select(SequenceEnrollment))).scalar_one()
    assert enrollment.status == EnrollmentStatus.STOPPED and enrollment.stop_reason == "HUMAN_TAKEOVER"

    # automation can no longer queue anything for the lead
    with pytest.raises(Exception, match="HUMAN_TAKEOVER"):
        await queue_automated(lead, "încă unul")

    # the operator's own message goes out, and only it
    response = await api.post(
        f"{URL}/{lead}/send-message",
        json={"channel": "WHATSAPP", "content": "Bună ziua, sunt Ana de la Cerniq. Vă sun mâine?"},
        headers=operator,
    )
    assert response.status_code == 200, response.text
    sent = response.json()
    assert sent["status"] == "QUEUED" and sent["messageId"]
    worker = await start_worker()
    try:

        async def delivered() -> bool:
            return any(m.status == MessageStatus.SENT for m in await messages_of(lead))

        await wait_for(delivered)
    finally:
        await stop_worker(worker)
    texts = [m["text"] for m in sent_messages(sandbox)]
    assert texts == ["Bună ziua, sunt Ana de la Cerniq. Vă sun mâine?"]
    operator_row = next(m for m in await messages_of(lead) if str(m.id) == sent["messageId"])
    assert operator_row.origin == "OPERATOR" and operator_row.status == MessageStatus.SENT


async def test_the_send_job_rechecks_takeover_before_calling_the_vendor(tenant: Any, sandbox: Any) -> None:
    lead = await warm_lead(tenant, state=LeadState.COLD)
    queued = await queue_automated(lead, "Mesaj de secvență")
    # the flag is set behind the queue's back (another process took the lead over just now)
    async with transaction() as session:
        await session.execute(
            update(GoldLeadJourney).where(GoldLeadJourney.id == lead).values(is_human_controlled=True)
        )
    worker = await start_worker()
    try:

        async def skipped() -> bool:
            return (await messages_of(lead))[0].status == MessageStatus.SKIPPED

        await wait_for(skipped)
    finally:
        await stop_worker(worker)
    (row,) = await messages_of(lead)
    assert row.id == queued and row.error_code == "HUMAN_TAKEOVER"
    assert sent_messages(sandbox) == []


async def test_takeover_twice_is_a_conflict_and_the_reason_is_checked(
    api: Any, tenant: Any, operator: dict[str, str]
) -> None:
    lead = await warm_lead(tenant)
    short = await api.post(f"{URL}/{lead}/takeover", json={"reason": "scurt"}, headers=operator)
    assert short.status_code == 400
    first = await api.post(
        f"{URL}/{lead}/takeover", json={"reason": "negociere de preț directă"}, headers=operator
    )
    assert first.status_code == 200
    second = await api.post(
        f"{URL}/{lead}/takeover", json={"reason": "negociere de preț directă"}, headers=operator
    )
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "ALREADY_HUMAN_CONTROLLED"
    # the lead detail (runbook 5.3 step 1) shows it
    detail = await api.get(f"{URL}/{lead}", headers=operator)
    assert detail.json()["isHumanControlled"] is True
    async with transaction() as session:
        actions = list((await session.execute(select(AuditEntry.action))).scalars())
    assert actions.count("lead.takeover") == 1


async def test_takeover_is_recorded_on_the_leads_open_reviews(
    api: Any, tenant: Any, operator: dict[str, str]
) -> None:
    lead = await warm_lead(tenant)
    review = await open_for(lead, await inbound(lead, "Sunați-mă."), priority=ReviewPriority.HIGH)
    response = await api.post(
        f"{URL}/{lead}/takeover", json={"reason": "clientul cere un apel"}, headers=operator
    )
    assert response.status_code == 200
    async with transaction() as session:
        actions = list(
            (
                await session.execute(select(HitlAuditEntry.action).where(HitlAuditEntry.review_id == review))
            ).scalars()
        )
    assert "TAKEOVER_INITIATED" in actions


async def test_release_returns_to_automation_where_it_stopped(
    api: Any, tenant: Any, operator: dict[str, str]
) -> None:
    lead = await warm_lead(tenant, state=LeadState.CONTACTED_WA)
    sequence = await add_sequence(tenant, steps=3)
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
        sequence_row = await session.get(OutreachSequence, sequence)
        assert journey is not None and sequence_row is not None
        enrollment = await engine.enroll(session, journey, sequence_row)
        enrollment.current_step = 1
    not_controlled = await api.post(
        f"{URL}/{lead}/release", json={"returnToAutomation": True}, headers=operator
    )
    assert not_controlled.status_code == 409
    await api.post(f"{URL}/{lead}/takeover", json={"reason": "apel telefonic programat"}, headers=operator)
    response = await api.post(f"{URL}/{lead}/release", json={"returnToAutomation": True}, headers=operator)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["isHumanControlled"] is False and body["returnedToAutomation"] is True
    assert body["sequence"]["id"] == str(sequence) and body["sequence"]["currentStep"] == 1
    journey = await journey_row(lead)
    assert not journey.is_human_controlled and journey.human_controlled_at is None
    assert journey.next_action_at is not None and not journey.sequence_paused
    async with transaction() as session:
        (enrollment,) = (await session.execute(select(SequenceEnrollment))).scalars().all()
    assert enrollment.status == EnrollmentStatus.ACTIVE and enrollment.current_step == 1

    await api.post(f"{URL}/{lead}/takeover", json={"reason": "apel telefonic programat"}, headers=operator)
    quiet = await api.post(f"{URL}/{lead}/release", headers=operator)  # no body: just release
    assert quiet.status_code == 200, quiet.text
    assert quiet.json()["returnedToAutomation"] is False
    assert (await journey_row(lead)).next_action_at is None


# ---------------------------------------------------------------------------------------------
# Operators' messages


async def test_warm_email_only_for_leads_that_replied(
    api: Any, tenant: Any, operator: dict[str, str]
) -> None:
    cold = await warm_lead(tenant, state=LeadState.COLD)
    response = await api.post(
        f"{URL}/{cold}/send-message", json={"channel": "EMAIL_WARM", "content": "Oferta"}, headers=operator
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "LEAD_NOT_WARM"
    assert await messages_of(cold) == []

    warm = await warm_lead(tenant, n=2, phones=0)
    # runbook 3.1 step 6, as written (no subject)
    response = await api.post(
        f"{URL}/{warm}/send-message",
        content='{"channel": "EMAIL_WARM", "content": "Vă trimit oferta pe email."}',
        headers={**operator, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "QUEUED"
    (row,) = await messages_of(warm)
    assert row.channel == Channel.EMAIL_WARM and row.origin == "OPERATOR"
    assert row.email == "office2@ferma2.ro"
    assert row.subject == "Cerniq - Agro Ferma 2 SRL"


async def test_a_first_whatsapp_contact_needs_quota(api: Any, tenant: Any, operator: dict[str, str]) -> None:
    lead = await warm_lead(tenant, state=LeadState.COLD, phones=2)
    async with transaction() as session:
        await session.execute(update(WaPhoneNumber).values(daily_quota_limit=3))
    day = datetime.now(ZoneInfo("Europe/Bucharest")).date()
    await QuotaGuardian(get_redis()).set_usage("phone_01", day, 3)
    response = await api.post(
        f"{URL}/{lead}/send-message", json={"channel": "WHATSAPP", "content": "Bună ziua!"}, headers=operator
    )
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "QUOTA_EXCEEDED"
    details = error["details"]
    assert details["phoneId"] == "phone_01"
    assert details["quotaUsed"] == 3 and details["quotaLimit"] == 3
    assert details["resetAt"] and details["alternativePhoneAvailable"] is True
    assert await messages_of(lead) == []

    # a lead already in a WhatsApp conversation costs no quota: its message is queued
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
        assert journey is not None
        session.add(
            GoldCommunicationLog(
                tenant_id=tenant.id,
                lead_journey_id=lead,
                channel=Channel.WHATSAPP,
                direction=Direction.OUTBOUND,
                status=MessageStatus.DELIVERED,
                origin="AUTOMATION",
                content="primul mesaj",
                phone_id="phone_01",
                quota_cost=1,
            )
        )
    response = await api.post(
        f"{URL}/{lead}/send-message", json={"channel": "WHATSAPP", "content": "Revin!"}, headers=operator
    )
    assert response.status_code == 200, response.text
    assert response.json()["newContact"] is False


async def test_send_message_input_checks(
    api: Any, tenant: Any, operator: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERNIQ_BUSINESS_HOURS_ALWAYS_OPEN", "false")
    get_settings.cache_clear()
    lead = await warm_lead(tenant)
    tz = ZoneInfo("Europe/Bucharest")
    local_now = utcnow().astimezone(tz)
    sunday = (local_now + timedelta(days=(6 - local_now.weekday()) % 7 or 7)).replace(
        hour=12, minute=0, second=0, microsecond=0
    )
    cases = [
        ({"channel": "WHATSAPP", "content": ""}, 400, "VALIDATION_ERROR"),
        ({"channel": "WHATSAPP", "content": "x" * 4097}, 400, "VALIDATION_ERROR"),
        ({"channel": "EMAIL_COLD", "content": "x"}, 400, "VALIDATION_ERROR"),
        (
            {
                "channel": "WHATSAPP",
                "content": "x",
                "scheduledAt": (utcnow() - timedelta(hours=1)).isoformat(),
            },
            400,
            "VALIDATION_ERROR",
        ),
        (
            {"channel": "WHATSAPP", "content": "x", "scheduledAt": sunday.isoformat()},
            400,
            "OUTSIDE_BUSINESS_HOURS",
        ),
        ({"channel": "WHATSAPP", "content": "x", "templateId": str(uuid.uuid4())}, 400, "VALIDATION_ERROR"),
    ]
    for body, status, code in cases:
        response = await api.post(f"{URL}/{lead}/send-message", json=body, headers=operator)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] == code, body
    monday = sunday + timedelta(days=1, hours=-2)  # 10:00 on the next Monday (or a holiday?)
    from cerniq.kit.clock import BusinessClock

    if BusinessClock.from_settings(get_settings()).is_open(monday):
        response = await api.post(
            f"{URL}/{lead}/send-message",
            json={"channel": "WHATSAPP", "content": "Programat", "scheduledAt": monday.isoformat()},
            headers=operator,
        )
        assert response.status_code == 200, response.text
        assert datetime.fromisoformat(response.json()["scheduledAt"]) == monday
        (row,) = await messages_of(lead)
        assert row.scheduled_at == monday
    assert (
        await api.post(
            f"{URL}/{uuid.uuid4()}/send-message", json=cases[0][0] | {"content": "x"}, headers=operator
        )
    ).status_code == 404


async def test_an_offline_phone_is_reported_and_reassign_phone_fixes_it(
    api: Any, tenant: Any, operator: dict[str, str]
) -> None:
    lead = await warm_lead(tenant, phones=3)
    async with transaction() as session:
        await session.execute(
            update(GoldLeadJourney).where(GoldLeadJourney.id == lead).values(wa_chat_id="12345")
        )
        await session.execute(
            update(WaPhoneNumber).where(WaPhoneNumber.id == "phone_01").values(status=PhoneStatus.OFFLINE)
        )
        await session.execute(
            update(WaPhoneNumber).where(WaPhoneNumber.id == "phone_02").values(status=PhoneStatus.BANNED)
        )
    # runbook 5.3 step 2: the operator sees why nothing goes out
    detail = await api.get(f"{URL}/{lead}", headers=operator)
    assert detail.json()["assignedPhone"]["status"] == "OFFLINE"
    blocked = await api.post(
        f"{URL}/{lead}/send-message", json={"channel": "WHATSAPP", "content": "Bună!"}, headers=operator
    )
    assert blocked.status_code == 409
    assert blocked.json()["error"]["code"] == "PHONE_NOT_ACTIVE"
    # step 3, as written: POST without a body
    response = await api.post(f"{URL}/{lead}/reassign-phone", headers=operator)
    assert response.status_code == 200, response.text
    assert response.json()["assignedPhone"] == {
        "id": "phone_03",
        "label": "Cerniq Sales 3",
        "status": "ACTIVE",
    }
    journey = await journey_row(lead)
    assert journey.assigned_phone_id == "phone_03" and journey.wa_chat_id is None
    sent = await api.post(
        f"{URL}/{lead}/send-message", json={"channel": "WHATSAPP", "content": "Bună!"}, headers=operator
    )
    assert sent.status_code == 200 and sent.json()["phoneId"] == "phone_03"
    # an explicit phone must be ACTIVE
    banned = await api.post(f"{URL}/{lead}/reassign-phone", json={"phoneId": "phone_02"}, headers=operator)
    assert banned.status_code == 409
    assert (
        await api.post(f"{URL}/{lead}/reassign-phone", json={"phoneId": "phone_99"}, headers=operator)
    ).status_code == 404
    async with transaction() as session:
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "lead.reassign_phone"))
        ).scalar_one()
    assert audit.before == {"assignedPhoneId": "phone_01", "waChatId": "12345"}


async def test_reassign_moves_queued_messages_to_the_new_phone(
    api: Any, tenant: Any, operator: dict[str, str]
) -> None:
    lead = await warm_lead(tenant, phones=2)
    await api.post(
        f"{URL}/{lead}/takeover", json={"reason": "discuție directă cu fermierul"}, headers=operator
    )
    queued = await api.post(
        f"{URL}/{lead}/send-message",
        json={"channel": "WHATSAPP", "content": "Vă scriu acum."},
        headers=operator,
    )
    assert queued.status_code == 200
    response = await api.post(f"{URL}/{lead}/reassign-phone", json={"phoneId": "phone_02"}, headers=operator)
    assert response.json()["messagesMoved"] == 1
    (row,) = await messages_of(lead)
    assert row.phone_id == "phone_02" and row.status == MessageStatus.QUEUED
    assert await get_queue("q:wa:phone_02").getJob(f"wa-{row.id}") is not None
    assert await get_queue("q:wa:phone_01").getJob(f"wa-{row.id}") is None


# ---------------------------------------------------------------------------------------------
# Roles and tenancy


async def test_viewer_and_other_tenant(
    api: Any, tenant: Any, other_tenant: Any, viewer: dict[str, str], make_token: Any
) -> None:
    lead = await warm_lead(tenant)
    stranger = await make_token(other_tenant, Role.ADMIN, "stranger")
    calls = [
        ("takeover", {"reason": "motiv suficient de lung"}),
        ("release", {"returnToAutomation": False}),
        ("send-message", {"channel": "WHATSAPP", "content": "x"}),
        ("reassign-phone", None),
    ]
    for path, body in calls:
        response = await api.post(f"{URL}/{lead}/{path}", json=body, headers=viewer)
        assert response.status_code == 403, path
        response = await api.post(f"{URL}/{lead}/{path}", json=body, headers=stranger)
        assert response.status_code == 404, path
    journey = await journey_row(lead)
    assert not journey.is_human_controlled and journey.assigned_phone_id == "phone_01"
    assert await messages_of(lead) == []
