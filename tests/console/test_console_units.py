"""Console rules that need no server: tile colours, number and date formats, the session cookie."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cerniq.auth.principal import Principal
from cerniq.console import i18n, session
from cerniq.console.web import tile_class
from cerniq.models.enums import Role


def _phone(status: str, used: int, limit: int = 200) -> dict[str, Any]:
    return {"status": status, "quota": {"used": used, "limit": limit}}


@pytest.mark.parametrize(
    ("status", "used", "colour"),
    [
        ("ACTIVE", 0, "green"),
        ("ACTIVE", 179, "green"),
        ("ACTIVE", 180, "amber"),
        ("ACTIVE", 200, "red"),
        ("BANNED", 0, "red"),
        ("OFFLINE", 10, "grey"),
        ("PAUSED", 10, "yellow"),
        ("PAUSED", 200, "yellow"),
    ],
)
def test_tile_colours_follow_status_then_usage(status: str, used: int, colour: str) -> None:
    assert tile_class(_phone(status, used)) == colour


def test_numbers_and_dates_follow_the_operators_language() -> None:
    assert i18n.format_number(1234.5, "ro", 1) == "1.234,5"
    assert i18n.format_number(1234.5, "en", 1) == "1,234.5"
    # 12:30 UTC in November is 14:30 in Bucharest (EET, UTC+2).
    assert i18n.format_datetime("2026-11-26T12:30:00Z", "ro") == "26.11.2026 14:30"
    assert i18n.format_datetime("2026-11-26T12:30:00Z", "en") == "2026-11-26 14:30"
    assert i18n.translate("en", "pending_reviews") == "Pending reviews"
    assert i18n.translate("ro", "pending_reviews") == "Revizuiri în așteptare"


def test_a_session_cookie_expires_and_cannot_be_edited() -> None:
    principal = Principal(
        tenant_id=uuid.uuid4(), role=Role.VIEWER, actor_type="user", actor_id="1", actor_label="v@x.ro"
    )
    cookie = session.encode(principal, now=1000.0)
    data = session.decode(cookie, now=1001.0)
    assert data is not None and data["role"] == "viewer"
    assert session.decode(cookie, now=1000.0 + session.SESSION_SECONDS + 1) is None
    forged = session.encode(
        Principal(
            tenant_id=principal.tenant_id,
            role=Role.ADMIN,
            actor_type="user",
            actor_id="1",
            actor_label="v@x.ro",
        ),
        now=1000.0,
    )
    mixed = forged.rpartition(".")[0] + "." + cookie.rpartition(".")[2]
    assert session.decode(mixed, now=1001.0) is None
