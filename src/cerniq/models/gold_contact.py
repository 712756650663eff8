"""``gold_contacts``: people at a gold company, with their channels and consent."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from cerniq.models.base import Base, TenantScoped, Timestamps, UUIDPk
from cerniq.models.columns import EagerDefaults, flag


class GoldContact(UUIDPk, TenantScoped, Timestamps, EagerDefaults, Base):
    """A row is one contact person of a company: name, role, email, E.164 phone and WhatsApp
    number, and the consent and unsubscribe flags that gate outreach to them."""

    __tablename__ = "gold_contacts"

    company_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("gold_companies.id", ondelete="CASCADE"), index=True
    )
    prenume: Mapped[str | None] = mapped_column(Text)
    nume: Mapped[str | None] = mapped_column(Text)
    full_name: Mapped[str | None] = mapped_column(Text)
    functie: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)  # E.164
    whatsapp_number: Mapped[str | None] = mapped_column(Text)  # E.164
    consent_email: Mapped[bool] = flag(False)
    consent_whatsapp: Mapped[bool] = flag(False)
    consent_source: Mapped[str | None] = mapped_column(Text)
    consent_at: Mapped[datetime | None]
    unsubscribed: Mapped[bool] = flag(False)
    is_primary: Mapped[bool] = flag(False)
