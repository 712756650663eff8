"""Templates: spintax parsing and spinning, personalised rendering, lint.

The pure functions live here; CRUD, versions and the preview endpoint build on them.
"""

from cerniq.templates.render import (
    STANDARD_VARIABLES,
    LintIssue,
    Rendered,
    TemplateNotSendable,
    collapse_whitespace,
    ensure_sendable,
    lead_variables,
    lint,
    render,
)
from cerniq.templates.spintax import (
    Group,
    InvalidVariant,
    SpintaxError,
    Template,
    Text,
    Variable,
    choose,
    escape,
    expand,
    parse,
    render_variant,
    spin,
    spin_seeded,
)

__all__ = [
    "STANDARD_VARIABLES",
    "Group",
    "InvalidVariant",
    "LintIssue",
    "Rendered",
    "SpintaxError",
    "Template",
    "TemplateNotSendable",
    "Text",
    "Variable",
    "choose",
    "collapse_whitespace",
    "ensure_sendable",
    "escape",
    "expand",
    "lead_variables",
    "lint",
    "parse",
    "render",
    "render_variant",
    "spin",
    "spin_seeded",
]
