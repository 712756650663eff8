"""Realistic Romanian replies of farm and agribusiness contacts, by kind, for the fake vendors.

Each kind holds replies with and without diacritics (many people type without them on a phone).
The kinds match what reply triage must tell apart: interest, questions, refusals, opt-outs,
out-of-office notes and complaints.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

__all__ = ["REPLIES", "REPLY_KINDS", "pick_reply", "pick_reply_kind"]

REPLIES: dict[str, tuple[str, ...]] = {
    "positive": (
        "Bună ziua! Da, suntem interesați. Puteți să ne trimiteți o ofertă?",
        "Buna ziua, suna interesant. Cand putem discuta la telefon?",
        "Da, ne intereseaza. Trimiteti-mi va rog mai multe detalii pe email.",
        "Mulțumesc pentru mesaj! Aș vrea să aflu mai multe, sunați-mă mâine după ora 10.",
        "Salut, da, avem nevoie exact de așa ceva pentru sezonul de primăvară.",
        "Ok, sunt interesat. Ce pret aveti pentru 50 de hectare?",
        "Buna, putem stabili o intalnire saptamana viitoare la ferma?",
        "Interesant. Trimiteți oferta și o analizăm împreună cu asociatul meu.",
    ),
    "question": (
        "Ce anume oferiți mai exact?",
        "De unde aveți numărul meu de telefon?",
        "Cat costa si care sunt conditiile de plata?",
        "Lucrați și cu ferme mai mici de 100 de hectare?",
        "Aveti reprezentant in judetul Timis?",
        "Livrarea este inclusă în preț?",
        "Care e diferenta fata de ce avem acum de la furnizorul actual?",
        "Bună ziua, cine sunteți? Nu cunosc firma dumneavoastră.",
    ),
    "negative": (
        "Nu suntem interesați, mulțumim.",
        "Nu multumesc, avem deja furnizor.",
        "Momentan nu avem nevoie. Poate la anul.",
        "Nu ne intereseaza.",
        "Mulțumesc, dar nu este pentru noi.",
        "Am semnat deja contract pe anul acesta, nu e cazul.",
        "Nu avem buget acum pentru așa ceva.",
        "Nu, mersi.",
    ),
    "opt_out": (
        "STOP",
        "Stop",
        "Vă rog nu mai scrieți.",
        "Va rog nu mai scrieti pe acest numar.",
        "Dezabonare",
        "Nu mai trimiteți mesaje, mulțumesc.",
        "Stergeti-mi numarul din baza de date.",
        "Nu doresc să mai fiu contactat.",
    ),
    "out_of_office": (
        "Sunt în concediu până pe 15. Vă răspund când revin.",
        "Buna, sunt plecat din tara pana luni. Revin cu un raspuns.",
        "Momentan sunt pe câmp, vă scriu diseară.",
        "Sunt la recoltat toata saptamana, revin dupa.",
        "Mesaj automat: nu sunt disponibil. Pentru urgențe sunați la birou.",
        "Sunt in concediu medical, va rog contactati-l pe colegul meu.",
        "Revin luni, acum sunt la un târg agricol.",
        "Nu sunt la birou pana pe 3 ale lunii.",
    ),
    "complaint": (
        "De ce îmi tot trimiteți mesaje? Nu v-am dat acordul!",
        "Este a treia oară când primesc mesaj de la voi. Vă reclam la ANSPDCP.",
        "Cine v-a dat numarul meu? Este o incalcare a GDPR.",
        "Opriți spamul sau depun plângere la ANPC!",
        "Mesajele astea sunt deranjante, nu am cerut nimic.",
        "Va rog sa-mi spuneti de unde aveti datele mele personale, altfel merg la avocat.",
        "Inacceptabil să fiu contactat pe WhatsApp-ul personal.",
        "Daca mai primesc un mesaj, fac plangere oficiala.",
    ),
}

REPLY_KINDS: tuple[str, ...] = tuple(REPLIES)


def pick_reply_kind(rng: random.Random, mix: Mapping[str, float]) -> str:
    """Draw a reply kind by the weights of ``mix`` (unknown kinds and weights <= 0 are ignored)."""
    kinds = [kind for kind in REPLY_KINDS if mix.get(kind, 0.0) > 0]
    if not kinds:
        return "positive"
    return rng.choices(kinds, weights=[mix[kind] for kind in kinds])[0]


def pick_reply(rng: random.Random, kind: str) -> str:
    """Draw one reply text of ``kind`` (``KeyError`` for an unknown kind)."""
    return rng.choice(REPLIES[kind])
