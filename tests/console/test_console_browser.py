"""The console end to end in a real headless Chromium (Debian's ``chromium``, driven by
Playwright): the app runs under uvicorn in a subprocess against the test database.

Screenshots of the main pages are written to ``docs/screenshots/`` from these runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from cerniq.kit.db import transaction
from cerniq.models import GoldLeadJourney
from cerniq.models.enums import Channel, MessageStatus
from cerniq.models.gold_communication_log import GoldCommunicationLog
from tests.console.conftest import PASSWORD, _open_review

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
    pytest.mark.asyncio(loop_scope="session"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[str]:
    """``cerniq.app:create_app`` under uvicorn in a subprocess (its own event loop and pools)."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "cerniq.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env={**os.environ, "CERNIQ_BUSINESS_HOURS_ALWAYS_OPEN": "true"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/console/login", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("the console server did not start")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest_asyncio.fixture(loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        await instance.close()


@pytest_asyncio.fixture(loop_scope="session")
async def demo(tenant: Any) -> dict[str, Any]:
    """The demo data (phones matching the sandbox accounts, a default sequence, leads)."""
    from cerniq.demo import seed

    async with transaction() as session:
        await seed.ensure_phones(session, tenant, 20)
        await seed.ensure_sequence(session, tenant)
        await seed.ensure_leads(session, tenant, 60)
    return {"tenant": tenant}


async def _lead_on_phone(tenant: Any) -> uuid.UUID:
    """A demo lead given the first phone (as after its first message)."""
    async with transaction() as session:
        journey = (
            await session.execute(
                select(GoldLeadJourney)
                .where(GoldLeadJourney.tenant_id == tenant.id, GoldLeadJourney.mobile_e164.is_not(None))
                .order_by(GoldLeadJourney.created_at, GoldLeadJourney.id)
                .limit(1)
            )
        ).scalar_one()
        journey.assigned_phone_id = "phone_01"
        return journey.id


async def _sign_in(page: Any, url: str, email: str) -> None:
    await page.goto(url + "/console/login")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Parolă").fill(PASSWORD)
    await page.get_by_role("button", name="Autentificare").click()
    await page.wait_for_url("**/console/dashboard")


async def _page(browser: Any, width: int = 1280, height: int = 900) -> Any:
    context = await browser.new_context(viewport={"width": width, "height": height}, locale="ro-RO")
    return await context.new_page()


async def test_sign_in_and_the_dashboard_shows_a_tile_per_phone(
    server: str, browser: Any, demo: Any, users: dict[str, str]
) -> None:
    from cerniq.models.enums import PhoneStatus
    from cerniq.phones import service as phones

    async with transaction() as session:
        for phone_id, status in (("phone_03", PhoneStatus.PAUSED), ("phone_05", PhoneStatus.OFFLINE)):
            phone = await phones.get_phone(session, demo["tenant"].id, phone_id)
            await phones.change_status(session, phone, status, reason="demo", actor="test")
    page = await _page(browser)
    await _sign_in(page, server, users["operator"])
    tiles = page.locator('[data-testid^="phone-indicator-"]')
    assert await tiles.count() == 20
    colours = {
        phone_id: await page.get_by_test_id(f"phone-indicator-{phone_id}").get_attribute("data-colour")
        for phone_id in ("phone_01", "phone_03", "phone_05")
    }
    assert colours == {"phone_01": "green", "phone_03": "yellow", "phone_05": "grey"}
    await page.get_by_test_id("activity-feed").wait_for()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    await page.get_by_role("link", name="Lead-uri").first.click()
    await page.get_by_test_id("leads-table").wait_for()
    assert await page.locator("[data-testid=leads-table] tbody tr").count() == 25
    await page.screenshot(path=str(SCREENSHOTS / "leads.png"), full_page=True)
    await page.goto(server + "/console/phones")
    assert await page.locator('[data-testid^="phone-card-"]').count() == 20
    await page.screenshot(path=str(SCREENSHOTS / "phones.png"), full_page=True)
    narrow = await _page(browser, 390, 844)
    await _sign_in(narrow, server, users["operator"])
    await narrow.screenshot(path=str(SCREENSHOTS / "dashboard-phone.png"), full_page=True)


async def test_an_approved_review_leaves_the_queue_and_its_answer_shows_in_the_conversation(
    server: str, browser: Any, demo: Any, users: dict[str, str], tenant: Any
) -> None:
    journey_id = await _lead_on_phone(tenant)
    draft = "Bună ziua! Analiza de sol pentru 300 ha costă 4.500 lei; vă putem programa în februarie."
    review_id = await _open_review(tenant, journey_id, draft)
    page = await _page(browser)
    await _sign_in(page, server, users["operator"])
    await page.goto(server + "/console/reviews?tab=MEDIUM")
    card = page.get_by_test_id(f"review-{review_id}")
    await card.wait_for()
    assert (await page.get_by_test_id("tab-MEDIUM").inner_text()).strip().endswith("1")
    await page.screenshot(path=str(SCREENSHOTS / "reviews.png"), full_page=True)
    await card.get_by_test_id("approve").click()
    await page.wait_for_url("**flash=done**")
    errors = await page.get_by_test_id("error").all_inner_texts()
    assert errors == []
    assert await page.get_by_test_id(f"review-{review_id}").count() == 0
    await page.goto(f"{server}/console/leads/{journey_id}")
    answer = page.get_by_test_id("message").filter(has_text="costă 4.500 lei")
    assert await answer.count() == 1
    assert "REVIEW" in await answer.inner_text()
    await page.screenshot(path=str(SCREENSHOTS / "lead.png"), full_page=True)


async def test_a_takeover_stops_the_leads_queued_follow_up(
    server: str, browser: Any, demo: Any, users: dict[str, str], tenant: Any
) -> None:
    from cerniq.messaging.service import AUTOMATION, queue_message

    journey_id = await _lead_on_phone(tenant)
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        queued = await queue_message(
            session,
            journey,
            channel=Channel.WHATSAPP,
            content="Revin cu un mesaj: ați avut timp?",
            origin=AUTOMATION,
        )
        queued_id = queued.id
    page = await _page(browser)
    await _sign_in(page, server, users["operator"])
    await page.goto(f"{server}/console/leads/{journey_id}")
    follow_up = page.get_by_test_id("message").filter(has_text="ați avut timp")
    assert await follow_up.get_attribute("data-status") == "QUEUED"
    await page.get_by_label("Motiv").fill("clientul a cerut un telefon")
    await page.get_by_test_id("takeover").click()
    await page.get_by_test_id("release").wait_for()
    follow_up = page.get_by_test_id("message").filter(has_text="ați avut timp")
    assert await follow_up.get_attribute("data-status") == "SKIPPED"
    async with transaction() as session:
        row = await session.get(GoldCommunicationLog, queued_id)
        assert row is not None and row.status == MessageStatus.SKIPPED


async def test_a_viewer_sees_no_action_buttons_and_a_forged_post_is_refused(
    server: str, browser: Any, demo: Any, users: dict[str, str], tenant: Any
) -> None:
    journey_id = await _lead_on_phone(tenant)
    review_id = await _open_review(tenant, journey_id, "Vă sunăm mâine.")
    page = await _page(browser)
    await _sign_in(page, server, users["viewer"])
    assert await page.get_by_test_id("emergency-stop").count() == 0
    await page.goto(server + "/console/reviews?tab=MEDIUM")
    await page.get_by_test_id(f"review-{review_id}").wait_for()
    assert await page.locator("form.actions").count() == 0
    await page.goto(f"{server}/console/leads/{journey_id}")
    assert await page.get_by_test_id("takeover").count() == 0
    await page.goto(server + "/console/phones")
    assert await page.get_by_test_id("pause").count() == 0
    csrf = await page.locator('input[name="csrf"]').first.get_attribute("value")
    forged = await page.request.post(
        f"{server}/console/reviews/{review_id}/resolve",
        form={"csrf": csrf or "", "action": "APPROVE"},
        max_redirects=0,
    )
    assert forged.status == 403
    await page.goto(server + "/console/reviews?tab=MEDIUM")
    assert await page.get_by_test_id(f"review-{review_id}").count() == 1


async def test_emergency_stop_shows_the_banner_and_stops_outreach(
    server: str, browser: Any, demo: Any, users: dict[str, str]
) -> None:
    page = await _page(browser)
    await _sign_in(page, server, users["admin"])
    assert await page.get_by_test_id("emergency-banner").count() == 0
    await page.get_by_label("Motiv").fill("test de urgență: ban suspectat")
    await page.get_by_test_id("emergency-stop").click()
    assert await page.get_by_test_id("emergency-banner").count() == 0  # confirmation still missing
    await page.get_by_label("Confirm că opresc toate trimiterile").check()
    await page.get_by_test_id("emergency-stop").click()
    banner = page.get_by_test_id("emergency-banner")
    await banner.wait_for()
    assert "ban suspectat" in await banner.inner_text()
    await page.goto(server + "/console/phones")
    assert await page.get_by_test_id("emergency-banner").count() == 1
    statuses = await page.get_by_test_id("phone-status").all_inner_texts()
    assert statuses and all(s.strip() == "PAUSED" for s in statuses)
    from cerniq.ops import emergency

    async with transaction() as session:
        assert (await emergency.state(session))["active"] is True
