"""Spintax parser, variants and determinism (ADR-0058)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cerniq.errors import ValidationFailed
from cerniq.templates import (
    Group,
    InvalidVariant,
    SpintaxError,
    Template,
    Text,
    Variable,
    choose,
    escape,
    parse,
    render_variant,
    spin,
    spin_seeded,
)

THREE_LEVELS = "{Bună {ziua {frumoasă|însorită}|dimineața}|Salut}"
TWO_BY_TWO_BY_TWO = "{Bună ziua|Salut}, {vă scriu|revin} {azi|acum}."


def all_texts(template: str) -> set[str]:
    """Every text the template can spin to, found by walking seeds."""
    return {spin_seeded(template, seed)[0] for seed in range(400)}


# --------------------------------------------------------------------------- nesting


def test_three_level_nesting_yields_every_combination() -> None:
    template = parse(THREE_LEVELS)
    assert template.variant_count() == 4
    assert all_texts(THREE_LEVELS) == {
        "Bună ziua frumoasă",
        "Bună ziua însorită",
        "Bună dimineața",
        "Salut",
    }


def test_three_level_variants_by_choices() -> None:
    assert render_variant(THREE_LEVELS, "0.0.1") == "Bună ziua însorită"
    assert render_variant(THREE_LEVELS, "0.1") == "Bună dimineața"
    assert render_variant(THREE_LEVELS, "1") == "Salut"


def test_group_whose_first_option_starts_with_a_group() -> None:
    template = parse("{{Bună|Salut} ziua|Hei}")
    assert template.variant_count() == 3
    assert all_texts("{{Bună|Salut} ziua|Hei}") == {"Bună ziua", "Salut ziua", "Hei"}


def test_variable_inside_a_group_option() -> None:
    template = parse("{Stimate {{contactName}}|{{{contactName}}|Bună ziua}}")
    assert template.variables() == {"contactName"}
    assert render_variant(template, "0") == "Stimate {{contactName}}"
    assert render_variant(template, "1.0") == "{{contactName}}"
    assert render_variant(template, "1.1") == "Bună ziua"


def test_variables_are_collected_from_every_branch() -> None:
    template = parse("{{{companyName}}|{A {{judet}}|B {{localitate|aici}}}} {{sector}}")
    assert template.variables() == {"companyName", "judet", "localitate", "sector"}


def test_variant_count_multiplies_sequences_and_adds_options() -> None:
    assert parse("fără grupuri").variant_count() == 1
    assert parse(TWO_BY_TWO_BY_TWO).variant_count() == 8
    assert parse("{a|b|{c|d|e}}").variant_count() == 5


def test_deep_nesting_does_not_hit_the_recursion_limit() -> None:
    source = "x"
    for _ in range(3000):
        source = "{" + source + "|y}"
    template = parse(source)
    assert template.variant_count() == 3001
    assert render_variant(template, ".".join(["0"] * 2999 + ["1"])) == "y"
    assert render_variant(template, ".".join(["0"] * 3000)) == "x"


# --------------------------------------------------------------------------- escapes and variables


def test_escaped_braces_pipes_and_backslashes_are_literal() -> None:
    text, choices = spin_seeded(r"Ofertă \{nu e grup\} a\|b c\\d", 1)
    assert text == r"Ofertă {nu e grup} a|b c\d"
    assert choices == ""


def test_escapes_inside_group_options() -> None:
    template = parse(r"{x\|y|\{z\}}")
    assert render_variant(template, "0") == "x|y"
    assert render_variant(template, "1") == "{z}"


def test_unknown_backslash_and_top_level_pipe_are_plain_text() -> None:
    assert render_variant(r"Preț | calitate \o/ \n", "") == r"Preț | calitate \o/ \n"


def test_escaped_backslash_before_a_group_still_opens_the_group() -> None:
    assert render_variant(r"\\{a|b}", "1") == "\\b"


def test_spaces_inside_variable_braces_are_stripped() -> None:
    template = parse("{{ companyName }} {{ contactName | domnule director }}")
    variables = [node for node in template.nodes if isinstance(node, Variable)]
    assert variables == [Variable("companyName"), Variable("contactName", "domnule director")]


def test_variable_default_with_escapes() -> None:
    template = parse(r"{{x|a \} b \| c}}")
    assert template.nodes == (Variable("x", "a } b | c"),)
    variable = template.nodes[0]
    assert isinstance(variable, Variable)
    assert variable.placeholder == r"{{x|a \} b \| c}}"


def test_diacritics_survive_parsing() -> None:
    source = "{Bună ziua|Salută}, ă â î ș ț Ă Â Î Ș Ț"
    assert render_variant(source, "0") == "Bună ziua, ă â î ș ț Ă Â Î Ș Ț"


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_the_same_text() -> None:
    for seed in ("a3f1-row-id", 42, "42"):
        assert spin_seeded(TWO_BY_TWO_BY_TWO, seed) == spin_seeded(TWO_BY_TWO_BY_TWO, seed)
    assert spin_seeded(TWO_BY_TWO_BY_TWO, 42) == spin_seeded(TWO_BY_TWO_BY_TWO, "42")


def test_64_seeds_reach_all_8_variants() -> None:
    variants = {spin_seeded(TWO_BY_TWO_BY_TWO, seed) for seed in range(64)}
    assert len({choices for _, choices in variants}) == 8
    assert len({text for text, _ in variants}) == 8


def test_seeded_spin_matches_an_explicit_random() -> None:
    assert spin_seeded(THREE_LEVELS, "row-7") == spin(THREE_LEVELS, random.Random("row-7"))
    assert choose(THREE_LEVELS, random.Random("row-7")) == spin_seeded(THREE_LEVELS, "row-7")[1]


def test_render_variant_round_trip() -> None:
    template = parse(THREE_LEVELS + " " + TWO_BY_TWO_BY_TWO)
    for seed in range(50):
        text, choices = spin_seeded(template, seed)
        assert render_variant(template, choices) == text


def test_resolver_replaces_variables() -> None:
    text, _ = spin_seeded("Bună ziua, {{contactName}}!", 3, resolve=lambda v: v.name.upper())
    assert text == "Bună ziua, CONTACTNAME!"


@pytest.mark.parametrize("choices", ["", "0", "0.0.0.0.0", "2.0", "0.x", "0..1", "-1", "0.0.2.0"])
def test_invalid_variants_are_rejected(choices: str) -> None:
    with pytest.raises(InvalidVariant) as caught:
        render_variant(THREE_LEVELS + " {a|b}", choices)
    assert isinstance(caught.value, ValidationFailed)
    assert caught.value.error_code == "INVALID_VARIANT"


def test_template_without_groups_has_the_empty_variant() -> None:
    assert spin_seeded("Bună ziua", 1) == ("Bună ziua", "")
    with pytest.raises(InvalidVariant):
        render_variant("Bună ziua", "0")


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("source", "code", "position"),
    [
        ("Bună {ziua|seara", "UNBALANCED_BRACES", 5),
        ("Bună ziua}", "UNBALANCED_BRACES", 9),
        ("{a|{b|c}", "UNBALANCED_BRACES", 0),
        ("x {}", "EMPTY_GROUP", 2),
        ("x { }", "EMPTY_GROUP", 2),
        ("{a||b}", "EMPTY_OPTION", 3),
        ("{|a}", "EMPTY_OPTION", 1),
        ("{a|}", "EMPTY_OPTION", 3),
        ("{a|  |b}", "EMPTY_OPTION", 5),
        ("Bună {ziua}", "SINGLE_OPTION_GROUP", 5),
        ("{{Bună|Salut}}", "INVALID_VARIABLE_NAME", 0),
        ("Către {{company name}}", "INVALID_VARIABLE_NAME", 6),
        ("{{1abc}}", "INVALID_VARIABLE_NAME", 0),
        ("{{județ}}", "INVALID_VARIABLE_NAME", 0),
        ("{{}}", "INVALID_VARIABLE_NAME", 0),
        ("{{companyName}", "UNBALANCED_BRACES", 0),
        ("{{companyName", "UNBALANCED_BRACES", 0),
        ("{{x|implicit", "UNBALANCED_BRACES", 0),
        ("{{companyName}}}", "UNBALANCED_BRACES", 15),
    ],
)
def test_spintax_errors_carry_code_and_position(source: str, code: str, position: int) -> None:
    with pytest.raises(SpintaxError) as caught:
        parse(source)
    error = caught.value
    assert error.error_code == code
    assert error.position == position
    assert (error.line, error.column) == (1, position + 1)
    assert error.details == {"position": position, "line": 1, "column": position + 1}
    assert error.status_code == 400


def test_spintax_error_line_and_column_on_later_lines() -> None:
    with pytest.raises(SpintaxError) as caught:
        parse("Bună ziua,\nvă scriu {azi||acum}\n")
    assert (caught.value.position, caught.value.line, caught.value.column) == (25, 2, 15)
    assert "line 2, column 15" in str(caught.value)


def test_spintax_error_constructor_signature() -> None:
    error = SpintaxError("empty group '{}'", 3, 1, 4)
    assert (error.position, error.line, error.column) == (3, 1, 4)
    assert error.error_code == "SPINTAX_ERROR"


# --------------------------------------------------------------------------- properties

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
TEXT_CHARS = st.sampled_from(list("ab ăâîșțĂȘ{}|\\\n\t,.-"))
PLAIN_CHARS = st.sampled_from(list("ab ăâîșțĂȘ\n\t,.-"))

Item = tuple[Any, ...]

# The suite shares its machine with database-backed tests: no deadlines, no "too slow".
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def sequences(
    draw: st.DrawFn, chars: st.SearchStrategy[str], depth: int = 0, min_size: int = 0
) -> list[Item]:
    """A template model: ("t", text) | ("v", name, default | None) | ("g", [options])."""
    items: list[Item] = []
    for _ in range(draw(st.integers(min_size, 3))):
        kind = draw(st.sampled_from(["t", "t", "v", "g"] if depth < 3 else ["t", "v"]))
        if kind == "t":
            items.append(("t", draw(st.text(chars, min_size=1, max_size=5))))
        elif kind == "v":
            default = draw(st.none() | st.text(chars, max_size=5).map(str.strip))
            items.append(("v", draw(NAMES), default))
        else:
            option = sequences(chars, depth + 1, 1).filter(not_blank)
            items.append(("g", draw(st.lists(option, min_size=2, max_size=3))))
    return items


def not_blank(items: list[Item]) -> bool:
    return any(item[0] != "t" or item[1].strip() for item in items)


def to_source(items: list[Item]) -> str:
    parts = []
    for item in items:
        if item[0] == "t":
            parts.append(escape(item[1]))
        elif item[0] == "v":
            default = "" if item[2] is None else "|" + escape(item[2])
            parts.append("{{" + item[1] + default + "}}")
        else:
            parts.append("{" + "|".join(to_source(option) for option in item[1]) + "}")
    return "".join(parts)


def model_text(items: list[Item], choices: Iterator[int]) -> str:
    parts = []
    for item in items:
        if item[0] == "t":
            parts.append(item[1])
        elif item[0] == "v":
            parts.append(f"<{item[1]}>")
        else:
            parts.append(model_text(item[1][next(choices)], choices))
    return "".join(parts)


def model_count(items: list[Item]) -> int:
    total = 1
    for item in items:
        if item[0] == "g":
            total *= sum(model_count(option) for option in item[1])
    return total


def model_names(items: list[Item]) -> set[str]:
    names: set[str] = set()
    for item in items:
        if item[0] == "v":
            names.add(item[1])
        elif item[0] == "g":
            for option in item[1]:
                names |= model_names(option)
    return names


def angle(variable: Variable) -> str:
    return f"<{variable.name}>"


@PROPERTY
@given(sequences(TEXT_CHARS), st.integers())
def test_property_parse_matches_the_model(items: list[Item], seed: int) -> None:
    template = parse(to_source(items))
    text, choices = spin_seeded(template, seed, resolve=angle)
    indexes = iter(int(part) for part in choices.split(".")) if choices else iter(())
    assert text == model_text(items, indexes)
    assert render_variant(template, choices, resolve=angle) == text
    assert template.variant_count() == model_count(items)
    assert template.variables() == model_names(items)


@PROPERTY
@given(sequences(PLAIN_CHARS), st.integers())
def test_property_spun_text_has_no_syntax_braces(items: list[Item], seed: int) -> None:
    text, _ = spin_seeded(to_source(items), seed, resolve=lambda v: "X")
    assert "{" not in text
    assert "}" not in text


@PROPERTY
@given(st.text(TEXT_CHARS, max_size=40))
def test_property_escape_round_trips_to_plain_text(text: str) -> None:
    template = parse(escape(text))
    assert template.nodes == ((Text(text),) if text else ())
    assert render_variant(template, "") == text


@PROPERTY
@given(st.text(st.sampled_from(list("{}|\\ab \n")), max_size=40), st.integers())
def test_property_arbitrary_input_parses_or_raises_spintax_error(source: str, seed: int) -> None:
    error: SpintaxError | None = None
    try:
        template = parse(source)
    except SpintaxError as exc:
        error = exc
    if error is not None:
        assert 0 <= error.position < len(source)
        assert error.line == source.count("\n", 0, error.position) + 1
        return
    assert isinstance(template, Template)
    text, choices = spin_seeded(template, seed)
    assert render_variant(template, choices) == text
    for group in template.groups():
        assert isinstance(group, Group)
        assert len(group.options) >= 2
