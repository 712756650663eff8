"""The built-in offline reply analyzer: weighted Romanian and English phrase lexicons.

Deterministic, no network, a few thousand replies per second. It is the default analyzer when
no LLM is configured, the fallback when the LLM fails, and the safety floor under the LLM
(opt-outs and legal threats it finds are never dropped).

How a reply is read:

1. Quoted history is cut (``> …`` lines, ``On … wrote:`` / ``În … a scris:`` blocks, a copy of
   our own last message), so the "Reply STOP to unsubscribe" line of our own mail quoted back
   to us is not an opt-out.
2. The text is lower-cased, diacritics are removed (ă â î ș ş ț ţ -> a a i s s t t), apostrophes
   are dropped (``don't`` -> ``dont``) and everything else that is not a letter or digit splits
   words (``ștergeți-mă`` -> ``stergeti ma``).
3. Each word is put in canonical form: SMS abbreviations are expanded (``pls``, ``ms``,
   ``n-am``, ``pt``), repeated letters are squeezed when that yields a lexicon word
   (``multumesccc``, ``stooop``), and a long word one edit away from a key lexicon word is
   corrected (``dezabonre``, ``intresat``, ``unsubscibe``).
4. Phrase patterns are matched on the word sequence. A match that lies inside a longer match is
   dropped (``nu sunt interesat`` hides ``interesat``; ``cât costă`` hides ``cât``), except that
   opt-out, GDPR-scope, legal and complaint matches are only hidden by explicit exceptions
   (``non-stop``, ``nu e spam``, ``scuze de deranj``) or by an opt-out phrase that absorbs them
   (``nu mă mai deranjați`` is an opt-out, not a complaint).
5. The intent is chosen by precedence: OPT_OUT > COMPLAINT (legal threat or complaint) >
   OUT_OF_OFFICE > WRONG_PERSON > NOT_INTERESTED > INTERESTED > QUESTION > NEUTRAL, with these
   documented adjustments:

   * "no longer works here" / "deceased" / "retired" beat an auto-reply (a departed contact's
     auto-reply must not just postpone the follow-up);
   * a soft redirect ("talk to my son, he handles it") loses to explicit interest;
   * "later / not now / maybe in autumn" turns INTERESTED, NOT_INTERESTED and a human "I'm in
     the field" into NEUTRAL: a person left the door open, a human decides when to come back;
   * a price or offer question ("cât costă?", "how much", "ce preț") is a buying signal and is
     INTERESTED with a score >= 50, not QUESTION; other questions are QUESTION (0..45);
   * weak interest words alone ("trimiteți", "ofertă", "send") next to a negation or a
     cessation verb ("încetați să-mi mai trimiteți…") give NEUTRAL, never an automatic answer;
   * a suspected prompt injection ("ignore previous instructions…") never yields INTERESTED and
     its score is capped below the auto-answer threshold.

6. "stop" counts as an opt-out only as a whole word, and only when the message is short (up to
   4 words), starts or ends with it, or ties it to messaging ("stop mesaje", "please stop",
   "stop texting", "am zis stop"); "non-stop" and "am pus stop la investiții" are not opt-outs.
7. The score starts from the intent's base, adds the weights of the matched phrases and emoji
   (👍🙂 up, 😡👎 down) and is clamped to the intent's band (INTERESTED 50..100, NOT_INTERESTED
   and OPT_OUT below 0, …), so routing by score and by intent agree.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from cerniq.replies.analyzer import Analysis, AnalysisContext, Intent, Language, OptOutScope

__all__ = ["OfflineAnalyzer", "analyze_text", "normalize"]


class Cat(StrEnum):
    """Lexicon categories (finer than intents)."""

    OPT_OUT = "opt-out phrase"
    OPT_OUT_CALL = "opt-out of calls"
    OPT_OUT_ALL = "data-erasure request"
    SCOPE_ALL = "legal/GDPR wording"
    LEGAL = "legal threat"
    COMPLAINT = "complaint"
    AUTO_REPLY = "auto-reply"
    ABSENCE = "away"
    WRONG_STRONG = "contact gone"
    WRONG = "wrong person"
    REDIRECT = "redirect to another contact"
    NOT_INTERESTED = "not interested"
    INTERESTED = "interest"
    BUYING = "buying question"
    QUESTION = "question"
    DEFER = "not now / later"
    POSITIVE = "positive"
    NEGATIVE = "negative"
    INJECTION = "possible prompt injection (ignored)"
    EXCEPTION = "exception"


# Safety categories: a longer match hides one of them only if it is an EXCEPTION ("non-stop",
# "nu e spam") or an absorbing rule ("nu mă mai deranjați" is an opt-out, not a complaint).
_PROTECTED: Final = frozenset(
    {Cat.OPT_OUT, Cat.OPT_OUT_CALL, Cat.OPT_OUT_ALL, Cat.SCOPE_ALL, Cat.LEGAL, Cat.COMPLAINT}
)
_ABSORBING: Final = frozenset({"nu ma|ne? mai deranjati|deranja", "nu ma|ne deranjati"})
# Interest phrases too weak to stand next to a negation ("încetați să-mi mai trimiteți").
_WEAK_INTEREST: Final = frozenset(
    {
        "trimite*|send",
        "oferta|oferte|offer|proposal",
        "contract|contractul",
        "catalog*|brosura|prezentare|prezentarea|demo|brochure",
    }
)
_NEGATION_WORDS: Final = frozenset({"nu", "not", "no", "never", "nici", "niciodata", "fara", "stop"})
_NEGATION_PREFIXES: Final = ("inceta", "renunt", "opri", "ajunge", "destul", "cease", "quit")

# Pattern language, over canonical words separated by spaces:
#   word        the word          pre*     any word starting with "pre"
#   a|b|c*      one of them       x?       optional element
#   _           any one word      ~ / ~3   0..2 / 0..3 arbitrary words
#   ^ / $       start / end of the (quote-stripped) message
_RULES: Final[tuple[tuple[Cat, int, str], ...]] = (
    # --- opt-out -----------------------------------------------------------------------------
    (Cat.OPT_OUT, -5, "dezabonare|dezabonez|dezabonati|dezabonat|dezaboneaza|desabonare|dezabonarea"),
    (Cat.OPT_OUT, -5, "dezabona|dezabonati ma|mi"),
    (Cat.OPT_OUT, -5, "unsubscribe|unsubscribed|optout"),
    (Cat.OPT_OUT, -5, "opt out"),
    (Cat.OPT_OUT, -5, "nu ma|ne|mi|imi? mai scrieti|scrie|trimiteti|trimite|trimiti"),
    (Cat.OPT_OUT, -5, "nu ma|ne|mi|imi? mai contactati|contacta|cautati"),
    (Cat.OPT_OUT, -5, "nu ma|ne? mai deranjati|deranja"),
    (Cat.OPT_OUT, -5, "nu ma|ne deranjati"),
    (Cat.OPT_OUT, -5, "nu mai vreau|doresc|vrem|dorim ~2 mesaj*|sms*|nimic|oferte|whatsapp|emailuri"),
    (Cat.OPT_OUT, -5, "nu vreau|doresc|vrem|dorim ~2 mesaj*|sms*|emailuri"),
    (Cat.OPT_OUT, -5, "nu vreau|doresc|vrem|dorim sa mai primesc|primim|fiu"),
    (Cat.OPT_OUT, -5, "sterge*|scoate*|elimina* ma|mi|ne|numarul ~2 din|de lista*|pe"),
    (Cat.OPT_OUT, -5, "sterge*|scoate*|elimina* ma|ne $"),
    (Cat.OPT_OUT, -5, "da|dati ma afara"),
    (Cat.OPT_OUT, -5, "lasati|lasa ma|ne in pace"),
    (Cat.OPT_OUT, -5, "opriti|opreste|stopati|stopeaza ~2 mesaj*|spam*|trimiterea|sms*|asta|astea"),
    (Cat.OPT_OUT, -5, "^ opriti|stopati $"),
    (Cat.OPT_OUT, -5, "daca mai primesc|primim|primiti|scrieti|trimiteti|sunati|contactati"),
    (Cat.OPT_OUT, -5, "^ stop"),
    (Cat.OPT_OUT, -5, "stop $"),
    (Cat.OPT_OUT, -5, "stop mesaj*|sms*|spam*|whatsapp|mail*|email*|contact*|trimiteri|reclam*"),
    (Cat.OPT_OUT, -5, "zis|spus|scris stop"),
    (Cat.OPT_OUT, -5, "va rog stop"),
    (Cat.OPT_OUT, -5, "please stop"),
    (Cat.OPT_OUT, -5, "stop va rog"),
    (Cat.OPT_OUT, -5, "stop please"),
    (Cat.OPT_OUT, -5, "stop messaging|texting|contacting|sending|calling|emailing|writing|spamming"),
    (Cat.OPT_OUT, -5, "remove|delete|take|erase me|my ~2 from|off|number|email|contact|details"),
    (Cat.OPT_OUT, -5, "do not contact|message|text|email|write|spam|bother me|us"),
    (Cat.OPT_OUT, -5, "do not|never contact|message|text|email|write|call ~2 again|anymore"),
    (Cat.OPT_OUT, -5, "leave me alone"),
    (Cat.OPT_OUT, -5, "if you keep|continue|contact|message|text ~2 messaging|contacting|texting|again"),
    (Cat.OPT_OUT, -5, "if i get|receive another|one|any more? message*"),
    (Cat.OPT_OUT, -5, "no more messages|texts|emails"),
    (Cat.OPT_OUT, -5, "inceta*|renunta*|opri*|stopa* ~4 scrie*|trimite*|trimis*|mesaj*|contact*|suna*|sunat"),
    (Cat.OPT_OUT, -5, "gata|ajunge|destul cu ~2 mesaj*|sms*|spam*|oferte|reclame|telefoane*"),
    (Cat.OPT_OUT, -5, "nu mai insista*|bateti|bombarda*|sacai*"),
    (Cat.OPT_OUT, -5, "nu mai vreau|doresc|vrem|dorim ~3 contactat*|sunat*|deranjat*|primesc|primim"),
    (Cat.OPT_OUT, -5, "nu vreau|doresc|vrem|dorim ~3 contactat*|sunat*|deranjat*|oferte|reclame"),
    (Cat.OPT_OUT, -5, "nu mai trimiteti|scrieti|trimite nimic|niciun|nicio"),
    (Cat.OPT_OUT, -5, "v|am am? zis|spus|rugat ~5 nu|stop"),
    (Cat.OPT_OUT, -5, "sterge*|scoate*|elimina*|radia* ~2 din|de lista*|listele|evidenta"),
    (Cat.OPT_OUT, -5, "sterge*|scoate*|elimina* ~2 numarul|nr|telefonul|emailul|adresa"),
    (
        Cat.OPT_OUT,
        -5,
        "do not|never contact|message|text|email|write|call|spam ~2 me|us|this|my|again|anymore",
    ),
    (Cat.OPT_OUT, -5, "do not|never wish|want ~2 receive|contacted|messages|contact"),
    (Cat.OPT_OUT, -5, "no further messages|contact|communication|emails|texts"),
    (Cat.OPT_OUT, -5, "stop|cease|quit sending|messaging|texting|contacting|emailing"),
    (Cat.OPT_OUT, -5, "remove|take|delete ~3 from|off your|the|all ~2 list|lists|database|records"),
    (Cat.OPT_OUT, -5, "lose my number"),
    (Cat.OPT_OUT, -5, "i told you|already ~4 not|stop"),
    (Cat.OPT_OUT_CALL, -5, "nu ma|mi|ne? mai sunati|suna"),
    (Cat.OPT_OUT_CALL, -5, "do not call"),
    (Cat.OPT_OUT_ALL, -5, "sterge*|stergeti ~3 date|datele|datelor"),
    (Cat.OPT_OUT_ALL, -5, "sterge*|scoate*|elimina* ~3 din baza|bazele"),
    (Cat.OPT_OUT_ALL, -5, "delete|erase|remove ~2 my|our data"),
    (Cat.OPT_OUT_ALL, -5, "remove|delete ~3 from ~2 database"),
    (Cat.OPT_OUT_ALL, -5, "dreptul la stergere|uitare"),
    (Cat.OPT_OUT_ALL, -5, "right to erasure"),
    (Cat.OPT_OUT_ALL, -5, "right to be forgotten"),
    (Cat.SCOPE_ALL, 0, "gdpr"),
    (Cat.SCOPE_ALL, 0, "anspdcp"),
    (Cat.SCOPE_ALL, 0, "all your lists"),
    (Cat.SCOPE_ALL, 0, "toate listele"),
    (Cat.SCOPE_ALL, 0, "date|datele personale"),
    (Cat.SCOPE_ALL, 0, "date|datele cu caracter personal"),
    (Cat.SCOPE_ALL, 0, "datele mele|noastre"),
    (Cat.SCOPE_ALL, 0, "baza|bazele de date"),
    (Cat.SCOPE_ALL, 0, "personal data"),
    (Cat.SCOPE_ALL, 0, "data protection"),
    (Cat.SCOPE_ALL, 0, "my data"),
    (Cat.SCOPE_ALL, 0, "pe niciun canal"),
    (Cat.SCOPE_ALL, 0, "pe nici un canal"),
    (Cat.SCOPE_ALL, 0, "in niciun fel"),
    (Cat.SCOPE_ALL, 0, "in nici un fel"),
    (Cat.SCOPE_ALL, 0, "any channel"),
    # --- legal threat ------------------------------------------------------------------------
    (Cat.LEGAL, -15, "anpc|anspdcp|dnsc|ancom"),
    (Cat.LEGAL, -15, "avocat|avocatul|avocatului|avocata|avocatii|avocati|avocatei"),
    (Cat.LEGAL, -15, "instanta|tribunal|tribunalul|judecatorie"),
    (Cat.LEGAL, -15, "judecata"),
    (Cat.LEGAL, -15, "plangere|plangerea|plangeri"),
    (Cat.LEGAL, -15, "plang|reclam|sesizez|denunt|anunt la|pe? politia|politie|anpc|autoritati*"),
    (Cat.LEGAL, -15, "sesizare|sesizarea|sesizez"),
    (Cat.LEGAL, -15, "politia|politie|politiei"),
    (Cat.LEGAL, -15, "protectia|protectiei consumatorului|datelor"),
    (Cat.LEGAL, -15, "ilegal|ilegala|illegal|ilegalitate|unlawful"),
    (Cat.LEGAL, -15, "executor|penal|penala"),
    (Cat.LEGAL, -15, "lawyer|lawyers|attorney|attorneys|solicitor"),
    (Cat.LEGAL, -15, "sue|suing|sued|lawsuit|court"),
    (Cat.LEGAL, -15, "legal action|steps|proceedings"),
    (Cat.LEGAL, -15, "report|reporting you|this ~2 to|authorit*|police|regulator"),
    (Cat.LEGAL, -15, "police"),
    (Cat.LEGAL, -15, "file|lodge|filed|lodged a? formal? complaint"),
    (Cat.LEGAL, -15, "data protection authority|commissioner|regulator"),
    # --- complaint ---------------------------------------------------------------------------
    (Cat.COMPLAINT, -10, "reclamatie|reclamatia|reclamatii|reclamatiile"),
    (Cat.COMPLAINT, -10, "nemultumit|nemultumita|nemultumiti|nemultumire|nemultumiri"),
    (Cat.COMPLAINT, -10, "nu sunt|suntem|s deloc? multumit|multumita|multumiti"),
    (Cat.COMPLAINT, -20, "bataie|batai de joc"),
    (Cat.COMPLAINT, -10, "spam|spamul|spammer*|spama*|spamuri|spamati|spammy|spamming"),
    (Cat.COMPLAINT, -10, "deranj*"),
    (Cat.COMPLAINT, -15, "abuz|abuziv*|abuzul"),
    (Cat.COMPLAINT, -15, "hartui*|harass*"),
    (Cat.COMPLAINT, -15, "inacceptabil*|inadmisibil*|unacceptable|outrageous"),
    (Cat.COMPLAINT, -20, "escroc*|tepar*|teapa|tepe|hoti|scam*|fraud*"),
    (Cat.COMPLAINT, -15, "mizerii|mizeria|mizeriile|mizerie|tupeu|obraznic*|nesimt*|penibil*"),
    (Cat.COMPLAINT, -10, "neserios*|neprofesionist*|unprofessional"),
    (Cat.COMPLAINT, -10, "a 2|3|4|5|6|7|2a|3a|4a|5a|6a|doua|treia|patra|cincea|zecea oara"),
    (Cat.COMPLAINT, -10, "de 2|3|4|5|6|10|atatea|cate|zeci ori"),
    (Cat.COMPLAINT, -10, "nimeni nu raspunde"),
    (Cat.COMPLAINT, -10, "nu raspunde nimeni"),
    (Cat.COMPLAINT, -10, "nu mi|ne ati platit|livrat|returnat"),
    (Cat.COMPLAINT, -10, "experienta|experiente proasta|proaste|urata"),
    (Cat.COMPLAINT, -10, "marfa|seminte|semintele ~2 degradata|proasta|proaste|stricata|alterata"),
    (Cat.COMPLAINT, -10, "pacalit|inselat|mintit"),
    (Cat.COMPLAINT, -10, "nu e|este normal"),
    (Cat.COMPLAINT, -10, "ati innebunit"),
    (Cat.COMPLAINT, -10, "complaint|complain|complaining"),
    (Cat.COMPLAINT, -10, "not happy"),
    (Cat.COMPLAINT, -10, "unhappy|disappointed|annoying|annoyed"),
    (Cat.COMPLAINT, -10, "fed up"),
    (Cat.COMPLAINT, -10, "third|fourth|fifth|tenth message|time"),
    (Cat.COMPLAINT, -10, "who authorized|authorised"),
    (Cat.COMPLAINT, -10, "nobody answered|answers|replied"),
    (Cat.COMPLAINT, -10, "no one answered|answers|replied"),
    (Cat.COMPLAINT, -10, "charged us|me twice"),
    (Cat.COMPLAINT, -10, "dezamagit*|dezamagire|indignat*|revoltat*|scandalos|jenant"),
    (Cat.COMPLAINT, -10, "insistenti|insistent|insistati|insistenta|enervant*|agasant*|sacaitor*|pisalog*"),
    (Cat.COMPLAINT, -10, "de ce insistati|insista"),
    (Cat.COMPLAINT, -10, "intarziere|intarziat*|intarzie*"),
    (Cat.COMPLAINT, -10, "nu a anuntat|anuntat nimeni|nu ne a anuntat"),
    (Cat.COMPLAINT, -10, "pathetic|terrible|awful|horrible|worst|rude|disgusting|appalling|insistent|pushy"),
    (Cat.EXCEPTION, 0, "nu e|este spam"),
    (Cat.EXCEPTION, 0, "not spam"),
    (Cat.EXCEPTION, 0, "nu ma|ne|va deranjeaza|deranjez"),
    (Cat.EXCEPTION, 0, "scuze|scuzati|scuzam ma? de|pentru? deranj*"),
    (Cat.EXCEPTION, 0, "non stop"),
    (Cat.EXCEPTION, 0, "fara|nicio reclamatie|reclamatii"),
    (Cat.EXCEPTION, 0, "no complaints"),
    (Cat.EXCEPTION, 0, "opt out false|0"),
    (Cat.EXCEPTION, 0, "opt out is false"),
    (Cat.EXCEPTION, 0, "no problem"),
    # --- auto-reply / away -------------------------------------------------------------------
    (Cat.AUTO_REPLY, 0, "raspuns|mesaj|reply automat|automata|generat"),
    (Cat.AUTO_REPLY, 0, "generat automat"),
    (Cat.AUTO_REPLY, 0, "concediu|concediul|concedii"),
    (Cat.AUTO_REPLY, 0, "autoreply|autoresponder"),
    (Cat.AUTO_REPLY, 0, "auto reply|raspuns"),
    (Cat.AUTO_REPLY, 0, "automatic|automated reply|response|message|email"),
    (Cat.AUTO_REPLY, 0, "out of the? office"),
    (Cat.AUTO_REPLY, 0, "ooo"),
    (Cat.AUTO_REPLY, 0, "on annual|parental|maternity|sick|medical? leave"),
    (Cat.AUTO_REPLY, 0, "vacation|holiday|holidays"),
    (Cat.AUTO_REPLY, 0, "away until|from"),
    (Cat.AUTO_REPLY, 0, "will return"),
    (Cat.AUTO_REPLY, 0, "will be back"),
    (Cat.AUTO_REPLY, 0, "back|return|returning on"),
    (Cat.AUTO_REPLY, 0, "office is? closed"),
    (Cat.AUTO_REPLY, 0, "limited access|connectivity"),
    (Cat.AUTO_REPLY, 0, "do not reply"),
    (Cat.AUTO_REPLY, 0, "thanks for contacting"),
    (Cat.AUTO_REPLY, 0, "thank you for contacting"),
    (Cat.AUTO_REPLY, 0, "we will|well get back to you"),
    (Cat.AUTO_REPLY, 0, "will reply|respond|answer when|later|as|shortly|asap"),
    (Cat.AUTO_REPLY, 0, "nu raspundeti la acest mesaj"),
    (Cat.AUTO_REPLY, 0, "vom raspunde|reveni|contacta"),
    (Cat.AUTO_REPLY, 0, "va raspundem|contactam"),
    (Cat.AUTO_REPLY, 0, "revenim|raspundem ~3 scurt|curand|imediat"),
    (Cat.AUTO_REPLY, 0, "mesajul ~2 a fost primit|inregistrat"),
    (Cat.AUTO_REPLY, 0, "un coleg va va contacta|raspunde"),
    (
        Cat.AUTO_REPLY,
        0,
        "coleg|colega|reprezentant|consultant|operator|echipa ~2 va|iti va raspunde|contacta|reveni",
    ),
    (Cat.AUTO_REPLY, 0, "va multumim ca ne ati scris|contactat"),
    (Cat.AUTO_REPLY, 0, "currently unavailable|away"),
    (Cat.AUTO_REPLY, 0, "when i return|am back"),
    (Cat.AUTO_REPLY, 0, "bun venit la"),
    (Cat.AUTO_REPLY, 0, "programul nostru"),
    (Cat.AUTO_REPLY, 0, "biroul ~2 inchis"),
    (Cat.AUTO_REPLY, 0, "nu raspund ~3 pana|inainte"),
    (Cat.ABSENCE, 0, "sunt|suntem acum|momentan? pe|in|la camp|teren|volan|drum|targ*|sedinta|spital"),
    (Cat.ABSENCE, 0, "sunt|suntem in delegatie|strainatate|deplasare|concediu"),
    (Cat.ABSENCE, 0, "sunt|suntem|am plecat|plecata|plecati"),
    (Cat.ABSENCE, 0, "plecat|plecata in|din tara|strainatate|delegatie|concediu"),
    (Cat.ABSENCE, 0, "nu sunt|suntem la birou"),
    (Cat.ABSENCE, 0, "nu sunt|suntem disponibil|disponibila|disponibili"),
    (Cat.ABSENCE, 0, "momentan indisponibil|indisponibila"),
    (Cat.ABSENCE, 0, "busy right? now"),
    (Cat.ABSENCE, 0, "travelling|traveling"),
    (Cat.ABSENCE, 0, "in a meeting"),
    (Cat.ABSENCE, 0, "driving"),
    (
        Cat.ABSENCE,
        0,
        "sunt|suntem acum|momentan? la semanat|recoltat|arat|stropit|treierat|erbicidat|lucru|munca",
    ),
    (Cat.ABSENCE, 0, "away on|at business? travel|trip|business"),
    (Cat.ABSENCE, 0, "business trip|travel"),
    (Cat.ABSENCE, 0, "am plecat la"),
    (Cat.ABSENCE, 0, "ma intorc"),
    # --- wrong person ------------------------------------------------------------------------
    (Cat.WRONG_STRONG, 0, "nu mai lucrez|lucreaza|lucram ~2 la|in|aici|acolo|pentru"),
    (Cat.WRONG_STRONG, 0, "nu mai fac|face parte"),
    (Cat.WRONG_STRONG, 0, "a decedat|murit"),
    (Cat.WRONG_STRONG, 0, "decedat|decedata|decedatul"),
    (Cat.WRONG_STRONG, 0, "a plecat din firma|societate|companie"),
    (Cat.WRONG_STRONG, 0, "s a pensionat"),
    (Cat.WRONG_STRONG, 0, "no longer work*|with|employed"),
    (Cat.WRONG_STRONG, 0, "left the company"),
    (Cat.WRONG_STRONG, 0, "retired|deceased"),
    (Cat.WRONG_STRONG, 0, "passed away"),
    (Cat.WRONG_STRONG, 0, "nu mai sunt|este|e angajat* ~2 la|in firma|societate|companie|ferma"),
    (Cat.WRONG_STRONG, 0, "nu mai sunt la|in"),
    (Cat.WRONG_STRONG, 0, "firma|societatea|ferma nu mai exista|functioneaza"),
    (Cat.WRONG, 0, "numar|numarul gresit"),
    (Cat.WRONG, 0, "gresit numarul|persoana"),
    (Cat.WRONG, 0, "ati gresit"),
    (Cat.WRONG, 0, "persoana gresita"),
    (Cat.WRONG, 0, "^ gresit $"),
    (Cat.WRONG, 0, "nu sunt eu"),
    (Cat.WRONG, 0, "nu e|este numarul ~2 firmei|meu|dumnealui|lui"),
    (Cat.WRONG, 0, "nu mai e|este al|a"),
    (Cat.WRONG, 0, "apartine acum? altei|altcuiva"),
    (Cat.WRONG, 0, "nu eu ma ocup"),
    (Cat.WRONG, 0, "nu ma ocup eu"),
    (Cat.WRONG, 0, "nu ma ocup de asta|achizitii|vanzari|acest|aceste|astfel"),
    (Cat.WRONG, 0, "nu am|avem treaba cu"),
    (Cat.WRONG, 0, "eu sunt doar"),
    (Cat.WRONG, 0, "nu sunt administratorul|administrator|patronul|proprietarul|directorul|persoana"),
    (Cat.WRONG, 0, "nu am firma|societate"),
    (Cat.WRONG, 0, "persoana fizica"),
    (Cat.WRONG, 0, "nu cunosc ~2 firma|persoana|numele"),
    (Cat.WRONG, 0, "firma|ferma|societatea a fost vanduta|inchisa|radiata"),
    (Cat.WRONG, 0, "s a inchis"),
    (Cat.WRONG, 0, "nu lucrez in|la|cu"),
    (Cat.WRONG, 0, "wrong number|person|contact|company|guy"),
    (Cat.WRONG, 0, "not the right person|contact"),
    (Cat.WRONG, 0, "personal number"),
    (Cat.WRONG, 0, "ati incurcat"),
    (Cat.WRONG, 0, "incurcat numarul|persoana"),
    (Cat.WRONG, 0, "nicio legatura cu firma|ferma|societatea|voi|asta"),
    (Cat.WRONG, 0, "nu mai exista"),
    (Cat.WRONG, 0, "belongs to someone|somebody else"),
    (Cat.WRONG, 0, "someone|somebody else now"),
    (Cat.WRONG, 0, "runs the farm|business|company"),
    (Cat.REDIRECT, 0, "vorbiti|vorbeste|discutati cu seful|sefa|patronul|directorul|administratorul|biroul"),
    (Cat.REDIRECT, 0, "adresati va|te"),
    (Cat.REDIRECT, 0, "departament*"),
    (Cat.REDIRECT, 0, "se ocupa acum? de"),
    (Cat.REDIRECT, 0, "l|o contactati|sunati pe"),
    (Cat.REDIRECT, 0, "contactati|sunati l|o pe"),
    (Cat.REDIRECT, 0, "scrieti i|le colegului|colegei|sefului"),
    (Cat.REDIRECT, 0, "please? contact ~2 instead"),
    (Cat.REDIRECT, 0, "try our|the purchasing|procurement|sales"),
    # --- not interested ----------------------------------------------------------------------
    (Cat.NOT_INTERESTED, -5, "nu ~2 interes*"),
    (Cat.NOT_INTERESTED, -5, "nu multumesc|multumim|mersi"),
    (Cat.NOT_INTERESTED, -5, "multumesc|multumim|mersi dar nu"),
    (Cat.NOT_INTERESTED, -5, "nu avem|am|aveam nevoie"),
    (Cat.NOT_INTERESTED, -5, "nu ne|imi|mi|ma trebuie|trebe|trebuieste"),
    (Cat.NOT_INTERESTED, -5, "nu e|este cazul"),
    (Cat.NOT_INTERESTED, -5, "nu e|este pentru noi|mine"),
    (Cat.NOT_INTERESTED, -5, "nu vrem|vreau $"),
    (Cat.NOT_INTERESTED, -5, "^ nu vrem|vreau"),
    (Cat.NOT_INTERESTED, -5, "nu ne|ma ocupam|ocup cu"),
    (Cat.NOT_INTERESTED, -5, "nu ne ocupam de"),
    (Cat.NOT_INTERESTED, -5, "nu folosim"),
    (Cat.NOT_INTERESTED, -5, "nu lucram cu"),
    (Cat.NOT_INTERESTED, -5, "am|au ales alt|alta|altcineva"),
    (Cat.NOT_INTERESTED, -5, "alt furnizor|cumparator|partener"),
    (Cat.NOT_INTERESTED, -5, "cu altcineva"),
    (Cat.NOT_INTERESTED, -5, "am gasit deja"),
    (Cat.NOT_INTERESTED, -5, "ne descurcam"),
    (Cat.NOT_INTERESTED, -5, "nu cred ca ~2 ajuta|intereseaza|potriveste"),
    (Cat.NOT_INTERESTED, -5, "nu ne ajuta"),
    (Cat.NOT_INTERESTED, -5, "nu am timp de"),
    (Cat.NOT_INTERESTED, -5, "am vandut ferma|firma|tot"),
    (Cat.NOT_INTERESTED, -5, "am terminat cu"),
    (Cat.NOT_INTERESTED, -5, "^ nu $"),
    (Cat.NOT_INTERESTED, -5, "^ nu nu"),
    (Cat.NOT_INTERESTED, -5, "^ no $"),
    (Cat.NOT_INTERESTED, -5, "^ nope"),
    (Cat.NOT_INTERESTED, -5, "momentan nu"),
    (Cat.NOT_INTERESTED, -5, "no thanks|thank"),
    (Cat.NOT_INTERESTED, -5, "no interest"),
    (Cat.NOT_INTERESTED, -5, "not ~2 interested"),
    (Cat.NOT_INTERESTED, -5, "not for us|me"),
    (Cat.NOT_INTERESTED, -5, "not relevant|needed|necessary"),
    (Cat.NOT_INTERESTED, -5, "do not need|want"),
    (Cat.NOT_INTERESTED, -5, "already have|use|work"),
    (Cat.NOT_INTERESTED, -5, "we are|were good"),
    (Cat.NOT_INTERESTED, -5, "pass on this"),
    (Cat.NOT_INTERESTED, -5, "nu e|este momentul"),
    (Cat.NOT_INTERESTED, -5, "nici nu cred"),
    (Cat.NOT_INTERESTED, -5, "lucram|vindem|colaboram doar cu"),
    (Cat.NOT_INTERESTED, -5, "not looking for"),
    (Cat.NOT_INTERESTED, -5, "i will pass"),
    # --- interest ----------------------------------------------------------------------------
    (Cat.INTERESTED, 5, "^ da"),
    (Cat.INTERESTED, 5, "^ yes|yeah|yep|sure|sigur|desigur|bineinteles"),
    (Cat.INTERESTED, 5, "interesat|interesata|interesati|interesate|interested|interest"),
    (Cat.INTERESTED, 5, "ma|ne intereseaza"),
    (Cat.INTERESTED, 5, "ne|m|mi ar interesa"),
    (Cat.INTERESTED, 5, "as|am fi interesat*"),
    (Cat.INTERESTED, 5, "trimite*|send"),
    (Cat.INTERESTED, 5, "oferta|oferte|offer|proposal"),
    (Cat.INTERESTED, 5, "mai multe detalii|informatii|info|date"),
    (Cat.INTERESTED, 5, "more details|info|information"),
    (Cat.INTERESTED, 5, "catalog*|brosura|prezentare|prezentarea|demo|brochure"),
    (Cat.INTERESTED, 5, "contract|contractul"),
    (Cat.INTERESTED, 5, "suna*|sunati ma|mi|ne"),
    (Cat.INTERESTED, 5, "ma|ne puteti|poti suna"),
    (Cat.INTERESTED, 5, "sa ma|ne sunati|suni"),
    (Cat.INTERESTED, 5, "astept|asteptam ~2 telefon*|oferta|apel*|detalii*|propunere*|contract*"),
    (Cat.INTERESTED, 5, "sun eu"),
    (Cat.INTERESTED, 5, "putem|puteti ~2 discuta|vorbi|stabili|veni|intalni"),
    (Cat.INTERESTED, 5, "sa|hai discutam|vorbim"),
    (Cat.INTERESTED, 5, "sa|hai ne vedem|intalnim"),
    (Cat.INTERESTED, 5, "vorbim luni|marti|miercuri|joi|vineri|maine|saptamana"),
    (Cat.INTERESTED, 5, "cand ne vedem|intalnim"),
    (Cat.INTERESTED, 5, "cand putem|puteti|aveti|ati"),
    (Cat.INTERESTED, 5, "intalnire|intalnirea|programare"),
    (Cat.INTERESTED, 5, "suna bine"),
    (Cat.INTERESTED, 5, "vreau|vrem|doresc|dorim ~2 oferta|detalii|aflu|aflam|stiu"),
    (Cat.INTERESTED, 5, "as|am vrea ~2 oferta|detalii|aflu|aflam|sa"),
    (Cat.INTERESTED, 5, "aflam|aflu|afla mai multe"),
    (Cat.INTERESTED, 5, "call me|us"),
    (Cat.INTERESTED, 5, "can|could you call"),
    (Cat.INTERESTED, 5, "lets talk|chat|discuss|meet"),
    (Cat.INTERESTED, 5, "let us talk|chat|discuss|meet"),
    (Cat.INTERESTED, 5, "happy to talk|chat|discuss|meet"),
    (Cat.INTERESTED, 5, "schedule|book|arrange a? call|meeting|demo|something"),
    (Cat.INTERESTED, 5, "sounds good|great"),
    (Cat.INTERESTED, 5, "know|learn|hear more"),
    (Cat.INTERESTED, 5, "next step|steps"),
    (Cat.INTERESTED, 5, "take a look"),
    (Cat.INTERESTED, 5, "i am in $"),
    (Cat.INTERESTED, 5, "ne|mi|m ar prinde bine"),
    (Cat.INTERESTED, 5, "cum procedam"),
    (Cat.INTERESTED, 5, "as|am dori ~2 stiu|aflu|aflam|oferta|detalii|sa"),
    (Cat.INTERESTED, 5, "ne auzim"),
    (Cat.INTERESTED, 5, "deschisi|deschis|deschisa la ~2 discutie|colaborare|discutii"),
    (Cat.INTERESTED, 5, "va astept|asteptam la|pe|sa"),
    (Cat.INTERESTED, 5, "semnam"),
    (Cat.INTERESTED, 5, "sunt|suntem curios|curiosi|curioasa"),
    (Cat.INTERESTED, 5, "da|dati mi|ne un telefon|apel"),
    (Cat.INTERESTED, 5, "care sunt pasii"),
    (Cat.INTERESTED, 5, "puteti detalia"),
    (Cat.INTERESTED, 5, "email|text|whatsapp me"),
    (Cat.INTERESTED, 5, "open to a? conversation|call|chat|meeting|discussion"),
    (Cat.BUYING, 5, "cat costa|e|este|ar|ati|luati|dati|cereti"),
    (Cat.BUYING, 5, "pret|pretul|preturi|preturile|tarif|tariful|tarife"),
    (Cat.BUYING, 5, "cost|costa|costul|costurile|costs|price|prices|pricing|quote|quotation"),
    (Cat.BUYING, 5, "how much"),
    (Cat.BUYING, 5, "cat ~2 costa|platim|plateste|costă|ar costa|cereti"),
    (Cat.BUYING, 5, "costuri|costurile|abonament*"),
    (Cat.BUYING, 5, "discount|reducere|comision|comisionul|commission"),
    (Cat.BUYING, 5, "conditii|conditiile de? plata|livrare|contract"),
    # --- question ----------------------------------------------------------------------------
    (Cat.QUESTION, 0, "despre ce e|este vorba"),
    (Cat.QUESTION, 0, "^ cine e|este|sunteti|esti"),
    (Cat.QUESTION, 0, "cine v|va|ti a|au dat"),
    (Cat.QUESTION, 0, "cum ati|ai dat de"),
    (Cat.QUESTION, 0, "de unde aveti|ai"),
    (Cat.QUESTION, 0, "ce vreti|doriti de fapt"),
    (Cat.QUESTION, 0, "whos|who this"),
    (Cat.QUESTION, 0, "who is this"),
    (Cat.QUESTION, 0, "what is this"),
    (Cat.QUESTION, 0, "^ ce inseamna|este|e"),
    # --- later -------------------------------------------------------------------------------
    (Cat.DEFER, 0, "nu acum"),
    (Cat.DEFER, 0, "nu chiar acum"),
    (Cat.DEFER, 0, "dar nu acum"),
    (Cat.DEFER, 0, "nu in acest moment|perioada"),
    (Cat.DEFER, 0, "poate la|in|dupa|peste|anul|mai|toamna|iarna|primavara|vara"),
    (Cat.DEFER, 0, "la|in anul|toamna|iarna|primavara viitor|viitoare"),
    (Cat.DEFER, 0, "la anul"),
    (Cat.DEFER, 0, "anul viitor"),
    (Cat.DEFER, 0, "la toamna|iarna|primavara"),
    (Cat.DEFER, 0, "dupa recoltare|recoltat|recolta|seceris|campanie|campania|sarbatori|sezon"),
    (Cat.DEFER, 0, "mai vorbim"),
    (Cat.DEFER, 0, "mai incolo"),
    (Cat.DEFER, 0, "ma|ne mai gandesc|gandim"),
    (Cat.DEFER, 0, "not now"),
    (Cat.DEFER, 0, "not right now"),
    (Cat.DEFER, 0, "not at the moment"),
    (Cat.DEFER, 0, "maybe later|next|in|after"),
    (Cat.DEFER, 0, "next year|season|spring|autumn|month"),
    (Cat.DEFER, 0, "in the spring|fall|autumn|winter"),
    (Cat.DEFER, 0, "let me|us think"),
    (Cat.DEFER, 0, "think about it"),
    # --- tone --------------------------------------------------------------------------------
    (Cat.POSITIVE, 8, "multumesc|multumim|mersi|thanks|thank|multam"),
    (Cat.POSITIVE, 8, "cu placere"),
    (Cat.POSITIVE, 8, "o zi buna|frumoasa"),
    (Cat.POSITIVE, 10, "interesant|interesanta|perfect|super|excelent|minunat|great|excellent|awesome"),
    (Cat.POSITIVE, 10, "bravo|felicitari|love"),
    (Cat.NEGATIVE, -30, "prostie|prostii|prostiile|prostia|tampenie|tampenii"),
    (Cat.NEGATIVE, -30, "pierdere de vreme"),
    (Cat.NEGATIVE, -30, "naiba|dracu|dracului|idiot*|imbecil*|jeg*|fraier*"),
    (Cat.NEGATIVE, -30, "ridicol|ridicola|ridiculous|nonsense|stupid|rubbish|crap"),
    (Cat.NEGATIVE, -30, "waste of time"),
    (Cat.NEGATIVE, -20, "nimeni nu are nevoie"),
    (Cat.NEGATIVE, -20, "nu mai am incredere"),
    (Cat.NEGATIVE, -30, "aiureal*|porcari*|tampit*|penibil|hilar"),
    # --- prompt injection --------------------------------------------------------------------
    (Cat.INJECTION, 0, "ignore|ignora|ignorati|disregard|forget ~3 instructions|instructiuni*|rules|prompt"),
    (Cat.INJECTION, 0, "system prompt|message"),
    (Cat.INJECTION, 0, "^ system"),
    (Cat.INJECTION, 0, "you are now"),
    (Cat.INJECTION, 0, "assistant must|should"),
    (
        Cat.INJECTION,
        0,
        "classify|mark|label|clasifica|marcheaza|marcati me|this|it|ma|mesajul ~2 as|ca|drept",
    ),
    (Cat.INJECTION, 0, "intent interested|opt"),
    (Cat.INJECTION, 0, "score 100|50|99"),
    (Cat.INJECTION, 0, "output opt|intent|score|json"),
    (Cat.INJECTION, 0, "raspundeti|raspunde ca sunt"),
    (Cat.INJECTION, 0, "reply ignore"),
    (Cat.INJECTION, 0, "forget|ignore everything|all above|before"),
    (Cat.INJECTION, 0, "must now? reply|answer|respond|output|say|return"),
    (Cat.INJECTION, 0, "reply|answer|respond|output|return interested|opt|score|intent"),
    (Cat.INJECTION, 0, "set score|intent|opt"),
    (Cat.INJECTION, 0, "system instruction|instructions|override"),
    (Cat.INJECTION, 0, "treat this ~2 as"),
)

# Words a long misspelt word may be corrected to (one edit away). Kept short on purpose.
_FUZZY_TARGETS: Final = (
    "dezabonare",
    "dezabonez",
    "dezabonati",
    "unsubscribe",
    "interesat",
    "interesati",
    "interesata",
    "intereseaza",
    "interested",
    "reclamatie",
    "nemultumit",
    "nemultumiti",
    "concediu",
    "contactati",
    "scrieti",
    "trimiteti",
    "multumesc",
    "multumim",
    "oferta",
    "judecata",
    "plangere",
    "avocatul",
    "instanta",
    "harassment",
    "vacation",
    "automat",
    "automatic",
    "lawyer",
    "complaint",
    "spamul",
    "detalii",
)

_ABBREVIATIONS: Final[dict[str, tuple[str, ...]]] = {
    "ms": ("multumesc",),
    "msc": ("multumesc",),
    "mrs": ("multumesc",),
    "mersi": ("mersi",),
    "mltm": ("multumesc",),
    "mltms": ("multumesc",),
    "mltumesc": ("multumesc",),
    "pls": ("please",),
    "plz": ("please",),
    "pliz": ("please",),
    "vrog": ("va", "rog"),
    "vă": ("va",),
    "dvs": ("dumneavoastra",),
    "nr": ("numar",),
    "tel": ("telefon",),
    "tlf": ("telefon",),
    "n": ("nu",),
    "nus": ("nu", "sunt"),
    "nuj": ("nu", "stiu"),
    "thx": ("thanks",),
    "tnx": ("thanks",),
    "thnx": ("thanks",),
    "ty": ("thank", "you"),
    "u": ("you",),
    "pt": ("pentru",),
    "ptr": ("pentru",),
    "ptru": ("pentru",),
    "k": ("ok",),
    "okay": ("ok",),
    "okey": ("ok",),
    "oki": ("ok",),
    "okk": ("ok",),
    "msg": ("mesaj",),
    "msj": ("mesaj",),
    "mesage": ("mesaje",),
    "wa": ("whatsapp",),
    "watsapp": ("whatsapp",),
    "whatsup": ("whatsapp",),
    "wapp": ("whatsapp",),
    "dl": ("domnul",),
    "im": ("i", "am"),
    "dont": ("do", "not"),
    "doesnt": ("does", "not"),
    "didnt": ("did", "not"),
    "cant": ("can", "not"),
    "cannot": ("can", "not"),
    "wont": ("will", "not"),
    "isnt": ("is", "not"),
    "arent": ("are", "not"),
    "youre": ("you", "are"),
    "weve": ("we", "have"),
    "ive": ("i", "have"),
    "ill": ("i", "will"),
    "lets": ("lets",),
    "stp": ("stop",),
    "stopp": ("stop",),
    "unsub": ("unsubscribe",),
    "dezabonareee": ("dezabonare",),
    "oprit": ("opriti",),
    "ofert": ("oferta",),
    "ptrn": ("pentru",),
}

_EMOJI_POSITIVE: Final = {
    "👍": 20,
    "🙂": 12,
    "😊": 12,
    "😀": 12,
    "😃": 12,
    "😄": 12,
    "👌": 15,
    "🤝": 20,
    "✅": 10,
    "😉": 8,
    "❤": 12,
    "👏": 12,
    "💪": 10,
    "🙏": 10,
    "🌾": 5,
    "🚜": 5,
}
_EMOJI_NEGATIVE: Final = {
    "😡": -40,
    "👎": -30,
    "🤬": -50,
    "😠": -35,
    "😤": -25,
    "🖕": -50,
    "💩": -40,
    "🙄": -30,
    "❌": -15,
    "⛔": -20,
    "🛑": -20,
    "😒": -20,
    "😑": -10,
}

_RO_WORDS: Final = frozenset(
    [
        "si",
        "sa",
        "nu",
        "de",
        "la",
        "pe",
        "cu",
        "va",
        "mai",
        "este",
        "e",
        "sunt",
        "suntem",
        "pentru",
        "multumesc",
        "multumim",
        "buna",
        "ziua",
        "da",
        "ce",
        "cine",
        "cat",
        "ma",
        "ne",
        "vreau",
        "avem",
        "am",
        "ati",
        "dar",
        "vorbim",
        "vedem",
        "bine",
        "acum",
        "poate",
        "gata",
        "salut",
        "noi",
        "dvs",
        "numar",
        "stop",
        "dezabonare",
        "concediu",
        "raspuns",
        "vom",
        "din",
        "in",
        "care",
        "ati",
        "fost",
        "firma",
        "ferma",
        "mersi",
        "rog",
        "mi",
        "imi",
        "asta",
    ]
)
_EN_WORDS: Final = frozenset(
    [
        "the",
        "and",
        "you",
        "is",
        "not",
        "please",
        "thanks",
        "thank",
        "i",
        "we",
        "to",
        "of",
        "my",
        "me",
        "this",
        "are",
        "your",
        "it",
        "no",
        "yes",
        "send",
        "call",
        "back",
        "out",
        "office",
        "wrong",
        "who",
        "what",
        "how",
        "interested",
        "am",
        "will",
        "for",
        "our",
        "with",
        "have",
        "do",
        "be",
        "on",
        "until",
    ]
)

_QUOTE_HEADER = re.compile(
    r"^\s*(?:on\s.{0,200}\bwrote:|în\s.{0,200}\ba\s+scris:|in\s.{0,200}\ba\s+scris:|pe\s.{0,200}\ba\s+scris:"
    r"|-{2,}\s*(?:original message|mesaj original|forwarded message|mesaj redirec\w*)\s*-{2,}"
    r"|from:\s.*|de la:\s.*|sent from my .*|trimis de pe .*|get outlook for .*)\s*$",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SQUEEZE = re.compile(r"(.)\1+")
_LONG_RUN = re.compile(r"(.)\1{2,}")
_INTENT_BASE: Final[dict[Intent, int]] = {
    Intent.INTERESTED: 60,
    Intent.QUESTION: 20,
    Intent.NEUTRAL: 10,
    Intent.NOT_INTERESTED: -30,
    Intent.COMPLAINT: -40,
    Intent.OPT_OUT: -40,
    Intent.OUT_OF_OFFICE: 0,
    Intent.WRONG_PERSON: 0,
}
_INTENT_BAND: Final[dict[Intent, tuple[int, int]]] = {
    Intent.INTERESTED: (50, 100),
    Intent.QUESTION: (-100, 45),
    Intent.NEUTRAL: (-100, 45),
    Intent.NOT_INTERESTED: (-100, -5),
    Intent.COMPLAINT: (-100, 20),
    Intent.OPT_OUT: (-100, -5),
    Intent.OUT_OF_OFFICE: (-10, 10),
    Intent.WRONG_PERSON: (-20, 20),
}
#: Highest score a suspected prompt injection may get (below the auto-answer threshold).
INJECTION_SCORE_CAP: Final = 40


# --------------------------------------------------------------------------------------------
# pattern compilation


@dataclass(frozen=True, slots=True)
class _Rule:
    cat: Cat
    weight: int
    source: str
    regex: re.Pattern[str]
    absorbs: bool = False
    #: The rule can only match if one of these words (or a word with one of these prefixes)
    #: occurs; both empty when the first required element is a wildcard.
    needs_words: frozenset[str] = frozenset()
    needs_prefixes: tuple[str, ...] = ()


def _fold(text: str) -> str:
    """Lower-case and strip diacritics (NFKD, drop combining marks)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _compile(source: str) -> tuple[re.Pattern[str], set[str]]:
    words: set[str] = set()
    parts: list[str] = []
    elements = source.split()
    prefix = "(?<= )"
    suffix = ""
    if elements and elements[0] == "^":
        prefix, elements = "^ ", elements[1:]
    if elements and elements[-1] == "$":
        suffix, elements = "$", elements[:-1]
    for element in elements:
        if element.startswith("~"):
            n = int(element[1:] or "2")
            parts.append(f"(?:[^ ]+ ){{0,{n}}}")
            continue
        optional = element.endswith("?") and len(element) > 1
        if optional:
            element = element[:-1]
        alternatives: list[str] = []
        for alt in element.split("|"):
            alt = _fold(alt)
            if alt == "_":
                alternatives.append("[^ ]+")
            elif alt.endswith("*"):
                alternatives.append(re.escape(alt[:-1]) + "[^ ]*")
            else:
                words.add(alt)
                alternatives.append(re.escape(alt))
        body = "(?:" + "|".join(alternatives) + ") "
        parts.append(f"(?:{body})?" if optional else body)
    return re.compile(prefix + "".join(parts) + suffix), words


def _first_required(source: str) -> tuple[frozenset[str], tuple[str, ...]]:
    for element in source.split():
        if element in ("^", "$") or element.startswith("~") or (element.endswith("?") and len(element) > 1):
            continue
        alternatives = [_fold(alt) for alt in element.split("|")]
        if "_" in alternatives:
            return frozenset(), ()
        words = frozenset(a for a in alternatives if not a.endswith("*"))
        prefixes = tuple(a[:-1] for a in alternatives if a.endswith("*"))
        return words, prefixes
    return frozenset(), ()


def _build() -> tuple[tuple[_Rule, ...], frozenset[str]]:
    rules: list[_Rule] = []
    vocabulary: set[str] = set()
    for cat, weight, source in _RULES:
        regex, words = _compile(source)
        needs_words, needs_prefixes = _first_required(source)
        rules.append(_Rule(cat, weight, source, regex, source in _ABSORBING, needs_words, needs_prefixes))
        vocabulary |= words
    for expansion in _ABBREVIATIONS.values():
        vocabulary.update(expansion)
    vocabulary.update(_FUZZY_TARGETS)
    return tuple(rules), frozenset(vocabulary)


_COMPILED_RULES, _VOCABULARY = _build()
# Inverted index so that a reply only runs the rules whose first required word it contains.
_RULES_BY_WORD: Final[dict[str, list[int]]] = {}
_RULES_BY_PREFIX: Final[dict[str, list[int]]] = {}
_ALWAYS_RUN: Final[list[int]] = []
for _index, _rule in enumerate(_COMPILED_RULES):
    if not _rule.needs_words and not _rule.needs_prefixes:
        _ALWAYS_RUN.append(_index)
    for _needed in _rule.needs_words:
        _RULES_BY_WORD.setdefault(_needed, []).append(_index)
    for _prefix in _rule.needs_prefixes:
        _RULES_BY_PREFIX.setdefault(_prefix, []).append(_index)
_LONGEST_PREFIX: Final = max((len(p) for p in _RULES_BY_PREFIX), default=0)


def _candidate_rules(words: Iterable[str]) -> list[_Rule]:
    indexes: set[int] = set(_ALWAYS_RUN)
    for word in set(words):
        indexes.update(_RULES_BY_WORD.get(word, ()))
        for length in range(1, min(len(word), _LONGEST_PREFIX) + 1):
            indexes.update(_RULES_BY_PREFIX.get(word[:length], ()))
    return [_COMPILED_RULES[i] for i in sorted(indexes)]


_SQUEEZED_VOCABULARY: Final[dict[str, str]] = {}
for _word in sorted(_VOCABULARY, key=len):
    _SQUEEZED_VOCABULARY.setdefault(_SQUEEZE.sub(r"\1", _word), _word)
_FUZZY_BY_LENGTH: Final[dict[int, tuple[str, ...]]] = {}
for _target in _FUZZY_TARGETS:
    _FUZZY_BY_LENGTH.setdefault(len(_target), ())
    _FUZZY_BY_LENGTH[len(_target)] += (_target,)


def _within_one_edit(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance <= 1 (one insertion, deletion, substitution or swap)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diffs = [i for i in range(la) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


def _canonical(token: str) -> tuple[str, ...]:
    if token in _VOCABULARY:
        return (token,)
    if token in _ABBREVIATIONS:
        return _ABBREVIATIONS[token]
    squeezed = _SQUEEZE.sub(r"\1", token)
    if squeezed in _SQUEEZED_VOCABULARY:
        return (_SQUEEZED_VOCABULARY[squeezed],)
    if squeezed in _ABBREVIATIONS:
        return _ABBREVIATIONS[squeezed]
    candidate = _LONG_RUN.sub(r"\1", token)
    if len(candidate) >= 6 and not candidate.isdigit():
        for length in (len(candidate) - 1, len(candidate), len(candidate) + 1):
            for target in _FUZZY_BY_LENGTH.get(length, ()):
                if _within_one_edit(candidate, target):
                    return (target,)
    return (candidate,)


# --------------------------------------------------------------------------------------------
# text preparation


def strip_quoted(text: str, last_outbound: str | None = None) -> str:
    """Drop quoted history: ``>`` lines, everything from a reply header on, our own last message."""
    if last_outbound and len(last_outbound) >= 20 and last_outbound in text:
        text = text.replace(last_outbound, " ")
    kept: list[str] = []
    for line in text.splitlines():
        if _QUOTE_HEADER.match(line):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    stripped = "\n".join(kept).strip()
    return stripped or text.strip()


@dataclass(frozen=True, slots=True)
class Normalized:
    """A reply as canonical words, with each word's span in the original text."""

    words: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]
    original: str

    @property
    def joined(self) -> str:
        return " " + " ".join(self.words) + " "


def normalize(text: str) -> Normalized:
    """Canonical words of ``text`` (lower-case, no diacritics, abbreviations expanded, typos fixed)."""
    words: list[str] = []
    spans: list[tuple[int, int]] = []
    # Apostrophes join ("don't" -> "dont"); every other non-alphanumeric splits.
    cleaned = re.sub(r"(?<=\w)['’`](?=\w)", "\u2060", text)
    offset_map: list[int] = []
    compact_chars: list[str] = []
    for index, ch in enumerate(cleaned):
        if ch == "\u2060":
            continue
        compact_chars.append(ch)
        offset_map.append(index)
    compact = "".join(compact_chars)
    for match in _WORD.finditer(compact):
        folded = _fold(match.group())
        # Folding can split a letter into base + mark only; re-split on anything non-alnum left.
        for piece in re.findall(r"[a-z0-9]+", folded):
            for word in _canonical(piece):
                words.append(word)
                start = offset_map[match.start()]
                end = offset_map[match.end() - 1] + 1
                spans.append((start, end))
    return Normalized(tuple(words), tuple(spans), text)


@dataclass(frozen=True, slots=True)
class _Match:
    rule: _Rule
    start: int
    end: int
    phrase: str


def _find(norm: Normalized) -> list[_Match]:
    joined = norm.joined
    # character offset in ``joined`` of each word's first letter
    starts: list[int] = []
    position = 1
    for word in norm.words:
        starts.append(position)
        position += len(word) + 1
    found: list[_Match] = []
    for rule in _candidate_rules(norm.words):
        for match in rule.regex.finditer(joined):
            begin, end = match.start(), match.end()
            if joined[begin] == " ":
                begin += 1
            first = next((i for i, s in enumerate(starts) if s >= begin), None)
            last = max((i for i, s in enumerate(starts) if s < end), default=None)
            if first is None or last is None or last < first:
                continue
            phrase = norm.original[norm.spans[first][0] : norm.spans[last][1]]
            found.append(_Match(rule, begin, end - 1, phrase))
    kept: list[_Match] = []
    for m in found:
        hidden = False
        for other in found:
            if other is m or not (other.start <= m.start and m.end <= other.end):
                continue
            if (other.start, other.end) == (m.start, m.end):
                continue
            if other.rule.cat is Cat.EXCEPTION or m.rule.cat not in _PROTECTED or other.rule.absorbs:
                hidden = True
                break
        if not hidden:
            kept.append(m)
    return kept


def _emoji(text: str) -> list[tuple[str, int]]:
    signals: list[tuple[str, int]] = []
    for table in (_EMOJI_POSITIVE, _EMOJI_NEGATIVE):
        for symbol, weight in table.items():
            count = text.count(symbol)
            if count:
                signals.append((symbol, weight * min(count, 2)))
    return signals


def _language(words: Sequence[str], original: str) -> Language:
    if re.search(r"[ăâîșşțţĂÂÎȘŞȚŢ]", original):
        return "ro"
    ro = sum(1 for w in words if w in _RO_WORDS and w not in ("stop", "ok", "no"))
    en = sum(1 for w in words if w in _EN_WORDS and w not in ("stop", "ok", "no"))
    if ro > en:
        return "ro"
    if en > ro:
        return "en"
    return "unknown"


# --------------------------------------------------------------------------------------------
# the analysis


def _short_stop(norm: Normalized) -> _Match | None:
    """A bare "stop" in a short message ("Gata, stop.", "STOP 🛑") is an opt-out."""
    words = norm.words
    if len(words) > 4:
        return None
    for i, word in enumerate(words):
        if word == "stop" and (i == 0 or words[i - 1] != "non"):
            rule = _Rule(Cat.OPT_OUT, -5, "short message with 'stop'", re.compile("stop"))
            return _Match(rule, 0, 0, norm.original[norm.spans[i][0] : norm.spans[i][1]])
    return None


def _cats(matches: Iterable[_Match]) -> set[Cat]:
    return {m.rule.cat for m in matches}


def analyze_text(text: str, *, channel: str = "WHATSAPP", context: AnalysisContext | None = None) -> Analysis:
    """Analyse one reply synchronously (the body of :meth:`OfflineAnalyzer.analyze`)."""
    del channel  # the same lexicon serves WhatsApp and email
    body = strip_quoted(text or "", context.last_outbound if context else None)
    norm = normalize(body)
    matches = _find(norm)
    stop = _short_stop(norm)
    if stop is not None and not any(m.rule.cat is Cat.OPT_OUT for m in matches):
        matches.append(stop)
    cats = _cats(matches)
    emoji = _emoji(body)
    question_marks = body.count("?")
    reasons: list[str] = []

    opt_out = bool(cats & {Cat.OPT_OUT, Cat.OPT_OUT_CALL, Cat.OPT_OUT_ALL})
    scope: OptOutScope | None = None
    if opt_out:
        to_all = Cat.OPT_OUT_ALL in cats or Cat.SCOPE_ALL in cats
        to_all = to_all or (Cat.OPT_OUT_CALL in cats and Cat.OPT_OUT in cats)
        scope = "ALL" if to_all else "CHANNEL"
    legal = Cat.LEGAL in cats
    complaint = legal or Cat.COMPLAINT in cats
    injection = Cat.INJECTION in cats
    defer = Cat.DEFER in cats
    interest_matches = [m for m in matches if m.rule.cat in (Cat.INTERESTED, Cat.BUYING)]
    interest = bool(interest_matches)
    weak_interest_only = interest and all(m.rule.source in _WEAK_INTEREST for m in interest_matches)
    negated = any(w in _NEGATION_WORDS or w.startswith(_NEGATION_PREFIXES) for w in norm.words)
    only_emoji_negative = not norm.words and any(symbol == "👎" for symbol, _ in emoji)
    negative_tone = Cat.NEGATIVE in cats

    notes: list[str] = []
    if opt_out:
        intent = Intent.OPT_OUT
    elif complaint:
        intent = Intent.COMPLAINT
    elif Cat.WRONG_STRONG in cats:
        intent = Intent.WRONG_PERSON
    elif cats & {Cat.AUTO_REPLY, Cat.ABSENCE}:
        if defer and Cat.AUTO_REPLY not in cats:
            intent = Intent.NEUTRAL
            notes.append("away now but suggests a later time: a human decides")
        else:
            intent = Intent.OUT_OF_OFFICE
    elif Cat.WRONG in cats or (Cat.REDIRECT in cats and not interest):
        intent = Intent.WRONG_PERSON
    elif Cat.NOT_INTERESTED in cats or only_emoji_negative:
        if defer:
            intent = Intent.NEUTRAL
            notes.append("declines for now but leaves the door open")
        else:
            intent = Intent.NOT_INTERESTED
    elif interest and not injection:
        if weak_interest_only and negated:
            intent = Intent.NEUTRAL
            notes.append("interest words next to a negation: a human decides")
        elif defer:
            intent = Intent.NEUTRAL
            notes.append("interested but not now")
        else:
            intent = Intent.INTERESTED
    elif (Cat.QUESTION in cats or question_marks) and not (negative_tone and Cat.QUESTION not in cats):
        intent = Intent.QUESTION
    else:
        intent = Intent.NEUTRAL

    score = _INTENT_BASE[intent]
    for m in matches:
        if m.rule.cat is Cat.INJECTION:
            continue
        if intent is not Intent.INTERESTED and m.rule.cat in (Cat.INTERESTED, Cat.BUYING):
            continue
        score += m.rule.weight
    for _symbol, weight in emoji:
        score += weight
    low, high = _INTENT_BAND[intent]
    if injection and not opt_out:
        high = min(high, INJECTION_SCORE_CAP)
    score = max(low, min(high, score))

    seen: set[tuple[Cat, str]] = set()
    for m in sorted(matches, key=lambda m: (list(Cat).index(m.rule.cat), m.start)):
        if m.rule.cat is Cat.EXCEPTION:
            continue
        key = (m.rule.cat, m.phrase.lower())
        if key in seen or any(
            o.rule.cat is m.rule.cat
            and o.start <= m.start
            and m.end <= o.end
            and (o.start, o.end) != (m.start, m.end)
            for o in matches
        ):
            continue
        seen.add(key)
        reasons.append(f"{m.rule.cat.value}: '{m.phrase}'")
    for symbol, weight in emoji:
        reasons.append(f"{'positive' if weight > 0 else 'negative'} emoji: '{symbol}'")
    if question_marks and intent in (Intent.QUESTION, Intent.INTERESTED):
        reasons.append("question mark")
    if opt_out and scope == "ALL":
        reasons.append("opt-out applies to all channels")
    if "stop" in norm.words and not opt_out:
        reasons.append("'stop' inside a longer sentence: not taken as an opt-out")
    reasons.extend(notes)
    if not reasons:
        reasons.append("no triage phrase found")

    decisive = [m for m in matches if m.rule.cat not in (Cat.POSITIVE, Cat.NEGATIVE, Cat.EXCEPTION)]
    if not decisive and not emoji and not question_marks:
        confidence = 0.3
    else:
        confidence = 0.6 + 0.1 * min(3, len(decisive))
        if notes or injection:
            confidence -= 0.2
        if not decisive:
            confidence = 0.5
    return Analysis(
        score=score,
        intent=intent,
        opt_out=opt_out,
        opt_out_scope=scope,
        legal_threat=legal,
        complaint=complaint,
        language=(context.language_hint if context and context.language_hint else None)
        or _language(norm.words, body),
        reasons=reasons,
        analyzer="offline",
        confidence=round(max(0.0, min(0.95, confidence)), 2),
        suspected_injection=injection,
    )


class OfflineAnalyzer:
    """The built-in lexicon analyzer for Romanian (with or without diacritics) and English."""

    async def analyze(
        self, text: str, *, channel: str = "WHATSAPP", context: AnalysisContext | None = None
    ) -> Analysis:
        """Return the triage of ``text``; pure computation, never raises on odd input."""
        return analyze_text(text, channel=channel, context=context)
