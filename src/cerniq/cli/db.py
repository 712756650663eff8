"""``cerniq db``: apply and inspect schema migrations (Alembic, run programmatically)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from alembic import command
from alembic.util.exc import CommandError
from sqlalchemy.exc import OperationalError

from cerniq.kit.migrate import alembic_config, ensure_database_exists

app = typer.Typer(help="Database migrations", no_args_is_help=True)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Database URL (postgresql://...); defaults to CERNIQ_DATABASE_URL.",
        show_default=False,
    ),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Show revision details.")]


@contextmanager
def _reported() -> Iterator[None]:
    """Turn Alembic and connection failures into one line on stderr and exit code 1."""
    try:
        yield
    except CommandError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except OperationalError as exc:
        typer.echo(f"error: cannot reach the database: {exc.orig}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision: head, an id, or +N.")] = "head",
    url: UrlOption = None,
    create: Annotated[
        bool, typer.Option("--create/--no-create", help="Create the database first if it is missing.")
    ] = True,
) -> None:
    """Upgrade the schema to REVISION (default: the latest)."""
    with _reported():
        if create and ensure_database_exists(url):
            typer.echo("created the database")
        command.upgrade(alembic_config(url), revision)
        command.current(alembic_config(url))


@app.command()
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision: -1, an id, or base (drops everything).")],
    url: UrlOption = None,
) -> None:
    """Downgrade the schema to REVISION."""
    with _reported():
        command.downgrade(alembic_config(url), revision)
        command.current(alembic_config(url))


@app.command()
def current(url: UrlOption = None, verbose: VerboseOption = False) -> None:
    """Show the revision the database is at."""
    with _reported():
        command.current(alembic_config(url), verbose=verbose)


@app.command()
def heads(verbose: VerboseOption = False) -> None:
    """Show the latest revision(s) of the migration scripts."""
    with _reported():
        command.heads(alembic_config(), verbose=verbose)
