"""Console strings in Romanian (default) and English, and locale-aware dates and numbers.

Dates are shown in Europe/Bucharest time (``settings.timezone``): ``26.11.2026 19:05`` in
Romanian, ``2026-11-26 19:05`` in English. Numbers use ``1.234,5`` (ro) or ``1,234.5`` (en).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cerniq.config import get_settings

STRINGS: dict[str, dict[str, str]] = {
    "title": {"ro": "Consola operator", "en": "Operator console"},
    "sign_in": {"ro": "Autentificare", "en": "Sign in"},
    "sign_out": {"ro": "Ieșire", "en": "Sign out"},
    "email": {"ro": "E-mail", "en": "Email"},
    "password": {"ro": "Parolă", "en": "Password"},
    "or_token": {"ro": "sau token API", "en": "or API token"},
    "api_token": {"ro": "Token API", "en": "API token"},
    "tenant": {"ro": "Organizație", "en": "Tenant"},
    "bad_credentials": {"ro": "Date de autentificare greșite.", "en": "Wrong credentials."},
    "dashboard": {"ro": "Panou", "en": "Dashboard"},
    "leads": {"ro": "Lead-uri", "en": "Leads"},
    "reviews": {"ro": "Revizuiri", "en": "Reviews"},
    "phones": {"ro": "Telefoane", "en": "Phones"},
    "language": {"ro": "Limba", "en": "Language"},
    "contacted_today": {"ro": "Contactați azi", "en": "Contacted today"},
    "replies": {"ro": "Răspunsuri", "en": "Replies"},
    "reply_rate": {"ro": "Rată de răspuns", "en": "Reply rate"},
    "positive_per_contacted": {
        "ro": "Răspunsuri pozitive / contactați",
        "en": "Positive replies per contacted",
    },
    "pending_reviews": {"ro": "Revizuiri în așteptare", "en": "Pending reviews"},
    "too_many_reviews": {"ro": "Peste 10 revizuiri în așteptare", "en": "More than 10 pending reviews"},
    "quota_grid": {"ro": "Cote telefoane", "en": "Phone quotas"},
    "by_channel": {"ro": "Mesaje pe canal (azi)", "en": "Messages by channel (today)"},
    "funnel": {"ro": "Pâlnie", "en": "Funnel"},
    "activity": {"ro": "Activitate live", "en": "Live activity"},
    "no_phones": {"ro": "Niciun telefon configurat.", "en": "No phones configured."},
    "emergency_stop": {"ro": "Oprire de urgență", "en": "Emergency stop"},
    "emergency_active": {"ro": "OPRIRE DE URGENȚĂ ACTIVĂ", "en": "EMERGENCY STOP ACTIVE"},
    "resume_all": {"ro": "Reia trimiterile", "en": "Resume outreach"},
    "reason": {"ro": "Motiv", "en": "Reason"},
    "confirm_stop": {
        "ro": "Confirm că opresc toate trimiterile",
        "en": "I confirm stopping all outreach",
    },
    "stop_now": {"ro": "Oprește tot", "en": "Stop everything"},
    "status": {"ro": "Stare", "en": "Status"},
    "quota": {"ro": "Cotă", "en": "Quota"},
    "leads_assigned": {"ro": "Lead-uri alocate", "en": "Leads assigned"},
    "messages_today": {"ro": "Mesaje azi", "en": "Messages today"},
    "last_activity": {"ro": "Ultima activitate", "en": "Last activity"},
    "pause": {"ro": "Pauză", "en": "Pause"},
    "resume": {"ro": "Reia", "en": "Resume"},
    "recheck": {"ro": "Reverifică", "en": "Re-check"},
    "reassign_leads": {"ro": "Realocă lead-urile", "en": "Reassign leads"},
    "approve": {"ro": "Aprobă și trimite", "en": "Approve and send"},
    "edit_send": {"ro": "Editează și trimite", "en": "Edit and send"},
    "reject": {"ro": "Respinge", "en": "Reject"},
    "ignore": {"ro": "Ignoră", "en": "Ignore"},
    "take_over": {"ro": "Preia controlul", "en": "Take over"},
    "release": {"ro": "Eliberează", "en": "Release"},
    "escalate": {"ro": "Escaladează", "en": "Escalate"},
    "the_reply": {"ro": "Răspunsul primit", "en": "The reply"},
    "ai_analysis": {"ro": "Analiză AI", "en": "AI analysis"},
    "draft": {"ro": "Ciornă", "en": "Draft"},
    "sla": {"ro": "SLA", "en": "SLA"},
    "sla_breached": {"ro": "SLA depășit", "en": "SLA breached"},
    "minutes_left": {"ro": "min rămase", "en": "min left"},
    "no_reviews": {"ro": "Nicio revizuire deschisă.", "en": "No open reviews."},
    "company": {"ro": "Companie", "en": "Company"},
    "conversation": {"ro": "Conversație", "en": "Conversation"},
    "no_messages": {"ro": "Niciun mesaj încă.", "en": "No messages yet."},
    "state": {"ro": "Stadiu", "en": "State"},
    "phone": {"ro": "Telefon", "en": "Phone"},
    "human_controlled": {"ro": "Controlat de un om", "en": "Human controlled"},
    "send_message": {"ro": "Trimite mesaj", "en": "Send message"},
    "message": {"ro": "Mesaj", "en": "Message"},
    "channel": {"ro": "Canal", "en": "Channel"},
    "send": {"ro": "Trimite", "en": "Send"},
    "search": {"ro": "Caută", "en": "Search"},
    "filter": {"ro": "Filtrează", "en": "Filter"},
    "all": {"ro": "Toate", "en": "All"},
    "previous": {"ro": "Înapoi", "en": "Previous"},
    "next": {"ro": "Înainte", "en": "Next"},
    "page": {"ro": "Pagina", "en": "Page"},
    "of": {"ro": "din", "en": "of"},
    "more_than": {"ro": "peste", "en": "more than"},
    "as_of": {"ro": "numărat la", "en": "counted at"},
    "no_leads": {"ro": "Niciun lead.", "en": "No leads."},
    "last_contact": {"ro": "Ultimul contact", "en": "Last contact"},
    "next_action": {"ro": "Următoarea acțiune", "en": "Next action"},
    "county": {"ro": "Județ", "en": "County"},
    "done": {"ro": "Gata.", "en": "Done."},
    "forbidden": {"ro": "Nu aveți dreptul la această acțiune.", "en": "You may not do this."},
    "template": {"ro": "Șablon", "en": "Template"},
    "ai": {"ro": "AI", "en": "AI"},
    "skip_to_content": {"ro": "Sari la conținut", "en": "Skip to content"},
    "sequences": {"ro": "Secvențe", "en": "Sequences"},
    "templates": {"ro": "Șabloane", "en": "Templates"},
    "campaigns": {"ro": "Campanii e-mail", "en": "Email campaigns"},
    "queues": {"ro": "Cozi", "en": "Queues"},
    "alerts": {"ro": "Alerte", "en": "Alerts"},
    "analytics": {"ro": "Analize", "en": "Analytics"},
    "audit": {"ro": "Jurnal de audit", "en": "Audit log"},
    "users": {"ro": "Utilizatori", "en": "Users"},
    # Shared by several pages (column headings, form labels, buttons).
    "actions": {"ro": "Acțiuni", "en": "Actions"},
    "when": {"ro": "Când", "en": "When"},
    "warnings": {"ro": "Avertismente", "en": "Warnings"},
    "enroll": {"ro": "Înscrie", "en": "Enroll"},
    "name": {"ro": "Nume", "en": "Name"},
}


def add_strings(strings: dict[str, dict[str, str]]) -> None:
    """Register a page module's strings (``key -> {"ro": ..., "en": ...}``); a key may be
    registered once only, so two pages cannot silently overwrite each other's text."""
    for key, entry in strings.items():
        if key in STRINGS and STRINGS[key] != entry:
            raise ValueError(f"console string {key!r} is already registered with another text")
        if "ro" not in entry:
            raise ValueError(f"console string {key!r} has no Romanian text")
        STRINGS[key] = entry


def translate(lang: str, key: str) -> str:
    entry = STRINGS.get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry["ro"]


def _as_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def format_datetime(value: Any, lang: str) -> str:
    moment = _as_datetime(value)
    if moment is None:
        return "—"
    local = moment.astimezone(get_settings().tz)
    return local.strftime("%d.%m.%Y %H:%M" if lang == "ro" else "%Y-%m-%d %H:%M")


def format_number(value: Any, lang: str, digits: int = 0) -> str:
    if value is None:
        return "—"
    text = f"{float(value):,.{digits}f}"
    if lang == "ro":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def format_percent(value: Any, lang: str) -> str:
    if value is None:
        return "—"
    return format_number(float(value) * 100, lang, 1) + " %"
