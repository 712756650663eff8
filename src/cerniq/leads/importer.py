"""CSV import of leads (Etapa 1 companies and their contacts).

The file: UTF-8 with or without a BOM, comma, semicolon or tab separated (sniffed from the
header line), a header row whose names are matched case- and accent-insensitively against
:data:`HEADER_ALIASES`. ``denumire`` and ``cui`` columns are required; unknown columns are kept
in ``gold_companies.raw`` and reported once as a warning.

Per row (line numbers are physical lines of the file, the header being line 1, so a quoted
value spanning two lines moves the next row's number by two):

- ``cui``: required; an ``RO`` prefix and spaces/dots are dropped, then 2-10 digits whose last
  is the check digit of the official key ``753217532``. Anything else is a row error.
- ``denumire``: required (whitespace collapsed).
- Channels, ``email``, ``telefon`` and ``whatsapp``: the email is lower-cased and checked for
  syntax; phones are parsed with ``phonenumbers`` (region RO) into E.164. An invalid channel is a
  row **error** only when the row has no other valid channel; when it has one, the bad value is
  **dropped with a warning** and the row imports (a typo in one address should not lose a
  company we can still reach, and a row we cannot reach at all is likely misaligned data).
- WhatsApp: a ``whatsapp`` column, else a ``telefon`` that ``phonenumbers`` types as MOBILE or
  FIXED_LINE_OR_MOBILE, becomes the journey's ``mobile_e164``. A landline stays on the company
  (``telefon_principal``) but is never used for WhatsApp.
- A row with neither an email nor a mobile number imports (the company is valid) with a warning,
  and its journey is not scheduled (``next_action_at`` stays NULL) since nothing can reach it.
- Booleans accept true/false, da/nu, yes/no, 1/0; an unreadable one is ignored with a warning.

Duplicates (the same CUI earlier in the file or already in the tenant) are merged, never
doubled: empty company fields are filled, existing values win; a contact is added unless one of
the company's contacts has the same email, phone or name, in which case that contact's empty
fields are filled; consent flags follow the latest file that states them (so a withdrawal in a
newer export is honoured). Every company gets one journey in COLD (with a ``lead_state_history``
row, trigger IMPORT) if it has none, due for dispatch now.

Rows are processed in batches (2,000 by default) with a handful of set-based statements per
batch (``unnest`` arrays, ``INSERT ... ON CONFLICT``), never one ORM object per row.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import itertools
import json
import operator
import re
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any, Final

import phonenumbers
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.errors import ValidationFailed
from cerniq.kit.clock import utcnow
from cerniq.leads import repository

ProgressCallback = Callable[[int], None]

DEFAULT_BATCH_SIZE: Final = 2000
MAX_WARNINGS: Final = 1000  # warnings kept in the report (all are counted)
MAX_VALUE_CHARS: Final = 100  # of an offending value quoted in an error
MAX_ROW_LINES: Final = 5  # a quoted multi-line address spans 2-3; more means an unclosed quote

csv.field_size_limit(1_000_000)


class InvalidCsv(ValidationFailed):
    """The file as a whole cannot be read as a lead CSV (empty, binary, not UTF-8, no header)."""

    code = "INVALID_CSV"


# ---------------------------------------------------------------------------------------------
# Header


def normalize_header(name: str) -> str:
    """``"Județ "`` -> ``"judet"``, ``"Company Name"`` -> ``"company_name"``."""
    text = unicodedata.normalize("NFKD", name.replace("\ufeff", "")).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")


_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "denumire": ("denumire", "company", "company_name", "denumire_firma", "firma", "companie", "nume_firma"),
    "cui": ("cui", "cif", "cod_fiscal", "cod_unic"),
    "nr_reg_com": ("nr_reg_com", "reg_com", "nr_registrul_comertului"),
    "judet": ("judet", "county"),
    "localitate": ("localitate", "city", "oras"),
    "adresa": ("adresa", "address"),
    "cod_caen": ("cod_caen", "caen"),
    "sector": ("sector",),
    "is_agricultural": ("is_agricultural", "agricol"),
    "email": ("email", "email_principal", "e_mail"),
    "telefon": ("telefon", "phone", "telefon_principal", "tel"),
    "whatsapp": ("whatsapp", "whatsapp_number"),
    "prenume": ("prenume", "first_name"),
    "nume": ("nume", "last_name"),
    "contact": ("contact", "contact_name", "persoana_contact"),
    "functie": ("functie", "job_title"),
    "consent_email": ("consent_email",),
    "consent_whatsapp": ("consent_whatsapp",),
    "website": ("website", "site", "web"),
    "lead_score": ("lead_score",),
    "email_status": ("email_status",),
    "hlr_reachable": ("hlr_reachable",),
}

#: normalized header name -> canonical field
HEADER_ALIASES: Final[dict[str, str]] = {
    alias: canonical for canonical, aliases in _ALIASES.items() for alias in aliases
}
REQUIRED_COLUMNS: Final = ("denumire", "cui")


# ---------------------------------------------------------------------------------------------
# Field rules

_CUI_KEY: Final = (7, 5, 3, 2, 1, 7, 5, 3, 2)
_CUI_STRIP = re.compile(r"[\s.\-/]")


def cui_check_digit_ok(digits: str) -> bool:
    """True when the last digit of ``digits`` is the Romanian CUI check digit of the others
    (key 753217532 over the body left-padded to 9 digits; ``sum * 10 mod 11``, 10 -> 0)."""
    body = digits[:-1].rjust(9, "0")
    total: int = sum(map(operator.mul, map(int, body), _CUI_KEY))
    return (total * 10) % 11 % 10 == int(digits[-1])


def parse_cui(raw: str) -> tuple[str | None, str | None]:
    """``("RO 1234567", ...)`` -> ``(digits, None)`` or ``(None, reason)``."""
    value = _CUI_STRIP.sub("", raw).upper()
    if value.startswith("RO"):
        value = value[2:]
    if not value.isdigit() or not value.isascii():
        return None, "CUI must contain only digits (after an optional RO prefix)"
    if not 2 <= len(value) <= 10:
        return None, "CUI must have 2 to 10 digits"
    if not cui_check_digit_ok(value):
        return None, "invalid CUI check digit"
    return value, None


_EMAIL = re.compile(
    r"^(?!\.)(?!.*\.\.)[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}(?<!\.)"
    r"@(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)


def normalize_email(raw: str) -> str | None:
    """Lower-cased address, or None when it is not a syntactically valid email address."""
    value = raw.strip().lower()
    if value.startswith("mailto:"):
        value = value[7:]
    return value if _EMAIL.match(value) else None


@dataclass(frozen=True, slots=True)
class Phone:
    e164: str
    mobile: bool  # WhatsApp-capable (MOBILE or FIXED_LINE_OR_MOBILE)


_PHONE_JUNK = re.compile(r"[\s().\-/]")
_MOBILE_TYPES: Final = (
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
)


@dataclass(frozen=True, slots=True)
class _RegionPatterns:
    general: re.Pattern[str]
    fixed_line: re.Pattern[str]
    mobile: re.Pattern[str]
    special: re.Pattern[str]  # the types number_type() checks before fixed/mobile, in one


_NEVER = re.compile("(?!)")


@lru_cache(maxsize=1)
def _ro_patterns() -> _RegionPatterns:
    """Romania's national-number patterns, read from phonenumbers' own metadata."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("RO")

    def compiled(name: str) -> re.Pattern[str] | None:
        desc = getattr(metadata, name, None) if metadata else None
        pattern = getattr(desc, "national_number_pattern", None)
        return re.compile(pattern) if pattern else None

    names = (
        "premium_rate",
        "toll_free",
        "shared_cost",
        "voip",
        "personal_number",
        "pager",
        "uan",
        "voicemail",
    )
    special = [p.pattern for p in map(compiled, names) if p is not None]
    return _RegionPatterns(
        general=compiled("general_desc") or _NEVER,
        fixed_line=compiled("fixed_line") or _NEVER,
        mobile=compiled("mobile") or _NEVER,
        special=re.compile("|".join(f"(?:{p})" for p in special)) if special else _NEVER,
    )


def _ro_fast_type(nsn: str) -> bool | None:
    """Mirror of phonenumbers' number typing for a 9-digit Romanian national number: True for
    a WhatsApp-capable number, False for another valid one (a landline), None when unsure (a
    special or invalid number: the caller does the full parse)."""
    patterns = _ro_patterns()
    if len(nsn) != 9 or not nsn.isdigit() or not patterns.general.fullmatch(nsn):
        return None
    if patterns.special.fullmatch(nsn):
        return None
    mobile = patterns.mobile.fullmatch(nsn) is not None
    if patterns.fixed_line.fullmatch(nsn):
        return mobile  # FIXED_LINE_OR_MOBILE when both match, else FIXED_LINE
    return True if mobile else None


def normalize_phone(raw: str, region: str = "RO") -> Phone | None:
    """E.164 form and mobile flag of ``raw`` (Romanian by default), or None if not valid.

    The common shapes of a Romanian number (``07xx xxx xxx``, ``0264 xxx xxx``, ``+40...``,
    ``0040...``) are typed with phonenumbers' own RO patterns without a full parse (about 15x
    faster, which matters at 100k rows); everything else goes through ``phonenumbers``."""
    compact = _PHONE_JUNK.sub("", raw)
    if region == "RO":
        nsn: str | None = None
        if compact.startswith("+40"):
            nsn = compact[3:]
        elif compact.startswith("0040"):
            nsn = compact[4:]
        elif compact.startswith("0") and not compact.startswith("00"):
            nsn = compact[1:]
        if nsn is not None:
            fast = _ro_fast_type(nsn)
            if fast is not None:
                return Phone("+40" + nsn, fast)
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return Phone(
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        phonenumbers.number_type(parsed) in _MOBILE_TYPES,
    )


_TRUE: Final = frozenset({"true", "da", "yes", "y", "1", "t", "x", "adevarat"})
_FALSE: Final = frozenset({"false", "nu", "no", "n", "0", "f", "fals"})
_EMPTY: Final = frozenset({"", "null", "none", "n/a", "na", "-"})
_EMPTY_MAX: Final = max(map(len, _EMPTY))


def parse_bool(raw: str) -> bool | None:
    """true/false, da/nu, yes/no, 1/0 (any case); ValueError for anything else."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(raw)


def _collapse(value: str) -> str:
    """Whitespace runs (and line breaks inside quoted values) to one space."""
    if "  " in value or "\n" in value or "\t" in value or "\r" in value:
        return " ".join(value.split())
    return value.strip()


# ---------------------------------------------------------------------------------------------
# Drafts: what a valid row (or several rows of one CUI) contributes


@dataclass(slots=True)
class ContactDraft:
    prenume: str | None = None
    nume: str | None = None
    full_name: str | None = None
    functie: str | None = None
    email: str | None = None
    phone: str | None = None
    whatsapp_number: str | None = None
    consent_email: bool | None = None
    consent_whatsapp: bool | None = None

    def name_key(self) -> str | None:
        return self.full_name.casefold() if self.full_name else None

    def same_person(self, email: str | None, numbers: set[str], name_key: str | None) -> bool:
        """The same person as a contact with ``email``, phone ``numbers`` and ``name_key``."""
        if self.email and self.email == email:
            return True
        mine = {n for n in (self.phone, self.whatsapp_number) if n}
        if mine & numbers:
            return True
        return bool(self.name_key() and self.name_key() == name_key)

    def fill_from(self, other: ContactDraft) -> None:
        for name in ("prenume", "nume", "full_name", "functie", "email", "phone", "whatsapp_number"):
            if getattr(self, name) is None:
                setattr(self, name, getattr(other, name))
        # Consent follows the latest statement.
        if other.consent_email is not None:
            self.consent_email = other.consent_email
        if other.consent_whatsapp is not None:
            self.consent_whatsapp = other.consent_whatsapp


@dataclass(slots=True)
class CompanyDraft:
    line: int
    cui: str
    denumire: str
    nr_reg_com: str | None = None
    judet: str | None = None
    localitate: str | None = None
    adresa: str | None = None
    cod_caen: str | None = None
    sector: str | None = None
    is_agricultural: bool | None = None
    email_principal: str | None = None
    telefon_principal: str | None = None
    email_status: str | None = None
    hlr_reachable: bool | None = None
    website: str | None = None
    lead_score: int | None = None
    mobile: str | None = None  # the journey's WhatsApp number
    raw: dict[str, str] = field(default_factory=dict)
    contacts: list[ContactDraft] = field(default_factory=list)
    first_in_file: bool = False  # counted as created/merged when its batch is written

    def add_contact(self, contact: ContactDraft) -> None:
        numbers = {n for n in (contact.phone, contact.whatsapp_number) if n}
        for mine in self.contacts:
            if mine.same_person(contact.email, numbers, contact.name_key()):
                mine.fill_from(contact)
                return
        self.contacts.append(contact)

    def merge(self, other: CompanyDraft) -> None:
        """Fold a later row of the same CUI into this one: fill empty fields, add contacts."""
        for name in _COMPANY_FILL_FIELDS:
            if getattr(self, name) is None:
                setattr(self, name, getattr(other, name))
        if other.is_agricultural:
            self.is_agricultural = True
        for key, value in other.raw.items():
            self.raw.setdefault(key, value)
        for contact in other.contacts:
            self.add_contact(contact)

    @property
    def journey_email(self) -> str | None:
        primary = next((c.email for c in self.contacts if c.email), None)
        return primary or self.email_principal

    @property
    def journey_mobile(self) -> str | None:
        return self.mobile or next((c.whatsapp_number for c in self.contacts if c.whatsapp_number), None)


_COMPANY_FILL_FIELDS: Final = tuple(
    f.name
    for f in fields(CompanyDraft)
    if f.name not in ("line", "cui", "raw", "contacts", "first_in_file", "is_agricultural")
)


@dataclass(frozen=True, slots=True)
class RowIssue:
    line: int
    reason: str
    field: str | None = None
    value: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "reason": self.reason}
        if self.field is not None:
            out["field"] = self.field
        if self.value is not None:
            out["value"] = self.value
        return out


def _issue(line: int, reason: str, field_name: str | None = None, value: str | None = None) -> RowIssue:
    if value is not None and len(value) > MAX_VALUE_CHARS:
        value = value[:MAX_VALUE_CHARS] + "…"
    return RowIssue(line, reason, field_name, value)


@dataclass(slots=True)
class ImportReport:
    """What an import did: rows read, companies created or merged, rows skipped and why."""

    rows: int = 0
    created: int = 0
    merged: int = 0
    skipped: int = 0
    contacts_created: int = 0
    contacts_updated: int = 0
    journeys_created: int = 0
    errors: list[RowIssue] = field(default_factory=list)
    warnings: list[RowIssue] = field(default_factory=list)
    warning_count: int = 0
    dry_run: bool = False
    duration_ms: int = 0
    source: str | None = None

    def warn(self, issue: RowIssue) -> None:
        self.warning_count += 1
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(issue)

    @property
    def failed(self) -> bool:
        return self.skipped > 0

    def summary(self) -> dict[str, Any]:
        """The counts only (for audit rows and logs)."""
        return {
            "rows": self.rows,
            "created": self.created,
            "merged": self.merged,
            "skipped": self.skipped,
            "contactsCreated": self.contacts_created,
            "journeysCreated": self.journeys_created,
            "warningCount": self.warning_count,
            "dryRun": self.dry_run,
            "source": self.source,
        }

    def to_dict(self) -> dict[str, Any]:
        """The API shape (camelCase)."""
        return {
            **self.summary(),
            "contactsUpdated": self.contacts_updated,
            "durationMs": self.duration_ms,
            "errors": [e.as_dict() for e in self.errors],
            "warnings": [w.as_dict() for w in self.warnings],
        }


# ---------------------------------------------------------------------------------------------
# Reading the file


def decode_csv_bytes(data: bytes) -> str:
    """The text of an uploaded file: UTF-8 (a BOM is dropped), or :class:`InvalidCsv`."""
    if not data or data.isspace():
        raise InvalidCsv("the file is empty")
    if b"\x00" in data[:65536]:
        raise InvalidCsv("this is a binary file, not a CSV (save the sheet as 'CSV UTF-8')")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidCsv(
            "the file is not UTF-8 text (save the sheet as 'CSV UTF-8')",
            details={"byteOffset": exc.start},
        ) from exc


def _sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass(slots=True)
class CsvRow:
    line: int
    values: dict[str, str]  # canonical field -> stripped value ('' when empty)
    raw: dict[str, str]  # unmapped columns -> value
    extra_fields: int  # non-empty values beyond the header's columns
    lines: int = 1  # physical lines the row spans (quoted line breaks)


class CsvReader:
    """Rows of a lead CSV with their physical line numbers. Reading the header happens in the
    constructor, so a file without the required columns fails before any row is touched."""

    def __init__(self, lines: Iterable[str]) -> None:
        iterator = iter(lines)
        try:
            first = next(iterator)
            while not first.strip():
                first = next(iterator)
        except StopIteration:
            raise InvalidCsv("the file is empty") from None
        except UnicodeDecodeError as exc:
            raise InvalidCsv("the file is not UTF-8 text (save the sheet as 'CSV UTF-8')") from exc
        first = first.lstrip("\ufeff")
        if "\x00" in first:
            raise InvalidCsv("this is a binary file, not a CSV (save the sheet as 'CSV UTF-8')")
        self.delimiter = _sniff_delimiter(first)
        self._reader = csv.reader(itertools.chain([first], iterator), delimiter=self.delimiter)
        try:
            header = next(self._reader)
        except csv.Error as exc:
            raise InvalidCsv(f"the header line cannot be read: {exc}") from exc
        self.header = header
        self._columns: list[tuple[int, str | None, str]] = []
        self.unknown_columns: list[str] = []
        found: set[str] = set()
        for index, name in enumerate(header):
            canonical = HEADER_ALIASES.get(normalize_header(name))
            self._columns.append((index, canonical, name.strip()))
            if canonical is None:
                if name.strip():
                    self.unknown_columns.append(name.strip())
            else:
                found.add(canonical)
        missing = [c for c in REQUIRED_COLUMNS if c not in found]
        if missing:
            raise InvalidCsv(
                f"missing required column(s): {', '.join(missing)}",
                details={
                    "missing": missing,
                    "found": [h.strip() for h in header][:50],
                    "delimiter": self.delimiter,
                    "accepted": {c: list(_ALIASES[c]) for c in REQUIRED_COLUMNS},
                },
            )
        self.line_num = 1

    def __iter__(self) -> Iterator[CsvRow]:
        reader = self._reader
        width = len(self._columns)
        previous = reader.line_num
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise InvalidCsv(
                    f"the file is not UTF-8 text after line {previous}", details={"line": previous + 1}
                ) from exc
            except csv.Error as exc:
                raise InvalidCsv(
                    f"line {previous + 1} cannot be read: {exc}", details={"line": previous + 1}
                ) from exc
            line = previous + 1
            previous = reader.line_num
            self.line_num = previous
            if not cells or not any(c.strip() for c in cells):
                continue  # blank line
            values: dict[str, str] = {}
            raw: dict[str, str] = {}
            for index, canonical, name in self._columns:
                cell = cells[index].strip() if index < len(cells) else ""
                if len(cell) <= _EMPTY_MAX and cell.lower() in _EMPTY:
                    cell = ""
                if canonical is None:
                    if cell and name:
                        raw[name] = cell
                elif cell and not values.get(canonical):
                    values[canonical] = cell
            extra = sum(1 for c in cells[width:] if c.strip())
            yield CsvRow(line, values, raw, extra, previous - line + 1)


# ---------------------------------------------------------------------------------------------
# Validating one row


def _bool_field(row: CsvRow, name: str, warnings: list[RowIssue]) -> bool | None:
    raw = row.values.get(name)
    if not raw:
        return None
    try:
        return parse_bool(raw)
    except ValueError:
        warnings.append(_issue(row.line, f"{name} is not true/false/da/nu/1/0; ignored", name, raw))
        return None


def validate_row(row: CsvRow) -> tuple[CompanyDraft | None, list[RowIssue], list[RowIssue]]:
    """The draft of one CSV row, its errors (any error skips the row) and its warnings."""
    line, v = row.line, row.values
    errors: list[RowIssue] = []
    warnings: list[RowIssue] = []

    if row.lines > MAX_ROW_LINES:
        # An unclosed quote swallows the following rows into one value: say so, rather than
        # reporting one odd row while the rest silently vanished.
        errors.append(
            _issue(
                line,
                f'the row spans lines {line}-{line + row.lines - 1}: an unclosed quote (") '
                "joins the following rows into one value",
            )
        )
        return None, errors, warnings
    if row.extra_fields:
        errors.append(
            _issue(
                line,
                f"the row has {row.extra_fields} value(s) beyond the header's columns "
                "(an unquoted separator inside a value?)",
            )
        )
    denumire = _collapse(v.get("denumire", ""))
    if not denumire:
        errors.append(_issue(line, "missing company name (denumire)", "denumire"))
    cui: str | None = None
    cui_raw = v.get("cui", "")
    if not cui_raw:
        errors.append(_issue(line, "missing CUI", "cui"))
    else:
        cui, problem = parse_cui(cui_raw)
        if problem:
            errors.append(_issue(line, problem, "cui", cui_raw))

    # Channels: a bad one is an error only when nothing valid is left to reach the company.
    email: str | None = None
    telefon: Phone | None = None
    whatsapp: Phone | None = None
    bad: list[tuple[str, str, str]] = []
    if raw := v.get("email"):
        email = normalize_email(raw)
        if email is None:
            bad.append(("email", "invalid email address", raw))
    if raw := v.get("telefon"):
        telefon = normalize_phone(raw)
        if telefon is None:
            bad.append(("telefon", "invalid phone number", raw))
    if raw := v.get("whatsapp"):
        whatsapp = normalize_phone(raw)
        if whatsapp is None:
            bad.append(("whatsapp", "invalid WhatsApp number", raw))
    has_valid_channel = bool(email or telefon or whatsapp)
    for name, reason, raw in bad:
        if has_valid_channel:
            warnings.append(_issue(line, f"{reason}; dropped", name, raw))
        else:
            errors.append(_issue(line, reason, name, raw))

    if errors or cui is None:
        return None, errors, warnings

    mobile: str | None = None
    if whatsapp is not None:
        if whatsapp.mobile:
            mobile = whatsapp.e164
        else:
            warnings.append(
                _issue(
                    line, "WhatsApp number is a landline; not used for WhatsApp", "whatsapp", whatsapp.e164
                )
            )
    if mobile is None and telefon is not None and telefon.mobile:
        mobile = telefon.e164
    if email is None and mobile is None:
        warnings.append(
            _issue(line, "no valid email or mobile number: imported, but no outreach is scheduled")
        )

    is_agricultural = _bool_field(row, "is_agricultural", warnings)
    sector = v.get("sector") or None
    if sector is None and is_agricultural is not None:
        sector = "agricol" if is_agricultural else "afaceri"
    lead_score: int | None = None
    if raw := v.get("lead_score"):
        try:
            lead_score = int(float(raw.replace(",", ".")))
        except ValueError:
            warnings.append(_issue(line, "lead_score is not a number; ignored", "lead_score", raw))
        else:
            if not 0 <= lead_score <= 100:
                warnings.append(_issue(line, "lead_score is outside 0-100; ignored", "lead_score", raw))
                lead_score = None

    company = CompanyDraft(
        line=line,
        cui=cui,
        denumire=denumire,
        nr_reg_com=v.get("nr_reg_com") or None,
        judet=_collapse(v["judet"]) if v.get("judet") else None,
        localitate=_collapse(v["localitate"]) if v.get("localitate") else None,
        adresa=_collapse(v["adresa"]) if v.get("adresa") else None,
        cod_caen=v.get("cod_caen") or None,
        sector=sector,
        is_agricultural=is_agricultural,
        email_principal=email,
        telefon_principal=telefon.e164 if telefon else (whatsapp.e164 if whatsapp else None),
        email_status=(v.get("email_status") or "").lower() or None,
        hlr_reachable=_bool_field(row, "hlr_reachable", warnings),
        website=v.get("website") or None,
        lead_score=lead_score,
        mobile=mobile,
        raw=row.raw,
    )

    prenume = _collapse(v.get("prenume", "")) or None
    nume = _collapse(v.get("nume", "")) or None
    full_name = _collapse(v.get("contact", "")) or None
    if full_name and not (prenume or nume):
        # "Ion Popescu": the first word is the first name, the rest the family name.
        first, _, rest = full_name.partition(" ")
        prenume, nume = first, rest or None
    if not full_name and (prenume or nume):
        full_name = " ".join(p for p in (prenume, nume) if p)
    functie = _collapse(v.get("functie", "")) or None
    consent_email = _bool_field(row, "consent_email", warnings)
    consent_whatsapp = _bool_field(row, "consent_whatsapp", warnings)
    if full_name or functie:
        company.add_contact(
            ContactDraft(
                prenume=prenume,
                nume=nume,
                full_name=full_name,
                functie=functie,
                email=email,
                phone=telefon.e164 if telefon else None,
                whatsapp_number=mobile,
                consent_email=consent_email,
                consent_whatsapp=consent_whatsapp,
            )
        )
    return company, errors, warnings


# ---------------------------------------------------------------------------------------------
# Writing batches


@dataclass(slots=True)
class _Batch:
    companies: dict[str, CompanyDraft] = field(default_factory=dict)
    rows: int = 0


async def import_rows(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    reader: CsvReader,
    *,
    source: str | None = None,
    actor: str = "system",
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: ProgressCallback | None = None,
) -> ImportReport:
    """Validate and write every row of ``reader`` for ``tenant_id``; return the report.

    Takes a per-tenant advisory lock for the transaction, so two imports of one tenant never
    race on the same CUI. Batch N is written while batch N+1 is parsed (the write runs as a
    task on the same session; the parser yields to it regularly), so the Python work hides
    behind the database's. Calls ``on_progress(rows_done)`` after each batch. Never commits.
    """
    started = time.perf_counter()
    report = ImportReport(source=source)
    if reader.unknown_columns:
        columns = ", ".join(reader.unknown_columns)
        report.warn(_issue(1, f"column(s) not recognised, kept as raw data: {columns}"))
    await repository.lock_tenant_import(session, tenant_id)
    writer = _BatchWriter(session, tenant_id, report, source=source, actor=actor, on_progress=on_progress)
    seen: set[str] = set()
    batch = _Batch()
    try:
        for row in reader:
            report.rows += 1
            if report.rows % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let the pending batch write make progress
            draft, errors, warnings = validate_row(row)
            for warning in warnings:
                report.warn(warning)
            if draft is None:
                report.errors.extend(errors)
                report.skipped += 1
                continue
            if draft.cui in seen:
                report.merged += 1  # an earlier row of this file has the same CUI
            else:
                seen.add(draft.cui)
                draft.first_in_file = True
            pending = batch.companies.get(draft.cui)
            if pending is None:
                batch.companies[draft.cui] = draft
            else:
                pending.merge(draft)
            batch.rows += 1
            if batch.rows >= batch_size:
                await writer.submit(batch, report.rows)
                batch = _Batch()
        await writer.submit(batch, report.rows)
        await writer.drain()
    finally:
        await writer.abandon()
    report.duration_ms = int((time.perf_counter() - started) * 1000)
    return report


_YIELD_EVERY: Final = 64


class _BatchWriter:
    """Writes batches one at a time, each as a task that overlaps with parsing the next."""

    def __init__(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        report: ImportReport,
        *,
        source: str | None,
        actor: str,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.report = report
        self.source = source
        self.actor = actor
        self.on_progress = on_progress
        self.task: asyncio.Task[None] | None = None
        self.rows_done = 0

    async def submit(self, batch: _Batch, rows_read: int) -> None:
        await self.drain()  # batches are written in order, one at a time
        if batch.companies:
            self.task = asyncio.create_task(self._write(batch, rows_read))
        else:
            self._progress(rows_read)

    async def drain(self) -> None:
        if self.task is not None:
            task, self.task = self.task, None
            await task

    async def abandon(self) -> None:
        """After a failure elsewhere: wait for the write in flight (its own error, if any, is
        dropped in favour of the first one), so the session is idle when the caller rolls back."""
        if self.task is not None:
            task, self.task = self.task, None
            with contextlib.suppress(Exception):
                await task

    def _progress(self, rows: int) -> None:
        self.rows_done = rows
        if self.on_progress is not None:
            self.on_progress(rows)

    async def _write(self, batch: _Batch, rows_read: int) -> None:
        await _write_batch(
            self.session, self.tenant_id, batch, self.report, source=self.source, actor=self.actor
        )
        self._progress(rows_read)


def _company_row(d: CompanyDraft) -> dict[str, Any]:
    return {
        "cui": d.cui,
        "denumire": d.denumire,
        "nr_reg_com": d.nr_reg_com,
        "judet": d.judet,
        "localitate": d.localitate,
        "adresa": d.adresa,
        "cod_caen": d.cod_caen,
        "sector": d.sector,
        "is_agricultural": bool(d.is_agricultural),
        "email_principal": d.email_principal,
        "telefon_principal": d.telefon_principal,
        "email_status": d.email_status,
        "hlr_reachable": d.hlr_reachable,
        "website": d.website,
        "lead_score": d.lead_score,
        "raw": json.dumps(d.raw, ensure_ascii=False) if d.raw else "{}",
    }


def _company_fill(existing: dict[str, Any], d: CompanyDraft) -> dict[str, Any] | None:
    """The update filling ``existing``'s empty columns from ``d``, or None if nothing changes."""
    row = _company_row(d)
    fill = {
        col: row[col]
        for col in repository.COMPANY_FILL_COLUMNS
        if existing[col] is None and row[col] is not None
    }
    agricultural = bool(d.is_agricultural) and not existing["is_agricultural"]
    if not fill and not agricultural:
        return None
    values = {col: fill.get(col) for col in repository.COMPANY_FILL_COLUMNS}
    return {"id": existing["id"], **values, "is_agricultural": bool(d.is_agricultural), "raw": row["raw"]}


async def _write_batch(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    batch: _Batch,
    report: ImportReport,
    *,
    source: str | None,
    actor: str,
) -> None:
    drafts = list(batch.companies.values())

    # Companies: read the existing ones first, so a re-import writes (and locks) nothing.
    existing = await repository.companies_by_cui(session, tenant_id, [d.cui for d in drafts])
    new = [d for d in drafts if d.cui not in existing]
    inserted = (
        await repository.insert_companies(session, tenant_id, [_company_row(d) for d in new], source=source)
        if new
        else {}
    )
    raced = [d.cui for d in new if d.cui not in inserted]
    if raced:  # inserted by someone else since we looked: treat as existing
        existing |= await repository.companies_by_cui(session, tenant_id, raced)
    ids = {**inserted, **{cui: row["id"] for cui, row in existing.items()}}
    company_fills: list[dict[str, Any]] = []
    for d in drafts:
        if d.first_in_file:
            if d.cui in inserted:
                report.created += 1
            else:
                report.merged += 1
        if d.cui in existing:
            fill = _company_fill(existing[d.cui], d)
            if fill is not None:
                company_fills.append(fill)
    if company_fills:
        await repository.fill_companies(session, company_fills)

    # Contacts: match against the company's existing ones, insert the new, fill the matched.
    existing_ids = [row["id"] for row in existing.values()]
    known_contacts = (
        await repository.contacts_of_companies(session, tenant_id, existing_ids) if existing_ids else {}
    )
    new_contacts: list[dict[str, Any]] = []
    contact_fills: list[dict[str, Any]] = []
    primary: dict[uuid.UUID, uuid.UUID] = {}
    for d in drafts:
        company_id = ids[d.cui]
        known = known_contacts.get(company_id, [])
        for row in known:
            if row["is_primary"] and company_id not in primary:
                primary[company_id] = row["id"]
        for contact in d.contacts:
            match = next(
                (
                    row
                    for row in known
                    if contact.same_person(
                        row["email"],
                        {n for n in (row["phone"], row["whatsapp_number"]) if n},
                        row["full_name"].casefold() if row["full_name"] else None,
                    )
                ),
                None,
            )
            if match is not None:
                fill = _contact_fill(match, contact)
                if fill is not None:
                    contact_fills.append(fill)
                continue
            contact_id = uuid.uuid4()
            is_primary = not known and company_id not in primary
            if is_primary:
                primary[company_id] = contact_id
            new_contacts.append(
                {
                    "id": contact_id,
                    "company_id": company_id,
                    "prenume": contact.prenume,
                    "nume": contact.nume,
                    "full_name": contact.full_name,
                    "functie": contact.functie,
                    "email": contact.email,
                    "phone": contact.phone,
                    "whatsapp_number": contact.whatsapp_number,
                    "consent_email": contact.consent_email,
                    "consent_whatsapp": contact.consent_whatsapp,
                    "is_primary": is_primary,
                }
            )
    consent_source = f"csv:{source}" if source else "csv"
    if new_contacts:
        await repository.insert_contacts(session, tenant_id, new_contacts, consent_source=consent_source)
    if contact_fills:
        await repository.fill_contacts(session, contact_fills, consent_source=consent_source)
    report.contacts_created += len(new_contacts)
    report.contacts_updated += len(contact_fills)

    # Journeys: one per company, COLD and due now if it has an address; fill the existing ones.
    journeys = (
        await repository.journeys_of_companies(session, tenant_id, existing_ids) if existing_ids else {}
    )
    now = utcnow()
    new_journeys: list[dict[str, Any]] = []
    journey_fills: list[dict[str, Any]] = []
    for d in drafts:
        company_id = ids[d.cui]
        values = {
            "primary_contact_id": primary.get(company_id),
            "email": d.journey_email,
            "mobile_e164": d.journey_mobile,
        }
        journey = journeys.get(company_id)
        if journey is None:
            new_journeys.append(
                {"lead_id": company_id, **values, "schedule": bool(d.journey_email or d.journey_mobile)}
            )
        elif any(journey[k] is None and v is not None for k, v in values.items()):
            journey_fills.append({"id": journey["id"], **values})
    if new_journeys:
        report.journeys_created += await repository.insert_journeys(
            session, tenant_id, new_journeys, now=now, actor=actor, reason=f"imported from {source or 'CSV'}"
        )
    if journey_fills:
        await repository.fill_journeys(session, journey_fills, now=now)


def _contact_fill(row: dict[str, Any], contact: ContactDraft) -> dict[str, Any] | None:
    """The update filling ``row``'s empty fields from ``contact``, or None if nothing changes."""
    changes: dict[str, Any] = {}
    for name in ("prenume", "nume", "full_name", "functie", "email", "phone", "whatsapp_number"):
        if row[name] is None and getattr(contact, name) is not None:
            changes[name] = getattr(contact, name)
    for name in ("consent_email", "consent_whatsapp"):
        value = getattr(contact, name)
        if value is not None and value != row[name]:
            changes[name] = value
    if not changes:
        return None
    out: dict[str, Any] = {"id": row["id"]}
    for name in (
        "prenume",
        "nume",
        "full_name",
        "functie",
        "email",
        "phone",
        "whatsapp_number",
        "consent_email",
        "consent_whatsapp",
    ):
        out[name] = changes.get(name)
    return out
