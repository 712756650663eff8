"""Demo data: a tenant, phones matching the sandbox's accounts, a default sequence, demo leads."""

from __future__ import annotations

import importlib
import random
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.auth import service as auth
from cerniq.auth.principal import system_principal
from cerniq.kit.clock import utcnow
from cerniq.models import (
    GoldCompany,
    GoldContact,
    GoldLeadJourney,
    OutreachSequence,
    OutreachSequenceStep,
    OutreachTemplate,
    Tenant,
    WaPhoneNumber,
)
from cerniq.models.enums import Channel, LeadState, Role
from cerniq.phones import service as phones

COUNTIES = [
    ("Timiș", ["Lugoj", "Jimbolia", "Sânnicolau Mare", "Buziaș"]),
    ("Iași", ["Pașcani", "Hârlău", "Podu Iloaiei", "Târgu Frumos"]),
    ("Cluj", ["Turda", "Dej", "Câmpia Turzii", "Huedin"]),
    ("Constanța", ["Medgidia", "Mangalia", "Cernavodă", "Hârșova"]),
    ("Dolj", ["Băilești", "Calafat", "Segarcea", "Filiași"]),
    ("Brăila", ["Ianca", "Făurei", "Însurăței"]),
    ("Teleorman", ["Alexandria", "Roșiorii de Vede", "Zimnicea"]),
    ("Călărași", ["Oltenița", "Lehliu Gară", "Budești"]),
    ("Ialomița", ["Slobozia", "Fetești", "Urziceni"]),
    ("Arad", ["Pecica", "Curtici", "Nădlac", "Chișineu-Criș"]),
]
KINDS = ["Agro", "Ferma", "Cereale", "Agricola", "Legume", "Zootehnia", "Vita", "Semințe", "Câmpia", "Holde"]
NAMES = [
    "Dunărea",
    "Bărăgan",
    "Mureș",
    "Someș",
    "Prut",
    "Olt",
    "Siret",
    "Carpați",
    "Banat",
    "Moldova",
    "Delta",
]
FIRST = ["Ion", "Maria", "Gheorghe", "Elena", "Vasile", "Ana", "Mihai", "Ioana", "Andrei", "Cristina", "Dan"]
LAST = ["Popescu", "Ionescu", "Popa", "Stan", "Dumitru", "Stoica", "Gheorghe", "Munteanu", "Matei", "Ene"]


def cui_with_check_digit(base: int) -> str:
    """A Romanian CUI whose last digit is the official control digit (key 753217532)."""
    digits = str(base)[:9]
    padded = digits.rjust(9, "0")
    total = sum(int(d) * int(k) for d, k in zip(padded, "753217532", strict=True))
    check = total * 10 % 11
    return digits + str(0 if check == 10 else check)


async def ensure_tenant(session: AsyncSession, slug: str) -> Tenant:
    return await auth.ensure_tenant(session, slug, "Cerniq Demo Agro")


async def ensure_phones(session: AsyncSession, tenant: Tenant, count: int) -> int:
    existing = {
        p.phone_number
        for p in (
            await session.execute(select(WaPhoneNumber).where(WaPhoneNumber.tenant_id == tenant.id))
        ).scalars()
    }
    created = 0
    for i in range(1, count + 1):
        number = f"+407{i:08d}"
        if number in existing:
            continue
        await phones.create_phone(
            session,
            system_principal(tenant.id, "demo"),
            phone_number=number,
            label=f"Cerniq Sales {i}",
            timelinesai_account_id=f"407{i:08d}@s.whatsapp.net",
            priority=i,
        )
        created += 1
    return created


async def ensure_sequence(session: AsyncSession, tenant: Tenant) -> None:
    """The default WhatsApp sequence (from the sequences package when present)."""
    try:
        module = importlib.import_module("cerniq.sequences.service")
    except ImportError:
        module = None
    ensure_default_content = getattr(module, "ensure_default_content", None)
    if ensure_default_content is not None:
        await ensure_default_content(session, tenant.id)
        return
    has = (
        await session.execute(
            select(func.count()).select_from(OutreachSequence).where(OutreachSequence.tenant_id == tenant.id)
        )
    ).scalar_one()
    if has:
        return
    first = OutreachTemplate(
        tenant_id=tenant.id,
        name="Primul contact (WhatsApp)",
        channel=Channel.WHATSAPP,
        is_approved=True,
        content=(
            "{Bună ziua|Bună ziua, {{contactName|}}}! Sunt Andreea de la Cerniq. "
            "{Lucrăm|Colaborăm} cu ferme din {{judet|zona dvs.}} la vânzarea recoltei "
            "direct către procesatori. Ar fi {util|interesant} pentru {{companyName}} "
            "să vorbim 10 minute {săptămâna aceasta|zilele următoare}?"
        ),
    )
    second = OutreachTemplate(
        tenant_id=tenant.id,
        name="Revenire (WhatsApp)",
        channel=Channel.WHATSAPP,
        is_approved=True,
        content=(
            "{Revin|Revin cu drag} la mesajul de mai sus: "
            "{vă pot trimite|pot să vă trimit} câteva detalii despre Cerniq?"
        ),
    )
    session.add_all([first, second])
    await session.flush()
    sequence = OutreachSequence(tenant_id=tenant.id, name="Cerniq WhatsApp standard", is_default=True)
    session.add(sequence)
    await session.flush()
    session.add_all(
        [
            OutreachSequenceStep(
                tenant_id=tenant.id,
                sequence_id=sequence.id,
                step_number=1,
                delay_hours=0,
                channel=Channel.WHATSAPP,
                template_id=first.id,
            ),
            OutreachSequenceStep(
                tenant_id=tenant.id,
                sequence_id=sequence.id,
                step_number=2,
                delay_hours=72,
                channel=Channel.WHATSAPP,
                template_id=second.id,
            ),
        ]
    )


async def ensure_leads(session: AsyncSession, tenant: Tenant, count: int, *, seed: int = 7) -> int:
    """``count`` demo companies with a contact and a COLD journey due now (85% have a mobile)."""
    have = (
        await session.execute(
            select(func.count()).select_from(GoldCompany).where(GoldCompany.tenant_id == tenant.id)
        )
    ).scalar_one()
    if have >= count:
        return 0
    rng = random.Random(seed)
    now = utcnow()
    created = 0
    for n in range(have + 1, count + 1):
        county, towns = rng.choice(COUNTIES)
        name = f"{rng.choice(KINDS)} {rng.choice(NAMES)} {rng.choice(['SRL', 'S.R.L.', 'SA', 'Cooperativa'])}"
        company = GoldCompany(
            tenant_id=tenant.id,
            denumire=name if n > 50 else f"{name} {n}",
            cui=cui_with_check_digit(14_000_000 + n * 37),
            judet=county,
            localitate=rng.choice(towns),
            is_agricultural=True,
            sector="agricol",
            email_principal=f"office{n}@ferma{n}.ro",
            source="demo",
        )
        session.add(company)
        await session.flush()
        first, last = rng.choice(FIRST), rng.choice(LAST)
        has_mobile = rng.random() < 0.85
        mobile = f"+407{rng.choice([2, 3, 4, 5])}{rng.randrange(10**7):07d}" if has_mobile else None
        contact = GoldContact(
            tenant_id=tenant.id,
            company_id=company.id,
            prenume=first,
            nume=last,
            full_name=f"{first} {last}",
            email=company.email_principal,
            phone=mobile,
            whatsapp_number=mobile,
            is_primary=True,
        )
        session.add(contact)
        await session.flush()
        session.add(
            GoldLeadJourney(
                tenant_id=tenant.id,
                lead_id=company.id,
                primary_contact_id=contact.id,
                mobile_e164=mobile,
                email=company.email_principal,
                current_state=LeadState.COLD,
                next_action_at=now + timedelta(seconds=rng.randrange(0, 20)),
            )
        )
        created += 1
    return created


async def admin_token(session: AsyncSession, tenant: Tenant) -> str:
    _row, raw = await auth.create_token(session, tenant_id=tenant.id, role=Role.ADMIN, name="demo")
    return raw


async def ensure_email_campaign(session: AsyncSession, tenant: Tenant) -> None:
    """The default cold-email campaign at the sandbox Instantly, for leads without WhatsApp."""
    from cerniq.email import service as email_service

    await email_service.ensure_default_campaign(session, system_principal(tenant.id, "demo"))
