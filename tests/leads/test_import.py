"""CSV import against real PostgreSQL: good rows land, bad rows are reported with their physical
line numbers, duplicates merge, re-imports are stable, and the CLI works end to end."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from sqlalchemy import func, select

from cerniq.kit.db import transaction
from cerniq.leads import service
from cerniq.leads.importer import (
    CsvReader,
    ImportReport,
    InvalidCsv,
    decode_csv_bytes,
    normalize_email,
    normalize_phone,
    parse_cui,
)
from cerniq.models import AuditEntry, GoldCompany, GoldContact, GoldLeadJourney, LeadStateHistory
from cerniq.models.enums import LeadState

SAMPLE = Path(__file__).parent.parent / "fixtures" / "leads_sample.csv"

GOOD_CUIS = ["14214101", "34500000", "15900825", "27788998", "30123455", "20456789", "38765434"]

SAMPLE_ERRORS = {
    5: ("cui", "missing CUI"),
    6: ("cui", "invalid CUI check digit"),
    7: ("telefon", "invalid phone number"),
    8: ("email", "invalid email address"),
    9: ("denumire", "missing company name (denumire)"),
    14: (None, "the row has 2 value(s) beyond the header's columns (an unquoted separator inside a value?)"),
}


async def run_import(
    tenant: Any, content: str | bytes, *, dry_run: bool = False, batch_size: int = 2000
) -> ImportReport:
    text = decode_csv_bytes(content.encode() if isinstance(content, str) else content)
    async with transaction() as session:
        reader = CsvReader(io.StringIO(text, newline=""))
        return await service.import_leads(
            session,
            tenant.id,
            reader,
            principal=None,
            source="test.csv",
            dry_run=dry_run,
            batch_size=batch_size,
        )


async def counts(tenant: Any) -> dict[str, int]:
    async with transaction() as session:
        out = {}
        for name, model in (
            ("companies", GoldCompany),
            ("contacts", GoldContact),
            ("journeys", GoldLeadJourney),
            ("history", LeadStateHistory),
        ):
            out[name] = int(
                await session.scalar(
                    select(func.count()).select_from(model).where(model.tenant_id == tenant.id)
                )
                or 0
            )
        return out


async def company(tenant: Any, cui: str) -> tuple[GoldCompany, GoldLeadJourney, list[GoldContact]]:
    async with transaction() as session:
        row = (
            await session.execute(
                select(GoldCompany, GoldLeadJourney)
                .join(GoldLeadJourney, GoldLeadJourney.lead_id == GoldCompany.id)
                .where(GoldCompany.tenant_id == tenant.id, GoldCompany.cui == cui)
            )
        ).one()
        contacts = list(
            (
                await session.execute(
                    select(GoldContact)
                    .where(GoldContact.company_id == row[0].id)
                    .order_by(GoldContact.is_primary.desc(), GoldContact.full_name)
                )
            ).scalars()
        )
        return row[0], row[1], contacts


# ---------------------------------------------------------------------------------------------
# Field rules


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("14399840", "14399840"),  # a real CUI
        ("RO18547290", "18547290"),
        ("ro 1590082", "1590082"),
        ("RO18302400", "18302400"),
        ("18.302.400", "18302400"),
    ],
)
def test_valid_cuis(raw: str, expected: str) -> None:
    assert parse_cui(raw) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("14399841", "invalid CUI check digit"),
        ("12345675", "invalid CUI check digit"),
        ("1", "CUI must have 2 to 10 digits"),
        ("12345678901", "CUI must have 2 to 10 digits"),
        ("RO12A45", "CUI must contain only digits (after an optional RO prefix)"),
        ("١٤٣٩٩٨٤٠", "CUI must contain only digits (after an optional RO prefix)"),
    ],
)
def test_invalid_cuis(raw: str, reason: str) -> None:
    assert parse_cui(raw) == (None, reason)


@pytest.mark.parametrize(
    ("raw", "e164", "mobile"),
    [
        ("0722 123 456", "+40722123456", True),
        ("0722-123-456", "+40722123456", True),
        ("+40 (722) 123 456", "+40722123456", True),
        ("0040722123456", "+40722123456", True),
        ("722123456", "+40722123456", True),
        ("0264 123 456", "+40264123456", False),
        ("021 311 2233", "+40213112233", False),
        ("+36 30 123 4567", "+36301234567", True),
    ],
)
def test_phone_normalization(raw: str, e164: str, mobile: bool) -> None:
    phone = normalize_phone(raw)
    assert phone is not None
    assert (phone.e164, phone.mobile) == (e164, mobile)


@pytest.mark.parametrize("raw", ["12345", "0722 123", "telefon", "0799 999 999 999", "+40 100 000 000"])
def test_invalid_phones(raw: str) -> None:
    assert normalize_phone(raw) is None


def test_fast_path_agrees_with_phonenumbers() -> None:
    """The Romanian fast path must give what a full phonenumbers parse gives, for every prefix."""
    for prefix in range(1000, 10000):
        for suffix in ("00000", "12345", "99999"):
            raw = f"0{prefix}{suffix}"
            parsed = phonenumbers.parse(raw, "RO")
            expected = None
            if phonenumbers.is_valid_number(parsed):
                expected = (
                    phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
                    phonenumbers.number_type(parsed)
                    in (
                        phonenumbers.PhoneNumberType.MOBILE,
                        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
                    ),
                )
            got = normalize_phone(raw)
            assert (None if got is None else (got.e164, got.mobile)) == expected, raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Office@Ferma.RO", "office@ferma.ro"),
        (" ion.pop+agro@ferma-nord.com.ro ", "ion.pop+agro@ferma-nord.com.ro"),
        ("mailto:a@b.ro", "a@b.ro"),
        ("not-an-email", None),
        ("bad@@email", None),
        ("a..b@ferma.ro", None),
        ("a@ferma", None),
        ("a@-ferma.ro", None),
    ],
)
def test_email_normalization(raw: str, expected: str | None) -> None:
    assert normalize_email(raw) == expected


# ---------------------------------------------------------------------------------------------
# Whole files


async def test_sample_file_imports_good_rows_and_reports_bad_lines(tenant: Any) -> None:
    report = await run_import(tenant, SAMPLE.read_bytes())

    assert (report.rows, report.created, report.merged, report.skipped) == (12, 5, 1, 6)
    # Physical lines: the quoted address of line 10 spans line 11, so the next rows are 12-14.
    assert {e.line: (e.field, e.reason) for e in report.errors} == SAMPLE_ERRORS
    assert {e.line: e.value for e in report.errors if e.value} == {
        6: "12345675",
        7: "12345",
        8: "not-an-email",
    }
    warnings = {(w.line, w.field): w.reason for w in report.warnings}
    assert warnings[(13, "email")] == "invalid email address; dropped"
    assert report.journeys_created == 5
    assert report.contacts_created == 4
    assert await counts(tenant) == {"companies": 5, "contacts": 4, "journeys": 5, "history": 5}

    # Line 2 + line 12 (same CUI, without and with the RO prefix): one company, two contacts.
    agro, journey, contacts = await company(tenant, "18302400")
    assert agro.denumire == "Agro Ferma Nord SRL"
    assert agro.email_principal == "office@agrofermanord.ro"  # the first row's value stays
    assert agro.telefon_principal == "+40722123456"
    assert (agro.judet, agro.localitate, agro.cod_caen) == ("Cluj", "Turda", "0111")
    assert agro.is_agricultural is True
    assert agro.sector == "agricol"
    assert [(c.prenume, c.nume, c.email, c.phone, c.whatsapp_number) for c in contacts] == [
        ("Ion", "Popescu", "office@agrofermanord.ro", "+40722123456", "+40722123456"),
        ("Vasile", "Pop", "vanzari@agrofermanord.ro", "+40722999888", "+40722999888"),
    ]
    assert [c.is_primary for c in contacts] == [True, False]
    assert contacts[0].consent_whatsapp is True
    assert journey.current_state == LeadState.COLD
    assert journey.email == "office@agrofermanord.ro"
    assert journey.mobile_e164 == "+40722123456"
    assert journey.primary_contact_id == contacts[0].id
    assert journey.next_action_at is not None  # due for dispatch

    # A landline is kept on the company but never becomes the WhatsApp number.
    banat, journey, contacts = await company(tenant, "14214101")
    assert banat.telefon_principal == "+40256123456"
    assert banat.email_principal == "contact@cerealebanat.ro"  # lower-cased
    assert journey.mobile_e164 is None
    assert journey.email == "contact@cerealebanat.ro"
    assert contacts == []

    # The multi-line quoted value is read whole.
    vie, journey, contacts = await company(tenant, "15900825")
    assert vie.denumire == "Vie, Vin & Co SRL"
    assert vie.localitate == "Valea Călugărească"
    assert contacts[0].consent_whatsapp is False

    # A bad email next to a good phone: warned, dropped, the row imports.
    dunarea, journey, _ = await company(tenant, "27788998")
    assert dunarea.email_principal is None
    assert journey.mobile_e164 == "+40733333333"

    async with transaction() as session:
        history = (await session.execute(select(LeadStateHistory))).scalars().all()
        assert {(h.from_state, h.to_state, h.trigger) for h in history} == {(None, LeadState.COLD, "IMPORT")}
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "leads.import"))
        ).scalar_one()
        assert audit.after is not None
        assert audit.after["created"] == 5


async def test_reimport_merges_and_counts_stay_stable(tenant: Any) -> None:
    first = await run_import(tenant, SAMPLE.read_bytes())
    before = await counts(tenant)
    async with transaction() as session:
        stamps = dict((await session.execute(select(GoldCompany.cui, GoldCompany.updated_at))).all())

    second = await run_import(tenant, SAMPLE.read_bytes())
    assert (second.rows, second.created, second.merged, second.skipped) == (12, 0, 6, 6)
    assert second.contacts_created == 0
    assert second.journeys_created == 0
    assert [e.line for e in second.errors] == [e.line for e in first.errors]
    assert await counts(tenant) == before
    async with transaction() as session:
        # Nothing new to fill: the rows were not rewritten.
        assert dict((await session.execute(select(GoldCompany.cui, GoldCompany.updated_at))).all()) == stamps


async def test_duplicates_across_batches_merge_and_fill_empty_fields(tenant: Any) -> None:
    content = (
        "denumire,cui,judet,email,telefon,contact,functie\n"
        "Ferma Unu SRL,18302400,,,0722 000 001,Ion Pop,\n"
        "Ferma Doi SRL,14214101,Cluj,doi@ferma.ro,,,\n"
        "Ferma Trei SRL,34500000,Iași,trei@ferma.ro,,,\n"
        "Alt Nume SRL,18302400,Bihor,unu@ferma.ro,,Ion Pop,Administrator\n"  # same person: filled
        "Ferma Unu SRL,18302400,,,,Ana Ilie,Contabil\n"  # a new person: added
        "Ferma Doi SRL,RO14214101,Alba,,,,\n"
    )
    report = await run_import(tenant, content, batch_size=2)
    assert (report.rows, report.created, report.merged, report.skipped) == (6, 3, 3, 0)
    assert await counts(tenant) == {"companies": 3, "contacts": 2, "journeys": 3, "history": 3}
    unu, journey, contacts = await company(tenant, "18302400")
    assert unu.denumire == "Ferma Unu SRL"  # existing values win
    assert unu.judet == "Bihor"  # empty fields are filled
    assert unu.email_principal == "unu@ferma.ro"
    assert [(c.full_name, c.functie, c.is_primary) for c in contacts] == [
        ("Ion Pop", "Administrator", True),
        ("Ana Ilie", "Contabil", False),
    ]
    assert journey.email == "unu@ferma.ro"  # filled on the existing journey
    doi, _, _ = await company(tenant, "14214101")
    assert doi.judet == "Cluj"


async def test_semicolon_file_with_bom_and_romanian_headers(tenant: Any) -> None:
    content = (
        "\ufeffDenumire;CUI;Județ;Localitate;Telefon;Funcție;Prenume;Nume;Consent_WhatsApp\n"
        "Ferma Sud SRL;RO 18302400;Teleorman;Alexandria;0722 123 456;Administrator;Ana;Marin;DA\n"
    ).encode()
    report = await run_import(tenant, content)
    assert (report.rows, report.created, report.skipped) == (1, 1, 0)
    sud, journey, contacts = await company(tenant, "18302400")
    assert (sud.denumire, sud.judet, sud.localitate) == ("Ferma Sud SRL", "Teleorman", "Alexandria")
    assert journey.mobile_e164 == "+40722123456"
    assert [(c.prenume, c.nume, c.functie, c.consent_whatsapp) for c in contacts] == [
        ("Ana", "Marin", "Administrator", True)
    ]


async def test_landline_only_lead_imports_without_schedule(tenant: Any) -> None:
    content = "denumire,cui,telefon\nFerma Fixă SRL,18302400,0264 123 456\n"
    report = await run_import(tenant, content)
    assert report.skipped == 0
    assert [(w.line, w.reason) for w in report.warnings] == [
        (2, "no valid email or mobile number: imported, but no outreach is scheduled")
    ]
    fixa, journey, _ = await company(tenant, "18302400")
    assert fixa.telefon_principal == "+40264123456"
    assert journey.mobile_e164 is None
    assert journey.next_action_at is None

    # A later file brings a mobile number: the journey gets it and becomes due.
    await run_import(tenant, "denumire,cui,whatsapp\nFerma Fixă SRL,18302400,0744 000 111\n")
    _, journey, _ = await company(tenant, "18302400")
    assert journey.mobile_e164 == "+40744000111"
    assert journey.next_action_at is not None


async def test_dry_run_counts_but_writes_nothing(tenant: Any) -> None:
    report = await run_import(tenant, SAMPLE.read_bytes(), dry_run=True)
    assert (report.rows, report.created, report.merged, report.skipped) == (12, 5, 1, 6)
    assert report.dry_run is True
    assert await counts(tenant) == {"companies": 0, "contacts": 0, "journeys": 0, "history": 0}


async def test_unclosed_quote_is_reported_not_swallowed(tenant: Any) -> None:
    rows = "".join(f"Ferma {n} SRL,{cui},0722 000 00{n}\n" for n, cui in enumerate(GOOD_CUIS))
    # The quote opening line 2's first value is never closed.
    content = 'denumire,cui,telefon\n"Ferma Ghilimea SRL,18302400,0722 111 111\n' + rows
    report = await run_import(tenant, content)
    assert report.rows == 1
    assert report.created == 0
    assert [(e.line, e.reason) for e in report.errors] == [
        (
            2,
            f"the row spans lines 2-{2 + len(GOOD_CUIS)}: "
            'an unclosed quote (") joins the following rows into one value',
        )
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\n\n  \n", "the file is empty"),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "this is a binary file, not a CSV (save the sheet as 'CSV UTF-8')",
        ),
        (
            "denumire,cui\nFerma Şerban,123\n".encode("cp1250"),
            "the file is not UTF-8 text (save the sheet as 'CSV UTF-8')",
        ),
        (b"name,phone\nFerma,0722123456\n", "missing required column(s): denumire, cui"),
        (b"just some text\n", "missing required column(s): denumire, cui"),
    ],
)
def test_unreadable_files_are_rejected_as_a_whole(content: bytes, message: str) -> None:
    with pytest.raises(InvalidCsv) as caught:
        CsvReader(io.StringIO(decode_csv_bytes(content), newline=""))
    assert caught.value.message == message
    assert caught.value.error_code == "INVALID_CSV"
    assert caught.value.status_code == 400


async def test_cli_import_reports_lines_and_exit_code(tenant: Any, tmp_path: Path) -> None:
    errors_csv = tmp_path / "errors.csv"
    cli = [sys.executable, "-c", "from cerniq.cli.main import main; main()"]
    process = await asyncio.create_subprocess_exec(
        *cli,
        "leads",
        "import",
        str(SAMPLE),
        "--errors-csv",
        str(errors_csv),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    stdout, stderr = await process.communicate()
    output = stdout.decode() + stderr.decode()
    assert process.returncode == 1, output  # some rows failed
    assert "invalid CUI check digit" in output
    with errors_csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(int(r["line"]), r["reason"]) for r in rows] == [
        (line, r) for line, (_, r) in SAMPLE_ERRORS.items()
    ]
    assert (await counts(tenant))["companies"] == 5

    good = tmp_path / "good.csv"
    good.write_text("denumire;cui;telefon\nFerma Bună SRL;30123455;0722 555 444\n", encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        *cli, "leads", "import", str(good), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    await process.communicate()
    assert process.returncode == 0
    assert (await counts(tenant))["companies"] == 6

    process = await asyncio.create_subprocess_exec(
        *cli,
        "leads",
        "list",
        "--search",
        "30123455",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    stdout, _ = await process.communicate()
    assert process.returncode == 0
    assert "Ferma Bună SRL" in stdout.decode()
