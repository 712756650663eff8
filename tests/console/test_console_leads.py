"""The console's leads pages over HTTP: filters, bulk actions, CSV import and export, and the
actions of the lead detail page."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cerniq.kit.db import transaction
from cerniq.leads.importer import cui_check_digit_ok
from cerniq.models import GoldLeadJourney, LeadStateHistory, SequenceEnrollment
from cerniq.models.enums import Channel, LeadState
from tests.console.conftest import _open_review, csrf_of, sign_in
from tests.fixtures.outreach import add_leads, add_phones, add_sequence

pytestmark = pytest.mark.asyncio(loop_scope="session")


def names_on(html: str) -> set[str]:
    """The company names in the leads table, as a user reads them."""
    return set(re.findall(r'<a href="/console/leads/[0-9a-f-]{36}">([^<]+)</a>', html))


async def set_journey(journey_id: uuid.UUID, **values: Any) -> None:
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        for key, value in values.items():
            setattr(journey, key, value)


async def journey_of(journey_id: uuid.UUID) -> GoldLeadJourney:
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        session.expunge(journey)
        return journey


async def history_of(journey_id: uuid.UUID) -> list[LeadStateHistory]:
    async with transaction() as session:
        rows = await session.execute(
            select(LeadStateHistory)
            .where(LeadStateHistory.lead_journey_id == journey_id)
            .order_by(LeadStateHistory.created_at)
        )
        return list(rows.scalars())


async def test_each_filter_narrows_the_list(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await add_phones(tenant, 2)
    j1, j2, j3, j4 = await add_leads(tenant, 4, email=True)
    await set_journey(j1, last_channel_used=Channel.EMAIL_COLD, reply_count=2)
    # Flagged by dispatch (a template it could not render) but with no review in the queue.
    await set_journey(
        j2, assigned_phone_id="phone_02", last_channel_used=Channel.WHATSAPP, requires_human_review=True
    )
    await set_journey(j3, current_state=LeadState.DEAD)
    await _open_review(tenant, j4, "Revenim.")
    await sign_in(console, users["viewer"])
    everyone = {f"Agro Ferma {n} SRL" for n in (1, 2, 3, 4)}

    page = await console.get("/console/leads")
    assert page.status_code == 200
    assert names_on(page.text) == everyone
    for label in ('for="f-search"', 'for="f-state"', 'for="f-channel"', 'for="f-reply"', 'for="f-review"'):
        assert label in page.text

    cases = {
        "state=DEAD": {"Agro Ferma 3 SRL"},
        "state=COLD": {"Agro Ferma 1 SRL", "Agro Ferma 2 SRL", "Agro Ferma 4 SRL"},
        "channel=EMAIL_COLD": {"Agro Ferma 1 SRL"},
        "channel=WHATSAPP": {"Agro Ferma 2 SRL"},
        "hasReply=1": {"Agro Ferma 1 SRL"},
        "hasReply=0": everyone - {"Agro Ferma 1 SRL"},
        "needsReview=1": {"Agro Ferma 4 SRL"},
        "needsReview=0": everyone - {"Agro Ferma 4 SRL"},
        "phone=phone_02": {"Agro Ferma 2 SRL"},
        "phone=phone_01": set(),
        "search=ferma+3": {"Agro Ferma 3 SRL"},  # company name, any case
        "search=10000002": {"Agro Ferma 2 SRL"},  # CUI
        "search=RO10000004": {"Agro Ferma 4 SRL"},  # CUI with the RO prefix
        "search=0722+000+001": {"Agro Ferma 1 SRL"},  # phone as people write it
        "search=office3%40ferma3.ro": {"Agro Ferma 3 SRL"},  # email
        "search=100%25": set(),  # a LIKE wildcard is matched literally
        "state=COLD&channel=WHATSAPP&phone=phone_02&search=ferma": {"Agro Ferma 2 SRL"},
    }
    for query, expected in cases.items():
        page = await console.get(f"/console/leads?{query}")
        assert page.status_code == 200, query
        assert names_on(page.text) == expected, query
        if not expected:
            assert "Niciun lead." in page.text

    # The chosen filters stay selected, and sorting keeps them.
    page = await console.get("/console/leads?channel=WHATSAPP&hasReply=0")
    assert '<option value="WHATSAPP" selected>' in page.text
    assert "channel=WHATSAPP" in page.text and "hasReply=0" in page.text

    bad = await console.get("/console/leads?channel=FAX")
    assert bad.status_code == 303
    shown = await console.get(bad.headers["location"])
    assert "unknown channel" in shown.text and 'data-testid="error"' in shown.text
    bad = await console.get("/console/leads?hasReply=maybe")
    assert "hasReply" in (await console.get(bad.headers["location"])).text


async def test_list_pages_through_many_leads(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await add_leads(tenant, 30)
    await sign_in(console, users["viewer"])
    first = await console.get("/console/leads?sortBy=companyName&sortOrder=asc&search=ferma")
    second = await console.get("/console/leads?sortBy=companyName&sortOrder=asc&search=ferma&page=2")
    assert len(names_on(first.text)) == 25 and len(names_on(second.text)) == 5
    assert not names_on(first.text) & names_on(second.text)
    assert "search=ferma" in first.text and "page=2" in first.text  # the next link keeps the filter


async def test_a_long_list_says_more_than_instead_of_counting_every_lead(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cerniq.leads import repository

    await add_leads(tenant, 30)
    monkeypatch.setattr(repository, "COUNT_AHEAD", 1)
    await sign_in(console, users["viewer"])
    first = await console.get("/console/leads")
    assert 'data-testid="total-more"' in first.text and "peste 26" in first.text
    assert "page=2" in first.text
    last = await console.get("/console/leads?page=2")
    assert 'data-testid="total-more"' not in last.text and "30" in last.text


async def test_bulk_mark_dead_changes_states_and_writes_history(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    j1, j2, j3 = await add_leads(tenant, 3)
    await set_journey(j3, current_state=LeadState.CONVERTED)  # terminal: cannot die
    await sign_in(console, users["operator"])
    page = await console.get("/console/leads?state=COLD")
    assert 'data-testid="bulk-actions"' in page.text
    assert f'<label for="sel-{j1}"' in page.text
    response = await console.post(
        "/console/leads/bulk",
        data={
            "csrf": csrf_of(page.text),
            "action": "dead",
            "reason": "firma radiată",
            "lead": [str(j1), str(j2), str(j3)],
            "next": "/console/leads?state=COLD",
        },
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/console/leads?state=COLD&")
    result = await console.get(location)
    assert "Lead-uri modificate: 2" in result.text
    refused = re.search(r'data-testid="bulk-refused">(.*?)</ul>', result.text, re.S)
    assert refused is not None
    assert "Agro Ferma 3 SRL" in refused.group(1) and "INVALID_TRANSITION" in refused.group(1)
    assert names_on(result.text) == set()  # none is COLD any more

    for journey_id in (j1, j2):
        assert (await journey_of(journey_id)).current_state == LeadState.DEAD
        (entry,) = await history_of(journey_id)
        assert (entry.from_state, entry.to_state) == (LeadState.COLD, LeadState.DEAD)
        assert entry.trigger == "MANUAL" and entry.reason == "firma radiată"
        assert entry.actor != "system"
    assert (await journey_of(j3)).current_state == LeadState.CONVERTED
    assert await history_of(j3) == []


async def test_bulk_needs_a_reason_and_a_ticked_lead(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    (j1,) = await add_leads(tenant, 1)
    await sign_in(console, users["operator"])
    csrf = csrf_of((await console.get("/console/leads")).text)
    no_reason = await console.post(
        "/console/leads/bulk", data={"csrf": csrf, "action": "dead", "lead": str(j1), "reason": " "}
    )
    assert "a+reason+is+required" in no_reason.headers["location"]
    nothing = await console.post("/console/leads/bulk", data={"csrf": csrf, "action": "dead", "reason": "x"})
    assert "tick+at+least+one+lead" in nothing.headers["location"]
    assert (await journey_of(j1)).current_state == LeadState.COLD


async def test_bulk_enroll_reports_refusals(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    sequence_id = await add_sequence(tenant)
    j1, j2 = await add_leads(tenant, 2)
    await set_journey(j2, is_human_controlled=True)
    await sign_in(console, users["operator"])
    page = await console.get("/console/leads")
    assert f'<option value="{sequence_id}">WA standard</option>' in page.text
    response = await console.post(
        "/console/leads/bulk",
        data={
            "csrf": csrf_of(page.text),
            "action": "enroll",
            "sequenceId": str(sequence_id),
            "lead": [str(j1), str(j2)],
            "next": "/console/leads",
        },
    )
    result = await console.get(response.headers["location"])
    assert "Lead-uri modificate: 1" in result.text
    assert "Agro Ferma 2 SRL: HUMAN_CONTROLLED" in result.text
    async with transaction() as session:
        enrolled = (await session.execute(select(SequenceEnrollment.lead_journey_id))).scalars().all()
    assert enrolled == [j1]


async def test_a_viewer_sees_no_bulk_actions_and_a_forged_post_is_refused(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    (j1,) = await add_leads(tenant, 1)
    await sign_in(console, users["viewer"])
    page = await console.get("/console/leads")
    assert "Agro Ferma 1 SRL" in page.text
    assert 'data-testid="bulk-actions"' not in page.text
    assert 'type="checkbox" name="lead"' not in page.text
    assert 'data-testid="import"' not in page.text
    detail = await console.get(f"/console/leads/{j1}")
    assert 'data-testid="change-state"' not in detail.text
    assert 'data-testid="reassign-phone"' not in detail.text
    csrf = csrf_of(page.text)  # the sign-out form's token
    forged = await console.post(
        "/console/leads/bulk", data={"csrf": csrf, "action": "dead", "reason": "x", "lead": str(j1)}
    )
    assert forged.status_code == 403
    for path, data in (
        (f"/console/leads/{j1}/state", {"toState": "DEAD", "reason": "x"}),
        (f"/console/leads/{j1}/reassign-phone", {}),
        (f"/console/leads/{j1}/enroll", {"sequenceId": str(uuid.uuid4())}),
    ):
        assert (await console.post(path, data={"csrf": csrf, **data})).status_code == 403, path
    upload = await console.post(
        "/console/leads/import",
        data={"csrf": csrf},
        files={"file": ("x.csv", b"denumire,cui\nA,18547290\n", "text/csv")},
    )
    assert upload.status_code == 403
    assert (await journey_of(j1)).current_state == LeadState.COLD


def valid_cui(start: int) -> str:
    n = start
    while not cui_check_digit_ok(str(n)):
        n += 1
    return str(n)


async def import_csv(
    console: httpx.AsyncClient, csrf: str, name: str, content: bytes, **fields: str
) -> httpx.Response:
    """Upload a CSV, then follow its progress page until the import's report is there."""
    started = await console.post(
        "/console/leads/import", data={"csrf": csrf, **fields}, files={"file": (name, content, "text/csv")}
    )
    assert started.status_code == 303, started.text
    location = started.headers["location"]
    assert location.startswith("/console/leads/import/")
    for _ in range(200):
        page = await console.get(location)
        if page.status_code != 200 or 'data-testid="import-running"' not in page.text:
            return page
        await asyncio.sleep(0.05)
    raise AssertionError("the import did not finish")


async def test_csv_import_shows_the_bad_rows_line_number(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await sign_in(console, users["operator"])
    form = await console.get("/console/leads/import")
    assert form.status_code == 200 and 'for="imp-file"' in form.text
    good_a, good_b = valid_cui(20_000_000), valid_cui(21_000_000)
    content = (
        "denumire,cui,telefon,email\n"
        f"Ferma Import Unu SRL,{good_a},0722 555 001,unu@ferma.ro\n"
        "Ferma Greșită SRL,12345,0722 555 002,doi@ferma.ro\n"
        f"Ferma Import Trei SRL,{good_b},0722 555 003,trei@ferma.ro\n"
    ).encode()
    response = await import_csv(console, csrf_of(form.text), "ferme.csv", content)
    assert response.status_code == 200, response.text
    html = response.text
    assert re.search(r'data-testid="import-rows">3<', html)
    assert re.search(r'data-testid="import-created">2<', html)
    assert re.search(r'data-testid="import-skipped">1<', html)
    errors = re.findall(r'<tr data-testid="import-error"><td>(\d+)</td><td>([^<]*)</td>', html)
    assert errors == [("3", "cui")]
    assert "12345" in html
    listing = await console.get("/console/leads?search=Import")
    assert names_on(listing.text) == {"Ferma Import Unu SRL", "Ferma Import Trei SRL"}

    # A dry run counts the same but writes nothing; a non-CSV file is a clear error.
    csrf = csrf_of(html)
    dry = await import_csv(
        console,
        csrf,
        "noi.csv",
        f"denumire,cui\nFerma Noua SRL,{valid_cui(22_000_000)}\n".encode(),
        dryRun="1",
    )
    assert "nimic nu a fost scris" in dry.text
    assert names_on((await console.get("/console/leads?search=Noua")).text) == set()
    binary = await console.post(
        "/console/leads/import", data={"csrf": csrf}, files={"file": ("x.xlsx", b"PK\x03\x04\x00\x00")}
    )
    assert binary.status_code == 303
    assert "INVALID_CSV" in (await console.get(binary.headers["location"])).text


async def test_an_import_shows_its_progress_and_belongs_to_its_tenant(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any, other_tenant: Any
) -> None:
    from cerniq.console import imports
    from cerniq.kit.redis import get_redis

    await sign_in(console, users["operator"])
    key = imports.KEY.format("abc123")
    running = {"tenant": str(tenant.id), "status": "running", "source": "mari.csv", "rows": 4000}
    await get_redis().hset(key, mapping={**running, "lines": 10000, "beat": time.time()})
    page = await console.get("/console/leads/import/abc123")
    assert 'data-testid="import-running"' in page.text and 'value="40"' in page.text  # 40 % done
    polled = await console.get("/console/leads/import/abc123", headers={"HX-Request": "true"})
    assert polled.status_code == 200 and "import-running" in polled.text  # htmx keeps polling

    await get_redis().hset(key, mapping={"beat": 0})  # no progress for long: its process stopped
    stalled = await console.get("/console/leads/import/abc123")
    assert stalled.status_code == 303
    assert "IMPORT_STALLED" in (await console.get(stalled.headers["location"])).text
    refresh = await console.get("/console/leads/import/abc123", headers={"HX-Request": "true"})
    assert refresh.headers.get("HX-Refresh") == "true"  # the polling page reloads to show it

    await get_redis().hset(key, mapping={"tenant": str(other_tenant.id), "beat": 10**10})
    other = await console.get("/console/leads/import/abc123")
    assert other.status_code == 303 and "NOT_FOUND" in other.headers["location"]


async def test_export_returns_the_filtered_rows_as_csv(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    journeys = await add_leads(tenant, 5)
    for journey_id in journeys[:3]:
        await set_journey(journey_id, current_state=LeadState.DEAD)
    await sign_in(console, users["viewer"])
    page = await console.get("/console/leads?state=DEAD")
    assert 'href="/console/leads/export.csv?state=DEAD"' in page.text
    response = await console.get("/console/leads/export.csv?state=DEAD")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert {r["company"] for r in rows} == {f"Agro Ferma {n} SRL" for n in (1, 2, 3)}
    assert {r["state"] for r in rows} == {"DEAD"}
    assert {r["id"] for r in rows} == {str(j) for j in journeys[:3]}
    assert rows[0]["mobile"].startswith("+40722")  # a phone number is not mangled

    everything = await console.get("/console/leads/export.csv?search=ferma+5")
    (only,) = list(csv.DictReader(io.StringIO(everything.text.lstrip("\ufeff"))))
    assert only["company"] == "Agro Ferma 5 SRL" and only["cui"] == "10000005"


async def test_export_is_streamed_in_pages(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cerniq.console import endpoints_console_leads

    monkeypatch.setattr(endpoints_console_leads, "EXPORT_BATCH", 4)
    await add_leads(tenant, 10)
    await sign_in(console, users["viewer"])
    response = await console.get("/console/leads/export.csv")
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert sorted(r["company"] for r in rows) == sorted(f"Agro Ferma {n} SRL" for n in range(1, 11))
    assert len({r["id"] for r in rows}) == 10


async def test_detail_page_reassigns_changes_state_and_enrolls(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await add_phones(tenant, 2)
    sequence_id = await add_sequence(tenant)
    (j1,) = await add_leads(tenant, 1)
    await set_journey(j1, assigned_phone_id="phone_01")
    await sign_in(console, users["operator"])
    page = await console.get(f"/console/leads/{j1}")
    assert 'for="rp-phone"' in page.text and 'for="st-reason"' in page.text and 'for="en-seq"' in page.text
    assert '<option value="phone_02">' in page.text
    csrf = csrf_of(page.text)
    back = f"/console/leads/{j1}?flash=done"

    moved = await console.post(
        f"/console/leads/{j1}/reassign-phone", data={"csrf": csrf, "phoneId": "phone_02"}
    )
    assert moved.headers["location"] == back
    assert (await journey_of(j1)).assigned_phone_id == "phone_02"
    unknown = await console.post(
        f"/console/leads/{j1}/reassign-phone", data={"csrf": csrf, "phoneId": "phone_99"}
    )
    assert "NOT_FOUND" in (await console.get(unknown.headers["location"])).text

    enrolled = await console.post(
        f"/console/leads/{j1}/enroll", data={"csrf": csrf, "sequenceId": str(sequence_id)}
    )
    assert enrolled.headers["location"] == back
    async with transaction() as session:
        rows = (await session.execute(select(SequenceEnrollment))).scalars().all()
    assert [(r.lead_journey_id, r.sequence_id) for r in rows] == [(j1, sequence_id)]
    again = await console.post(
        f"/console/leads/{j1}/enroll", data={"csrf": csrf, "sequenceId": str(sequence_id)}
    )
    assert "ALREADY_ENROLLED" in (await console.get(again.headers["location"])).text

    no_reason = await console.post(f"/console/leads/{j1}/state", data={"csrf": csrf, "toState": "DEAD"})
    assert "reason" in (await console.get(no_reason.headers["location"])).text
    assert (await journey_of(j1)).current_state == LeadState.COLD

    dead = await console.post(
        f"/console/leads/{j1}/state", data={"csrf": csrf, "toState": "DEAD", "reason": "nu mai activează"}
    )
    assert dead.headers["location"] == back
    assert (await journey_of(j1)).current_state == LeadState.DEAD
    (entry,) = await history_of(j1)
    assert entry.to_state == LeadState.DEAD and entry.reason == "nu mai activează"

    invalid = await console.post(
        f"/console/leads/{j1}/state", data={"csrf": csrf, "toState": "CONVERTED", "reason": "greșeală"}
    )
    shown = await console.get(invalid.headers["location"])
    assert "INVALID_TRANSITION" in shown.text and "cannot move to CONVERTED" in shown.text
    assert (await journey_of(j1)).current_state == LeadState.DEAD

    page = await console.get(f"/console/leads/{j1}")
    history = re.search(r'data-testid="state-history">(.*?)</table>', page.text, re.S)
    assert (
        history is not None and "COLD → DEAD" in history.group(1) and "nu mai activează" in history.group(1)
    )
