"""Input helpers of the console pages: turning pydantic validation errors and bad numbers into
the ``CODE: message`` notice the console shows, and reading a list's page number."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


def validation_message(exc: ValidationError, prefix: str = "") -> str:
    """``<prefix><field>: <message>`` for the first error of ``exc``."""
    errors = exc.errors()
    first: dict[str, Any] = dict(errors[0]) if errors else {"loc": (), "msg": str(exc)}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "__root__")
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    label = f"{prefix}{where}: " if where else prefix
    return f"{label}{message}"


def validation_text(exc: ValidationError, prefix: str = "") -> str:
    """The console notice of a pydantic error: ``VALIDATION_ERROR: <field>: <message>``."""
    return f"VALIDATION_ERROR: {validation_message(exc, prefix)}"


def int_field(form: dict[str, str], key: str, *, default: int | None = None) -> int | None:
    """The integer in ``form[key]``; ``default`` when empty; ValueError names the field."""
    raw = form.get(key, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{key}: {raw!r} is not a whole number") from None


def page_of(raw: str | None, most: int = 1_000_000) -> int:
    """The page number of a list's ``?page=``: 1 when missing or not a number, at most ``most``."""
    try:
        return min(max(1, int(raw or "1")), most)
    except ValueError:
        return 1
