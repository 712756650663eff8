"""Every console page against the console's requirement: "usable with the keyboard, labelled
form fields, readable at 1280 px and on a phone-width screen".

From a small, realistic data set (phones, leads with a conversation and an open review, a
sequence, templates, an email campaign, an alert, a failed queue job) an admin visits every page
of ``web.NAV`` plus a lead, a sequence, a template editor and a queue. Over HTTP every page
answers (a viewer gets a readable 403 on the admin-only pages); in headless Chromium every form
field has an accessible name, no page scrolls sideways at 390 px or 1280 px, and Tab reaches the
skip link and then the main navigation. Screenshots of the newer pages go to
``docs/screenshots/``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from cerniq.console.web import ADMIN_ONLY, NAV
from cerniq.kit.clock import utcnow
from cerniq.kit.db import transaction
from cerniq.models import EmailCampaign, GoldLeadJourney, OutreachTemplate
from cerniq.models.enums import Channel, Direction, MessageStatus
from cerniq.models.gold_communication_log import GoldCommunicationLog
from tests.console.conftest import _open_review, sign_in
from tests.console.test_console_browser import (
    CHROMIUM,
    SCREENSHOTS,
    _page,
    _sign_in,
    browser,  # noqa: F401  (a fixture)
    server,  # noqa: F401  (a fixture)
)
from tests.console.test_console_queues import Q, _fail_jobs
from tests.fixtures.outreach import add_leads, add_phones, add_sequence

pytestmark = pytest.mark.asyncio(loop_scope="session")

# (A failed job's stack trace on the queue page is content, so "Traceback" is not in here.)
SERVER_ERROR_TEXT = ("INTERNAL_ERROR", "Internal Server Error", "unexpected error; see the server log")


@pytest_asyncio.fixture(loop_scope="session")
async def seeded(tenant: Any) -> dict[str, Any]:
    """Demo-like data on every page; returns the ids the detail pages need."""
    from cerniq.auth.principal import system_principal
    from cerniq.auth.service import record_audit
    from cerniq.ops import alerts

    await add_phones(tenant, 4)
    sequence_id = await add_sequence(tenant)
    leads = await add_leads(tenant, 8, email=True)
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, leads[0])
        assert journey is not None
        journey.assigned_phone_id = "phone_01"
        sent_at = utcnow() - timedelta(hours=3)
        session.add(
            GoldCommunicationLog(
                tenant_id=tenant.id,
                lead_journey_id=journey.id,
                channel=Channel.WHATSAPP,
                direction=Direction.OUTBOUND,
                status=MessageStatus.SENT,
                content="Bună ziua, Agro Ferma 1 SRL! Vă scriu din partea Cerniq despre analiza de sol.",
                phone_id="phone_01",
                phone_number=journey.mobile_e164,
                sent_at=sent_at,
                quota_cost=1,
                quota_date=sent_at.date(),
            )
        )
        template = OutreachTemplate(
            tenant_id=tenant.id,
            name="Ofertă semințe (e-mail)",
            channel=Channel.EMAIL_COLD,
            subject="Semințe de primăvară pentru {{companyName}}",
            content="{Bună ziua|Salutare}, {{contactName|}}!\n\nPentru {{companyName}} avem o ofertă "
            "de semințe certificate pentru sezonul de primăvară. Vă trimit lista de prețuri?",
        )
        session.add(template)
        session.add(
            EmailCampaign(
                tenant_id=tenant.id,
                name="Fermieri Timiș — primăvară",
                instantly_campaign_id="cmp-demo-1",
                status="ACTIVE",
                instantly_status=1,
                sending_domain="ferma-cerniq.ro",
                stats={"leads": 120, "sent": 96, "bounced": 3, "bounceRate": 3.1},
            )
        )
        await session.flush()
        template_id = template.id
        await alerts.trigger(
            session,
            "phone:offline",
            subject="phone_04",
            tenant_id=tenant.id,
            message="no heartbeat for 10 minutes",
        )
        await record_audit(
            session,
            system_principal(tenant.id, "demo"),
            "phone.pause",
            entity_type="phone",
            entity_id="phone_03",
            reason="demo: pauză de test",
        )
    await _open_review(
        tenant,
        leads[0],
        "Bună ziua! Analiza de sol pentru 300 ha costă 4.500 lei; vă putem programa în februarie.",
    )
    await _fail_jobs(1)
    return {
        "lead": leads[0],
        "sequence": sequence_id,
        "template": template_id,
        "queue": Q,
    }


def pages_of(seeded: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, path) of every page to check: the main navigation, then the detail pages."""
    return [(key, href) for href, key in NAV] + [
        ("lead", f"/console/leads/{seeded['lead']}"),
        ("lead-import", "/console/leads/import"),
        ("sequence", f"/console/sequences/{seeded['sequence']}"),
        ("template", f"/console/templates/{seeded['template']}"),
        ("queue", f"/console/queues/{seeded['queue']}"),
    ]


# ---------------------------------------------------------------------------------------------
# Over HTTP


def nav_of(html: str) -> str:
    return html.split('<nav aria-label="main">', 1)[1].split("</nav>", 1)[0]


def assert_no_server_error(name: str, html: str) -> None:
    found = [text for text in SERVER_ERROR_TEXT if text in html]
    assert not found, f"{name}: server error text on the page: {found}"


async def test_every_page_answers_an_admin(
    console: httpx.AsyncClient, users: dict[str, str], seeded: dict[str, Any]
) -> None:
    await sign_in(console, users["admin"])
    for name, path in pages_of(seeded):
        response = await console.get(path)
        assert response.status_code == 200, f"{name} ({path}): {response.status_code} {response.text[:300]}"
        assert response.headers["content-type"].startswith("text/html"), name
        assert_no_server_error(name, response.text)
    nav = nav_of((await console.get("/console/dashboard")).text)
    for href, _ in NAV:
        assert f'href="{href}"' in nav, f"an admin's navigation lacks {href}"


async def test_every_nav_page_answers_a_viewer_and_admin_pages_refuse_readably(
    console: httpx.AsyncClient, users: dict[str, str], seeded: dict[str, Any]
) -> None:
    await sign_in(console, users["viewer"])
    for href, key in NAV:
        response = await console.get(href)
        assert_no_server_error(key, response.text)
        if href in ADMIN_ONLY:
            assert response.status_code == 403, f"{href}: {response.status_code}"
            assert 'data-testid="forbidden"' in response.text, f"{href}: {response.text[:300]}"
            assert "doar pentru administratori" in response.text, href
        else:
            assert response.status_code == 200, f"{href}: {response.status_code} {response.text[:300]}"
    nav = nav_of((await console.get("/console/dashboard")).text)
    for href, _ in NAV:
        shown = f'href="{href}"' in nav
        assert shown == (href not in ADMIN_ONLY), (
            f"a viewer's navigation {'shows' if shown else 'lacks'} {href}"
        )


# ---------------------------------------------------------------------------------------------
# In Chromium

# Every form field without an accessible name: a <label for>, a wrapping <label>, aria-label or
# aria-labelledby (each with some text). Fields in a closed <details> count too.
UNLABELLED_JS = """() => {
  const skip = new Set(['hidden', 'submit', 'button', 'reset', 'image']);
  const text = (el) => (el && el.textContent || '').trim();
  const bad = [];
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (skip.has((el.getAttribute('type') || '').toLowerCase())) continue;
    const byLabel = Array.from(el.labels || []).some((l) => text(l));
    const byAria = (el.getAttribute('aria-label') || '').trim() !== '';
    const byRef = (el.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean)
      .some((id) => text(document.getElementById(id)));
    if (!(byLabel || byAria || byRef)) {
      bad.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + '[name=' + (el.name || '') + ']');
    }
  }
  return bad;
}"""

# The page's width against the window's, and the elements that stick out (for the message).
OVERFLOW_JS = """() => {
  const width = window.innerWidth;
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= width + 1) continue;
    // An absolutely placed element escapes a scroll box that is not its containing block.
    const placed = ['absolute', 'fixed'].includes(getComputedStyle(el).position);
    let clipped = false;
    for (let p = el.parentElement; p && p !== document.body && !placed; p = p.parentElement) {
      const s = getComputedStyle(p);
      const fits = p.getBoundingClientRect().right <= width + 1;
      if (fits && ['auto', 'scroll', 'hidden', 'clip'].includes(s.overflowX)) {
        clipped = true;
        break;
      }
    }
    if (clipped) continue;
    const names = typeof el.className === 'string' ? el.className.trim() : '';
    const cls = names ? '.' + names.split(/\\s+/).join('.') : '';
    out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + cls + ' right=' + Math.round(r.right));
  }
  return {scroll: document.documentElement.scrollWidth, inner: width, out: out.slice(0, 8)};
}"""

# The focused element: what it is and whether it can be seen (in the window, with an outline).
FOCUSED_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const r = el.getBoundingClientRect();
  const s = getComputedStyle(el);
  return {
    tag: el.tagName.toLowerCase(), cls: el.className || '', href: el.getAttribute('href'),
    text: (el.textContent || '').trim(), inNav: !!el.closest('nav[aria-label="main"]'),
    visible: r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0
      && r.right <= window.innerWidth && r.bottom <= window.innerHeight && s.visibility !== 'hidden',
    outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0,
  };
}"""


async def _open(page: Any, url: str, name: str) -> None:
    response = await page.goto(url)
    assert response is not None and response.status == 200, f"{name}: {response and response.status}"
    assert_no_server_error(name, await page.content())


async def _overflow(page: Any, name: str, width: int) -> str | None:
    found = await page.evaluate(OVERFLOW_JS)
    if found["scroll"] <= found["inner"] + 1:
        return None
    return f"{name} at {width} px: page is {found['scroll']} px wide; sticking out: {found['out']}"


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
async def test_every_page_has_labelled_fields_and_fits_at_1280_and_390_px(
    server: str,  # noqa: F811
    browser: Any,  # noqa: F811
    users: dict[str, str],
    seeded: dict[str, Any],
) -> None:
    unlabelled: list[str] = []
    overflowing: list[str] = []
    for width, height in ((1280, 900), (390, 844)):
        page = await _page(browser, width, height)
        await _sign_in(page, server, users["admin"])
        for name, path in pages_of(seeded):
            await _open(page, server + path, name)
            if width == 1280:
                unlabelled += [f"{name}: {field}" for field in await page.evaluate(UNLABELLED_JS)]
            problem = await _overflow(page, name, width)
            if problem:
                overflowing.append(problem)
        await page.context.close()
    assert not unlabelled, "form fields without a label:\n" + "\n".join(unlabelled)
    assert not overflowing, "pages wider than the window:\n" + "\n".join(overflowing)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
async def test_tab_reaches_the_skip_link_then_the_navigation_on_every_page(
    server: str,  # noqa: F811
    browser: Any,  # noqa: F811
    users: dict[str, str],
    seeded: dict[str, Any],
) -> None:
    problems: list[str] = []
    for width, height in ((1280, 900), (390, 844)):
        page = await _page(browser, width, height)
        await _sign_in(page, server, users["admin"])
        for name, path in pages_of(seeded):
            where = f"{name} at {width} px"
            await _open(page, server + path, name)
            await page.keyboard.press("Tab")
            skip = await page.evaluate(FOCUSED_JS)
            if not skip or "skip" not in str(skip["cls"]) or skip["href"] != "#main":
                problems.append(f"{where}: the first Tab focuses {skip}, not the skip link")
                continue
            if not (skip["visible"] and skip["outline"]):
                problems.append(f"{where}: the focused skip link cannot be seen: {skip}")
            for href, _ in NAV:
                await page.keyboard.press("Tab")
                link = await page.evaluate(FOCUSED_JS)
                if not link or not link["inNav"] or link["href"] != href:
                    problems.append(f"{where}: Tab focuses {link}, expected the nav link {href}")
                    break
                if not (link["visible"] and link["outline"]):
                    problems.append(f"{where}: the focused nav link {href} cannot be seen: {link}")
            if width == 1280 and name == "dashboard":
                # Enter on the skip link moves the focus to the page's content.
                await page.keyboard.press("Shift+Tab")  # back from the last nav link, then to the top
                await page.focus("a.skip")
                await page.keyboard.press("Enter")
                focused = await page.evaluate("() => document.activeElement && document.activeElement.id")
                if focused != "main":
                    problems.append(f"{where}: Enter on the skip link focuses #{focused}, not #main")
        await page.context.close()
    assert not problems, "keyboard problems:\n" + "\n".join(problems)


# The newer pages, at 1280 px, from the seeded data: (file name, path, wait for, full page).
SHOTS: tuple[tuple[str, str, str, bool], ...] = (
    ("sequences", "/console/sequences", "[data-testid=sequences-table]", True),
    ("sequence", "/console/sequences/{sequence}", "[data-testid=steps-form]", False),
    ("templates", "/console/templates", "[data-testid=templates-table]", False),
    ("template-editor", "/console/templates/{template}", "[data-testid=preview-render]", False),
    ("campaigns", "/console/campaigns", "[data-testid=campaigns-table]", True),
    ("queues", "/console/queues", "[data-testid=queues-table]", False),
    ("alerts", "/console/alerts", "[data-testid=open-count]", True),
    ("analytics", "/console/analytics", "[data-testid=daily-table]", False),
    ("audit", "/console/audit", "[data-testid=audit-row]", False),
    ("users", "/console/users", "[data-testid=create-user]", True),
)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
async def test_screenshots_of_the_newer_pages(
    server: str,  # noqa: F811
    browser: Any,  # noqa: F811
    users: dict[str, str],
    seeded: dict[str, Any],
) -> None:
    page = await _page(browser)
    await _sign_in(page, server, users["admin"])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, path, ready, full in SHOTS:
        await _open(page, server + path.format(**seeded), name)
        await page.locator(ready).first.wait_for()
        await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full)
    await page.context.close()
