"""``cerniq tenants``, ``cerniq tokens`` and ``cerniq users``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cerniq.cli.common import console, resolve_tenant_id, run
from cerniq.models.enums import Role

tenants_app = typer.Typer(help="Tenants (one per customer organisation).", no_args_is_help=True)
tokens_app = typer.Typer(
    help="API tokens (bearer tokens with a role, scoped to one tenant).", no_args_is_help=True
)
users_app = typer.Typer(help="Console users.", no_args_is_help=True)


@tenants_app.command("create")
def tenants_create(
    slug: Annotated[str, typer.Argument(help="Short id, e.g. 'agro-nord'")],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
) -> None:
    """Create a tenant and print its webhook token."""
    from cerniq.auth import service
    from cerniq.kit.db import transaction

    async def action() -> None:
        async with transaction() as session:
            tenant = await service.create_tenant(session, slug=slug, name=name)
            console.print(f"tenant [bold]{tenant.slug}[/bold] id={tenant.id}")
            console.print(f"webhook token: {tenant.webhook_token}")

    run(action)


@tenants_app.command("list")
def tenants_list() -> None:
    """List tenants."""
    from cerniq.auth import repository
    from cerniq.kit.db import transaction

    async def action() -> None:
        async with transaction() as session:
            table = Table("slug", "name", "id", "created")
            for t in await repository.list_tenants(session):
                table.add_row(t.slug, t.name, str(t.id), t.created_at.isoformat(timespec="seconds"))
            console.print(table)

    run(action)


@tokens_app.command("create")
def tokens_create(
    role: Annotated[Role, typer.Option(help="admin, operator or viewer")] = Role.OPERATOR,
    name: Annotated[str, typer.Option(help="What the token is for")] = "cli",
    tenant: Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")] = None,
) -> None:
    """Create an API token and print it once."""
    from cerniq.auth import service
    from cerniq.kit.db import transaction

    async def action() -> None:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            row, raw = await service.create_token(session, tenant_id=tenant_id, role=role, name=name)
            await service.record_audit(
                session,
                None,
                "token.create",
                entity_type="api_token",
                entity_id=row.id,
                tenant_id=tenant_id,
                after={"name": name, "role": role.value},
            )
        console.print(f"token {row.id} ({role.value}) for tenant {tenant or 'default'}:")
        console.print(raw, soft_wrap=True, markup=False)

    run(action)


@tokens_app.command("list")
def tokens_list(tenant: Annotated[str | None, typer.Option(help="Tenant slug")] = None) -> None:
    """List a tenant's tokens (never their secrets)."""
    from cerniq.auth import repository
    from cerniq.kit.db import transaction

    async def action() -> None:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            table = Table("id", "name", "role", "prefix", "last used", "revoked")
            for t in await repository.list_tokens(session, tenant_id):
                table.add_row(
                    str(t.id),
                    t.name,
                    str(t.role),
                    t.token_prefix,
                    t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "-",
                    "yes" if t.revoked_at else "",
                )
            console.print(table)

    run(action)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="Token id")],
    tenant: Annotated[str | None, typer.Option(help="Tenant slug")] = None,
) -> None:
    """Revoke a token."""
    import uuid

    from cerniq.auth import repository, service
    from cerniq.kit.db import transaction

    async def action() -> None:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            if not await repository.revoke_token(session, tenant_id, uuid.UUID(token_id)):
                raise typer.BadParameter("no such active token")
            await service.record_audit(
                session,
                None,
                "token.revoke",
                entity_type="api_token",
                entity_id=token_id,
                tenant_id=tenant_id,
            )
        console.print("revoked")

    run(action)


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument()],
    role: Annotated[Role, typer.Option()] = Role.OPERATOR,
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    team_role: Annotated[str, typer.Option(help="operator, team_lead, manager or on_call")] = "operator",
    password: Annotated[
        str | None, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant slug")] = None,
) -> None:
    """Create a console user with a password."""
    from cerniq.auth import service
    from cerniq.kit.db import transaction

    async def action() -> None:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            user = await service.create_user(
                session,
                tenant_id=tenant_id,
                email=email,
                display_name=name,
                role=role,
                password=password,
                team_role=team_role,
            )
            await service.record_audit(
                session,
                None,
                "user.create",
                entity_type="user",
                entity_id=user.id,
                tenant_id=tenant_id,
                after={"email": user.email, "role": role.value, "team_role": team_role},
            )
        console.print(f"user {email} ({role.value}) created")

    run(action)


def register(root: typer.Typer) -> None:
    root.add_typer(tenants_app, name="tenants")
    root.add_typer(tokens_app, name="tokens")
    root.add_typer(users_app, name="users")
