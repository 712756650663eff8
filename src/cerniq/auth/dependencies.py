"""FastAPI dependencies: the caller's principal and role checks.

Bearer tokens identify a tenant and a role. In local-operator mode (on in the demo, off by
default) an unauthenticated request from loopback that carries no forwarding header acts as the
default tenant's admin, so the runbook's ``curl http://localhost:64000/...`` lines work on the box.
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth import repository, service
from cerniq.auth.principal import Principal
from cerniq.config import get_settings
from cerniq.errors import Forbidden, Unauthorized
from cerniq.kit.db import get_session
from cerniq.models.enums import Role

FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-host", "via")

Session = Annotated[AsyncSession, Depends(get_session)]


def is_local_request(request: Request) -> bool:
    """True for a direct request from the loopback interface (no proxy in between)."""
    host = request.client.host if request.client else None
    if host is None:
        return False
    try:
        if not ip_address(host).is_loopback:
            return False
    except ValueError:
        if host not in ("localhost", "testclient"):
            return False
    return not any(h in request.headers for h in FORWARDING_HEADERS)


async def get_principal(request: Request, session: Session) -> Principal:
    """The authenticated caller, or 401."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    ip = request.client.host if request.client else None
    header = request.headers.get("authorization", "")
    principal: Principal | None = None
    if header:
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthorized("use 'Authorization: Bearer <token>'")
        principal = await service.principal_for_token(session, raw.strip(), ip)
        if principal is None:
            raise Unauthorized("invalid, expired or revoked token")
    else:
        session_principal = getattr(request.state, "session_principal", None)
        if isinstance(session_principal, Principal):
            principal = session_principal
        else:
            settings = get_settings()
            if settings.local_operator_mode and is_local_request(request):
                tenant = await repository.tenant_by_slug(session, settings.default_tenant_slug)
                if tenant is not None:
                    principal = Principal(
                        tenant_id=tenant.id,
                        role=Role.ADMIN,
                        actor_type="local",
                        actor_id="local-operator",
                        actor_label="local-operator",
                        ip_address=ip,
                    )
    if principal is None:
        raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'")
    request.state.principal = principal
    return principal


def require(role: Role) -> object:
    """Dependency factory: the caller must have ``role`` or a higher one."""

    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.has(role):
            raise Forbidden(
                f"this action needs the {role.value} role", details={"role": principal.role.value}
            )
        return principal

    return Depends(check)


Viewer = Annotated[Principal, require(Role.VIEWER)]
Operator = Annotated[Principal, require(Role.OPERATOR)]
Admin = Annotated[Principal, require(Role.ADMIN)]
