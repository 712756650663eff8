"""The phone endpoints the runbook reads (sections 1, 2 and 3)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.models.enums import Role


async def register(api: Any, headers: dict[str, str], n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(1, n + 1):
        response = await api.post(
            "/api/v1/outreach/phones",
            json={
                "phoneNumber": f"+4070000{i:04d}",
                "label": f"Cerniq Sales {i}",
                "timelinesaiAccountId": f"acc_{i}",
            },
            headers=headers,
        )
        assert response.status_code == 201, response.text
        out.append(response.json())
    return out


async def test_registered_phones_list_in_the_runbook_shape(api: Any, admin_headers: dict[str, str]) -> None:
    created = await register(api, admin_headers, 3)
    assert [p["id"] for p in created] == ["phone_01", "phone_02", "phone_03"]
    response = await api.get("/api/v1/outreach/phones", headers=admin_headers)
    assert response.status_code == 200
    phones = response.json()["phones"]
    assert [p["label"] for p in phones] == ["Cerniq Sales 1", "Cerniq Sales 2", "Cerniq Sales 3"]
    first = phones[0]
    assert first["status"] == "ACTIVE"
    assert first["phoneNumber"] == "+40700000001"
    assert first["quota"]["used"] == 0
    assert first["quota"]["limit"] == 200
    assert first["quota"]["remaining"] == 200
    assert first["quota"]["resetAt"]
    # the Redis mirror and today's quota key exist, as runbook 2.3 sets them by hand
    assert await get_redis().get("phone:status:phone_01") == "ACTIVE"
    assert len(await get_redis().keys("quota:wa:phone_0*")) == 3


async def test_quota_used_comes_from_todays_redis_counter(api: Any, admin_headers: dict[str, str]) -> None:
    await register(api, admin_headers, 1)
    from cerniq.config import get_settings
    from cerniq.kit.clock import BusinessClock, utcnow

    day = BusinessClock.from_settings(get_settings()).business_day(utcnow())
    await get_redis().set(f"quota:wa:phone_01:{day.isoformat()}", 57)
    phone = (await api.get("/api/v1/outreach/phones/phone_01", headers=admin_headers)).json()
    assert phone["quota"] == {
        "used": 57,
        "limit": 200,
        "remaining": 143,
        "resetAt": phone["quota"]["resetAt"],
    }


async def test_patch_pauses_and_a_banned_phone_is_never_reactivated(
    api: Any, admin_headers: dict[str, str]
) -> None:
    await register(api, admin_headers, 1)
    response = await api.patch(
        "/api/v1/outreach/phones/phone_01", json={"status": "PAUSED"}, headers=admin_headers
    )
    assert response.status_code == 200 and response.json()["status"] == "PAUSED"
    assert await get_redis().get("phone:status:phone_01") == "PAUSED"
    async with transaction() as session:
        await session.execute(text("UPDATE wa_phone_numbers SET status = 'BANNED' WHERE id = 'phone_01'"))
    response = await api.patch(
        "/api/v1/outreach/phones/phone_01", json={"status": "ACTIVE"}, headers=admin_headers
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "PHONE_BANNED"


async def test_a_phone_inserted_with_the_runbook_sql_is_listed(
    api: Any, tenant: Any, admin_headers: dict[str, str]
) -> None:
    async with transaction() as session:
        await session.execute(
            text(
                "INSERT INTO wa_phone_numbers (tenant_id, phone_number, phone_label, timelinesai_account_id,"
                " status, daily_quota_limit, is_enabled)"
                " VALUES (:t, '+40712345678', 'Sales 21', 'acc', 'ACTIVE', 200, true)"
            ),
            {"t": tenant.id},
        )
    phones = (await api.get("/api/v1/outreach/phones", headers=admin_headers)).json()["phones"]
    assert [(p["id"], p["label"]) for p in phones] == [("phone_01", "Sales 21")]


async def test_bad_input_gets_a_clear_4xx(api: Any, admin_headers: dict[str, str]) -> None:
    response = await api.post(
        "/api/v1/outreach/phones", json={"phoneNumber": "not a number", "label": "x"}, headers=admin_headers
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    response = await api.post("/api/v1/outreach/phones", json={"label": "x"}, headers=admin_headers)
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "phoneNumber"
    response = await api.get("/api/v1/outreach/phones/phone_99", headers=admin_headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_phone_changes_are_audited(api: Any, admin_headers: dict[str, str]) -> None:
    await register(api, admin_headers, 1)
    await api.patch("/api/v1/outreach/phones/phone_01", json={"label": "Renamed"}, headers=admin_headers)
    async with transaction() as session:
        actions = (
            (await session.execute(text("SELECT action FROM audit_log ORDER BY created_at"))).scalars().all()
        )
    assert actions == ["phone.create", "phone.update"]


async def test_other_tenant_never_sees_these_phones(
    api: Any, admin_headers: dict[str, str], other_tenant: Any, make_token: Any
) -> None:
    await register(api, admin_headers, 2)
    other = await make_token(other_tenant, Role.ADMIN)
    assert (await api.get("/api/v1/outreach/phones", headers=other)).json()["phones"] == []
    assert (await api.get("/api/v1/outreach/phones/phone_01", headers=other)).status_code == 404
    assert (
        await api.patch("/api/v1/outreach/phones/phone_01", json={"label": "x"}, headers=other)
    ).status_code == 404
