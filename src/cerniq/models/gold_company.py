"""``gold_companies``: companies from the previous stage (Etapa 1 gold layer); the leads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, Timestamps, UUIDPk
from cerniq.models.columns import EagerDefaults, flag, json_object


class GoldCompany(UUIDPk, TenantScoped, Timestamps, EagerDefaults, Base):
    """A row is one Romanian company (identified by its CUI) imported from Etapa 1, with its
    registry data, main email and phone, and the reachability checks done upstream."""

    __tablename__ = "gold_companies"
    __table_args__ = (
        UniqueConstraint("tenant_id", "cui"),
        # The lead search (ILIKE '%term%'): trigram indexes, migration 0002.
        *(
            Index(
                f"ix_gold_companies_{name}_trgm",
                column,
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            )
            for name, column in (
                ("denumire", "denumire"),
                ("cui", "cui"),
                ("email", "email_principal"),
                ("telefon", "telefon_principal"),
            )
        ),
        # the leads list sorted by company name (migration 0006)
        Index("ix_gold_companies_tenant_denumire", "tenant_id", "denumire"),
    )

    denumire: Mapped[str] = mapped_column(Text)
    cui: Mapped[str] = mapped_column(Text)
    nr_reg_com: Mapped[str | None] = mapped_column(Text)
    judet: Mapped[str | None] = mapped_column(Text)
    localitate: Mapped[str | None] = mapped_column(Text)
    adresa: Mapped[str | None] = mapped_column(Text)
    cod_caen: Mapped[str | None] = mapped_column(Text)
    # 'agricol' or 'afaceri' (derived from is_agricultural upstream).
    sector: Mapped[str | None] = mapped_column(Text)
    is_agricultural: Mapped[bool] = flag(False)
    email_principal: Mapped[str | None] = mapped_column(Text)
    telefon_principal: Mapped[str | None] = mapped_column(Text)
    hlr_reachable: Mapped[bool | None]
    # Upstream email verification result; only 'valid' may receive cold email.
    email_status: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(Text)
    lead_score: Mapped[int | None]
    quality_score: Mapped[int | None]
    source: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[dict[str, Any]] = json_object()
