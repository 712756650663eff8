"""Answer drafts for analysed replies: short, polite, template-based (offline).

A draft is what the AI answer route sends (when the tenant enables auto-replies) or what a
reviewer sees pre-filled. The LLM adapter in :mod:`cerniq.providers.llm` implements the same
:class:`ResponseDrafter` Protocol and falls back to these templates.

No draft is ever produced for an opt-out: nothing more may be sent to a lead that opted out.
"""

from __future__ import annotations

import re
from typing import Final, Literal, Protocol, runtime_checkable

from cerniq.replies.analyzer import Analysis, Intent

__all__ = [
    "DraftLanguage",
    "NoDraftForOptOutError",
    "ResponseDrafter",
    "TemplateDrafter",
    "draft_reply",
]

DraftLanguage = Literal["ro", "en"]

_MAX_NAME = 60
_CONTROL = re.compile(r"[\x00-\x1f\x7f<>{}]+")


class NoDraftForOptOutError(ValueError):
    """Raised when asked to draft an answer to a reply that opted out."""


@runtime_checkable
class ResponseDrafter(Protocol):
    """Writes the answer to an inbound reply."""

    async def draft_reply(
        self,
        text: str,
        analysis: Analysis,
        *,
        company_name: str,
        contact_name: str | None = None,
        language: str = "ro",
    ) -> str:
        """Return the answer text; raise :class:`NoDraftForOptOutError` for an opt-out."""
        ...


# {greeting} already ends with punctuation; {company} is the lead's company name.
_TEMPLATES: Final[dict[DraftLanguage, dict[Intent, str]]] = {
    "ro": {
        Intent.INTERESTED: (
            "{greeting} Vă mulțumim pentru răspuns! Ne-ar face plăcere să vă prezentăm pe scurt ce "
            "putem face pentru {company}. Când vă este comod să vorbim 10 minute la telefon? "
            "Spuneți-ne ziua și ora care vă convin."
        ),
        Intent.QUESTION: (
            "{greeting} Vă mulțumim pentru întrebare. Revenim în cel mai scurt timp cu detaliile "
            "pentru {company}. Dacă preferați, vă putem suna pentru a lămuri totul mai repede."
        ),
        Intent.NEUTRAL: (
            "{greeting} Vă mulțumim pentru mesaj. Dacă doriți, vă trimitem câteva detalii despre "
            "ce oferim fermelor ca {company} sau stabilim o scurtă discuție când vă este comod."
        ),
        Intent.WRONG_PERSON: (
            "{greeting} Vă mulțumim și ne cerem scuze pentru deranj. Ne puteți spune, vă rog, cine "
            "se ocupă de achiziții sau vânzări la {company}?"
        ),
        Intent.COMPLAINT: (
            "{greeting} Ne pare rău pentru neplăcere. Un coleg preia personal situația și vă "
            "contactează cât mai curând."
        ),
        Intent.NOT_INTERESTED: (
            "{greeting} Vă mulțumim pentru răspuns, am notat. Vă dorim o zi bună și un an agricol bun!"
        ),
        Intent.OUT_OF_OFFICE: "{greeting} Vă mulțumim, revenim după ce vă întoarceți.",
    },
    "en": {
        Intent.INTERESTED: (
            "{greeting} Thank you for your reply! We would be glad to show you briefly what we can "
            "do for {company}. When would suit you for a 10-minute call? Just let us know a day "
            "and time."
        ),
        Intent.QUESTION: (
            "{greeting} Thank you for your question. We will come back shortly with the details "
            "for {company}. If you prefer, we can call you to go through it quickly."
        ),
        Intent.NEUTRAL: (
            "{greeting} Thank you for your message. If you like, we can send a few details about "
            "what we offer farms like {company}, or set up a short call at a time that suits you."
        ),
        Intent.WRONG_PERSON: (
            "{greeting} Thank you, and sorry for the trouble. Could you tell us who handles "
            "purchasing or sales at {company}?"
        ),
        Intent.COMPLAINT: (
            "{greeting} We are sorry for the trouble. A colleague is taking this over personally "
            "and will contact you shortly."
        ),
        Intent.NOT_INTERESTED: "{greeting} Thank you for your reply, noted. Have a good day!",
        Intent.OUT_OF_OFFICE: "{greeting} Thank you, we will get back to you when you return.",
    },
}


def _clean_name(value: str | None) -> str:
    """Names come from imported data: drop control characters, braces and angle brackets."""
    if not value:
        return ""
    cleaned = " ".join(_CONTROL.sub(" ", value).split())
    return cleaned[:_MAX_NAME].strip()


def _language(language: str) -> DraftLanguage:
    return "en" if language.lower().startswith("en") else "ro"


def draft_reply(
    analysis: Analysis, *, company_name: str, contact_name: str | None = None, language: str = "ro"
) -> str:
    """A short, polite answer for ``analysis`` in Romanian (default) or English.

    Raises :class:`NoDraftForOptOutError` when the reply is an opt-out.
    """
    if analysis.opt_out or analysis.intent is Intent.OPT_OUT:
        raise NoDraftForOptOutError("no answer is drafted for an opt-out")
    lang = _language(language)
    name = _clean_name(contact_name)
    company = _clean_name(company_name) or ("firma dumneavoastră" if lang == "ro" else "your farm")
    if lang == "ro":
        greeting = f"Bună ziua, {name}!" if name else "Bună ziua!"
    else:
        greeting = f"Hello {name}," if name else "Hello,"
    template = _TEMPLATES[lang].get(analysis.intent, _TEMPLATES[lang][Intent.NEUTRAL])
    return template.format(greeting=greeting, company=company)


class TemplateDrafter:
    """The offline :class:`ResponseDrafter`: :func:`draft_reply` behind the async Protocol."""

    async def draft_reply(
        self,
        text: str,
        analysis: Analysis,
        *,
        company_name: str,
        contact_name: str | None = None,
        language: str = "ro",
    ) -> str:
        """Return the template answer for ``analysis`` (``text`` is not needed offline)."""
        del text
        return draft_reply(analysis, company_name=company_name, contact_name=contact_name, language=language)
