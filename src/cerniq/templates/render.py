"""Personalised rendering of spintax templates, the send-time guard and the lint.

Rendering order: parse, pick a variant (seeded, given, or random), substitute variables,
collapse whitespace, strip. Values are inserted after the variant is picked and are never
parsed as spintax, so a company called ``{SRL|SA}`` keeps its braces.
"""

from __future__ import annotations

import html
import random
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from cerniq.errors import ValidationFailed
from cerniq.templates.spintax import (
    Leaf,
    Node,
    SpintaxError,
    Template,
    Text,
    Variable,
    choose,
    expand,
    parse,
)

__all__ = [
    "STANDARD_VARIABLES",
    "LintIssue",
    "PreparedTemplate",
    "Rendered",
    "TemplateNotSendable",
    "collapse_whitespace",
    "ensure_sendable",
    "lead_variables",
    "lint",
    "render",
]

STANDARD_VARIABLES: frozenset[str] = frozenset(
    {
        "companyName",
        "contactName",
        "firstName",
        "judet",
        "localitate",
        "sector",
        "cui",
        "company_name",
        "contact_name",
        "first_name",
        "county",
        "industry",
    }
)
"""Names :func:`lead_variables` can produce (absent when the lead has no value)."""

_SPACES_RE = re.compile(r"[ \t]+")
_URL_RE = re.compile(
    r"(?i)(?:\bhttps?://|\bwww\.)\S+"
    r"|\b[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)*"
    r"\.(?:ro|com|net|org|eu|io|app|info|biz|co|me|link|ly)\b(?:/\S*)?"
)


@dataclass(frozen=True, slots=True)
class Rendered:
    """One rendered message.

    ``variant`` is the spintax choices string (see :mod:`cerniq.templates.spintax`).
    ``variables_used`` lists the variables the chosen variant references, in order of
    first appearance; ``missing_variables`` those among them left unresolved (no value,
    no default), which stay in ``text`` as the literal ``{{name}}``.
    """

    text: str
    variant: str
    variables_used: list[str]
    missing_variables: list[str]


class TemplateNotSendable(ValidationFailed):
    """A rendered message that must not be sent (unresolved variables or empty text)."""

    code = "TEMPLATE_UNRESOLVED"


Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class LintIssue:
    """A lint finding. ``position`` is a 0-based offset in the template, when known."""

    code: str
    message: str
    position: int | None = None
    severity: Severity = "error"

    @property
    def blocking(self) -> bool:
        """Whether the issue blocks saving or sending the template."""
        return self.severity == "error"


# --------------------------------------------------------------------------- rendering


def _present(value: object) -> str | None:
    """``value`` as text, or ``None`` when it is missing (``None``, empty or blank)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def collapse_whitespace(text: str) -> str:
    """Collapse runs of spaces and tabs into one space and trim them at line ends.

    Newlines are kept (``\\r\\n`` and ``\\r`` become ``\\n``), so are blank lines.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(_SPACES_RE.sub(" ", line).strip(" \t") for line in lines)


_collapse = collapse_whitespace  # render()'s keyword of the same name shadows it there


class PreparedTemplate:
    """A parsed template that renders many messages: the leaves of each variant met are
    expanded once and kept (a template has few variants; a dispatch renders thousands)."""

    __slots__ = ("_leaves", "template")

    def __init__(self, template: Template | str) -> None:
        self.template = template if isinstance(template, Template) else parse(template)
        self._leaves: dict[str, tuple[Leaf, ...]] = {}

    def leaves(self, variant: str) -> tuple[Leaf, ...]:
        """:func:`~cerniq.templates.spintax.expand` of ``variant`` (same errors), memoised."""
        leaves = self._leaves.get(variant)
        if leaves is None:
            leaves = self._leaves[variant] = expand(self.template, variant)
        return leaves


def render(
    template_text: str | Template | PreparedTemplate,
    variables: Mapping[str, str | None],
    *,
    seed: str | int | None = None,
    variant: str | None = None,
    html_escape: bool = False,
    collapse_whitespace: bool = True,
) -> Rendered:
    """Render a template for one recipient.

    The variant is ``variant`` when given (re-render a known variant), else picked with
    ``random.Random(f"{seed}")`` when ``seed`` is given (same as
    :func:`~cerniq.templates.spintax.spin_seeded`), else at random. Each variable takes
    its value from ``variables`` (``None``, empty or blank counts as missing), else its
    inline default, else stays as the literal ``{{name}}`` and is reported missing.
    Values are inserted literally, HTML-escaped when ``html_escape`` (template text and
    defaults never are). Then whitespace is collapsed (see :func:`collapse_whitespace`)
    unless ``collapse_whitespace=False``, and the text is stripped.

    A :class:`PreparedTemplate` renders as its template does, expanding each variant once.

    Raises :class:`~cerniq.templates.spintax.SpintaxError` for a template that does not
    parse, :class:`~cerniq.templates.spintax.InvalidVariant` for a ``variant`` that does
    not fit it, and ``ValueError`` when both ``seed`` and ``variant`` are given.
    """
    if seed is not None and variant is not None:
        raise ValueError("give a seed or a variant, not both")
    prepared: PreparedTemplate | None = None
    if isinstance(template_text, PreparedTemplate):
        prepared, template = template_text, template_text.template
    else:
        template = template_text if isinstance(template_text, Template) else parse(template_text)
    if variant is None:
        rng = random.Random(f"{seed}") if seed is not None else random.Random()
        variant = choose(template, rng)
    parts: list[str] = []
    used: dict[str, None] = {}
    missing: dict[str, None] = {}
    for leaf in prepared.leaves(variant) if prepared is not None else expand(template, variant):
        if isinstance(leaf, Text):
            parts.append(leaf.value)
            continue
        used[leaf.name] = None
        value = _present(variables.get(leaf.name))
        if value is not None:
            parts.append(html.escape(value, quote=True) if html_escape else value)
        elif leaf.default is not None:
            parts.append(leaf.default)
        else:
            parts.append("{{" + leaf.name + "}}")
            missing[leaf.name] = None
    text = "".join(parts)
    if collapse_whitespace:
        text = _collapse(text)
    return Rendered(text.strip(), variant, list(used), list(missing))


def ensure_sendable(rendered: Rendered) -> None:
    """Raise :class:`TemplateNotSendable` unless ``rendered`` may be sent.

    It may not when a variable was left unresolved or the text is empty. The error
    names the missing variables but never carries the message text.
    """
    if rendered.missing_variables:
        raise TemplateNotSendable(
            "unresolved template variables: " + ", ".join(rendered.missing_variables),
            details={"missingVariables": list(rendered.missing_variables), "variant": rendered.variant},
        )
    if not rendered.text.strip():
        raise TemplateNotSendable(
            "the rendered message is empty", details={"missingVariables": [], "variant": rendered.variant}
        )


# --------------------------------------------------------------------------- lint


def lint(
    template_text: str,
    *,
    available_variables: Collection[str] | None = None,
    required: Collection[str] = (),
    first_message: bool = False,
) -> list[LintIssue]:
    """Check a template; an issue with ``severity == "error"`` blocks it.

    * A parse error (its :class:`~cerniq.templates.spintax.SpintaxError` code:
      ``UNBALANCED_BRACES``, ``EMPTY_GROUP``, ``EMPTY_OPTION``, ``SINGLE_OPTION_GROUP``,
      ``INVALID_VARIABLE_NAME``) is the only issue reported, since nothing else can be
      checked. ``EMPTY_TEMPLATE``: no text at all.
    * With ``available_variables`` (the names that will have a value), for each variable
      of any branch that is not available: ``UNRESOLVED_VARIABLE`` (error) when some
      occurrence has no default, else ``UNKNOWN_VARIABLE`` (warning: the default will
      always be used, probably a typo). ``MISSING_REQUIRED_VARIABLE`` (error): a name of
      ``required`` (declared required by the template) that is not available.
    * ``DUPLICATE_OPTION`` (warning): two options of a group that differ only in
      whitespace.
    * ``URL_IN_FIRST_MESSAGE`` (warning) when ``first_message``: a link in any branch or
      default of a first WhatsApp message.
    """
    try:
        template = parse(template_text)
    except SpintaxError as exc:
        return [LintIssue(exc.error_code, exc.message, exc.position)]
    issues: list[LintIssue] = []
    if not template_text.strip():
        issues.append(LintIssue("EMPTY_TEMPLATE", "the template is empty", 0))
    if available_variables is not None:
        issues.extend(_variable_issues(template, set(available_variables), required))
    issues.extend(_duplicate_option_issues(template))
    if first_message:
        issues.extend(_url_issues(template))
    return issues


def _variable_issues(template: Template, available: set[str], required: Collection[str]) -> list[LintIssue]:
    occurrences: dict[str, list[Variable]] = {}
    for node in template.walk():
        if isinstance(node, Variable):
            occurrences.setdefault(node.name, []).append(node)
    issues: list[LintIssue] = []
    for name, nodes in occurrences.items():
        if name in available:
            continue
        without_default = [node for node in nodes if node.default is None]
        if without_default:
            issues.append(
                LintIssue(
                    "UNRESOLVED_VARIABLE",
                    f"variable {name!r} has no value and no default; write {{{{{name}|default}}}}",
                    without_default[0].position,
                )
            )
        else:
            issues.append(
                LintIssue(
                    "UNKNOWN_VARIABLE",
                    f"variable {name!r} is unknown; its default will always be used",
                    nodes[0].position,
                    "warning",
                )
            )
    for name in required:
        if name not in available:
            issues.append(
                LintIssue("MISSING_REQUIRED_VARIABLE", f"required variable {name!r} has no value", None)
            )
    return issues


def _option_key(option: tuple[Node, ...]) -> tuple[object, ...]:
    """A comparison key for an option that ignores positions and whitespace differences."""
    key: list[object] = []
    for node in option:
        if isinstance(node, Text):
            normalized = " ".join(node.value.split())
            if normalized:
                key.append(Text(normalized))
        else:
            key.append(node)
    return tuple(key)


def _duplicate_option_issues(template: Template) -> list[LintIssue]:
    issues: list[LintIssue] = []
    for group in template.groups():
        seen: set[tuple[object, ...]] = set()
        for option in group.options:
            key = _option_key(option)
            if key in seen:
                issues.append(
                    LintIssue(
                        "DUPLICATE_OPTION",
                        "a group has the same option twice, which skews the variant odds",
                        option[0].position,
                        "warning",
                    )
                )
            seen.add(key)
    return issues


def _url_issues(template: Template) -> list[LintIssue]:
    for node in template.walk():
        texts = [node.value] if isinstance(node, Text) else []
        if isinstance(node, Variable) and node.default:
            texts.append(node.default)
        if any(_URL_RE.search(text) for text in texts):
            return [
                LintIssue(
                    "URL_IN_FIRST_MESSAGE",
                    "a first WhatsApp message should not contain a link",
                    node.position,
                    "warning",
                )
            ]
    return []


# --------------------------------------------------------------------------- lead data


def lead_variables(
    company: Mapping[str, object],
    contact: Mapping[str, object] | None = None,
    extra: Mapping[str, object] | None = None,
) -> dict[str, str]:
    """The standard template variables of a lead, from our column names.

    * ``companyName`` / ``company_name``: ``gold_companies.denumire`` as it is
      (``S.R.L.``, ``SRL``, ``S.A.`` kept).
    * ``contactName`` / ``contact_name``: the contact's ``full_name``, else ``prenume`` +
      ``nume``, else the company's ``contact_principal_nume``.
    * ``firstName`` / ``first_name``: the contact's ``prenume``.
    * ``judet`` (alias ``county``), ``localitate``, ``cui``.
    * ``sector`` (alias ``industry``): ``agricol`` when ``is_agricultural``, else the
      ``sector`` column, else ``afaceri``.

    ``extra`` (e.g. ``agentName``) is added last and wins over the standard names.
    Values are stripped; ``None``, empty and blank values are left out, so templates see
    them as missing and fall back to their defaults.
    """
    contact = contact or {}
    first_name = _present(contact.get("prenume"))
    contact_name = _present(contact.get("full_name")) or _present(
        " ".join(part for part in (first_name, _present(contact.get("nume"))) if part)
    )
    sector = "agricol" if company.get("is_agricultural") else _present(company.get("sector")) or "afaceri"
    values: dict[str, str | None] = {
        "companyName": _present(company.get("denumire")),
        "contactName": contact_name or _present(company.get("contact_principal_nume")),
        "firstName": first_name,
        "judet": _present(company.get("judet")),
        "localitate": _present(company.get("localitate")),
        "sector": sector,
        "cui": _present(company.get("cui")),
    }
    aliases = {
        "company_name": "companyName",
        "contact_name": "contactName",
        "first_name": "firstName",
        "county": "judet",
        "industry": "sector",
    }
    for alias, name in aliases.items():
        values[alias] = values[name]
    for name, raw in (extra or {}).items():
        value = _present(raw)
        if value is not None:
            values[name] = value
    return {name: value.strip() for name, value in values.items() if value is not None}
