"""``POST /api/v1/outreach/ai/analyze``: the triage of a text, for operators and the console."""

from __future__ import annotations

from typing import Any

from cerniq.kit.db import transaction
from cerniq.models import Tenant
from cerniq.models.enums import Role

PATH = "/api/v1/outreach/ai/analyze"
KEYS = {
    "score",
    "intent",
    "optOut",
    "optOutScope",
    "route",
    "priority",
    "reasons",
    "analyzer",
    "confidence",
    "needsReview",
    "reviewReason",
    "legalThreat",
    "complaint",
    "language",
    "suspectedInjection",
}


async def test_a_viewer_gets_the_triage_of_a_reply(api: Any, tenant: Any, make_token: Any) -> None:
    headers = await make_token(tenant, Role.VIEWER)
    response = await api.post(PATH, json={"text": "Da, sunt interesat. Ce prețuri aveți?"}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == KEYS
    assert body["intent"] == "INTERESTED" and body["score"] >= 50
    assert body["route"] == "REVIEW" and body["priority"] == "MEDIUM"  # auto-answers are off
    assert body["reviewReason"] == "AI_DRAFT" and body["needsReview"] is True
    assert body["optOut"] is False and body["language"] == "ro" and body["analyzer"] == "offline"

    stop = (await api.post(PATH, json={"text": "STOP", "channel": "WHATSAPP"}, headers=headers)).json()
    assert (stop["optOut"], stop["route"], stop["needsReview"]) == (True, "OPT_OUT", False)

    legal = (
        await api.post(PATH, json={"text": "Vă reclam la ANPC, am vorbit cu avocatul."}, headers=headers)
    ).json()
    assert legal["legalThreat"] is True and legal["priority"] == "URGENT"


async def test_the_tenant_switch_turns_reviews_into_auto_answers(
    api: Any, tenant: Any, admin_headers: Any
) -> None:
    async with transaction() as session:
        row = await session.get(Tenant, tenant.id)
        assert row is not None
        row.settings = {"auto_reply_enabled": True}
    body = (
        await api.post(PATH, json={"text": "Da, sunt interesat. Ce prețuri aveți?"}, headers=admin_headers)
    ).json()
    assert body["route"] == "AUTO_REPLY" and body["priority"] is None and body["needsReview"] is False


async def test_bad_input_is_a_400(api: Any, admin_headers: Any) -> None:
    for payload in (
        {"text": ""},
        {"text": "   "},
        {"text": "a" * 10_001},
        {},
        {"text": "ok", "channel": "FAX"},
    ):
        response = await api.post(PATH, json=payload, headers=admin_headers)
        assert response.status_code == 400, (payload, response.text)
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    long = await api.post(PATH, json={"text": "a" * 10_001}, headers=admin_headers)
    assert long.json()["error"]["details"]["maxLength"] == 10_000
    assert (await api.post(PATH, json={"text": "a" * 10_000}, headers=admin_headers)).status_code == 200


async def test_it_needs_authentication(api: Any) -> None:
    response = await api.post(PATH, json={"text": "STOP"})
    assert response.status_code == 401
