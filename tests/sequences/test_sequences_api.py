"""Sequences as a product: CRUD and validation, one default, enrollment, pause / resume, stats."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from cerniq.kit.db import transaction
from cerniq.models import AuditEntry, GoldLeadJourney, OutreachSequence, SequenceEnrollment
from cerniq.models.enums import EnrollmentStatus, LeadState, Role
from cerniq.ops import system_state
from tests.fixtures.outreach import add_leads

SEQ = "/api/v1/outreach/sequences"
TPL = "/api/v1/outreach/templates"


async def template(
    api: Any, headers: dict[str, str], channel: str = "WHATSAPP", name: str = "Prim contact"
) -> str:
    body: dict[str, Any] = {
        "name": name,
        "channel": channel,
        "content": "{Bună ziua|Salut}! Vă scriu pentru {{companyName}} din {{judet|zona dvs}}.",
    }
    if channel != "WHATSAPP":
        body["subject"] = "Pentru {{companyName}}"
    r = await api.post(TPL, json=body, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def steps(*template_ids: str, delays: tuple[int, ...] = (0, 72, 120)) -> list[dict[str, Any]]:
    return [
        {"delayHours": delays[i], "channel": "WHATSAPP", "templateId": tid}
        for i, tid in enumerate(template_ids)
    ]


async def create(api: Any, headers: dict[str, str], tid: str, **overrides: Any) -> dict[str, Any]:
    body = {"name": "WhatsApp standard", "steps": steps(tid, tid, tid)} | overrides
    r = await api.post(SEQ, json=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_create_and_read_a_sequence(api: Any, admin_headers: dict[str, str]) -> None:
    tid = await template(api, admin_headers)
    created = await create(api, admin_headers, tid, description="Trei pași", isDefault=True)
    assert created["isDefault"] is True and created["isActive"] is True
    assert [(s["stepNumber"], s["delayHours"], s["delayLabel"]) for s in created["steps"]] == [
        (1, 0, "0h"),
        (2, 72, "+72h"),
        (3, 120, "+120h"),
    ]
    assert created["steps"][0]["templateName"] == "Prim contact"
    assert created["stats"]["enrollments"] == 0
    listed = (await api.get(SEQ, headers=admin_headers)).json()
    assert [s["name"] for s in listed["data"]] == ["WhatsApp standard"]
    assert listed["data"][0]["counts"] == {
        "enrolled": 0,
        "active": 0,
        "completed": 0,
        "stopped": 0,
        "replied": 0,
    }
    assert listed["meta"]["total"] == 1
    async with transaction() as session:
        actions = (await session.execute(select(AuditEntry.action))).scalars().all()
    assert "sequence.create" in actions


async def test_step_validation_is_400(
    api: Any, admin_headers: dict[str, str], other_tenant: Any, make_token: Any
) -> None:
    wa = await template(api, admin_headers)
    email = await template(api, admin_headers, channel="EMAIL_COLD", name="Email")
    unknown = str(uuid.uuid4())
    r = await api.post(SEQ, json={"name": "Greșit", "steps": steps(unknown)}, headers=admin_headers)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "TEMPLATE_NOT_FOUND"
    assert r.json()["error"]["details"]["step"] == 1
    r = await api.post(SEQ, json={"name": "Greșit", "steps": steps(wa, email)}, headers=admin_headers)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "TEMPLATE_CHANNEL_MISMATCH"
    assert r.json()["error"]["details"]["step"] == 2
    eleven = [{"delayHours": 24, "channel": "WHATSAPP", "templateId": wa}] * 11
    r = await api.post(SEQ, json={"name": "Prea lung", "steps": eleven}, headers=admin_headers)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"
    r = await api.post(SEQ, json={"name": "Fără pași", "steps": []}, headers=admin_headers)
    assert r.status_code == 400
    r = await api.post(
        SEQ,
        json={"name": "Întârziere", "steps": [{"delayHours": 721, "channel": "WHATSAPP", "templateId": wa}]},
        headers=admin_headers,
    )
    assert r.status_code == 400
    r = await api.post(
        SEQ,
        json={
            "name": "Minute",
            "steps": [{"delayHours": 1, "delayMinutes": 60, "channel": "WHATSAPP", "templateId": wa}],
        },
        headers=admin_headers,
    )
    assert r.status_code == 400
    # another tenant's template is as unknown as a random id
    other = await make_token(other_tenant, Role.ADMIN)
    foreign = await template(api, other, name="Străin")
    r = await api.post(SEQ, json={"name": "Străin", "steps": steps(foreign)}, headers=admin_headers)
    assert r.json()["error"]["code"] == "TEMPLATE_NOT_FOUND"
    # an email step may use an email template of either email channel
    r = await api.post(
        SEQ,
        json={
            "name": "Email",
            "primaryChannel": "EMAIL",
            "steps": [{"channel": "EMAIL_WARM", "templateId": email}],
        },
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["primaryChannel"] == "EMAIL_COLD"
    async with transaction() as session:
        names = (await session.execute(select(OutreachSequence.name))).scalars().all()
    assert names == ["Email"]


async def test_first_whatsapp_message_with_a_link_is_warned(api: Any, admin_headers: dict[str, str]) -> None:
    tid = await template(api, admin_headers)
    body = {
        "name": "Cu link",
        "steps": [
            {
                "channel": "WHATSAPP",
                "templateId": tid,
                "contentOverride": "Salut! Vedeți www.cerniq.ro pentru detalii.",
            }
        ],
    }
    r = await api.post(SEQ, json=body, headers=admin_headers)
    assert r.status_code == 201
    assert [(w["code"], w["step"]) for w in r.json()["warnings"]] == [("URL_IN_FIRST_MESSAGE", 1)]
    bad = {
        "name": "Stricat",
        "steps": [{"channel": "WHATSAPP", "templateId": tid, "contentOverride": "Salut {a|} ok"}],
    }
    r = await api.post(SEQ, json=bad, headers=admin_headers)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "TEMPLATE_INVALID"


async def test_only_one_default_sequence(api: Any, admin_headers: dict[str, str]) -> None:
    tid = await template(api, admin_headers)
    first = await create(api, admin_headers, tid, name="Prima", isDefault=True)
    second = await create(api, admin_headers, tid, name="A doua", isDefault=True)
    async with transaction() as session:
        defaults = (
            (
                await session.execute(
                    select(OutreachSequence.name).where(OutreachSequence.is_default.is_(True))
                )
            )
            .scalars()
            .all()
        )
    assert defaults == ["A doua"]
    r = await api.patch(f"{SEQ}/{first['id']}", json={"isDefault": True}, headers=admin_headers)
    assert r.json()["isDefault"] is True
    assert (await api.get(f"{SEQ}/{second['id']}", headers=admin_headers)).json()["isDefault"] is False


async def test_patch_and_replace_steps(api: Any, admin_headers: dict[str, str], tenant: Any) -> None:
    tid = await template(api, admin_headers)
    created = await create(api, admin_headers, tid)
    r = await api.patch(
        f"{SEQ}/{created['id']}", json={"name": "Redenumită", "stopOnReply": False}, headers=admin_headers
    )
    assert r.json()["name"] == "Redenumită" and r.json()["stopOnReply"] is False
    (lead,) = await add_leads(tenant, 1)
    await api.post(f"{SEQ}/{created['id']}/enroll", json={"leadIds": [str(lead)]}, headers=admin_headers)
    r = await api.put(
        f"{SEQ}/{created['id']}/steps", json={"steps": steps(tid, tid, delays=(0, 48))}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    assert [(s["stepNumber"], s["delayHours"]) for s in r.json()["steps"]] == [(1, 0), (2, 48)]
    async with transaction() as session:
        enrollment = (await session.execute(select(SequenceEnrollment))).scalar_one()
    assert enrollment.total_steps == 2 and enrollment.status == EnrollmentStatus.ACTIVE


async def test_enroll_reports_enrolled_and_skipped_with_reasons(
    api: Any, admin_headers: dict[str, str], tenant: Any
) -> None:
    tid = await template(api, admin_headers)
    sequence = await create(api, admin_headers, tid)
    other = await create(api, admin_headers, tid, name="Alta")
    ok, dead, human, opted, busy = await add_leads(tenant, 5)
    async with transaction() as session:
        rows = {j.id: j for j in (await session.execute(select(GoldLeadJourney))).scalars()}
        rows[dead].current_state = LeadState.DEAD
        rows[human].is_human_controlled = True
        rows[opted].whatsapp_opted_out = True
    r = await api.post(f"{SEQ}/{other['id']}/enroll", json={"leadIds": [str(busy)]}, headers=admin_headers)
    assert r.json()["enrolled"] == 1
    missing = str(uuid.uuid4())
    ids = [str(ok), str(dead), str(human), str(opted), str(busy), missing, "nonsense", str(ok)]
    r = await api.post(f"{SEQ}/{sequence['id']}/enroll", json={"leadIds": ids}, headers=admin_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["enrolled"] == 1
    assert [(s["leadId"], s["reason"]) for s in body["skipped"]] == [
        (str(dead), "LEAD_DEAD"),
        (str(human), "HUMAN_CONTROLLED"),
        (str(opted), "OPTED_OUT_WHATSAPP"),
        (str(busy), "ALREADY_ENROLLED"),
        (missing, "NOT_FOUND"),
        (str(ok), "DUPLICATE"),
    ]
    assert body["errors"] == [{"leadId": "nonsense", "reason": "INVALID_ID", "message": "not a UUID"}]
    assert body["enrollments"][0]["journeyId"] == str(ok)
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, ok)
    assert journey is not None
    assert journey.current_sequence_id == uuid.UUID(sequence["id"])
    assert journey.next_action_at is not None
    detail = (await api.get(f"{SEQ}/{sequence['id']}", headers=admin_headers)).json()
    assert detail["stats"]["enrollments"] == 1 and detail["stats"]["active"] == 1


async def test_lead_enroll_convenience(api: Any, admin_headers: dict[str, str], tenant: Any) -> None:
    tid = await template(api, admin_headers)
    sequence = await create(api, admin_headers, tid)
    (lead,) = await add_leads(tenant, 1)
    url = f"/api/v1/outreach/leads/{lead}/enroll"
    r = await api.post(url, json={"sequenceId": sequence["id"]}, headers=admin_headers)
    assert r.status_code == 201, r.text
    assert r.json()["journeyId"] == str(lead)
    r = await api.post(url, json={"sequenceId": sequence["id"]}, headers=admin_headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "ALREADY_ENROLLED"
    r = await api.post(
        f"/api/v1/outreach/leads/{uuid.uuid4()}/enroll",
        json={"sequenceId": sequence["id"]},
        headers=admin_headers,
    )
    assert r.status_code == 404


async def test_delete_refuses_while_enrolled_unless_forced(
    api: Any, admin_headers: dict[str, str], tenant: Any
) -> None:
    tid = await template(api, admin_headers)
    sequence = await create(api, admin_headers, tid)
    (lead,) = await add_leads(tenant, 1)
    await api.post(f"{SEQ}/{sequence['id']}/enroll", json={"leadIds": [str(lead)]}, headers=admin_headers)
    r = await api.delete(f"{SEQ}/{sequence['id']}", headers=admin_headers)
    assert r.status_code == 409
    assert r.json()["error"]["details"]["activeEnrollments"] == 1
    # the template is in use by the sequence: it cannot be deleted either
    assert (await api.delete(f"{TPL}/{tid}", headers=admin_headers)).status_code == 409
    r = await api.delete(f"{SEQ}/{sequence['id']}", params={"force": "true"}, headers=admin_headers)
    assert r.status_code == 204
    async with transaction() as session:
        enrollment = (await session.execute(select(SequenceEnrollment))).scalar_one()
        journey = await session.get(GoldLeadJourney, lead)
    assert enrollment.status == EnrollmentStatus.STOPPED and enrollment.stop_reason == "SEQUENCE_DELETED"
    assert journey is not None and journey.next_action_at is None
    assert (await api.get(SEQ, headers=admin_headers)).json()["data"] == []
    assert (await api.get(f"{SEQ}/{sequence['id']}", headers=admin_headers)).json()["status"] == "ARCHIVED"
    assert (await api.delete(f"{TPL}/{tid}", headers=admin_headers)).status_code == 204


async def test_pause_and_resume(api: Any, admin_headers: dict[str, str], tenant: Any) -> None:
    tid = await template(api, admin_headers)
    sequence = await create(api, admin_headers, tid)
    (lead,) = await add_leads(tenant, 1)
    await api.post(f"{SEQ}/{sequence['id']}/enroll", json={"leadIds": [str(lead)]}, headers=admin_headers)
    r = await api.post(f"{SEQ}/{sequence['id']}/pause", headers=admin_headers)
    assert r.json()["isActive"] is False and r.json()["status"] == "PAUSED"
    # while paused, dispatch drops the lead's next action; resume makes it due again
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
        assert journey is not None
        journey.next_action_at = None
    # during an emergency stop a sequence is not reactivated
    async with transaction() as session:
        await system_state.put_state(session, system_state.EMERGENCY_STOP, {"active": True, "reason": "test"})
    r = await api.post(f"{SEQ}/{sequence['id']}/resume", headers=admin_headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "EMERGENCY_STOP_ACTIVE"
    async with transaction() as session:
        await system_state.put_state(session, system_state.EMERGENCY_STOP, {"active": False})
    r = await api.post(f"{SEQ}/{sequence['id']}/resume", headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["isActive"] is True and r.json()["leadsDueAgain"] == 1
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, lead)
    assert journey is not None and journey.next_action_at is not None


async def test_enrollment_stats_per_sequence(api: Any, admin_headers: dict[str, str], tenant: Any) -> None:
    tid = await template(api, admin_headers)
    sequence = await create(api, admin_headers, tid)
    leads = await add_leads(tenant, 3)
    await api.post(
        f"{SEQ}/{sequence['id']}/enroll", json={"leadIds": [str(x) for x in leads]}, headers=admin_headers
    )
    async with transaction() as session:
        enrollment = (await session.execute(select(SequenceEnrollment).limit(1))).scalar_one()
        enrollment.status = EnrollmentStatus.COMPLETED
        enrollment.current_step = 3
    rows = (await api.get(f"{SEQ}/stats", headers=admin_headers)).json()
    assert rows == [
        {
            "sequenceId": sequence["id"],
            "name": "WhatsApp standard",
            "status": "ACTIVE",
            "isActive": True,
            "enrollments": 3,
            "active": 2,
            "completions": 1,
            "stopped": 0,
            "replied": 0,
            "conversions": 0,
            "avgStepsCompleted": 1.0,
            "responseRate": 0.0,
        }
    ]


async def test_viewer_403_and_other_tenant_404(
    api: Any, admin_headers: dict[str, str], tenant: Any, other_tenant: Any, make_token: Any
) -> None:
    tid = await template(api, admin_headers)
    sequence = await create(api, admin_headers, tid)
    viewer = await make_token(tenant, Role.VIEWER)
    assert (await api.get(f"{SEQ}/{sequence['id']}", headers=viewer)).status_code == 200
    body = {"name": "Nouă", "steps": steps(tid)}
    assert (await api.post(SEQ, json=body, headers=viewer)).status_code == 403
    assert (await api.post(f"{SEQ}/{sequence['id']}/pause", headers=viewer)).status_code == 403
    assert (
        await api.post(
            f"{SEQ}/{sequence['id']}/enroll", json={"leadIds": [str(uuid.uuid4())]}, headers=viewer
        )
    ).status_code == 403
    other = await make_token(other_tenant, Role.ADMIN)
    assert (await api.get(f"{SEQ}/{sequence['id']}", headers=other)).status_code == 404
    assert (
        await api.patch(f"{SEQ}/{sequence['id']}", json={"name": "Furată"}, headers=other)
    ).status_code == 404
    assert (await api.post(f"{SEQ}/{sequence['id']}/pause", headers=other)).status_code == 404
    assert (await api.delete(f"{SEQ}/{sequence['id']}", headers=other)).status_code == 404
    assert (await api.get(SEQ, headers=other)).json()["data"] == []
    assert (await api.get(f"{SEQ}/stats", headers=other)).json() == []
