"""Templates as a product: CRUD with versions, lint on save, previews, A/B variants."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from cerniq.kit.db import transaction
from cerniq.models import AuditEntry, GoldCommunicationLog, OutreachTemplate, TemplateVersion
from cerniq.models.enums import Role
from cerniq.templates import service
from tests.fixtures.outreach import add_leads

BASE = "/api/v1/outreach/templates"
FIRST = (
    "{Bună ziua|Salut}, {{contactName|}}! Vă scriu despre {{companyName}} din {{judet|zona dumneavoastră}}."
)


async def create(api: Any, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body = {"name": "Prim contact", "channel": "WHATSAPP", "content": FIRST} | overrides
    response = await api.post(BASE, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_detects_variables_and_writes_version_one(
    api: Any, admin_headers: dict[str, str]
) -> None:
    created = await create(api, admin_headers)
    assert created["channel"] == "WHATSAPP"
    assert created["currentVersion"] == 1
    assert [v["name"] for v in created["variables"]] == ["contactName", "companyName", "judet"]
    required = {v["name"]: v["required"] for v in created["variables"]}
    assert required == {"contactName": False, "companyName": True, "judet": False}
    assert [v["versionNumber"] for v in created["versions"]] == [1]
    assert created["versions"][0]["content"] == FIRST
    assert created["stats"] == {
        "timesUsed": 0,
        "replies": 0,
        "positiveReplies": 0,
        "replyRate": 0.0,
        "positiveReplyRate": 0.0,
    }
    assert created["lint"] == []
    async with transaction() as session:
        actions = (await session.execute(select(AuditEntry.action))).scalars().all()
    assert "template.create" in actions


async def test_each_content_change_is_a_new_version(api: Any, admin_headers: dict[str, str]) -> None:
    created = await create(api, admin_headers, isApproved=True)
    tid = created["id"]
    r = await api.patch(
        f"{BASE}/{tid}",
        json={"content": "Revin pentru {{companyName}}: ați avut timp?", "changeNotes": "mai scurt"},
        headers=admin_headers,
    )
    assert r.status_code == 200, r.text
    r = await api.patch(
        f"{BASE}/{tid}", json={"content": "Revin iar pentru {{companyName}}."}, headers=admin_headers
    )
    body = r.json()
    assert body["currentVersion"] == 3
    assert body["content"] == "Revin iar pentru {{companyName}}."
    assert [v["versionNumber"] for v in body["versions"]] == [3, 2, 1]
    assert body["versions"][1]["changeNotes"] == "mai scurt"
    assert body["versions"][2]["content"] == FIRST  # history is kept as it was
    assert [v["isCurrent"] for v in body["versions"]] == [True, False, False]
    assert body["isApproved"] is False  # a new text needs approving again
    # a rename is not a new version
    r = await api.patch(f"{BASE}/{tid}", json={"name": "Revenire", "isApproved": True}, headers=admin_headers)
    assert r.json()["currentVersion"] == 3
    assert r.json()["isApproved"] is True


async def test_lint_blocks_unbalanced_braces_with_position(api: Any, admin_headers: dict[str, str]) -> None:
    content = "Bună ziua!\n{Salut|Hei pentru {{companyName}}"
    r = await api.post(
        BASE, json={"name": "Stricat", "channel": "WHATSAPP", "content": content}, headers=admin_headers
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "TEMPLATE_INVALID"
    (issue,) = error["details"]["issues"]
    assert issue["code"] == "UNBALANCED_BRACES"
    assert issue["position"] == content.index("{Salut")
    assert (issue["line"], issue["column"]) == (2, 1)
    async with transaction() as session:
        assert (await session.execute(select(func.count()).select_from(OutreachTemplate))).scalar_one() == 0


async def test_lint_blocks_an_empty_group_on_update_too(api: Any, admin_headers: dict[str, str]) -> None:
    created = await create(api, admin_headers)
    bad = "Bună ziua {} de la {{companyName}}"
    r = await api.patch(f"{BASE}/{created['id']}", json={"content": bad}, headers=admin_headers)
    assert r.status_code == 400
    (issue,) = r.json()["error"]["details"]["issues"]
    assert issue["code"] == "EMPTY_GROUP"
    assert issue["position"] == bad.index("{}")
    detail = (await api.get(f"{BASE}/{created['id']}", headers=admin_headers)).json()
    assert detail["currentVersion"] == 1 and detail["content"] == FIRST


async def test_warnings_do_not_block_and_come_back(api: Any, admin_headers: dict[str, str]) -> None:
    created = await create(
        api, admin_headers, content="Salut {{agentName}} de la {{companyName}}, {a|a} bine?"
    )
    codes = {w["code"] for w in created["lint"]}
    assert codes == {"UNRESOLVED_VARIABLE", "DUPLICATE_OPTION"}
    assert all(w["severity"] == "warning" for w in created["lint"])


async def test_lint_endpoint_for_the_live_editor(api: Any, admin_headers: dict[str, str]) -> None:
    r = await api.post(
        f"{BASE}/lint",
        json={
            "content": "Salut {{companyName}}, vedeți www.cerniq.ro",
            "channel": "WHATSAPP",
            "firstMessage": True,
        },
        headers=admin_headers,
    )
    body = r.json()
    assert body["valid"] is True
    assert [i["code"] for i in body["issues"]] == ["URL_IN_FIRST_MESSAGE"]
    assert body["variablesDetected"] == [{"name": "companyName", "required": True, "defaultValue": None}]
    r = await api.post(
        f"{BASE}/lint", json={"content": "Salut {a|}", "channel": "EMAIL"}, headers=admin_headers
    )
    body = r.json()
    assert body["valid"] is False
    assert body["issues"][0]["code"] == "EMPTY_OPTION"
    assert body["issues"][0]["position"] is not None


async def test_email_templates_need_a_subject_and_filter_as_email(
    api: Any, admin_headers: dict[str, str]
) -> None:
    r = await api.post(
        BASE, json={"name": "Email", "channel": "EMAIL_COLD", "content": FIRST}, headers=admin_headers
    )
    assert r.status_code == 400
    await create(api, admin_headers, name="Email rece", channel="EMAIL", subject="Pentru {{companyName}}")
    await create(api, admin_headers, name="Email cald", channel="EMAIL_WARM", subject="Re: ofertă")
    await create(api, admin_headers, name="WhatsApp")
    emails = (await api.get(BASE, params={"channel": "EMAIL"}, headers=admin_headers)).json()
    assert sorted(t["channel"] for t in emails["data"]) == ["EMAIL_COLD", "EMAIL_WARM"]
    assert emails["meta"]["total"] == 2
    only_wa = (await api.get(BASE, params={"channel": "WHATSAPP"}, headers=admin_headers)).json()
    assert [t["name"] for t in only_wa["data"]] == ["WhatsApp"]
    found = (await api.get(BASE, params={"search": "cald"}, headers=admin_headers)).json()
    assert [t["name"] for t in found["data"]] == ["Email cald"]
    r = await api.get(BASE, params={"channel": "SMS"}, headers=admin_headers)
    assert r.status_code == 400


async def test_content_limits_are_400(api: Any, admin_headers: dict[str, str]) -> None:
    r = await api.post(
        BASE, json={"name": "Scurt", "channel": "WHATSAPP", "content": "Salut"}, headers=admin_headers
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"
    r = await api.post(
        BASE, json={"name": "X", "channel": "WHATSAPP", "content": FIRST}, headers=admin_headers
    )
    assert r.status_code == 400
    r = await api.post(
        BASE, json={"name": "Lung", "channel": "WHATSAPP", "content": "a" * 4097}, headers=admin_headers
    )
    assert r.status_code == 400


async def test_preview_is_deterministic_with_a_seed(api: Any, admin_headers: dict[str, str]) -> None:
    created = await create(api, admin_headers)
    body = {"personalization": {"companyName": "Agro Sud SRL", "contactName": "Ion Popescu"}, "seed": "m-1"}
    first = (await api.post(f"{BASE}/{created['id']}/preview", json=body, headers=admin_headers)).json()
    again = (await api.post(f"{BASE}/{created['id']}/preview", json=body, headers=admin_headers)).json()
    assert first == again
    assert set(first) >= {
        "preview",
        "spintaxVariant",
        "variablesUsed",
        "missingVariables",
        "lint",
        "variantCount",
    }
    assert first["variantCount"] == 2
    assert first["preview"] in (
        "Bună ziua, Ion Popescu! Vă scriu despre Agro Sud SRL din zona dumneavoastră.",
        "Salut, Ion Popescu! Vă scriu despre Agro Sud SRL din zona dumneavoastră.",
    )
    assert first["variablesUsed"] == ["contactName", "companyName", "judet"]
    assert first["missingVariables"] == []
    assert first["sendable"] is True
    # the reported variant re-renders the same text
    replay = {"personalization": body["personalization"], "spintaxVariant": first["spintaxVariant"]}
    again = (await api.post(f"{BASE}/{created['id']}/preview", json=replay, headers=admin_headers)).json()
    assert again["preview"] == first["preview"]
    # and different seeds reach both greetings
    texts = set()
    for n in range(20):
        r = await api.post(
            f"{BASE}/{created['id']}/preview", json=body | {"seed": f"s{n}"}, headers=admin_headers
        )
        texts.add(r.json()["preview"].split(",")[0])
    assert texts == {"Bună ziua", "Salut"}


async def test_preview_reports_missing_variables(api: Any, admin_headers: dict[str, str]) -> None:
    created = await create(api, admin_headers)
    r = await api.post(
        f"{BASE}/{created['id']}/preview",
        json={"personalization": {"contactName": "Ana"}, "seed": 1},
        headers=admin_headers,
    )
    body = r.json()
    assert body["missingVariables"] == ["companyName"]
    assert "{{companyName}}" in body["preview"]
    assert body["sendable"] is False
    assert [i["code"] for i in body["lint"]] == ["UNRESOLVED_VARIABLE"]


async def test_preview_for_a_lead(api: Any, admin_headers: dict[str, str], tenant: Any) -> None:
    created = await create(api, admin_headers)
    (lead,) = await add_leads(tenant, 1)
    r = await api.post(
        f"{BASE}/{created['id']}/preview", json={"leadId": str(lead), "seed": "x"}, headers=admin_headers
    )
    body = r.json()
    assert "Agro Ferma 1 SRL din Timiș" in body["preview"]
    assert body["lead"]["id"] == str(lead)
    r = await api.post(
        f"{BASE}/{created['id']}/preview", json={"leadId": str(uuid.uuid4())}, headers=admin_headers
    )
    assert r.status_code == 404


async def test_delete_is_soft(api: Any, admin_headers: dict[str, str]) -> None:
    created = await create(api, admin_headers)
    r = await api.delete(f"{BASE}/{created['id']}", headers=admin_headers)
    assert r.status_code == 204
    detail = (await api.get(f"{BASE}/{created['id']}", headers=admin_headers)).json()
    assert detail["isActive"] is False
    active = (await api.get(BASE, params={"isActive": "true"}, headers=admin_headers)).json()
    assert active["data"] == []


async def test_variants_split_sends_by_weight_deterministically(
    api: Any, admin_headers: dict[str, str], tenant: Any
) -> None:
    created = await create(api, admin_headers)
    r = await api.post(
        f"{BASE}/{created['id']}/variants",
        json={
            "content": "Bună ziua! Cerniq ajută {{companyName}} să vândă recolta.",
            "label": "B",
            "weight": 30,
        },
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    variant_b = r.json()
    assert variant_b["isAbVariant"] is True and variant_b["abWeight"] == 30
    too_much = await api.post(
        f"{BASE}/{created['id']}/variants",
        json={"content": "Altă variantă pentru {{companyName}}.", "label": "C", "weight": 71},
        headers=admin_headers,
    )
    assert too_much.status_code == 400
    async with transaction() as session:
        template = await session.get(OutreachTemplate, uuid.UUID(created["id"]))
        assert template is not None
        cache = service.VariantCache(session)
        picks = [await service.pick_variant(cache, template, f"msg-{n}") for n in range(2000)]
        again = [await service.pick_variant(session, template, f"msg-{n}") for n in range(50)]
    counts = Counter(p.version_id for p in picks)
    control_id = uuid.UUID(created["versions"][0]["id"])
    assert set(counts) == {control_id, uuid.UUID(variant_b["id"])}
    share_b = counts[uuid.UUID(variant_b["id"])] / len(picks)
    assert 0.25 < share_b < 0.35
    assert again == picks[:50]
    b_pick = next(p for p in picks if p.version_id == uuid.UUID(variant_b["id"]))
    assert b_pick.content.startswith("Bună ziua! Cerniq")

    # results per variant: sends, replies, positive replies
    async with transaction() as session:
        for outcome in ("SENT", "SENT", "REPLIED", "POSITIVE_REPLY"):
            await service.record_variant_outcome(
                session,
                template_id=uuid.UUID(created["id"]),
                template_version_id=uuid.UUID(variant_b["id"]),
                outcome=outcome,
            )
    detail = (await api.get(f"{BASE}/{created['id']}", headers=admin_headers)).json()
    assert detail["stats"]["timesUsed"] == 2
    assert detail["stats"]["replyRate"] == 0.5
    by_label = {v["label"]: v for v in detail["variants"]}
    assert by_label["B"]["weight"] == 30
    assert by_label["B"]["stats"]["timesUsed"] == 2
    assert by_label["B"]["stats"]["positiveReplies"] == 1
    control = next(v for v in detail["variants"] if v["isControl"])
    assert control["weight"] == 70 and control["stats"]["timesUsed"] == 0

    # retiring the variant sends everything to the current text again
    r = await api.delete(f"{BASE}/{created['id']}/variants/{variant_b['id']}", headers=admin_headers)
    assert r.status_code == 204
    async with transaction() as session:
        template = await session.get(OutreachTemplate, uuid.UUID(created["id"]))
        assert template is not None
        picks = [await service.pick_variant(session, template, f"msg-{n}") for n in range(100)]
        version = await session.get(TemplateVersion, uuid.UUID(variant_b["id"]))
    assert {p.version_id for p in picks} == {control_id}
    assert version is not None and version.times_used == 2  # history and results stay


async def test_record_reply_counts_positive_from_50(
    api: Any, admin_headers: dict[str, str], tenant: Any
) -> None:
    created = await create(api, admin_headers)
    version_id = uuid.UUID(created["versions"][0]["id"])
    message = GoldCommunicationLog(template_id=uuid.UUID(created["id"]), template_version_id=version_id)
    async with transaction() as session:
        await service.record_message_outcome(session, message, service.Outcome.SENT)
        await service.record_reply(session, message, sentiment_score=49)
        await service.record_reply(session, message, sentiment_score=50)
    detail = (await api.get(f"{BASE}/{created['id']}", headers=admin_headers)).json()
    assert detail["stats"]["replies"] == 2
    assert detail["stats"]["positiveReplies"] == 1
    assert detail["versions"][0]["stats"]["replies"] == 2


async def test_viewer_reads_but_cannot_write(
    api: Any, tenant: Any, make_token: Any, admin_headers: dict[str, str]
) -> None:
    created = await create(api, admin_headers)
    viewer = await make_token(tenant, Role.VIEWER)
    assert (await api.get(BASE, headers=viewer)).status_code == 200
    assert (await api.get(f"{BASE}/{created['id']}", headers=viewer)).status_code == 200
    preview = await api.post(f"{BASE}/{created['id']}/preview", json={"seed": "1"}, headers=viewer)
    assert preview.status_code == 200
    body = {"name": "Nou", "channel": "WHATSAPP", "content": FIRST}
    assert (await api.post(BASE, json=body, headers=viewer)).status_code == 403
    assert (
        await api.patch(f"{BASE}/{created['id']}", json={"name": "Altul"}, headers=viewer)
    ).status_code == 403
    assert (await api.delete(f"{BASE}/{created['id']}", headers=viewer)).status_code == 403


async def test_other_tenant_gets_404(
    api: Any, admin_headers: dict[str, str], other_tenant: Any, make_token: Any
) -> None:
    created = await create(api, admin_headers)
    other = await make_token(other_tenant, Role.ADMIN)
    assert (await api.get(f"{BASE}/{created['id']}", headers=other)).status_code == 404
    assert (
        await api.patch(f"{BASE}/{created['id']}", json={"name": "Furat"}, headers=other)
    ).status_code == 404
    assert (await api.post(f"{BASE}/{created['id']}/preview", json={}, headers=other)).status_code == 404
    assert (await api.get(BASE, headers=other)).json()["data"] == []
    assert (await api.get(f"{BASE}/not-a-uuid", headers=other)).status_code == 404
