"""Who is calling: a tenant, a role and an actor, resolved from a token, a session or loopback."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from cerniq.models.enums import Role

_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Principal:
    tenant_id: uuid.UUID
    role: Role
    actor_type: str  # token | user | local | system
    actor_id: str
    actor_label: str
    user_id: uuid.UUID | None = None
    ip_address: str | None = None

    def has(self, role: Role) -> bool:
        """True when this principal's role is ``role`` or above (admin > operator > viewer)."""
        return _RANK[self.role] >= _RANK[role]

    @property
    def actor(self) -> str:
        """A short label for audit rows: ``user:ana@ferma.ro``, ``token:ci``, ``local``."""
        return f"{self.actor_type}:{self.actor_label}" if self.actor_type != "local" else "local"


def system_principal(tenant_id: uuid.UUID, label: str = "system") -> Principal:
    """The principal of scheduled jobs and internal actions."""
    return Principal(
        tenant_id=tenant_id, role=Role.ADMIN, actor_type="system", actor_id=label, actor_label=label
    )
