"""Personalised rendering, the send guard, lint and lead variables."""

from __future__ import annotations

import pytest

from cerniq.errors import ValidationFailed
from cerniq.templates import (
    STANDARD_VARIABLES,
    InvalidVariant,
    LintIssue,
    Rendered,
    SpintaxError,
    TemplateNotSendable,
    ensure_sendable,
    lead_variables,
    lint,
    parse,
    render,
    spin_seeded,
)

LEAD = {"companyName": "AGRO-SERV S.R.L.", "contactName": "Ion Popescu", "judet": "Iași"}


def codes(issues: list[LintIssue]) -> list[str]:
    return [issue.code for issue in issues]


# --------------------------------------------------------------------------- substitution


def test_values_are_substituted_and_reported_used() -> None:
    rendered = render("Bună ziua, {{contactName}} de la {{companyName}} ({{judet}})!", LEAD)
    assert rendered == Rendered(
        "Bună ziua, Ion Popescu de la AGRO-SERV S.R.L. (Iași)!",
        "",
        ["contactName", "companyName", "judet"],
        [],
    )


def test_missing_variable_is_kept_literal_and_reported() -> None:
    rendered = render("Către {{ companyName }}, în atenția {{contactName}}", {"companyName": None})
    assert rendered.text == "Către {{companyName}}, în atenția {{contactName}}"
    assert rendered.missing_variables == ["companyName", "contactName"]
    assert rendered.variables_used == ["companyName", "contactName"]


@pytest.mark.parametrize("value", [None, "", "   "])
def test_default_is_used_when_the_value_is_missing(value: str | None) -> None:
    rendered = render("Bună ziua, {{contactName|domnule director}}!", {"contactName": value})
    assert rendered.text == "Bună ziua, domnule director!"
    assert rendered.missing_variables == []
    assert rendered.variables_used == ["contactName"]


def test_value_wins_over_default() -> None:
    assert render("{{contactName|domnule director}}", LEAD).text == "Ion Popescu"


def test_empty_default_makes_a_variable_optional() -> None:
    assert render("Bună {{titlu|}} ziua", {}).text == "Bună ziua"


def test_only_variables_of_the_chosen_variant_are_reported() -> None:
    template = "{Salut {{contactName}}|Bună ziua}"
    assert render(template, {}, variant="1").missing_variables == []
    assert render(template, {}, variant="0").missing_variables == ["contactName"]


def test_values_containing_spintax_are_not_reparsed() -> None:
    values = {"companyName": "{SRL|SA} \\| {{contactName}}", "contactName": "Ion"}
    for seed in range(10):
        rendered = render("{Către|Pentru} {{companyName}}", values, seed=seed)
        assert rendered.text.endswith(" {SRL|SA} \\| {{contactName}}")
        assert rendered.variables_used == ["companyName"]
        assert rendered.missing_variables == []


def test_html_escape_applies_to_values_only() -> None:
    rendered = render(
        "<p>Bună ziua, <b>{{companyName}}</b> &amp; {{contactName|Ion & Fiii}}</p>",
        {"companyName": 'Popescu & Fiii <SRL> "Agro"'},
        html_escape=True,
    )
    assert rendered.text == (
        "<p>Bună ziua, <b>Popescu &amp; Fiii &lt;SRL&gt; &quot;Agro&quot;</b> &amp; Ion & Fiii</p>"
    )


def test_html_escape_off_inserts_values_verbatim() -> None:
    assert render("{{companyName}}", {"companyName": "A & B <SRL>"}).text == "A & B <SRL>"


def test_romanian_diacritics_are_preserved() -> None:
    template = "{Bună ziua|Salutări}, {{contactName}} din {{localitate|Târgu Jiu}}: ă â î ș ț Ă Â Î Ș Ț"
    rendered = render(template, {"contactName": "Ștefan Țăranu"}, variant="0")
    assert rendered.text == "Bună ziua, Ștefan Țăranu din Târgu Jiu: ă â î ș ț Ă Â Î Ș Ț"


def test_escaped_syntax_renders_literally() -> None:
    assert render(r"Oferta \{2025\} a\|b c\\d", {}).text == r"Oferta {2025} a|b c\d"


# --------------------------------------------------------------------------- whitespace


def test_whitespace_collapse_keeps_newlines() -> None:
    template = "  Bună  ziua,\t {{contactName}}  \n\nVă   scriu {{titlu|}} azi. \r\nCu stimă,\n\tEchipa  "
    rendered = render(template, {"contactName": "Ion"})
    assert rendered.text == "Bună ziua, Ion\n\nVă scriu azi.\nCu stimă,\nEchipa"


def test_whitespace_collapse_can_be_turned_off_but_text_is_still_stripped() -> None:
    rendered = render("  Bună  ziua,\t{{x}}  \n", {"x": "Ion"}, collapse_whitespace=False)
    assert rendered.text == "Bună  ziua,\tIon"


# --------------------------------------------------------------------------- variants


def test_seeded_render_is_deterministic_and_matches_spin_seeded() -> None:
    template = "{Bună ziua|Salut}, {{contactName}}! {Vă scriu|Revin} {azi|acum}."
    for seed in ("log-row-1f3a", 17):
        first = render(template, LEAD, seed=seed)
        assert render(template, LEAD, seed=seed) == first
        assert first.variant == spin_seeded(template, seed)[1]


def test_seeds_reach_every_variant() -> None:
    template = "{Bună ziua|Salut}, {vă scriu|revin} {azi|acum}."
    assert len({render(template, {}, seed=seed).text for seed in range(64)}) == 8


def test_variant_re_renders_the_same_text() -> None:
    template = parse("{Bună {ziua|dimineața}|Salut}, {{contactName}}!")
    for seed in range(20):
        first = render(template, LEAD, seed=seed)
        assert render(template, LEAD, variant=first.variant) == first


def test_unseeded_render_picks_a_valid_variant() -> None:
    rendered = render("{a|b|c}", {})
    assert rendered.text in {"a", "b", "c"}
    assert rendered.text == "abc"[int(rendered.variant)]


def test_seed_and_variant_together_are_rejected() -> None:
    with pytest.raises(ValueError, match="not both"):
        render("{a|b}", {}, seed=1, variant="0")


def test_bad_variant_and_bad_template_raise_validation_errors() -> None:
    with pytest.raises(InvalidVariant):
        render("{a|b}", {}, variant="2")
    with pytest.raises(SpintaxError):
        render("{a|}", {})


# --------------------------------------------------------------------------- send guard


def test_ensure_sendable_blocks_unresolved_variables() -> None:
    rendered = render("Bună ziua, {{contactName}} de la {{companyName}}", {"companyName": "Agro SRL"})
    with pytest.raises(TemplateNotSendable) as caught:
        ensure_sendable(rendered)
    error = caught.value
    assert isinstance(error, ValidationFailed)
    assert error.error_code == "TEMPLATE_UNRESOLVED"
    assert error.status_code == 400
    assert error.details["missingVariables"] == ["contactName"]
    assert "Agro SRL" not in str(error.to_dict())  # never carries the message body


def test_ensure_sendable_blocks_empty_text() -> None:
    with pytest.raises(TemplateNotSendable, match="empty"):
        ensure_sendable(render(" {{titlu|}} \n ", {}))


def test_ensure_sendable_passes_a_complete_message() -> None:
    ensure_sendable(render("Bună ziua, {{contactName}}!", LEAD))


# --------------------------------------------------------------------------- lint


@pytest.mark.parametrize(
    ("source", "code", "position"),
    [
        ("Bună {ziua|seara", "UNBALANCED_BRACES", 5),
        ("Bună ziua}", "UNBALANCED_BRACES", 9),
        ("Bună {} ziua", "EMPTY_GROUP", 5),
        ("{Bună||Salut}", "EMPTY_OPTION", 6),
        ("{Bună}", "SINGLE_OPTION_GROUP", 0),
        ("{{company name}}", "INVALID_VARIABLE_NAME", 0),
    ],
)
def test_lint_reports_parse_errors(source: str, code: str, position: int) -> None:
    issues = lint(source)
    assert len(issues) == 1
    assert (issues[0].code, issues[0].position, issues[0].severity) == (code, position, "error")
    assert issues[0].blocking


def test_lint_clean_template_has_no_issues() -> None:
    template = "{Bună ziua|Salut}, {{contactName|domnule director}} de la {{companyName}}!"
    assert lint(template, available_variables=STANDARD_VARIABLES, first_message=True) == []


def test_lint_empty_template() -> None:
    assert codes(lint("  \n")) == ["EMPTY_TEMPLATE"]


def test_lint_variable_availability() -> None:
    template = "{{companyName}} {{contactName}} {{agentName|echipa Cerniq}} {Salut {{firstName}}|Bună}"
    issues = lint(template, available_variables={"companyName"})
    by_code = {issue.code: issue for issue in issues}
    assert codes(issues) == ["UNRESOLVED_VARIABLE", "UNKNOWN_VARIABLE", "UNRESOLVED_VARIABLE"]
    assert by_code["UNKNOWN_VARIABLE"].severity == "warning"
    assert [issue.position for issue in issues] == [16, 32, 67]
    assert "contactName" in issues[0].message
    assert "firstName" in issues[2].message


def test_lint_variable_checks_need_available_variables() -> None:
    assert lint("{{whatever}}") == []


def test_lint_variable_with_default_in_one_place_only_is_unresolved() -> None:
    issues = lint("{{contactName|domnule}} ... {{contactName}}", available_variables=set())
    assert codes(issues) == ["UNRESOLVED_VARIABLE"]
    assert issues[0].position == 28


def test_lint_required_variables_must_be_available() -> None:
    issues = lint("Bună ziua", available_variables={"companyName"}, required=["companyName", "cui"])
    assert codes(issues) == ["MISSING_REQUIRED_VARIABLE"]
    assert "cui" in issues[0].message


def test_lint_duplicate_options_warn() -> None:
    issues = lint("{Bună ziua|Salut|Bună  ziua } {a|{b|b}}")
    assert codes(issues) == ["DUPLICATE_OPTION", "DUPLICATE_OPTION"]
    assert all(not issue.blocking for issue in issues)
    assert issues[0].position == 17


@pytest.mark.parametrize(
    "source",
    [
        "Detalii pe https://cerniq.app/oferta",
        "Vedeți www.cerniq.ro",
        "{Scrieți-ne|Intrați pe cerniq.app}",
        "Bună ziua {{site|agro-portal.ro/x}}",
    ],
)
def test_lint_url_in_first_message_warns(source: str) -> None:
    issues = lint(source, first_message=True)
    assert codes(issues) == ["URL_IN_FIRST_MESSAGE"]
    assert issues[0].severity == "warning"
    assert lint(source) == []


def test_lint_company_suffixes_are_not_urls() -> None:
    assert lint("AGRO S.R.L. și FERMA S.A., v2.5, ora 9.30", first_message=True) == []


# --------------------------------------------------------------------------- lead variables

COMPANY = {
    "denumire": "AGRO-SERV S.R.L.",
    "cui": 12345678,
    "judet": "Iași",
    "localitate": "Târgu Frumos",
    "is_agricultural": True,
    "sector": "comerț",
    "contact_principal_nume": "Maria Ionescu",
}


def test_lead_variables_from_company_and_contact() -> None:
    variables = lead_variables(COMPANY, {"prenume": "Ștefan", "nume": "Țăranu"})
    assert variables == {
        "companyName": "AGRO-SERV S.R.L.",
        "company_name": "AGRO-SERV S.R.L.",
        "contactName": "Ștefan Țăranu",
        "contact_name": "Ștefan Țăranu",
        "firstName": "Ștefan",
        "first_name": "Ștefan",
        "judet": "Iași",
        "county": "Iași",
        "localitate": "Târgu Frumos",
        "sector": "agricol",
        "industry": "agricol",
        "cui": "12345678",
    }
    assert set(variables) <= STANDARD_VARIABLES


@pytest.mark.parametrize("name", ["FERMA SRL", "COOP AGRICOLĂ S.A.", "Popescu S.R.L."])
def test_lead_variables_keep_company_suffixes(name: str) -> None:
    assert lead_variables({"denumire": f"  {name} "})["companyName"] == name


def test_lead_variables_full_name_wins_then_company_contact() -> None:
    contact = {"full_name": "Dl. Ion Popescu", "prenume": "Ion", "nume": "Popescu"}
    assert lead_variables(COMPANY, contact)["contactName"] == "Dl. Ion Popescu"
    assert lead_variables(COMPANY, {"prenume": "", "nume": None})["contactName"] == "Maria Ionescu"
    assert lead_variables(COMPANY)["contactName"] == "Maria Ionescu"


def test_lead_variables_sector() -> None:
    assert lead_variables({"is_agricultural": False, "sector": "construcții"})["sector"] == "construcții"
    assert lead_variables({"is_agricultural": False, "sector": " "})["sector"] == "afaceri"
    assert lead_variables({})["sector"] == "afaceri"


def test_lead_variables_empty_values_are_missing() -> None:
    variables = lead_variables({"denumire": "", "judet": "  ", "localitate": None, "cui": None})
    assert variables == {"sector": "afaceri", "industry": "afaceri"}


def test_lead_variables_extra_is_added_and_wins() -> None:
    variables = lead_variables(COMPANY, None, {"agentName": "Andrei", "judet": "Vaslui", "sector": ""})
    assert variables["agentName"] == "Andrei"
    assert variables["judet"] == "Vaslui"
    assert variables["sector"] == "agricol"


def test_seed_template_with_snake_case_variables_renders_from_a_lead() -> None:
    template = "Bună ziua {{contact_name}}, am văzut {{company_name}} din județul {{county}} ({{industry}})."
    rendered = render(template, lead_variables(COMPANY, {"prenume": "Ion", "nume": "Pop"}), seed="row-1")
    assert rendered.text == ("Bună ziua Ion Pop, am văzut AGRO-SERV S.R.L. din județul Iași (agricol).")
    ensure_sendable(rendered)


def test_lead_without_contact_blocks_a_template_needing_one() -> None:
    rendered = render("Bună ziua {{firstName}}", lead_variables(COMPANY), seed=1)
    with pytest.raises(TemplateNotSendable):
        ensure_sendable(rendered)
