"""The console's content pages over HTTP: sequences, templates (with the live preview) and
email campaigns. Actions go through the feature services, so the DB and audit log change."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cerniq.kit.db import transaction
from cerniq.models import EmailCampaign, OutreachSequence, OutreachSequenceStep, OutreachTemplate
from cerniq.models.audit_log import AuditEntry
from cerniq.models.enums import Channel
from cerniq.sandbox import SandboxHandle
from tests.console.conftest import csrf_of, sign_in
from tests.email.conftest import email_sandbox_server, make_campaign, vendors_closed  # noqa: F401
from tests.email.conftest import sandbox as email_sandbox  # noqa: F401  (the email sandbox, renamed)
from tests.fixtures.outreach import add_leads

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def add_template(
    tenant: Any, name: str, content: str, channel: Channel = Channel.WHATSAPP
) -> uuid.UUID:
    async with transaction() as session:
        template = OutreachTemplate(
            tenant_id=tenant.id,
            name=name,
            channel=channel,
            content=content,
            subject="Semințe de primăvară" if channel != Channel.WHATSAPP else None,
        )
        session.add(template)
        await session.flush()
        return template.id


async def steps_in_db(sequence_id: uuid.UUID) -> list[OutreachSequenceStep]:
    async with transaction() as session:
        rows = await session.execute(
            select(OutreachSequenceStep)
            .where(OutreachSequenceStep.sequence_id == sequence_id)
            .order_by(OutreachSequenceStep.step_number)
        )
        return list(rows.scalars())


async def audit_actions() -> list[str]:
    async with transaction() as session:
        return list((await session.execute(select(AuditEntry.action))).scalars())


# ---------------------------------------------------------------------------------------------
# Sequences


async def test_an_operator_creates_a_sequence_and_edits_its_steps(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    first = await add_template(tenant, "Prim contact", "{Bună ziua|Salut}, scriu pentru {{companyName}}.")
    second = await add_template(
        tenant, "Revenire", "Revin pentru {{companyName}}: ați avut timp să vă uitați?"
    )
    await sign_in(console, users["operator"])
    page = await console.get("/console/sequences")
    assert page.status_code == 200
    assert 'data-testid="sequence-create"' in page.text and 'for="seq-name"' in page.text
    created = await console.post(
        "/console/sequences",
        data={
            "csrf": csrf_of(page.text),
            "name": "Fermieri Timiș",
            "primaryChannel": "WHATSAPP",
            "templateId": str(first),
        },
    )
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    assert location.startswith("/console/sequences/") and "flash=done" in location
    sequence_id = uuid.UUID(location.split("/")[3].split("?")[0])
    async with transaction() as session:
        sequence = await session.get(OutreachSequence, sequence_id)
        assert sequence is not None and sequence.name == "Fermieri Timiș"
    assert [(s.step_number, s.template_id) for s in await steps_in_db(sequence_id)] == [(1, first)]

    detail = await console.get(location)
    assert "Fermieri Timiș" in detail.text and "Gata." in detail.text
    assert 'data-testid="step-row-1"' in detail.text  # the blank "add step" row
    # Keep step 1 with a 2 h delay, add a second step 48 h later that does not skip on reply.
    saved = await console.post(
        f"/console/sequences/{sequence_id}/steps",
        data={
            "csrf": csrf_of(detail.text),
            "s0_order": "1",
            "s0_channel": "WHATSAPP",
            "s0_template": str(first),
            "s0_delayHours": "2",
            "s0_delayMinutes": "30",
            "s0_skipIfReplied": "1",
            "s1_order": "2",
            "s1_channel": "WHATSAPP",
            "s1_template": str(second),
            "s1_delayHours": "48",
            "s1_delayMinutes": "0",
        },
    )
    assert saved.status_code == 303 and "flash=done" in saved.headers["location"], saved.headers["location"]
    steps = await steps_in_db(sequence_id)
    assert [
        (s.step_number, s.template_id, s.delay_hours, s.delay_minutes, s.skip_if_replied) for s in steps
    ] == [
        (1, first, 2, 30, True),
        (2, second, 48, 0, False),
    ]
    shown = await console.get(f"/console/sequences/{sequence_id}")
    assert "Pasul 2" in shown.text and 'value="48"' in shown.text
    listing = await console.get("/console/sequences")
    assert "Fermieri Timiș" in listing.text
    assert {"sequence.create", "sequence.steps.replace"} <= set(await audit_actions())

    # Reordering puts the second row first; "remove" drops a row; the blank row adds nothing.
    reorder = await console.post(
        f"/console/sequences/{sequence_id}/steps",
        data={
            "csrf": csrf_of(shown.text),
            "s0_order": "2",
            "s0_template": str(first),
            "s0_channel": "WHATSAPP",
            "s1_order": "1",
            "s1_template": str(second),
            "s1_channel": "WHATSAPP",
        },
    )
    assert "flash=done" in reorder.headers["location"]
    assert [s.template_id for s in await steps_in_db(sequence_id)] == [second, first]
    removed = await console.post(
        f"/console/sequences/{sequence_id}/steps",
        data={
            "csrf": csrf_of(shown.text),
            "s0_template": str(second),
            "s0_remove": "1",
            "s1_template": str(first),
            "s2_template": "",
        },
    )
    assert "flash=done" in removed.headers["location"]
    assert [(s.step_number, s.template_id) for s in await steps_in_db(sequence_id)] == [(1, first)]


async def test_bad_step_input_gives_a_clear_message_not_a_500(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    template = await add_template(tenant, "Prim contact", "{Bună ziua|Salut}, scriu pentru {{companyName}}.")
    email = await add_template(
        tenant, "Email rece", "Bună ziua, vă scriu despre semințe.", Channel.EMAIL_COLD
    )
    await sign_in(console, users["operator"])
    page = await console.get("/console/sequences")
    csrf = csrf_of(page.text)
    short = await console.post(
        "/console/sequences",
        data={"csrf": csrf, "name": "X", "primaryChannel": "WHATSAPP", "templateId": str(template)},
    )
    assert short.status_code == 303 and "error=VALIDATION_ERROR" in short.headers["location"]
    shown = await console.get(short.headers["location"])
    assert "name" in shown.text and 'data-testid="error"' in shown.text
    created = await console.post(
        "/console/sequences",
        data={"csrf": csrf, "name": "Secvența A", "primaryChannel": "WHATSAPP", "templateId": str(template)},
    )
    target = created.headers["location"].split("?")[0]
    for data, code in (
        ({"s0_template": str(template), "s0_delayHours": "doi"}, "VALIDATION_ERROR"),
        ({"s0_template": str(template), "s0_delayHours": "9999"}, "VALIDATION_ERROR"),
        ({"s0_template": "not-a-uuid"}, "VALIDATION_ERROR"),
        ({"s0_template": str(email), "s0_channel": "WHATSAPP"}, "TEMPLATE_CHANNEL_MISMATCH"),
        ({"s0_template": str(template), "s0_remove": "1"}, "VALIDATION_ERROR"),
    ):
        response = await console.post(f"{target}/steps", data={"csrf": csrf, **data})
        assert response.status_code == 303, response.text
        assert f"error={code}" in response.headers["location"], (data, response.headers["location"])
    assert len(await steps_in_db(uuid.UUID(target.rsplit("/", 1)[1]))) == 1


async def test_pause_resume_and_enroll_from_the_sequence_page(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    template = await add_template(tenant, "Prim contact", "{Bună ziua|Salut}, scriu pentru {{companyName}}.")
    leads = await add_leads(tenant, 3)
    await sign_in(console, users["operator"])
    page = await console.get("/console/sequences")
    csrf = csrf_of(page.text)
    created = await console.post(
        "/console/sequences",
        data={"csrf": csrf, "name": "Secvența B", "primaryChannel": "WHATSAPP", "templateId": str(template)},
    )
    target = created.headers["location"].split("?")[0]
    sequence_id = uuid.UUID(target.rsplit("/", 1)[1])

    paused = await console.post(f"{target}/pause", data={"csrf": csrf})
    assert "flash=done" in paused.headers["location"]
    async with transaction() as session:
        row = await session.get(OutreachSequence, sequence_id)
        assert row is not None and row.is_active is False and row.status.value == "PAUSED"
    shown = await console.get(target)
    assert 'data-testid="seq-resume"' in shown.text and "PAUSED" in shown.text
    resumed = await console.post(f"{target}/resume", data={"csrf": csrf})
    assert "flash=done" in resumed.headers["location"]
    async with transaction() as session:
        row = await session.get(OutreachSequence, sequence_id)
        assert row is not None and row.is_active is True

    # By ids: one real lead and one unknown id; then the other two by filter.
    by_ids = await console.post(
        f"{target}/enroll", data={"csrf": csrf, "leadIds": f"{leads[0]}\n{uuid.uuid4()}"}
    )
    location = by_ids.headers["location"]
    assert "enrolled=1" in location and "skipped=1" in location
    shown = await console.get(location)
    assert "Înscriși: 1; săriți: 1." in shown.text
    by_filter = await console.post(
        f"{target}/enroll", data={"csrf": csrf, "state": "COLD", "search": "Agro Ferma"}
    )
    assert "enrolled=2" in by_filter.headers["location"], by_filter.headers["location"]
    shown = await console.get(target)
    assert 'data-testid="stat-enrolled">3<' in shown.text
    empty = await console.post(f"{target}/enroll", data={"csrf": csrf})
    assert "error=VALIDATION_ERROR" in empty.headers["location"]
    assert {"sequence.pause", "sequence.resume"} <= set(await audit_actions())


async def test_a_viewer_sees_no_sequence_edits_and_a_forged_post_is_refused(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    template = await add_template(tenant, "Prim contact", "{Bună ziua|Salut}, scriu pentru {{companyName}}.")
    await sign_in(console, users["operator"])
    page = await console.get("/console/sequences")
    created = await console.post(
        "/console/sequences",
        data={
            "csrf": csrf_of(page.text),
            "name": "Secvența C",
            "primaryChannel": "WHATSAPP",
            "templateId": str(template),
        },
    )
    target = created.headers["location"].split("?")[0]
    sequence_id = uuid.UUID(target.rsplit("/", 1)[1])
    await console.post("/console/logout", data={"csrf": csrf_of(page.text)})

    await sign_in(console, users["viewer"])
    listing = await console.get("/console/sequences")
    assert "Secvența C" in listing.text
    assert (
        'data-testid="sequence-create"' not in listing.text and 'data-testid="seq-pause"' not in listing.text
    )
    detail = await console.get(target)
    assert detail.status_code == 200 and 'data-testid="steps-table"' in detail.text
    for marker in ("steps-form", "enroll-form", "seq-pause", "save-steps"):
        assert f'data-testid="{marker}"' not in detail.text
    csrf = csrf_of(detail.text)
    for path, data in (
        (f"{target}/pause", {}),
        (f"{target}/steps", {"s0_template": str(template), "s0_delayHours": "5"}),
        (f"{target}/enroll", {"leadIds": str(uuid.uuid4())}),
        ("/console/sequences", {"name": "Falsă", "templateId": str(template)}),
    ):
        forged = await console.post(path, data={"csrf": csrf, **data})
        assert forged.status_code == 403, (path, forged.status_code)
    async with transaction() as session:
        row = await session.get(OutreachSequence, sequence_id)
        assert row is not None and row.is_active is True
    assert [s.delay_hours for s in await steps_in_db(sequence_id)] == [0]


# ---------------------------------------------------------------------------------------------
# Templates


async def test_the_live_preview_renders_spintax_with_sample_values(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await sign_in(console, users["operator"])
    page = await console.get("/console/templates")
    csrf = csrf_of(page.text)
    fragment = await console.post(
        "/console/templates/preview",
        data={"csrf": csrf, "content": "{Bună|Salut} {{company}}", "samples": "company=Agro Delta SRL"},
        headers={"HX-Request": "true"},
    )
    assert fragment.status_code == 200
    assert "<html" not in fragment.text  # a fragment for htmx, not a page
    renders = re.findall(r'data-testid="preview-render">(.*?)</div>', fragment.text, re.S)
    assert renders and set(renders) <= {"Bună Agro Delta SRL", "Salut Agro Delta SRL"}
    assert 'data-severity="error"' not in fragment.text

    broken = await console.post(
        "/console/templates/preview",
        data={"csrf": csrf, "content": "{Bună|Salut {{company}}", "samples": ""},
        headers={"HX-Request": "true"},
    )
    assert broken.status_code == 200
    assert 'data-severity="error"' in broken.text and "UNBALANCED_BRACES" in broken.text
    assert 'data-testid="preview-render"' not in broken.text

    # Without JavaScript the Preview button posts the same form and gets the whole page back.
    no_js = await console.post(
        "/console/templates/preview",
        data={
            "csrf": csrf,
            "name": "Ciornă",
            "content": "{Bună ziua|Salut}, {{companyName}}!",
            "samples": "",
        },
    )
    assert no_js.status_code == 200 and "<html" in no_js.text
    assert "Agro Ferma Exemplu SRL" not in no_js.text  # no sample values given: the variable stays
    assert "{{companyName}}!" in no_js.text.replace("&#123;", "{")
    assert 'value="Ciornă"' in no_js.text  # the draft is kept in the form

    # A preview still needs the session's CSRF token.
    forged = await console.post("/console/templates/preview", data={"csrf": "nope", "content": "x"})
    assert forged.status_code == 403


async def test_templates_are_created_versioned_and_varied_from_the_editor(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await sign_in(console, users["operator"])
    page = await console.get("/console/templates")
    assert 'for="tpl-content"' in page.text and 'hx-trigger="keyup changed delay:300ms"' in page.text
    csrf = csrf_of(page.text)
    bad = await console.post(
        "/console/templates",
        data={
            "csrf": csrf,
            "name": "Greșit",
            "channel": "WHATSAPP",
            "content": "{Bună|Salut, ce mai faceți?",
        },
    )
    assert "error=TEMPLATE_INVALID" in bad.headers["location"]
    no_subject = await console.post(
        "/console/templates",
        data={
            "csrf": csrf,
            "name": "Email fără subiect",
            "channel": "EMAIL_COLD",
            "content": "Bună ziua, vă scriu.",
        },
    )
    assert "error=VALIDATION_ERROR" in no_subject.headers["location"]
    created = await console.post(
        "/console/templates",
        data={
            "csrf": csrf,
            "name": "Prim contact fermieri",
            "channel": "WHATSAPP",
            "content": "{Bună ziua|Salut}, {{firstName|}} de la {{companyName}}!",
        },
    )
    assert created.status_code == 303 and "flash=done" in created.headers["location"]
    editor_path = created.headers["location"].split("?")[0]
    template_id = uuid.UUID(editor_path.rsplit("/", 1)[1])
    editor = await console.get(editor_path)
    assert "Prim contact fermieri" in editor.text and 'data-testid="current-version">v1<' in editor.text
    assert 'data-testid="preview-render"' in editor.text  # rendered with the sample values at once
    assert "Agro Ferma Exemplu SRL" in editor.text
    assert "{{judet}}" in editor.text  # the variables a lead can supply are listed

    saved = await console.post(
        editor_path,
        data={
            "csrf": csrf,
            "content": "{Bună ziua|Salut|Hei}, {{firstName|}} de la {{companyName}}!",
            "changeNotes": "al treilea salut",
        },
    )
    assert "flash=done" in saved.headers["location"]
    async with transaction() as session:
        row = await session.get(OutreachTemplate, template_id)
        assert row is not None and row.current_version == 2 and "Hei" in row.content
    shown = await console.get(editor_path)
    assert "al treilea salut" in shown.text and 'data-testid="current-version">v2<' in shown.text

    broken = await console.post(editor_path, data={"csrf": csrf, "content": "{Bună|Salut fără închidere"})
    assert "error=TEMPLATE_INVALID" in broken.headers["location"]

    variant = await console.post(
        f"{editor_path}/variants",
        data={
            "csrf": csrf,
            "label": "scurt",
            "weight": "30",
            "content": "Salut, {{companyName}}! Vă scriu scurt.",
        },
    )
    assert "flash=done" in variant.headers["location"], variant.headers["location"]
    shown = await console.get(editor_path)
    assert "scurt" in shown.text and 'data-testid="retire-variant"' in shown.text
    too_much = await console.post(
        f"{editor_path}/variants",
        data={
            "csrf": csrf,
            "label": "mult",
            "weight": "90",
            "content": "Salut, {{companyName}}! Alt text lung.",
        },
    )
    assert "error=VARIANT_WEIGHT_TOO_HIGH" in too_much.headers["location"]
    not_a_number = await console.post(
        f"{editor_path}/variants",
        data={"csrf": csrf, "label": "x", "weight": "mult", "content": "Salut, ce faceți?"},
    )
    assert "error=VALIDATION_ERROR" in not_a_number.headers["location"]
    version_id = re.search(r"/variants/([0-9a-f-]{36})/retire", shown.text)
    assert version_id
    retired = await console.post(f"{editor_path}/variants/{version_id.group(1)}/retire", data={"csrf": csrf})
    assert "flash=done" in retired.headers["location"]
    assert 'data-testid="retire-variant"' not in (await console.get(editor_path)).text
    actions = await audit_actions()
    assert {
        "template.create",
        "template.update",
        "template.variant.create",
        "template.variant.update",
    } <= set(actions)
    listing = await console.get("/console/templates?channel=WHATSAPP")
    assert "Prim contact fermieri" in listing.text
    assert (
        (await console.get(f"/console/templates/{uuid.uuid4()}"))
        .headers["location"]
        .startswith("/console/templates?error=NOT_FOUND")
    )


async def test_a_viewer_sees_no_template_edits_and_a_forged_save_is_refused(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    template_id = await add_template(
        tenant, "Prim contact", "{Bună ziua|Salut}, scriu pentru {{companyName}}."
    )
    await sign_in(console, users["viewer"])
    listing = await console.get("/console/templates")
    assert "Prim contact" in listing.text and 'data-testid="template-create"' not in listing.text
    editor = await console.get(f"/console/templates/{template_id}")
    assert editor.status_code == 200
    assert 'data-testid="save-version"' not in editor.text and 'data-testid="variant-form"' not in editor.text
    assert 'data-testid="preview-button"' in editor.text  # a viewer may still preview
    csrf = csrf_of(editor.text)
    for path, data in (
        (f"/console/templates/{template_id}", {"content": "Text schimbat de un vizitator."}),
        (
            f"/console/templates/{template_id}/variants",
            {"label": "x", "weight": "10", "content": "Alt text aici."},
        ),
        ("/console/templates", {"name": "Fals", "channel": "WHATSAPP", "content": "Text fals aici."}),
    ):
        forged = await console.post(path, data={"csrf": csrf, **data})
        assert forged.status_code == 403, path
    async with transaction() as session:
        row = await session.get(OutreachTemplate, template_id)
        assert row is not None and row.content.startswith("{Bună ziua|Salut}")


# ---------------------------------------------------------------------------------------------
# Email campaigns


async def set_campaign_stats(campaign_id: uuid.UUID, **stats: Any) -> None:
    async with transaction() as session:
        row = await session.get(EmailCampaign, campaign_id)
        assert row is not None
        row.stats = stats


async def campaign_row(campaign_id: uuid.UUID) -> Any:
    async with transaction() as session:
        return await session.get(EmailCampaign, campaign_id)


async def test_an_operator_pauses_and_resumes_a_campaign_here_and_at_instantly(
    console: httpx.AsyncClient,
    users: dict[str, str],
    tenant: Any,
    email_sandbox: SandboxHandle,  # noqa: F811
    vendors_closed: None,  # noqa: F811
) -> None:
    campaign = await make_campaign(tenant, name="Fermieri Arad")
    await set_campaign_stats(campaign.id, leads=120, sent=100, bounced=4, bounceRate=4.0)
    await sign_in(console, users["operator"])
    page = await console.get("/console/campaigns")
    assert page.status_code == 200
    row = page.text.split(f'data-testid="campaign-{campaign.id}"', 1)[1].split("</tr>", 1)[0]
    assert "Fermieri Arad" in page.text and ">ACTIVE<" in row
    assert "<td>120</td>" in row and "<td>100</td>" in row and "4,0 %" in row  # Romanian number format
    assert 'data-testid="campaign-pause"' in row

    paused = await console.post(
        f"/console/campaigns/{campaign.id}/pause",
        data={"csrf": csrf_of(page.text), "reason": "listă de verificat"},
    )
    assert paused.status_code == 303 and paused.headers["location"] == "/console/campaigns?flash=done"
    row_db = await campaign_row(campaign.id)
    assert row_db.status == "PAUSED" and row_db.paused_reason == "listă de verificat"
    (vendor,) = email_sandbox.control("GET", "/_control/instantly/campaigns")
    assert vendor["id"] == campaign.instantly_campaign_id and vendor["status"] == 2  # paused at Instantly
    shown = await console.get("/console/campaigns")
    assert "listă de verificat" in shown.text and 'data-testid="campaign-resume"' in shown.text

    resumed = await console.post(
        f"/console/campaigns/{campaign.id}/resume", data={"csrf": csrf_of(shown.text)}
    )
    assert resumed.headers["location"] == "/console/campaigns?flash=done"
    assert (await campaign_row(campaign.id)).status == "ACTIVE"
    (vendor,) = email_sandbox.control("GET", "/_control/instantly/campaigns")
    assert vendor["status"] == 1
    assert {"email.campaign.pause", "email.campaign.resume"} <= set(await audit_actions())

    unknown = await console.post("/console/campaigns/nope/pause", data={"csrf": csrf_of(shown.text)})
    assert "error=CAMPAIGN_NOT_FOUND" in unknown.headers["location"]


async def test_a_viewer_sees_campaigns_but_cannot_pause_them(
    console: httpx.AsyncClient,
    users: dict[str, str],
    tenant: Any,
    email_sandbox: SandboxHandle,  # noqa: F811
    vendors_closed: None,  # noqa: F811
) -> None:
    campaign = await make_campaign(tenant, name="Fermieri Bihor")
    await sign_in(console, users["viewer"])
    page = await console.get("/console/campaigns")
    assert "Fermieri Bihor" in page.text
    assert (
        'data-testid="campaign-pause"' not in page.text and 'data-testid="campaign-resume"' not in page.text
    )
    forged = await console.post(f"/console/campaigns/{campaign.id}/pause", data={"csrf": csrf_of(page.text)})
    assert forged.status_code == 403
    assert (await campaign_row(campaign.id)).status == "ACTIVE"
    (vendor,) = email_sandbox.control("GET", "/_control/instantly/campaigns")
    assert vendor["status"] == 1
