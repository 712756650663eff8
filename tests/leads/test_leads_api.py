"""``/api/v1/outreach/leads`` over HTTP (in process) against real PostgreSQL: import uploads,
filters, search, sorting, paging, the detail shape the runbook reads, edits, roles and tenancy."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.leads import endpoints, service
from cerniq.leads.importer import CsvReader
from cerniq.models import (
    AuditEntry,
    GoldCommunicationLog,
    GoldCompany,
    GoldLeadJourney,
    HumanReview,
    LeadStateHistory,
    OutreachSequence,
    SequenceEnrollment,
    WaPhoneNumber,
)
from cerniq.models.enums import (
    Channel,
    Direction,
    LeadState,
    MessageStatus,
    ReviewPriority,
    ReviewReason,
    Role,
)

URL = "/api/v1/outreach/leads"
SAMPLE = Path(__file__).parent.parent / "fixtures" / "leads_sample.csv"

SEED = (
    "denumire,cui,judet,email,telefon\n"
    "Agro Ferma Nord SRL,18302400,Cluj,office@agrofermanord.ro,0722 123 456\n"
    "Cereale Banat SA,14214101,Timiș,contact@cerealebanat.ro,0256 123 456\n"
    "Legume Moldova SRL,34500000,Iași,,0745 000 111\n"
    "Vie 100% Naturală SRL,15900825,Prahova,vinuri@vievin.ro,\n"
    "Ferma_Dunărea SRL,27788998,Constanța,,0733 333 333\n"
)
KEYS = {
    "Agro Ferma Nord SRL": "A",
    "Cereale Banat SA": "B",
    "Legume Moldova SRL": "C",
    "Vie 100% Naturală SRL": "D",
    "Ferma_Dunărea SRL": "E",
}


async def seed(tenant: Any) -> dict[str, uuid.UUID]:
    """Five leads in different states; returns journey ids by company initial (A..E)."""
    async with transaction() as session:
        await service.import_leads(
            session, tenant.id, CsvReader(io.StringIO(SEED, newline="")), principal=None, source="seed.csv"
        )
        session.add(
            WaPhoneNumber(tenant_id=tenant.id, phone_number="+40700000001", phone_label="Cerniq Sales 1")
        )
        await session.flush()
        rows = await session.execute(
            select(GoldCompany.denumire, GoldLeadJourney.id).join(
                GoldLeadJourney, GoldLeadJourney.lead_id == GoldCompany.id
            )
        )
        by = {KEYS[name]: journey_id for name, journey_id in rows.all()}
        now = utcnow()
        changes: dict[str, dict[str, Any]] = {
            "A": {
                "current_state": LeadState.CONTACTED_WA,
                "last_channel_used": Channel.WHATSAPP,
                "assigned_phone_id": "phone_01",
                "sentiment_score": 60,
                "reply_count": 2,
                "last_contact_at": now - timedelta(days=1),
                "next_action_at": now + timedelta(hours=2),
            },
            "B": {
                "current_state": LeadState.CONTACTED_EMAIL,
                "last_channel_used": Channel.EMAIL_COLD,
                "sentiment_score": -40,
                "requires_human_review": True,
                "last_contact_at": now - timedelta(days=3),
                "next_action_at": None,
            },
            "C": {
                "current_state": LeadState.WARM_REPLY,
                "is_human_controlled": True,
                "sentiment_score": 20,
                "reply_count": 1,
                "next_action_at": now + timedelta(hours=1),
            },
        }
        for key, values in changes.items():
            await session.execute(
                update(GoldLeadJourney).where(GoldLeadJourney.id == by[key]).values(**values)
            )
    return by


def names(body: dict[str, Any]) -> list[str]:
    return [item["company"]["denumire"] for item in body["data"]]


@pytest.fixture
async def viewer(tenant: Any, make_token: Any) -> dict[str, str]:
    return dict(await make_token(tenant, Role.VIEWER, "viewer"))


@pytest.fixture
async def operator(tenant: Any, make_token: Any) -> dict[str, str]:
    return dict(await make_token(tenant, Role.OPERATOR, "ops"))


# ---------------------------------------------------------------------------------------------
# List


async def test_list_shape_default_sort_and_paging(api: Any, tenant: Any, viewer: dict[str, str]) -> None:
    ids = await seed(tenant)
    response = await api.get(URL, headers=viewer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"] == {
        "page": 1,
        "limit": 20,
        "total": 5,
        "pages": 1,
        "filters": {},
        "sortBy": "nextActionAt",
        "sortOrder": "asc",
        "totalExact": True,
    }
    # next action ascending, nulls last: the two imported COLD leads (due now), then C, A, B.
    assert names(body)[2:] == ["Legume Moldova SRL", "Agro Ferma Nord SRL", "Cereale Banat SA"]
    agro = body["data"][3]
    assert agro["id"] == str(ids["A"])
    assert agro["currentState"] == "CONTACTED_WA"
    assert agro["company"] == {
        "id": agro["leadId"],
        "denumire": "Agro Ferma Nord SRL",
        "cui": "18302400",
        "judet": "Cluj",
        "localitate": None,
        "emailPrincipal": "office@agrofermanord.ro",
        "telefonPrincipal": "+40722123456",
    }
    assert agro["assignedPhone"] == {
        "id": "phone_01",
        "label": "Cerniq Sales 1",
        "phoneNumber": "+40700000001",
        "status": "ACTIVE",
    }
    assert (agro["sentimentScore"], agro["replyCount"], agro["requiresHumanReview"]) == (60, 2, False)
    assert agro["isHumanControlled"] is False
    assert agro["currentSequence"] is None
    for key in ("lastContactAt", "lastReplyAt", "nextActionAt", "createdAt"):
        assert key in agro

    response = await api.get(URL, params={"sortBy": "companyName", "limit": 2, "page": 2}, headers=viewer)
    body = response.json()
    assert names(body) == ["Ferma_Dunărea SRL", "Legume Moldova SRL"]
    assert {k: body["meta"][k] for k in ("page", "limit", "total", "pages")} == {
        "page": 2,
        "limit": 2,
        "total": 5,
        "pages": 3,
    }
    body = (await api.get(URL, params={"sortBy": "companyName", "sortOrder": "desc"}, headers=viewer)).json()
    assert names(body)[0] == "Vie 100% Naturală SRL"
    body = (
        await api.get(URL, params={"sortBy": "sentimentScore", "sortOrder": "desc"}, headers=viewer)
    ).json()
    assert names(body)[0] == "Agro Ferma Nord SRL"
    assert names(body)[-1] == "Cereale Banat SA"
    body = (
        await api.get(URL, params={"sortBy": "lastContactAt", "sortOrder": "desc"}, headers=viewer)
    ).json()
    assert names(body)[:2] == ["Agro Ferma Nord SRL", "Cereale Banat SA"]  # nulls last, also descending


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "COLD"}, {"Vie 100% Naturală SRL", "Ferma_Dunărea SRL"}),
        ({"state": "cold,WARM_REPLY"}, {"Vie 100% Naturală SRL", "Ferma_Dunărea SRL", "Legume Moldova SRL"}),
        ({"channel": "WHATSAPP"}, {"Agro Ferma Nord SRL"}),
        ({"assignedPhone": "phone_01"}, {"Agro Ferma Nord SRL"}),
        ({"hasReply": "true"}, {"Agro Ferma Nord SRL", "Legume Moldova SRL"}),
        ({"hasReply": "false"}, {"Cereale Banat SA", "Vie 100% Naturală SRL", "Ferma_Dunărea SRL"}),
        ({"needsReview": "true"}, {"Cereale Banat SA"}),
        # the flag alone is not an open review in the queue
        ({"hasOpenReview": "true"}, set()),
        (
            {"hasOpenReview": "false"},
            {"Agro Ferma Nord SRL", "Cereale Banat SA", "Legume Moldova SRL"}
            | {"Vie 100% Naturală SRL", "Ferma_Dunărea SRL"},
        ),
        ({"isHumanControlled": "true"}, {"Legume Moldova SRL"}),
        ({"minSentiment": 1}, {"Agro Ferma Nord SRL", "Legume Moldova SRL"}),
        ({"maxSentiment": -1}, {"Cereale Banat SA"}),
        ({"minSentiment": 10, "maxSentiment": 30}, {"Legume Moldova SRL"}),
        ({"createdAfter": "2099-01-01T00:00:00"}, set()),
        ({"createdBefore": "2099-01-01T00:00:00Z", "state": "NEGOTIATION"}, set()),
        # search: CUI with or without RO, phone as typed or E.164, name, email, wildcards literal
        ({"search": "18302400"}, {"Agro Ferma Nord SRL"}),
        ({"search": "RO18302400"}, {"Agro Ferma Nord SRL"}),
        ({"search": "0722 123 456"}, {"Agro Ferma Nord SRL"}),
        ({"search": "+40722123456"}, {"Agro Ferma Nord SRL"}),
        ({"search": "0256123456"}, {"Cereale Banat SA"}),
        ({"search": "cereale"}, {"Cereale Banat SA"}),
        ({"search": "vievin.ro"}, {"Vie 100% Naturală SRL"}),
        ({"search": "100%"}, {"Vie 100% Naturală SRL"}),
        ({"search": "_"}, {"Ferma_Dunărea SRL"}),
        ({"search": "%"}, {"Vie 100% Naturală SRL"}),
        ({"search": "nimic"}, set()),
    ],
)
async def test_filters_and_search(
    api: Any, tenant: Any, viewer: dict[str, str], params: dict[str, Any], expected: set[str]
) -> None:
    await seed(tenant)
    response = await api.get(URL, params=params, headers=viewer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(names(body)) == expected
    assert body["meta"]["total"] == len(expected)
    for key in params:
        assert key in body["meta"]["filters"]


@pytest.mark.parametrize(
    "params",
    [
        {"sortBy": "denumire"},
        {"sortOrder": "up"},
        {"limit": 101},
        {"limit": 0},
        {"page": 0},
        {"state": "LOST"},
        {"channel": "SMS"},
        {"minSentiment": 200},
        {"minSentiment": 50, "maxSentiment": 10},
        {"createdAfter": "yesterday"},
    ],
)
async def test_bad_list_parameters_are_400(
    api: Any, tenant: Any, viewer: dict[str, str], params: dict[str, Any]
) -> None:
    response = await api.get(URL, params=params, headers=viewer)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


# ---------------------------------------------------------------------------------------------
# Detail


async def test_paging_any_sort_gives_every_lead_once_in_order_nulls_last(
    api: Any, tenant: Any, viewer: dict[str, str]
) -> None:
    """Leads with a value in the sort column are paged apart from those without (an index
    order each); the pages must still join into one ordered list with the nulls last."""
    from tests.fixtures.outreach import add_leads

    ids = await add_leads(tenant, 9)
    now = utcnow()
    async with transaction() as session:
        for n, journey in enumerate(ids):
            valued = n % 3 != 0  # a third without next action or last contact
            await session.execute(
                update(GoldLeadJourney)
                .where(GoldLeadJourney.id == journey)
                .values(
                    next_action_at=now + timedelta(hours=n % 4) if valued else None,
                    last_contact_at=now - timedelta(hours=n % 4) if valued else None,
                    sentiment_score=(n % 4) * 10,
                )
            )
    for sort in ("nextActionAt", "lastContactAt", "sentimentScore", "createdAt", "companyName"):
        for order in ("asc", "desc"):
            params: dict[str, Any] = {"sortBy": sort, "sortOrder": order}
            whole = (await api.get(URL, params=params | {"limit": 100}, headers=viewer)).json()["data"]
            paged: list[Any] = []
            for page in (1, 2, 3, 4, 5):
                body = (await api.get(URL, params=params | {"limit": 2, "page": page}, headers=viewer)).json()
                paged += body["data"]
            assert [i["id"] for i in paged] == [i["id"] for i in whole], (sort, order)
            assert len({i["id"] for i in whole}) == 9
            if sort in ("nextActionAt", "lastContactAt"):
                values = [i[sort] for i in whole]
                assert values[-3:] == [None] * 3 and None not in values[:-3], (sort, order)
                present = values[:-3]
                assert present == sorted(present, reverse=order == "desc"), (sort, order)


async def test_a_broad_listing_counts_only_so_far_past_its_page(
    api: Any, tenant: Any, viewer: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 1M leads an exact count of a broad filter costs seconds: the total stops a fixed
    number of leads past the page and says it is a lower bound."""
    from cerniq.leads import repository

    await seed(tenant)
    monkeypatch.setattr(repository, "COUNT_AHEAD", 1)
    meta = (await api.get(URL, params={"limit": 2}, headers=viewer)).json()["meta"]
    assert (meta["total"], meta["pages"], meta["totalExact"]) == (3, 2, False)
    meta = (await api.get(URL, params={"limit": 2, "page": 2}, headers=viewer)).json()["meta"]
    assert (meta["total"], meta["pages"], meta["totalExact"]) == (5, 3, True)


async def test_detail_has_what_the_runbook_reads(api: Any, tenant: Any, viewer: dict[str, str]) -> None:
    ids = await seed(tenant)
    now = utcnow()
    async with transaction() as session:
        sequence = OutreachSequence(tenant_id=tenant.id, name="WA standard")
        session.add(sequence)
        await session.flush()
        session.add(
            SequenceEnrollment(
                tenant_id=tenant.id, lead_journey_id=ids["A"], sequence_id=sequence.id, total_steps=3
            )
        )
        await session.execute(
            update(GoldLeadJourney)
            .where(GoldLeadJourney.id == ids["A"])
            .values(current_sequence_id=sequence.id, sequence_step=1, is_human_controlled=True)
        )
        for n in range(55):
            session.add(
                GoldCommunicationLog(
                    tenant_id=tenant.id,
                    lead_journey_id=ids["A"],
                    channel=Channel.WHATSAPP,
                    direction=Direction.OUTBOUND if n % 2 else Direction.INBOUND,
                    status=MessageStatus.DELIVERED,
                    content=f"mesaj {n} " + "x" * 800,
                    phone_id="phone_01",
                    sent_at=now,
                    created_at=now - timedelta(minutes=60 - n),
                )
            )
        review = HumanReview(
            tenant_id=tenant.id,
            lead_journey_id=ids["A"],
            reason=ReviewReason.NEGATIVE_SENTIMENT,
            priority=ReviewPriority.URGENT,
            sla_due_at=now + timedelta(hours=1),
        )
        session.add(review)
        await session.flush()
        review_id = review.id

    response = await api.get(f"{URL}/{ids['A']}", headers=viewer)
    assert response.status_code == 200, response.text
    lead = response.json()
    # The runbook: jq '.isHumanControlled' and jq '.assignedPhone.status'
    assert lead["isHumanControlled"] is True
    assert lead["assignedPhone"] == {
        "id": "phone_01",
        "label": "Cerniq Sales 1",
        "phoneNumber": "+40700000001",
        "status": "ACTIVE",
    }
    assert lead["id"] == str(ids["A"])
    assert lead["currentState"] == "CONTACTED_WA"
    assert lead["mobileE164"] == "+40722123456"
    assert lead["allowedTransitions"] == ["CONTACTED_EMAIL", "DEAD", "WARM_REPLY"]
    assert "tenantId" not in lead
    assert lead["company"]["cui"] == "18302400"
    assert lead["company"]["telefonPrincipal"] == "+40722123456"
    messages = lead["communications"]
    assert len(messages) == 50
    assert messages[0]["contentPreview"].startswith("mesaj 54 ")  # newest first
    assert len(messages[0]["contentPreview"]) == 500
    assert set(messages[0]) >= {
        "id",
        "channel",
        "direction",
        "status",
        "contentPreview",
        "subject",
        "sentAt",
        "deliveredAt",
        "readAt",
        "createdAt",
        "isAiGenerated",
        "phoneId",
        "templateId",
    }
    assert lead["pendingReview"]["id"] == str(review_id)
    assert (lead["pendingReview"]["priority"], lead["pendingReview"]["status"]) == ("URGENT", "PENDING")
    assert lead["pendingReview"]["slaDueAt"]
    assert lead["sequence"]["name"] == "WA standard"
    assert (lead["sequence"]["step"], lead["sequence"]["totalSteps"]) == (1, 3)
    assert lead["stateHistory"][0]["trigger"] == "IMPORT"

    # The company's id works too (the runbook's {leadId} may be either).
    by_company = (await api.get(f"{URL}/{lead['leadId']}", headers=viewer)).json()
    assert by_company["id"] == str(ids["A"])

    for missing in (uuid.uuid4(), "not-a-uuid", "1 OR 1=1"):
        response = await api.get(f"{URL}/{missing}", headers=viewer)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_a_lead_without_phone_or_sequence(api: Any, tenant: Any, viewer: dict[str, str]) -> None:
    ids = await seed(tenant)
    lead = (await api.get(f"{URL}/{ids['D']}", headers=viewer)).json()
    assert lead["assignedPhone"] is None
    assert lead["sequence"] is None
    assert lead["pendingReview"] is None
    assert lead["communications"] == []
    assert lead["contacts"] == []


# ---------------------------------------------------------------------------------------------
# Edits


async def test_patch_changes_state_through_the_state_machine(
    api: Any, tenant: Any, operator: dict[str, str]
) -> None:
    ids = await seed(tenant)
    url = f"{URL}/{ids['C']}"  # WARM_REPLY

    response = await api.patch(url, json={"currentState": "NEGOTIATION"}, headers=operator)
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"field": "reason"}

    response = await api.patch(url, json={"currentState": "CONVERTED", "reason": "skip"}, headers=operator)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "INVALID_TRANSITION"
    assert error["details"] == {
        "from": "WARM_REPLY",
        "to": "CONVERTED",
        "allowed": ["DEAD", "NEGOTIATION", "PAUSED"],
    }

    response = await api.patch(
        url, json={"currentState": "NEGOTIATION", "reason": "asked for an offer"}, headers=operator
    )
    assert response.status_code == 200, response.text
    lead = response.json()
    assert (lead["currentState"], lead["previousState"]) == ("NEGOTIATION", "WARM_REPLY")
    assert lead["stateChangeReason"] == "asked for an offer"
    assert lead["stateHistory"][0]["trigger"] == "MANUAL"
    assert lead["stateHistory"][0]["actor"] == "token:ops"

    # The same state again is a no-op, reason or not.
    response = await api.patch(url, json={"currentState": "NEGOTIATION"}, headers=operator)
    assert response.status_code == 200
    async with transaction() as session:
        history = await session.scalar(
            select(func.count())
            .select_from(LeadStateHistory)
            .where(LeadStateHistory.lead_journey_id == ids["C"])
        )
        assert history == 2  # IMPORT + MANUAL
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "lead.update"))
        ).scalar_one()
        assert audit.entity_id == str(ids["C"])
        assert audit.reason == "asked for an offer"
        assert audit.before == {"currentState": "WARM_REPLY"}
        assert audit.after == {"currentState": "NEGOTIATION"}
        assert audit.actor_label == "ops"


async def test_patch_other_fields(api: Any, tenant: Any, operator: dict[str, str]) -> None:
    ids = await seed(tenant)
    url = f"{URL}/{ids['A']}"
    body = {
        "preferredChannel": "EMAIL_COLD",
        "tags": ["vip", "cereale", "vip"],
        "customFields": {"hectare": 1200, "culturi": ["grâu", "porumb"]},
        "notes": "Sună după ora 10.",
    }
    response = await api.patch(url, json=body, headers=operator)
    assert response.status_code == 200, response.text
    lead = response.json()
    assert lead["preferredChannel"] == "EMAIL_COLD"
    assert lead["tags"] == ["vip", "cereale"]
    assert lead["customFields"] == {"hectare": 1200, "culturi": ["grâu", "porumb"]}
    assert lead["internalNotes"] == "Sună după ora 10."
    assert lead["currentState"] == "CONTACTED_WA"

    response = await api.patch(url, json={"preferredChannel": None, "notes": None}, headers=operator)
    assert (response.json()["preferredChannel"], response.json()["internalNotes"]) == (None, None)

    for bad in (
        {"assignedToUser": str(uuid.uuid4())},
        {"preferredChannel": "FAX"},
        {"unknown": 1},
        {"tags": None},
        {"currentState": None},
    ):
        response = await api.patch(url, json=bad, headers=operator)
        assert response.status_code == 400, (bad, response.text)


# ---------------------------------------------------------------------------------------------
# Roles and tenancy


async def test_other_tenant_never_sees_these_leads(
    api: Any, tenant: Any, other_tenant: Any, make_token: Any
) -> None:
    ids = await seed(tenant)
    stranger = await make_token(other_tenant, Role.ADMIN, "stranger")
    body = (await api.get(URL, headers=stranger)).json()
    assert body["data"] == []
    assert body["meta"]["total"] == 0
    assert (await api.get(URL, params={"search": "18302400"}, headers=stranger)).json()["data"] == []
    async with transaction() as session:
        company_id = await session.scalar(
            select(GoldLeadJourney.lead_id).where(GoldLeadJourney.id == ids["A"])
        )
    for lead_id in (ids["A"], company_id):
        assert (await api.get(f"{URL}/{lead_id}", headers=stranger)).status_code == 404
        response = await api.patch(
            f"{URL}/{lead_id}", json={"currentState": "DEAD", "reason": "x"}, headers=stranger
        )
        assert response.status_code == 404
    async with transaction() as session:
        state = await session.scalar(
            select(GoldLeadJourney.current_state).where(GoldLeadJourney.id == ids["A"])
        )
    assert state == LeadState.CONTACTED_WA


async def test_viewer_can_read_but_not_change(api: Any, tenant: Any, viewer: dict[str, str]) -> None:
    ids = await seed(tenant)
    assert (await api.get(f"{URL}/{ids['A']}", headers=viewer)).status_code == 200
    response = await api.patch(f"{URL}/{ids['A']}", json={"notes": "x"}, headers=viewer)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    files = {"file": ("leads.csv", SAMPLE.read_bytes(), "text/csv")}
    response = await api.post(f"{URL}/import", files=files, headers=viewer)
    assert response.status_code == 403
    assert (await api.get(URL)).status_code == 401


# ---------------------------------------------------------------------------------------------
# Import over HTTP


async def test_import_upload_reports_bad_lines(api: Any, tenant: Any, operator: dict[str, str]) -> None:
    files = {"file": ("leads_sample.csv", SAMPLE.read_bytes(), "text/csv")}
    response = await api.post(f"{URL}/import", files=files, headers=operator)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows"], report["created"], report["merged"], report["skipped"]) == (12, 5, 1, 6)
    assert {e["line"]: e["reason"] for e in report["errors"]}[6] == "invalid CUI check digit"
    assert {e["line"] for e in report["errors"]} == {5, 6, 7, 8, 9, 14}
    assert report["dryRun"] is False
    assert report["source"] == "leads_sample.csv"
    body = (await api.get(URL, params={"search": "RO15900825"}, headers=operator)).json()
    assert names(body) == ["Vie, Vin & Co SRL"]

    # A malformed row alone: 200 and its line.
    content = (
        "denumire;cui;telefon\nFerma Bună SRL;30123455;0722 555 444\nFerma Rea SRL;30123456;0722 555 445\n"
    )
    files = {"file": ("two.csv", content.encode(), "text/csv")}
    report = (await api.post(f"{URL}/import", files=files, headers=operator)).json()
    assert (report["created"], report["skipped"]) == (1, 1)
    assert report["errors"] == [
        {"line": 3, "field": "cui", "reason": "invalid CUI check digit", "value": "30123456"}
    ]


async def test_import_dry_run_writes_nothing(api: Any, tenant: Any, operator: dict[str, str]) -> None:
    files = {"file": ("leads_sample.csv", SAMPLE.read_bytes(), "text/csv")}
    response = await api.post(f"{URL}/import", params={"dryRun": "true"}, files=files, headers=operator)
    assert response.status_code == 200
    assert (response.json()["created"], response.json()["dryRun"]) == (5, True)
    assert (await api.get(URL, headers=operator)).json()["meta"]["total"] == 0


@pytest.mark.parametrize(
    ("filename", "content", "code"),
    [
        ("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "INVALID_CSV"),
        ("empty.csv", b"", "INVALID_CSV"),
        ("sheet.csv", "denumire,cui\nŞerban,123\n".encode("cp1250"), "INVALID_CSV"),
        ("notes.txt", b"Lista de firme pentru luni\nsuna-i pe toti\n", "INVALID_CSV"),
    ],
)
async def test_import_rejects_files_that_are_not_lead_csvs(
    api: Any, tenant: Any, operator: dict[str, str], filename: str, content: bytes, code: str
) -> None:
    files = {"file": (filename, content, "application/octet-stream")}
    response = await api.post(f"{URL}/import", files=files, headers=operator)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


async def test_import_request_errors(
    api: Any, tenant: Any, operator: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    response = await api.post(
        f"{URL}/import", data={"other": "x"}, files={"x": ("a", b"b")}, headers=operator
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"field": "file"}
    response = await api.post(f"{URL}/import", json={"file": "denumire,cui"}, headers=operator)
    assert response.status_code == 400

    monkeypatch.setattr(endpoints, "MAX_UPLOAD_BYTES", 1000)
    big = b"denumire,cui\n" + b"Ferma Mare SRL,18302400\n" * 100
    response = await api.post(f"{URL}/import", files={"file": ("big.csv", big, "text/csv")}, headers=operator)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    # Refused from the Content-Length header, before the body is parsed.
    huge = b"x" * 100_000
    response = await api.post(
        f"{URL}/import", files={"file": ("huge.csv", huge, "text/csv")}, headers=operator
    )
    assert response.status_code == 413
