"""The ``cerniq`` command line: one Typer root with a sub-command per area."""
