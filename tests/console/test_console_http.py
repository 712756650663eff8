"""The console over HTTP: sign-in, sessions, CSRF and roles."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cerniq.kit.db import transaction
from cerniq.models.audit_log import AuditEntry
from tests.console.conftest import PASSWORD, _open_review, csrf_of, sign_in
from tests.fixtures.outreach import add_leads, add_phones

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_pages_need_a_session(console: httpx.AsyncClient, tenant: Any) -> None:
    response = await console.get("/console/dashboard")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login")
    page = await console.get("/console/login")
    assert page.status_code == 200
    assert 'for="email"' in page.text and 'for="password"' in page.text


async def test_wrong_password_is_refused(console: httpx.AsyncClient, users: dict[str, str]) -> None:
    response = await sign_in(console, users["admin"], "not-the-password")
    assert response.status_code == 303
    assert "error=bad_credentials" in response.headers["location"]
    assert "cerniq_console" not in response.cookies
    assert (await console.get("/console/dashboard")).status_code == 303


async def test_sign_in_shows_the_dashboard_with_a_tile_per_phone(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await add_phones(tenant, 3)
    response = await sign_in(console, users["operator"])
    assert response.status_code == 303
    page = await console.get("/console/dashboard")
    assert page.status_code == 200
    for n in (1, 2, 3):
        assert f'data-testid="phone-indicator-phone_0{n}"' in page.text
    assert "Revizuiri în așteptare" in page.text  # Romanian by default
    async with transaction() as session:
        actions = (await session.execute(select(AuditEntry.action))).scalars().all()
    assert "console.sign_in" in actions


async def test_pages_say_when_the_minute_jobs_counted_their_figures(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    from cerniq.analytics import service, snapshots

    await add_leads(tenant, 2)
    await sign_in(console, users["viewer"])
    page = await console.get("/console/dashboard")
    assert 'data-testid="funnel-as-of"' not in page.text  # no worker has counted: live
    assert 'data-testid="today-as-of"' not in page.text
    async with transaction() as session:
        await snapshots.refresh(session)
        await service.rollup_all(session, service.today())
    page = await console.get("/console/dashboard")
    assert 'data-testid="funnel-as-of"' in page.text and 'data-testid="today-as-of"' in page.text
    assert "numărat la" in page.text
    listing = await console.get("/console/sequences")
    assert 'data-testid="stats-as-of"' in listing.text


async def test_english_is_selectable(console: httpx.AsyncClient, users: dict[str, str]) -> None:
    await sign_in(console, users["viewer"])
    await console.get("/console/lang/en?next=/console/dashboard")
    page = await console.get("/console/dashboard")
    assert "Pending reviews" in page.text


async def test_sign_in_while_redis_is_unreachable_is_a_clear_503(
    console: httpx.AsyncClient, users: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sign-in counters live in Redis: with Redis down the answer says so (503, retry)."""
    from redis.asyncio import Redis

    from cerniq.console import login_limit

    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)  # nothing listens there
    monkeypatch.setattr(login_limit, "get_redis", lambda: dead)
    response = await sign_in(console, users["operator"])
    assert response.status_code == 503
    assert response.headers["retry-after"] == "10"
    error = response.json()["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE" and "Redis" in error["message"]
    await dead.aclose()


async def test_sign_in_with_an_api_token(console: httpx.AsyncClient, tenant: Any, make_token: Any) -> None:
    headers = await make_token(
        tenant, __import__("cerniq.models.enums", fromlist=["Role"]).Role.OPERATOR, "ana"
    )
    raw = headers["Authorization"].split(" ", 1)[1]
    response = await console.post("/console/login", data={"token": raw})
    assert response.status_code == 303
    page = await console.get("/console/dashboard")
    assert page.status_code == 200
    assert "token:ana" in page.text or "ana · operator" in page.text


async def test_a_tampered_cookie_is_no_session(console: httpx.AsyncClient, users: dict[str, str]) -> None:
    await sign_in(console, users["viewer"])
    cookie = console.cookies.get("cerniq_console")
    assert cookie
    payload, _, sig = cookie.rpartition(".")
    console.cookies.clear()
    console.cookies.set("cerniq_console", payload + "." + "0" * len(sig), path="/console")
    assert (await console.get("/console/dashboard")).status_code == 303


async def test_a_post_without_the_csrf_token_is_refused(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    (phone_id,) = await add_phones(tenant, 1)
    await sign_in(console, users["admin"])
    response = await console.post(f"/console/phones/{phone_id}/pause", data={})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "CSRF_FAILED"
    wrong = await console.post(f"/console/phones/{phone_id}/pause", data={"csrf": "forged"})
    assert wrong.status_code == 403
    page = await console.get("/console/phones")
    assert 'data-testid="phone-status">ACTIVE' in page.text


async def test_a_viewer_sees_no_actions_and_a_forged_post_is_refused(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    (phone_id,) = await add_phones(tenant, 1)
    await sign_in(console, users["viewer"])
    page = await console.get("/console/phones")
    assert page.status_code == 200
    assert 'data-testid="pause"' not in page.text
    dashboard = await console.get("/console/dashboard")
    assert 'data-testid="emergency-stop"' not in dashboard.text
    csrf = csrf_of(page.text)  # a valid session token: only the role should stop it
    response = await console.post(f"/console/phones/{phone_id}/pause", data={"csrf": csrf})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    stop = await console.post(
        "/console/emergency/stop", data={"csrf": csrf, "reason": "viewer test", "confirm": "yes"}
    )
    assert stop.status_code == 403
    page = await console.get("/console/phones")
    assert 'data-testid="phone-status">ACTIVE' in page.text


async def test_an_operator_pauses_and_resumes_a_phone(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any, sandbox: Any
) -> None:
    (phone_id,) = await add_phones(tenant, 1)
    await sign_in(console, users["operator"])
    csrf = csrf_of((await console.get("/console/phones")).text)
    response = await console.post(f"/console/phones/{phone_id}/pause", data={"csrf": csrf})
    assert response.status_code == 303
    page = await console.get("/console/phones")
    assert 'data-testid="phone-status">PAUSED' in page.text
    await console.post(f"/console/phones/{phone_id}/resume", data={"csrf": csrf})
    page = await console.get("/console/phones")
    assert 'data-testid="phone-status">ACTIVE' in page.text


async def test_static_assets_come_from_the_package(console: httpx.AsyncClient) -> None:
    js = await console.get("/console/static/htmx.min.js")
    assert js.status_code == 200 and "htmx" in js.text
    css = await console.get("/console/static/console.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert (await console.get("/console/static/..%2Fendpoints_console.py")).status_code == 404


async def test_password_is_not_enough_for_another_tenant(
    console: httpx.AsyncClient, users: dict[str, str], other_tenant: Any
) -> None:
    response = await console.post(
        "/console/login", data={"tenant": "other", "email": users["admin"], "password": PASSWORD}
    )
    assert "error=bad_credentials" in response.headers["location"]


async def test_an_operator_approves_a_review(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await add_phones(tenant, 1)
    (journey_id,) = await add_leads(tenant, 1)
    async with transaction() as session:
        from cerniq.models import GoldLeadJourney

        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        journey.assigned_phone_id = "phone_01"
    review_id = await _open_review(tenant, journey_id, "Vă trimitem oferta azi.")
    await sign_in(console, users["operator"])
    page = await console.get("/console/reviews?tab=MEDIUM")
    assert f'data-testid="review-{review_id}"' in page.text
    response = await console.post(
        f"/console/reviews/{review_id}/resolve",
        data={
            "csrf": csrf_of(page.text),
            "action": "APPROVE",
            "editedContent": "Vă trimitem oferta azi.",
            "next": "/console/reviews?tab=MEDIUM",
        },
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console/reviews?tab=MEDIUM&flash=done"
    page = await console.get("/console/reviews?tab=MEDIUM")
    assert f'data-testid="review-{review_id}"' not in page.text
    lead = await console.get(f"/console/leads/{journey_id}")
    assert "Vă trimitem oferta azi." in lead.text


async def test_the_activity_feed_streams_recent_messages(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await add_phones(tenant, 1)
    (journey_id,) = await add_leads(tenant, 1)
    await _open_review(tenant, journey_id, "Revenim cu detalii.")  # stores the lead's inbound reply
    assert (await console.get("/console/events?once=1")).status_code == 401
    await sign_in(console, users["viewer"])
    response = await console.get("/console/events?once=1")
    assert response.status_code == 200
    assert "event: activity" in response.text
    assert "analiza de sol" in response.text


async def test_more_than_ten_pending_reviews_warn_on_the_dashboard(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await add_phones(tenant, 1)
    journeys = await add_leads(tenant, 11)
    await sign_in(console, users["viewer"])
    for n, journey_id in enumerate(journeys, start=1):
        await _open_review(tenant, journey_id, "Draft")
        page = await console.get("/console/dashboard")
        assert ("Peste 10 revizuiri" in page.text) == (n > 10)
