"""Bearer tokens, roles, tenancy and local-operator mode."""

from __future__ import annotations

from typing import Any

import pytest

from cerniq.config import get_settings
from cerniq.models.enums import Role


async def test_no_token_is_401_with_the_error_shape(api: Any, tenant: Any) -> None:
    response = await api.get("/api/v1/outreach/phones")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
    response = await api.get("/api/v1/outreach/phones", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


async def test_viewer_reads_but_cannot_mutate(api: Any, tenant: Any, make_token: Any) -> None:
    viewer = await make_token(tenant, Role.VIEWER)
    assert (await api.get("/api/v1/outreach/phones", headers=viewer)).status_code == 200
    response = await api.post(
        "/api/v1/outreach/phones", json={"phoneNumber": "+40700000001", "label": "x"}, headers=viewer
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"


async def test_operator_cannot_register_phones(api: Any, tenant: Any, make_token: Any) -> None:
    operator = await make_token(tenant, Role.OPERATOR)
    response = await api.post(
        "/api/v1/outreach/phones", json={"phoneNumber": "+40700000001", "label": "x"}, headers=operator
    )
    assert response.status_code == 403


async def test_revoked_token_is_refused(api: Any, tenant: Any) -> None:
    from cerniq.auth import repository, service
    from cerniq.kit.db import transaction

    async with transaction() as session:
        row, raw = await service.create_token(session, tenant_id=tenant.id, role=Role.ADMIN, name="t")
    headers = {"Authorization": f"Bearer {raw}"}
    assert (await api.get("/api/v1/outreach/phones", headers=headers)).status_code == 200
    async with transaction() as session:
        assert await repository.revoke_token(session, tenant.id, row.id)
    assert (await api.get("/api/v1/outreach/phones", headers=headers)).status_code == 401


async def test_tokens_are_stored_hashed(tenant: Any) -> None:
    from sqlalchemy import text

    from cerniq.auth import service
    from cerniq.kit.db import transaction

    async with transaction() as session:
        _row, raw = await service.create_token(session, tenant_id=tenant.id, role=Role.ADMIN, name="t")
    async with transaction() as session:
        stored = (await session.execute(text("SELECT token_hash FROM api_tokens"))).scalar_one()
    assert raw not in stored and len(stored) == 64


@pytest.fixture
def local_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERNIQ_LOCAL_OPERATOR_MODE", "true")
    get_settings.cache_clear()


async def test_local_operator_mode_lets_loopback_curl_through(
    local_mode: None, local_api: Any, tenant: Any
) -> None:
    response = await local_api.get("/api/v1/outreach/phones")
    assert response.status_code == 200
    # a proxied request is not local, even from loopback
    proxied = await local_api.get("/api/v1/outreach/phones", headers={"X-Forwarded-For": "198.51.100.4"})
    assert proxied.status_code == 401


async def test_local_operator_mode_does_not_open_remote_requests(
    local_mode: None, api: Any, tenant: Any
) -> None:
    assert (await api.get("/api/v1/outreach/phones")).status_code == 401


async def test_local_operator_mode_is_off_by_default(local_api: Any, tenant: Any) -> None:
    assert (await local_api.get("/api/v1/outreach/phones")).status_code == 401
