"""``users``: operators who log in to the console, work the review queue and take over leads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, Timestamps, UUIDPk
from cerniq.models.columns import USER_ROLE, EagerDefaults, flag, text_column
from cerniq.models.enums import Role

TEAM_ROLES = ("operator", "team_lead", "manager", "on_call")


class User(UUIDPk, TenantScoped, Timestamps, EagerDefaults, Base):
    """A row is one person of a tenant: their (lower-cased) email, API role, team role for
    escalations (operator, team_lead, manager, on_call) and whether they take reviews now."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "email"),
        CheckConstraint("email = lower(email)", name="email_lower"),
        CheckConstraint(
            "team_role IN ('operator', 'team_lead', 'manager', 'on_call')", name="team_role_valid"
        ),
    )

    email: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str] = text_column("")
    role: Mapped[Role] = mapped_column(USER_ROLE, default=Role.OPERATOR, server_default=Role.OPERATOR.value)
    password_hash: Mapped[str | None] = mapped_column(Text)
    team_role: Mapped[str] = text_column("operator")
    is_available: Mapped[bool] = flag(True)
    is_active: Mapped[bool] = flag(True)
    last_login_at: Mapped[datetime | None]
    locale: Mapped[str] = text_column("ro")
