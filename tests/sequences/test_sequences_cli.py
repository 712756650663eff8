"""``cerniq sequences …`` and ``cerniq templates …`` as an operator runs them (subprocesses)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cerniq.kit.db import transaction
from cerniq.models import AuditEntry, OutreachSequence, SequenceEnrollment
from cerniq.sequences.service import ensure_default_content
from tests.fixtures.outreach import add_leads


async def cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from cerniq.cli.main import main; main()",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    stdout, stderr = await process.communicate()
    return int(process.returncode or 0), stdout.decode(), stderr.decode()


async def test_seed_enroll_pause_resume_from_the_cli(tenant: Any, tmp_path: Path) -> None:
    code, out, err = await cli("sequences", "seed-defaults")
    assert code == 0, err
    assert "Cerniq WhatsApp standard (default)" in out

    leads = await add_leads(tenant, 3)
    ids_file = tmp_path / "leads.csv"
    ids_file.write_text("leadId\n" + "\n".join(str(x) for x in leads) + "\nnot-an-id\n", encoding="utf-8")
    code, out, err = await cli("sequences", "enroll", "CERNIQ_WA_STD", "--leads", str(ids_file))
    assert code == 0, err
    assert "enrolled 3, skipped 0, errors 1" in out
    async with transaction() as session:
        assert len((await session.execute(select(SequenceEnrollment))).scalars().all()) == 3

    code, out, err = await cli("sequences", "pause", "CERNIQ_WA_STD", "--reason", "test")
    assert code == 0, err
    async with transaction() as session:
        sequence = (
            await session.execute(select(OutreachSequence).where(OutreachSequence.code == "CERNIQ_WA_STD"))
        ).scalar_one()
    assert sequence.is_active is False
    code, out, err = await cli("sequences", "resume", "CERNIQ_WA_STD")
    assert code == 0, err
    assert "resumed Cerniq WhatsApp standard" in out

    code, out, _ = await cli("sequences", "show", "CERNIQ_WA_STD", "--json")
    view = json.loads(out)
    assert view["stats"]["active"] == 3
    assert [s["delayLabel"] for s in view["steps"]] == ["0h", "+72h", "+120h"]
    async with transaction() as session:
        actions = set((await session.execute(select(AuditEntry.action))).scalars())
    assert {"sequence.enroll", "sequence.pause", "sequence.resume", "template.create"} <= actions


def test_templates_lint_from_the_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cerniq.cli.main import root

    good = tmp_path / "good.txt"
    good.write_text("{Bună ziua|Salut}, {{contactName|}}! Scriu pentru {{companyName}}.", encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_text("Bună ziua!\nSalut {pentru|} {{companyName}}", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(root, ["templates", "lint", str(good)])
    assert result.exit_code == 0 and "ok" in result.output and "companyName" in result.output
    result = runner.invoke(root, ["templates", "lint", str(bad)])
    assert result.exit_code == 1
    assert "EMPTY_OPTION" in result.output and "content 2:" in result.output


async def test_templates_preview_for_a_lead_from_the_cli(tenant: Any) -> None:
    async with transaction() as session:
        await ensure_default_content(session, tenant.id)
    (lead,) = await add_leads(tenant, 1)
    code, out, err = await cli(
        "templates", "preview", "CERNIQ_WA_INIT", "--lead", str(lead), "--seed", "7", "--json"
    )
    assert code == 0, err
    preview = json.loads(out)
    assert "Agro Ferma 1 SRL" in preview["preview"] and preview["missingVariables"] == []
