"""Set-based writes of a whole batch: one statement whose rows come from arrays.

``INSERT ... SELECT ... FROM {unnest_from(COLUMNS)}`` (or ``UPDATE ... FROM``) with the
parameters :func:`arrays` builds: one array per column, each cast to its PostgreSQL type, so a
batch of any size is one statement with a fixed text (one prepared statement, one round trip).
Columns are ``(name, type)`` pairs, e.g. ``("id", "uuid")``; a column of an enum type goes as
``text`` and is cast in the SELECT.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import Enum
from typing import Any

Columns = Sequence[tuple[str, str]]


def unnest_from(columns: Columns) -> str:
    """``unnest(CAST(:a AS t[]), ...) AS v(a, ...)``: the batch as a row source named ``v``."""
    casts = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in columns)
    names = ", ".join(name for name, _ in columns)
    return f"unnest({casts}) AS v({names})"


def arrays(rows: Sequence[dict[str, Any]], columns: Columns) -> dict[str, list[Any]]:
    """One array per column from ``rows``; enum members as their values, ``jsonb`` values as
    JSON text."""
    out: dict[str, list[Any]] = {}
    for name, kind in columns:
        values = [row[name] for row in rows]
        if kind == "jsonb":
            values = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
        else:
            values = [v.value if isinstance(v, Enum) else v for v in values]
        out[name] = values
    return out
