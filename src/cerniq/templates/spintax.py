"""Spintax (ADR-0058): a parser, an AST and deterministic spinning.

Syntax
------
* ``{a|b|c}`` is a group: one option is picked. Groups nest to any depth
  (``{Bună {ziua|dimineața}|Salut}``) and need at least two non-blank options.
* ``{{name}}`` is a variable placeholder and ``{{name|default text}}`` one with an
  inline default. Names match ``[A-Za-z_][A-Za-z0-9_]*``. Whitespace just inside the
  braces is **accepted and stripped** (``{{ companyName }}`` is ``{{companyName}}``;
  ``{{ contactName | domnule director }}`` has the default ``domnule director``), but a
  space inside the name (``{{company name}}``) is an error. A variable may stand
  inside a group option. The default is plain text: no groups, escapes allowed.
* ``\\{``, ``\\}``, ``\\|`` and ``\\\\`` are the literal characters ``{``, ``}``, ``|`` and
  ``\\``. Any other backslash is an ordinary character, and so is ``|`` outside a group.

``{{`` opens a variable unless it is a group whose first option starts with a nested
group (``{{Bună|Salut} ziua|Hei}``): the parser looks ahead to the first unescaped brace
and reads a group when that brace is ``{``, or a single ``}`` after a ``|``.

A variant is identified by its *choices*: the index of the option taken at every group
met, in reading order, joined with dots (``"0.1.2"``; ``""`` for a template without
groups). :func:`render_variant` re-renders a variant from its choices; callers seed
:func:`spin_seeded` with the log row id so that a retry renders the same text.

All algorithms are iterative, so nesting depth is bounded by memory, not by the
interpreter's recursion limit.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeAlias

from cerniq.errors import ValidationFailed

__all__ = [
    "ESCAPABLE",
    "Group",
    "InvalidVariant",
    "Leaf",
    "Node",
    "Resolver",
    "SpintaxError",
    "Template",
    "Text",
    "Variable",
    "choose",
    "escape",
    "expand",
    "parse",
    "render_variant",
    "spin",
    "spin_seeded",
]

ESCAPABLE = frozenset("{}|\\")
"""Characters that a backslash turns into literal text."""

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CHOICES_RE = re.compile(r"[0-9]+(?:\.[0-9]+)*")

# Error codes; lint reports them as issue codes.
UNBALANCED_BRACES = "UNBALANCED_BRACES"
EMPTY_GROUP = "EMPTY_GROUP"
EMPTY_OPTION = "EMPTY_OPTION"
SINGLE_OPTION_GROUP = "SINGLE_OPTION_GROUP"
INVALID_VARIABLE_NAME = "INVALID_VARIABLE_NAME"


class SpintaxError(ValidationFailed):
    """A template that does not parse.

    ``position`` is the 0-based character offset of the offending token; ``line`` and
    ``column`` are 1-based. ``error_code`` says what is wrong (``UNBALANCED_BRACES``,
    ``EMPTY_GROUP``, ``EMPTY_OPTION``, ``SINGLE_OPTION_GROUP``, ``INVALID_VARIABLE_NAME``).
    """

    code = "SPINTAX_ERROR"

    def __init__(
        self, message: str, position: int, line: int, column: int, *, code: str | None = None
    ) -> None:
        super().__init__(
            f"{message} (line {line}, column {column})",
            details={"position": position, "line": line, "column": column},
            code=code,
        )
        self.reason = message
        self.position = position
        self.line = line
        self.column = column

    @classmethod
    def at(cls, source: str, position: int, message: str, code: str) -> SpintaxError:
        """Build the error for ``position`` in ``source``, computing line and column."""
        line = source.count("\n", 0, position) + 1
        column = position - (source.rfind("\n", 0, position) + 1) + 1
        return cls(message, position, line, column, code=code)


class InvalidVariant(ValidationFailed):
    """A choices string that does not describe a variant of the template."""

    code = "INVALID_VARIANT"


@dataclass(frozen=True, slots=True)
class Text:
    """Literal text (escapes already resolved). ``position`` is where it starts."""

    value: str
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Variable:
    """A ``{{name}}`` or ``{{name|default}}`` placeholder."""

    name: str
    default: str | None = None
    position: int = field(default=0, compare=False)

    @property
    def placeholder(self) -> str:
        """The canonical source form, e.g. ``{{companyName}}`` or ``{{x|implicit}}``."""
        if self.default is None:
            return "{{" + self.name + "}}"
        return "{{" + self.name + "|" + escape(self.default) + "}}"


@dataclass(frozen=True, slots=True)
class Group:
    """A ``{a|b|c}`` group; each option is a sequence of nodes."""

    options: tuple[tuple[Node, ...], ...]
    position: int = field(default=0, compare=False)


Node: TypeAlias = Text | Variable | Group
Leaf: TypeAlias = Text | Variable
Resolver: TypeAlias = Callable[[Variable], str]
"""Turns a variable into the text that replaces it."""


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: its source and its top-level node sequence."""

    source: str
    nodes: tuple[Node, ...]

    def walk(self) -> Iterator[Node]:
        """Yield every node of every branch, parents before their children."""
        stack: list[Node] = list(reversed(self.nodes))
        while stack:
            node = stack.pop()
            yield node
            if isinstance(node, Group):
                for option in reversed(node.options):
                    stack.extend(reversed(option))

    def variables(self) -> set[str]:
        """Names of all variables, in every branch."""
        return {node.name for node in self.walk() if isinstance(node, Variable)}

    def groups(self) -> list[Group]:
        """All groups, in reading order (parents before their children)."""
        return [node for node in self.walk() if isinstance(node, Group)]

    def variant_count(self) -> int:
        """How many distinct variants (choice paths) the template has."""
        counts: dict[int, int] = {}
        for group in reversed(self.groups()):  # children are counted before parents
            counts[id(group)] = sum(_sequence_count(option, counts) for option in group.options)
        return _sequence_count(self.nodes, counts)


def _sequence_count(nodes: tuple[Node, ...], counts: dict[int, int]) -> int:
    total = 1
    for node in nodes:
        if isinstance(node, Group):
            total *= counts[id(node)]
    return total


def escape(text: str) -> str:
    """Escape ``{``, ``}``, ``|`` and ``\\`` so that ``text`` parses as literal text."""
    return "".join("\\" + ch if ch in ESCAPABLE else ch for ch in text)


# --------------------------------------------------------------------------- parsing


class _Frame:
    """One open group (or the top level, ``position is None``) during parsing."""

    __slots__ = ("buffer", "buffer_start", "nodes", "options", "position")

    def __init__(self, position: int | None) -> None:
        self.position = position
        self.options: list[tuple[Node, ...]] = []
        self.nodes: list[Node] = []
        self.buffer: list[str] = []
        self.buffer_start = 0

    def add_text(self, text: str, position: int) -> None:
        if not self.buffer:
            self.buffer_start = position
        self.buffer.append(text)

    def flush(self) -> None:
        if self.buffer:
            self.nodes.append(Text("".join(self.buffer), self.buffer_start))
            self.buffer = []

    def current_is_blank(self) -> bool:
        return all(isinstance(node, Text) and not node.value.strip() for node in self.nodes)


def parse(template: str) -> Template:
    """Parse ``template`` into a :class:`Template`.

    Raises :class:`SpintaxError` for unbalanced braces, an empty group ``{}``, an empty
    (or blank) option ``{a||b}`` / ``{|a}``, a one-option group ``{a}`` and an invalid
    variable name ``{{company name}}``. The first error found is raised.
    """
    source = template
    stack: list[_Frame] = [_Frame(None)]
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        frame = stack[-1]
        if ch == "\\" and i + 1 < n and source[i + 1] in ESCAPABLE:
            frame.add_text(source[i + 1], i)
            i += 2
        elif ch == "{" and source.startswith("{{", i) and _opens_variable(source, i):
            frame.flush()
            variable, i = _parse_variable(source, i)
            frame.nodes.append(variable)
        elif ch == "{":
            frame.flush()
            stack.append(_Frame(i))
            i += 1
        elif ch == "|" and frame.position is not None:
            _end_option(source, frame, i)
            i += 1
        elif ch == "}":
            if frame.position is None:
                raise SpintaxError.at(source, i, "'}' closes no group (escape it as \\})", UNBALANCED_BRACES)
            group = _close_group(source, frame, i)
            stack.pop()
            stack[-1].nodes.append(group)
            i += 1
        else:
            frame.add_text(ch, i)
            i += 1
    if len(stack) > 1:
        position = stack[-1].position
        assert position is not None
        raise SpintaxError.at(source, position, "'{' is never closed (escape it as \\{)", UNBALANCED_BRACES)
    top = stack[0]
    top.flush()
    return Template(source, tuple(top.nodes))


def _end_option(source: str, frame: _Frame, delimiter: int) -> None:
    """Close the option in progress at ``delimiter`` (a ``|`` or ``}``)."""
    frame.flush()
    if frame.current_is_blank():
        raise SpintaxError.at(
            source, delimiter, "empty option in a group: every option needs text", EMPTY_OPTION
        )
    frame.options.append(tuple(frame.nodes))
    frame.nodes = []


def _close_group(source: str, frame: _Frame, closing: int) -> Group:
    """Turn ``frame`` into a :class:`Group` at its closing brace."""
    assert frame.position is not None
    frame.flush()
    if not frame.options and frame.current_is_blank():
        raise SpintaxError.at(source, frame.position, "empty group '{}'", EMPTY_GROUP)
    _end_option(source, frame, closing)
    if len(frame.options) < 2:
        raise SpintaxError.at(
            source,
            frame.position,
            "a group needs at least two options separated by '|' (use plain text instead)",
            SINGLE_OPTION_GROUP,
        )
    return Group(tuple(frame.options), frame.position)


def _opens_variable(source: str, start: int) -> bool:
    """Whether the ``{{`` at ``start`` opens a variable rather than a group in a group.

    A variable unless the first unescaped brace after ``{{`` is ``{``, or a single ``}``
    preceded by a ``|`` (``{{a|b} c|d}``). Without a ``|`` the group reading would be a
    one-option group, an error anyway; the variable reading gives the clearer message.
    """
    j, n = start + 2, len(source)
    saw_pipe = False
    while j < n:
        ch = source[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "{":
            return False
        if ch == "}":
            return source.startswith("}}", j) or not saw_pipe
        if ch == "|":
            saw_pipe = True
        j += 1
    return True


def _parse_variable(source: str, start: int) -> tuple[Variable, int]:
    """Parse the variable whose ``{{`` is at ``start``; return it and the next offset."""
    n = len(source)
    j = start + 2
    while j < n and source[j] not in "|}":
        j += 1
    if j >= n:
        raise SpintaxError.at(source, start, "variable is not closed with '}}'", UNBALANCED_BRACES)
    name = source[start + 2 : j].strip()
    if not _NAME_RE.fullmatch(name):
        raise SpintaxError.at(
            source,
            start,
            f"invalid variable name {name!r}: use letters, digits and '_' without spaces"
            " (e.g. {{companyName}})",
            INVALID_VARIABLE_NAME,
        )
    if source[j] == "}":
        if source.startswith("}}", j):
            return Variable(name, None, start), j + 2
        raise SpintaxError.at(
            source, start, f"variable {name!r} is not closed with '}}}}'", UNBALANCED_BRACES
        )
    return _parse_default(source, start, name, j + 1)


def _parse_default(source: str, start: int, name: str, j: int) -> tuple[Variable, int]:
    """Parse the default text of variable ``name`` from offset ``j`` up to ``}}``."""
    n = len(source)
    buffer: list[str] = []
    while j < n:
        ch = source[j]
        if ch == "\\" and j + 1 < n and source[j + 1] in ESCAPABLE:
            buffer.append(source[j + 1])
            j += 2
        elif source.startswith("}}", j):
            return Variable(name, "".join(buffer).strip(), start), j + 2
        elif ch in "{}":
            raise SpintaxError.at(
                source,
                j,
                f"unescaped {ch!r} in the default of variable {name!r} (escape it as \\{ch})",
                UNBALANCED_BRACES,
            )
        else:
            buffer.append(ch)
            j += 1
    raise SpintaxError.at(source, start, f"variable {name!r} is not closed with '}}}}'", UNBALANCED_BRACES)


# --------------------------------------------------------------------------- spinning


def _as_template(template: Template | str) -> Template:
    return template if isinstance(template, Template) else parse(template)


def _walk_variant(nodes: tuple[Node, ...], pick: Callable[[Group], int]) -> list[Leaf]:
    """The leaves of one variant; ``pick`` chooses an option index for each group met."""
    leaves: list[Leaf] = []
    stack: list[Iterator[Node]] = [iter(nodes)]
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
        elif isinstance(node, Group):
            stack.append(iter(node.options[pick(node)]))
        else:
            leaves.append(node)
    return leaves


def choose(template: Template | str, rng: random.Random) -> str:
    """Pick a variant with ``rng`` (one ``randrange`` per group met); return its choices."""
    taken: list[int] = []

    def pick(group: Group) -> int:
        index = rng.randrange(len(group.options))
        taken.append(index)
        return index

    _walk_variant(_as_template(template).nodes, pick)
    return ".".join(map(str, taken))


def expand(template: Template | str, choices: str) -> tuple[Leaf, ...]:
    """The text and variable leaves of the variant ``choices``, in reading order.

    Raises :class:`InvalidVariant` when ``choices`` is malformed, has an index out of
    range, or has too few or too many indexes for the template.
    """
    tpl = _as_template(template)
    shown = choices if len(choices) <= 40 else choices[:37] + "..."
    if choices and not _CHOICES_RE.fullmatch(choices):
        raise InvalidVariant(f"malformed variant {shown!r}: expected dot-separated option indexes")
    indexes = [int(part) for part in choices.split(".")] if choices else []
    cursor = iter(indexes)
    used = 0

    def pick(group: Group) -> int:
        nonlocal used
        index = next(cursor, None)
        if index is None:
            raise InvalidVariant(f"variant {shown!r} is too short for this template")
        if index >= len(group.options):
            raise InvalidVariant(
                f"variant {shown!r}: the group at offset {group.position} has"
                f" {len(group.options)} options, not {index + 1}"
            )
        used += 1
        return index

    leaves = _walk_variant(tpl.nodes, pick)
    if used != len(indexes):
        raise InvalidVariant(f"variant {shown!r} is too long for this template")
    return tuple(leaves)


def _join(leaves: tuple[Leaf, ...] | list[Leaf], resolve: Resolver | None) -> str:
    parts: list[str] = []
    for leaf in leaves:
        if isinstance(leaf, Text):
            parts.append(leaf.value)
        else:
            parts.append(resolve(leaf) if resolve is not None else leaf.placeholder)
    return "".join(parts)


def render_variant(template: Template | str, choices: str, *, resolve: Resolver | None = None) -> str:
    """Render the variant identified by ``choices``.

    Variables become ``resolve(variable)``, or their placeholder (``{{name}}``) when no
    resolver is given. Raises :class:`InvalidVariant` for choices that do not fit.
    """
    return _join(expand(template, choices), resolve)


def spin(template: Template | str, rng: random.Random, *, resolve: Resolver | None = None) -> tuple[str, str]:
    """Pick a random variant with ``rng``; return ``(text, choices)``.

    Variables are rendered as in :func:`render_variant`.
    """
    tpl = _as_template(template)
    choices = choose(tpl, rng)
    return render_variant(tpl, choices, resolve=resolve), choices


def spin_seeded(
    template: Template | str, seed: str | int, *, resolve: Resolver | None = None
) -> tuple[str, str]:
    """Deterministic :func:`spin` with ``random.Random(f"{seed}")``.

    The same seed always yields the same variant (``5`` and ``"5"`` are the same seed);
    seed with the communication-log row id so that a retry sends exactly the same text.
    """
    return spin(template, random.Random(f"{seed}"), resolve=resolve)
