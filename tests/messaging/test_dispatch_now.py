"""On-demand dispatch: ``POST /api/v1/outreach/dispatch`` (operator+) and ``cerniq dispatch``."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cerniq.kit.db import transaction
from cerniq.models import AuditEntry, GoldCommunicationLog
from cerniq.models.enums import Role
from tests.fixtures.outreach import add_leads, add_phones, add_sequence, count_messages

CERNIQ = str(Path(sys.executable).parent / "cerniq")


async def test_an_operator_dispatches_their_tenant_now(
    tenant: Any, other_tenant: Any, sandbox: Any, api: Any, make_token: Any
) -> None:
    await add_phones(tenant, 2)
    await add_sequence(tenant)
    await add_leads(tenant, 3)
    await add_sequence(other_tenant)
    await add_leads(other_tenant, 2, start=100)

    viewer = await make_token(tenant, Role.VIEWER)
    refused = await api.post("/api/v1/outreach/dispatch", headers=viewer)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"]

    operator = await make_token(tenant, Role.OPERATOR)
    response = await api.post("/api/v1/outreach/dispatch", headers=operator)
    assert response.status_code == 200
    report = response.json()
    assert report["claimed"] == 3 and report["queuedWhatsapp"] == 3 and report["emergencyStop"] is False
    async with transaction() as session:
        tenants = set((await session.execute(select(GoldCommunicationLog.tenant_id))).scalars())
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "outreach.dispatch"))
        ).scalars()
        audits = list(audit)
    assert tenants == {tenant.id}  # the other tenant's due leads were not touched
    assert len(audits) == 1 and audits[0].tenant_id == tenant.id

    again = await api.post("/api/v1/outreach/dispatch", headers=operator)
    assert again.json()["claimed"] == 0


async def test_cerniq_dispatch_prints_the_report(tenant: Any, sandbox: Any) -> None:
    await add_phones(tenant, 1)
    await add_sequence(tenant)
    await add_leads(tenant, 2)
    process = await asyncio.create_subprocess_exec(
        CERNIQ, "dispatch", "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()[-2000:]
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert report["queuedWhatsapp"] == 2
    assert await count_messages() == 2
    async with transaction() as session:
        audits = list(
            (
                await session.execute(select(AuditEntry).where(AuditEntry.action == "outreach.dispatch"))
            ).scalars()
        )
    assert len(audits) == 1
