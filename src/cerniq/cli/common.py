"""Helpers shared by CLI modules: running coroutines, the console, tenant lookup."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console

from cerniq.config import get_settings
from cerniq.errors import CerniqError
from cerniq.logging import configure_logging

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


def run(coro_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an async CLI action with logging configured and the pools closed at the end."""
    configure_logging(get_settings())

    async def main() -> T:
        from cerniq.kit.db import dispose_engines
        from cerniq.kit.redis import close_redis
        from cerniq.worker.queues import close_queues

        try:
            return await coro_factory()
        finally:
            await close_queues()
            await close_redis()
            await dispose_engines()

    try:
        return asyncio.run(main())
    except CerniqError as exc:
        err_console.print(f"[red]{exc.error_code}[/red]: {exc.message}")
        if exc.details:
            err_console.print(exc.details)
        raise typer.Exit(2) from exc


async def resolve_tenant_id(slug: str | None) -> Any:
    """The id of tenant ``slug`` (default: the configured default tenant)."""
    from cerniq.auth import service
    from cerniq.kit.db import transaction

    async with transaction() as session:
        tenant = await service.get_tenant(session, slug or get_settings().default_tenant_slug)
        return tenant.id


def cli_principal(tenant_id: Any) -> Any:
    """The principal of an operator at the command line: an admin of the tenant, named after the
    OS user, so audit rows say who ran the command."""
    import getpass

    from cerniq.auth.principal import Principal
    from cerniq.models.enums import Role

    user = getpass.getuser()
    return Principal(tenant_id=tenant_id, role=Role.ADMIN, actor_type="cli", actor_id=user, actor_label=user)


def act_as_cli(
    tenant: str | None,
    action: Callable[[Any, Any], Awaitable[T]],
    *,
    cleanup: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """Run ``action(session, principal)`` in one transaction as the CLI user (an admin of
    ``tenant``), then ``cleanup`` (closing vendor clients) whatever happened."""
    from cerniq.kit.db import transaction

    async def main() -> T:
        try:
            tenant_id = await resolve_tenant_id(tenant)
            async with transaction() as session:
                return await action(session, cli_principal(tenant_id))
        finally:
            if cleanup is not None:
                await cleanup()

    return run(main)


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON (the API's shape), dates and ids as strings."""
    import json

    console.print_json(json.dumps(value, ensure_ascii=False, default=str))


AsyncAction = Callable[[], Awaitable[Any]]
