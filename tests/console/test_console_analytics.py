"""The console's analytics page over HTTP: a date range of seeded figures (live days and a
pre-aggregated day), the per phone / template / sequence breakdowns, the review SLA table, and
clear messages for a bad range."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from cerniq.analytics import repository as analytics_repository
from cerniq.analytics import service as analytics
from cerniq.auth.principal import system_principal
from cerniq.kit.db import transaction
from cerniq.models import GoldCommunicationLog, GoldLeadJourney, HumanReview, OutreachTemplate
from cerniq.models.enums import Channel, Direction, MessageStatus, ReviewReason, ReviewStatus
from cerniq.templates import service as templates
from tests.console.conftest import sign_in
from tests.fixtures.outreach import add_leads, add_phones, add_sequence

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def seed(tenant: Any) -> dict[str, Any]:
    """Today: 2 leads get a first WhatsApp message (phone_01), one a follow-up, and one replies
    positively. Two days ago: 2 leads contacted, by WhatsApp (phone_02) and cold email. Four days
    ago: only a rolled-up daily row (42 contacted)."""
    phones = await add_phones(tenant, 2)
    sequence = await add_sequence(tenant)
    leads = await add_leads(tenant, 4)
    today = analytics.today()
    two_days_ago = today - timedelta(days=2)
    at_today = analytics.bounds(today)[0] + timedelta(hours=1)
    at_two = analytics.bounds(two_days_ago)[0] + timedelta(hours=11)
    async with transaction() as session:
        template = (
            await session.execute(select(OutreachTemplate).where(OutreachTemplate.name == "Prim contact"))
        ).scalar_one()

        def msg(journey: uuid.UUID, **kw: Any) -> GoldCommunicationLog:
            base: dict[str, Any] = {
                "tenant_id": tenant.id,
                "lead_journey_id": journey,
                "channel": Channel.WHATSAPP,
                "direction": Direction.OUTBOUND,
                "status": MessageStatus.SENT,
                "sequence_id": sequence,
                "template_id": template.id,
                "content": "Bună ziua",
            }
            return GoldCommunicationLog(**(base | kw))

        session.add_all(
            [
                msg(leads[0], phone_id=phones[0], quota_cost=1, quota_date=today, sent_at=at_today),
                msg(leads[1], phone_id=phones[0], quota_cost=1, quota_date=today, sent_at=at_today),
                msg(leads[0], phone_id=phones[0], quota_cost=0, sent_at=at_today + timedelta(minutes=5)),
                msg(
                    leads[0],
                    phone_id=phones[0],
                    direction=Direction.INBOUND,
                    status=MessageStatus.RECEIVED,
                    sentiment_score=70,
                    created_at=at_today + timedelta(minutes=10),
                ),
                msg(
                    leads[2],
                    phone_id=phones[1],
                    quota_cost=1,
                    quota_date=two_days_ago,
                    sent_at=at_two,
                    created_at=at_two,
                ),
                msg(
                    leads[3],
                    channel=Channel.EMAIL_COLD,
                    template_id=None,
                    sequence_id=None,
                    sent_at=at_two,
                    created_at=at_two,
                ),
            ]
        )
        await session.flush()
        await session.execute(
            update(GoldLeadJourney).where(GoldLeadJourney.id.in_(leads[:2])).values(first_contact_at=at_today)
        )
        await session.execute(
            update(GoldLeadJourney).where(GoldLeadJourney.id.in_(leads[2:])).values(first_contact_at=at_two)
        )
        values: dict[str, Any] = {k: 0 for k in analytics.FIELDS} | {"sentiment_avg": None}
        values |= {"leads_contacted": 42, "wa_new_contacts_sent": 40, "email_warm_sent": 2}
        await analytics_repository.upsert_stats(session, tenant.id, today - timedelta(days=4), values)
        session.add(
            HumanReview(
                tenant_id=tenant.id,
                lead_journey_id=leads[0],
                reason=next(iter(ReviewReason)),
                status=ReviewStatus.RESOLVED,
                sla_due_at=at_today + timedelta(hours=1),
                resolved_at=at_today + timedelta(minutes=20),
            )
        )
        await templates.add_variant(
            session,
            system_principal(tenant.id),
            template.id,
            content="Salut, {{companyName}}! Vă scriu din partea Cerniq.",
            label="B scurt",
            weight=30,
        )
    return {"phones": phones, "sequence": sequence, "template": template.id, "today": today}


def section(html: str, testid: str) -> str:
    start = html.index(f'data-testid="{testid}"')
    return html[start : html.index("</tr>", start)]


def cell(row: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}">(?:<span[^>]*></span>)?([^<]*)<', row)
    assert found, f"no {testid} cell in {row!r}"
    return found.group(1).strip()


async def test_the_range_shows_the_seeded_figures_per_day_and_per_breakdown(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    seeded = await seed(tenant)
    today: date = seeded["today"]
    await sign_in(console, users["viewer"])  # read-only: a viewer may see it
    first = today - timedelta(days=6)
    page = await console.get(f"/console/analytics?from={first.isoformat()}&to={today.isoformat()}")
    assert page.status_code == 200, page.text
    html = page.text
    assert 'for="an-from"' in html and 'for="an-to"' in html
    assert html.count('data-testid="day-') == 7

    now_row = section(html, f"day-{today.isoformat()}")
    assert [
        cell(now_row, k) for k in ("contacted", "replied", "positive", "wa-new", "wa-followups", "sent")
    ] == [
        "2",
        "1",
        "1",
        "2",
        "1",
        "3",
    ]
    two_row = section(html, f"day-{(today - timedelta(days=2)).isoformat()}")
    assert [cell(two_row, k) for k in ("contacted", "wa-new", "email-cold", "sent")] == ["2", "1", "1", "2"]
    rolled = section(html, f"day-{(today - timedelta(days=4)).isoformat()}")  # the pre-aggregated row
    assert [cell(rolled, k) for k in ("contacted", "wa-new", "email-warm", "sent")] == ["42", "40", "2", "42"]
    quiet = section(html, f"day-{(today - timedelta(days=1)).isoformat()}")
    assert cell(quiet, "contacted") == "0"
    assert (today - timedelta(days=4)).strftime("%d.%m.%Y") in html  # Romanian dates by default

    phone_one = section(html, f"phone-{seeded['phones'][0]}")
    assert re.findall(r"<td>([^<]*)</td>", phone_one)[:5] == ["3", "2", "2", "1", "1"]
    template_row = section(html, f"template-{seeded['template']}")
    assert "Prim contact" in template_row
    variants = html.split(template_row, 1)[1].split("</details>", 1)[0]
    assert "Variante A/B (de la început)" in variants
    assert "B scurt" in variants and "30 %" in variants and "70 %" in variants
    sequence_row = section(html, f"sequence-{seeded['sequence']}")
    assert "WA standard" in sequence_row
    # 4 sent to 3 leads over the range, 1 of them replied: 33.3 % in the Romanian format
    assert re.findall(r"<td>([^<]*)</td>", sequence_row)[:6] == ["4", "3", "3", "1", "1", "33,3 %"]

    overall = section(html, "sla-overall")
    assert re.findall(r"<td>([^<]*)</td>", overall)[1:4] == ["1", "1", "0"]


async def test_the_default_range_is_the_last_seven_days(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await sign_in(console, users["operator"])
    page = await console.get("/console/analytics")
    assert page.status_code == 200
    today = analytics.today()
    assert f'value="{today.isoformat()}"' in page.text
    assert f'value="{(today - timedelta(days=6)).isoformat()}"' in page.text
    assert page.text.count('data-testid="day-') == 7
    assert "Nicio activitate în interval." in page.text


async def test_a_bad_range_gives_a_clear_message(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await sign_in(console, users["viewer"])
    inverted = await console.get("/console/analytics?from=2026-03-10&to=2026-03-01")
    assert inverted.status_code == 400
    assert "from must not be after to" in inverted.text
    assert 'data-testid="error"' in inverted.text
    assert 'data-testid="daily-table"' not in inverted.text
    assert 'value="2026-03-10"' in inverted.text  # the form keeps what was typed

    garbage = await console.get("/console/analytics?from=yesterday&to=2026-03-01")
    assert garbage.status_code == 400
    assert "from is not a date" in garbage.text

    too_long = await console.get("/console/analytics?from=2025-01-01&to=2025-12-31")
    assert too_long.status_code == 400
    assert "at most 92 days" in too_long.text


async def test_the_page_needs_a_session(console: httpx.AsyncClient, tenant: Any) -> None:
    response = await console.get("/console/analytics")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login")


async def test_english_labels_and_dates(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await sign_in(console, users["viewer"])
    await console.get("/console/lang/en?next=/console/analytics")
    page = await console.get("/console/analytics?from=2026-03-01&to=2026-03-02")
    assert page.status_code == 200
    assert "Per day" in page.text and "Review SLA performance" in page.text
    assert '<th scope="row">2026-03-01</th>' in page.text
    inverted = await console.get("/console/analytics?from=2026-03-02&to=2026-03-01")
    assert "from must not be after to" in inverted.text
