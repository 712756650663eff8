"""The console's operations pages over HTTP: review assign/escalate, alerts, the audit log,
phone incidents, user management and sign-in rate limiting."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cerniq.kit.db import transaction
from cerniq.models import HumanReview
from cerniq.models.enums import ReviewStatus
from cerniq.models.user import User
from tests.console.conftest import _open_review, csrf_of, sign_in
from tests.fixtures.outreach import add_leads, add_phones

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _user_id(email: str) -> uuid.UUID:
    async with transaction() as session:
        return (await session.execute(select(User.id).where(User.email == email))).scalar_one()


async def _review(review_id: uuid.UUID) -> HumanReview:
    async with transaction() as session:
        review = await session.get(HumanReview, review_id)
        assert review is not None
        return review


# ---------------------------------------------------------------------------------------------
# Reviews: assign and escalate


async def test_an_operator_assigns_a_review_to_a_colleague_and_to_himself(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await add_phones(tenant, 1)
    (journey_id,) = await add_leads(tenant, 1)
    review_id = await _open_review(tenant, journey_id, "Revenim cu oferta.")
    await sign_in(console, users["operator"])
    page = await console.get("/console/reviews?tab=MEDIUM")
    assert f'action="/console/reviews/{review_id}/assign"' in page.text
    assert f'for="assign-{review_id}"' in page.text
    admin_id = await _user_id(users["admin"])
    response = await console.post(
        f"/console/reviews/{review_id}/assign",
        data={"csrf": csrf_of(page.text), "userId": str(admin_id), "next": "/console/reviews?tab=MEDIUM"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console/reviews?tab=MEDIUM&flash=done"
    review = await _review(review_id)
    assert review.status == ReviewStatus.ASSIGNED and review.assigned_to == admin_id
    page = await console.get("/console/reviews?tab=MEDIUM")
    assert 'data-testid="review-owner"' in page.text and "admin" in page.text

    response = await console.post(
        f"/console/reviews/{review_id}/assign", data={"csrf": csrf_of(page.text), "userId": "me"}
    )
    assert response.status_code == 303 and "flash=done" in response.headers["location"]
    assert (await _review(review_id)).assigned_to == await _user_id(users["operator"])

    bad = await console.post(
        f"/console/reviews/{review_id}/assign", data={"csrf": csrf_of(page.text), "userId": "nobody"}
    )
    assert bad.status_code == 303 and "error=VALIDATION_ERROR" in bad.headers["location"]


async def test_an_operator_escalates_a_review_and_a_short_reason_is_refused(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await add_phones(tenant, 1)
    (journey_id,) = await add_leads(tenant, 1)
    review_id = await _open_review(tenant, journey_id, "Revenim cu oferta.")
    await sign_in(console, users["operator"])
    page = await console.get("/console/reviews?tab=MEDIUM")
    csrf = csrf_of(page.text)
    short = await console.post(
        f"/console/reviews/{review_id}/escalate",
        data={"csrf": csrf, "escalateTo": "manager", "reason": "scurt"},
    )
    assert short.status_code == 303 and "error=VALIDATION_ERROR" in short.headers["location"]
    assert (await _review(review_id)).status != ReviewStatus.ESCALATED
    response = await console.post(
        f"/console/reviews/{review_id}/escalate",
        data={"csrf": csrf, "escalateTo": "manager", "reason": "Clientul cere un discount mare"},
    )
    assert response.status_code == 303 and "flash=done" in response.headers["location"]
    review = await _review(review_id)
    assert review.status == ReviewStatus.ESCALATED
    assert review.escalated_to == "manager" and review.escalation_level == 1


async def test_a_viewer_cannot_assign_or_escalate(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await add_phones(tenant, 1)
    (journey_id,) = await add_leads(tenant, 1)
    review_id = await _open_review(tenant, journey_id, "Revenim cu oferta.")
    await sign_in(console, users["viewer"])
    page = await console.get("/console/reviews?tab=MEDIUM")
    assert 'data-testid="assign"' not in page.text and 'data-testid="escalate"' not in page.text
    assert "data-sla-due=" in page.text  # the countdown element is there for every role
    csrf = csrf_of(page.text)
    for verb, data in (
        ("assign", {"userId": "me"}),
        ("escalate", {"escalateTo": "manager", "reason": "o escaladare falsificată"}),
    ):
        response = await console.post(f"/console/reviews/{review_id}/{verb}", data={"csrf": csrf, **data})
        assert response.status_code == 403
    review = await _review(review_id)
    assert review.status == ReviewStatus.PENDING and review.assigned_to is None


# ---------------------------------------------------------------------------------------------
# Alerts


async def _alert(tenant: Any, subject: str = "phone_07") -> uuid.UUID:
    from cerniq.ops import alerts

    async with transaction() as session:
        alert = await alerts.trigger(
            session, "phone:offline", subject=subject, tenant_id=tenant.id, message="no heartbeat"
        )
        return alert.id


async def _alert_status(alert_id: uuid.UUID) -> tuple[str, Any]:
    from cerniq.models import Alert

    async with transaction() as session:
        alert = await session.get(Alert, alert_id)
        assert alert is not None
        return alert.status.value, alert.silenced_until


async def test_alerts_page_lists_open_alerts_and_an_operator_acknowledges_silences_and_resolves(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    alert_id = await _alert(tenant)
    await sign_in(console, users["operator"])
    page = await console.get("/console/alerts")
    assert page.status_code == 200
    assert f'data-testid="alert-{alert_id}"' in page.text
    assert "phone_07" in page.text and "HIGH" in page.text
    assert f'for="sil-{alert_id}"' in page.text
    csrf = csrf_of(page.text)

    response = await console.post(f"/console/alerts/{alert_id}/acknowledge", data={"csrf": csrf})
    assert response.status_code == 303 and response.headers["location"] == "/console/alerts?flash=done"
    assert (await _alert_status(alert_id))[0] == "ACKNOWLEDGED"

    no_reason = await console.post(
        f"/console/alerts/{alert_id}/silence", data={"csrf": csrf, "minutes": "60", "reason": ""}
    )
    assert "error=VALIDATION_ERROR" in no_reason.headers["location"]
    bad_minutes = await console.post(
        f"/console/alerts/{alert_id}/silence", data={"csrf": csrf, "minutes": "lots", "reason": "mentenanță"}
    )
    assert "error=VALIDATION_ERROR" in bad_minutes.headers["location"]
    assert (await _alert_status(alert_id))[0] == "ACKNOWLEDGED"

    response = await console.post(
        f"/console/alerts/{alert_id}/silence", data={"csrf": csrf, "minutes": "60", "reason": "mentenanță"}
    )
    assert "flash=done" in response.headers["location"]
    status, until = await _alert_status(alert_id)
    assert status == "SILENCED" and until is not None

    response = await console.post(f"/console/alerts/{alert_id}/resolve", data={"csrf": csrf})
    assert "flash=done" in response.headers["location"]
    assert (await _alert_status(alert_id))[0] == "RESOLVED"
    page = await console.get("/console/alerts")
    assert f'data-testid="alert-{alert_id}"' not in page.text
    assert f'data-testid="history-{alert_id}"' in page.text

    again = await console.post(f"/console/alerts/{alert_id}/acknowledge", data={"csrf": csrf})
    assert "error=ALERT_RESOLVED" in again.headers["location"]


async def test_a_viewer_reads_alerts_but_a_forged_action_is_refused(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    alert_id = await _alert(tenant)
    await sign_in(console, users["viewer"])
    page = await console.get("/console/alerts")
    assert f'data-testid="alert-{alert_id}"' in page.text
    assert 'data-testid="acknowledge"' not in page.text and 'data-testid="resolve"' not in page.text
    csrf = csrf_of(page.text)
    for verb in ("acknowledge", "resolve", "silence"):
        response = await console.post(
            f"/console/alerts/{alert_id}/{verb}", data={"csrf": csrf, "minutes": "60", "reason": "forjat"}
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "FORBIDDEN"
    assert (await _alert_status(alert_id))[0] == "OPEN"


# ---------------------------------------------------------------------------------------------
# Audit log


async def _audit(tenant: Any, action: str, entity_type: str, reason: str, count: int = 1) -> None:
    from cerniq.auth.principal import system_principal
    from cerniq.auth.service import record_audit

    async with transaction() as session:
        for i in range(count):
            await record_audit(
                session,
                system_principal(tenant.id),
                action,
                entity_type=entity_type,
                entity_id=f"{entity_type}-{i}",
                reason=f"{reason} {i}" if count > 1 else reason,
            )


async def test_the_audit_log_shows_entries_newest_first_and_filters_narrow_it(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await _audit(tenant, "phone.pause", "phone", "pauză de test")
    await _audit(tenant, "alert.silence", "alert", "mentenanță planificată")
    await sign_in(console, users["admin"])
    page = await console.get("/console/audit")
    assert page.status_code == 200
    assert 'for="f-action"' in page.text and 'for="f-from"' in page.text
    assert "pauză de test" in page.text and "mentenanță planificată" in page.text
    assert "console.sign_in" in page.text
    assert page.text.index("console.sign_in") < page.text.index("pauză de test")  # newest first

    narrowed = await console.get("/console/audit?action=alert.")
    assert "mentenanță planificată" in narrowed.text
    assert "pauză de test" not in narrowed.text and "console.sign_in" not in narrowed.text
    by_entity = await console.get("/console/audit?entity=phone")
    assert "pauză de test" in by_entity.text and "mentenanță planificată" not in by_entity.text
    by_actor = await console.get(f"/console/audit?actor={users['admin']}")
    assert "console.sign_in" in by_actor.text and "pauză de test" not in by_actor.text
    future = await console.get("/console/audit?from=2999-01-01")
    assert 'data-testid="audit-empty"' in future.text
    bad = await console.get("/console/audit?from=yesterday")
    assert bad.status_code == 200 and "VALIDATION_ERROR" in bad.text


async def test_the_audit_log_pages_with_an_older_link(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await _audit(tenant, "lead.update", "lead", "rând", count=60)
    await sign_in(console, users["admin"])
    first = await console.get("/console/audit?action=lead.")
    assert first.text.count('data-testid="audit-row"') == 50
    older = first.text.split('data-testid="audit-older"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = await console.get(older.replace("&amp;", "&"))
    assert second.text.count('data-testid="audit-row"') == 10
    assert 'data-testid="audit-older"' not in second.text
    reasons = {f"rând {i}" for i in range(60)}
    shown = {r for r in reasons if f"<td>{r}</td>" in first.text or f"<td>{r}</td>" in second.text}
    assert shown == reasons  # no row lost or repeated across the page boundary


async def test_the_audit_log_is_for_admins_only(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await sign_in(console, users["operator"])
    assert (await console.get("/console/audit")).status_code == 403


# ---------------------------------------------------------------------------------------------
# Phones: incident history


async def test_a_banned_phone_shows_the_ban_in_its_incident_history(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    from cerniq.auth.principal import system_principal
    from cerniq.phones import actions as phone_actions

    banned, healthy = await add_phones(tenant, 2)
    async with transaction() as session:
        principal = system_principal(tenant.id)
        await phone_actions.ban(session, principal, banned, reason="raportat ca spam de Meta")
    await sign_in(console, users["viewer"])
    page = await console.get("/console/phones")
    assert page.status_code == 200
    card = page.text.split(f'data-testid="incidents-{banned}"')[1].split("</details>")[0]
    assert "BANNED" in card and "raportat ca spam de Meta" in card
    other = page.text.split(f'data-testid="incidents-{healthy}"')[1].split("</details>")[0]
    assert "REGISTERED" in other  # created phones have their registration on record
    assert "BANNED" not in other and "raportat ca spam" not in other


# ---------------------------------------------------------------------------------------------
# Users


async def _user(email: str) -> User:
    async with transaction() as session:
        return (await session.execute(select(User).where(User.email == email))).scalar_one()


async def test_an_admin_creates_a_user_who_can_then_sign_in(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await sign_in(console, users["admin"])
    page = await console.get("/console/users")
    assert page.status_code == 200
    assert 'for="nu-email"' in page.text and 'for="nu-pass"' in page.text
    assert f'data-testid="user-{users["viewer"]}"' in page.text
    csrf = csrf_of(page.text)
    short = await console.post(
        "/console/users",
        data={"csrf": csrf, "email": "ioana@ferma.ro", "role": "operator", "password": "scurt"},
    )
    assert "error=VALIDATION_ERROR" in short.headers["location"]
    response = await console.post(
        "/console/users",
        data={
            "csrf": csrf,
            "email": "Ioana@Ferma.ro",
            "displayName": "Ioana Pop",
            "role": "operator",
            "password": "parola-ioanei-1",
        },
    )
    assert response.headers["location"] == "/console/users?flash=done"
    again = await console.post(
        "/console/users",
        data={"csrf": csrf, "email": "ioana@ferma.ro", "role": "viewer", "password": "parola-ioanei-1"},
    )
    assert "error=CONFLICT" in again.headers["location"]
    page = await console.get("/console/users")
    assert "Ioana Pop" in page.text
    audit = await console.get("/console/audit?action=user.create")
    assert "ioana@ferma.ro" in audit.text

    console.cookies.clear()
    signed = await sign_in(console, "ioana@ferma.ro", "parola-ioanei-1")
    assert signed.headers["location"] == "/console/dashboard"
    who = await console.get("/console/dashboard")
    assert "ioana@ferma.ro · operator" in who.text


async def test_an_admin_changes_a_role_deactivates_and_resets_a_password(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await sign_in(console, users["admin"])
    csrf = csrf_of((await console.get("/console/users")).text)
    viewer = await _user(users["viewer"])
    await console.post(f"/console/users/{viewer.id}/role", data={"csrf": csrf, "role": "operator"})
    assert (await _user(users["viewer"])).role.value == "operator"
    bad = await console.post(f"/console/users/{viewer.id}/role", data={"csrf": csrf, "role": "root"})
    assert "error=VALIDATION_ERROR" in bad.headers["location"]
    new_password = {"csrf": csrf, "password": "o-parola-noua"}
    await console.post(f"/console/users/{viewer.id}/password", data=new_password)
    await console.post(f"/console/users/{viewer.id}/deactivate", data={"csrf": csrf})
    assert not (await _user(users["viewer"])).is_active

    console.cookies.clear()
    refused = await sign_in(console, users["viewer"], "o-parola-noua")
    assert "error=bad_credentials" in refused.headers["location"]  # deactivated
    await sign_in(console, users["admin"])
    csrf = csrf_of((await console.get("/console/users")).text)
    await console.post(f"/console/users/{viewer.id}/reactivate", data={"csrf": csrf})
    console.cookies.clear()
    signed = await sign_in(console, users["viewer"], "o-parola-noua")
    assert signed.headers["location"] == "/console/dashboard"


async def test_an_admin_cannot_deactivate_or_demote_themselves(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await sign_in(console, users["admin"])
    page = await console.get("/console/users")
    admin = await _user(users["admin"])
    assert f'action="/console/users/{admin.id}/deactivate"' not in page.text
    csrf = csrf_of(page.text)
    response = await console.post(f"/console/users/{admin.id}/deactivate", data={"csrf": csrf})
    assert "error=SELF_LOCKOUT" in response.headers["location"]
    demote = await console.post(f"/console/users/{admin.id}/role", data={"csrf": csrf, "role": "viewer"})
    assert "error=SELF_LOCKOUT" in demote.headers["location"]
    admin = await _user(users["admin"])
    assert admin.is_active and admin.role.value == "admin"


async def test_a_non_admin_cannot_manage_users(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    await sign_in(console, users["operator"])
    assert (await console.get("/console/users")).status_code == 403
    csrf = csrf_of((await console.get("/console/dashboard")).text)
    viewer = await _user(users["viewer"])
    created = await console.post(
        "/console/users",
        data={"csrf": csrf, "email": "intrus@ferma.ro", "role": "admin", "password": "parola-intrus-1"},
    )
    assert created.status_code == 403
    for verb, data in (("role", {"role": "admin"}), ("deactivate", {}), ("password", {"password": "x" * 12})):
        response = await console.post(f"/console/users/{viewer.id}/{verb}", data={"csrf": csrf, **data})
        assert response.status_code == 403
    async with transaction() as session:
        assert (await session.execute(select(User).where(User.email == "intrus@ferma.ro"))).first() is None
    viewer = await _user(users["viewer"])
    assert viewer.is_active and viewer.role.value == "viewer"


# ---------------------------------------------------------------------------------------------
# Sign-in rate limiting


async def test_after_five_wrong_passwords_even_the_right_one_is_refused_within_the_window(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    from cerniq.kit.redis import get_redis

    for _ in range(5):
        response = await sign_in(console, users["operator"], "parola-gresita")
        assert "error=bad_credentials" in response.headers["location"]
    sixth = await sign_in(console, users["operator"], "parola-gresita")
    assert "error=too_many_attempts" in sixth.headers["location"]
    right = await sign_in(console, users["operator"])
    assert "error=too_many_attempts" in right.headers["location"]
    assert "cerniq_console" not in right.cookies
    login = await console.get(right.headers["location"])
    assert "Prea multe încercări eșuate" in login.text

    other = await sign_in(console, users["viewer"])  # another email from the same address still works
    assert other.headers["location"] == "/console/dashboard"

    redis = get_redis()
    keys = [k async for k in redis.scan_iter("console:signin:fail:email:*")]
    assert keys and 0 < int(await redis.ttl(keys[0])) <= 15 * 60
    for key in keys:  # the window passes
        await redis.delete(key)
    console.cookies.clear()
    again = await sign_in(console, users["operator"])
    assert again.headers["location"] == "/console/dashboard"


async def test_a_successful_sign_in_clears_the_email_counter(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    for _ in range(4):
        await sign_in(console, users["admin"], "parola-gresita")
    assert (await sign_in(console, users["admin"])).headers["location"] == "/console/dashboard"
    console.cookies.clear()
    for _ in range(4):
        await sign_in(console, users["admin"], "parola-gresita")
    # 8 failures in the window, but only 4 since the success: not blocked
    assert (await sign_in(console, users["admin"])).headers["location"] == "/console/dashboard"


async def test_many_failures_from_one_address_block_it(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    for i in range(20):
        await sign_in(console, f"necunoscut{i}@ferma.ro", "parola-gresita")
    blocked = await sign_in(console, users["admin"])
    assert "error=too_many_attempts" in blocked.headers["location"]


async def test_deactivating_or_demoting_a_user_applies_to_their_open_session(
    console: httpx.AsyncClient, users: dict[str, str], tenant: Any
) -> None:
    from cerniq.app import create_app
    from cerniq.config import get_settings

    transport = httpx.ASGITransport(app=create_app(get_settings()), client=("203.0.113.10", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await sign_in(other, users["operator"])
        await sign_in(console, users["admin"])
        assert (await other.get("/console/leads")).status_code == 200
        csrf = csrf_of((await console.get("/console/users")).text)
        operator = await _user(users["operator"])
        await console.post(f"/console/users/{operator.id}/deactivate", data={"csrf": csrf})
        # the operator's cookie is still valid, but the user is not: back to the sign-in page
        page = await other.get("/console/leads")
        assert page.status_code == 303 and page.headers["location"].startswith("/console/login")

        viewer = await _user(users["viewer"])
        await console.post(f"/console/users/{viewer.id}/role", data={"csrf": csrf, "role": "admin"})
        await sign_in(other, users["viewer"])
        assert (await other.get("/console/users")).status_code == 200
        await console.post(f"/console/users/{viewer.id}/role", data={"csrf": csrf, "role": "viewer"})
        assert (await other.get("/console/users")).status_code == 403  # demoted at once
