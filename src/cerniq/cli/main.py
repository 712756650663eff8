"""The ``cerniq`` root command. Every module in ``cerniq.cli`` that defines ``register(root)``
adds its commands, so areas plug in without editing this file."""

from __future__ import annotations

import importlib
import pkgutil

import typer

import cerniq
import cerniq.cli

root = typer.Typer(
    name="cerniq",
    help="Cerniq Outreach: run the platform and operate it (the runbook's procedures as commands).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@root.command()
def version() -> None:
    """Print the version."""
    typer.echo(cerniq.__version__)


def _register_all() -> None:
    for module in sorted(pkgutil.iter_modules(cerniq.cli.__path__), key=lambda m: m.name):
        if module.name in ("main", "common"):
            continue
        mod = importlib.import_module(f"cerniq.cli.{module.name}")
        register = getattr(mod, "register", None)
        if callable(register):
            register(root)
        elif isinstance(getattr(mod, "app", None), typer.Typer):
            root.add_typer(mod.app, name=module.name.replace("_", "-"))


_register_all()


def main() -> None:
    root()
