"""Reply triage contract: the analyzer Protocol, its result, and the routing rules.

Every inbound reply goes through one :class:`ReplyAnalyzer` (the offline lexicon analyzer, or an
LLM adapter that falls back to it) and then through :func:`route`, the single place where
DESIGN §9 "sentiment routing" is implemented:

=====================================  ===========  ========  =================================
analysis                               route        review    priority / reason
=====================================  ===========  ========  =================================
opt-out                                OPT_OUT      no        ``None``
opt-out + legal threat                 OPT_OUT      yes       URGENT / KEYWORD_TRIGGER
opt-out + complaint                    OPT_OUT      yes       HIGH / COMPLAINT
legal threat                           REVIEW       yes       URGENT / KEYWORD_TRIGGER
complaint                              REVIEW       yes       HIGH (URGENT if score < 0) / COMPLAINT
OUT_OF_OFFICE                          RESCHEDULE   no        ``None``
NOT_INTERESTED                         CLOSE        no        ``None``
WRONG_PERSON                           REVIEW       yes       LOW / KEYWORD_TRIGGER
score < 0                              REVIEW       yes       URGENT / NEGATIVE_SENTIMENT
0 <= score < 50                        REVIEW       yes       MEDIUM / QUESTION or AI_UNCERTAIN
score >= 50, auto-reply enabled        AUTO_REPLY   no        ``None`` (a draft is wanted)
score >= 50, auto-reply disabled       REVIEW       yes       MEDIUM / AI_DRAFT (with a draft)
=====================================  ===========  ========  =================================

A routing decision yields at most one review, so one inbound message opens at most one review.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from cerniq.models.enums import ReviewPriority, ReviewReason

__all__ = [
    "AUTO_REPLY_THRESHOLD",
    "Analysis",
    "AnalysisContext",
    "AnalyzerName",
    "Intent",
    "Language",
    "OptOutScope",
    "ReplyAnalyzer",
    "Route",
    "Routing",
    "route",
    "to_api",
]

#: Score from which a reply gets an AI answer (auto-sent, or drafted for review).
AUTO_REPLY_THRESHOLD = 50

OptOutScope = Literal["CHANNEL", "ALL"]
Language = Literal["ro", "en", "unknown"]
AnalyzerName = Literal["offline", "llm"]


class Intent(StrEnum):
    """What the sender of a reply wants."""

    INTERESTED = "INTERESTED"
    QUESTION = "QUESTION"
    NOT_INTERESTED = "NOT_INTERESTED"
    COMPLAINT = "COMPLAINT"
    OPT_OUT = "OPT_OUT"
    OUT_OF_OFFICE = "OUT_OF_OFFICE"
    WRONG_PERSON = "WRONG_PERSON"
    NEUTRAL = "NEUTRAL"


class Route(StrEnum):
    """What the system does with a reply."""

    AUTO_REPLY = "AUTO_REPLY"  # answer automatically (tenant opted in)
    REVIEW = "REVIEW"  # open a human review
    OPT_OUT = "OPT_OUT"  # opt the lead out, suppress, stop sequences
    RESCHEDULE = "RESCHEDULE"  # push the next follow-up back (out of office)
    CLOSE = "CLOSE"  # lead is DEAD, nothing more is sent


class AnalysisContext(BaseModel):
    """Optional facts about the conversation that help an analyzer. Never required."""

    model_config = ConfigDict(frozen=True)

    company_name: str | None = None
    contact_name: str | None = None
    #: Our last outbound message; a copy of it quoted inside the reply is ignored.
    last_outbound: str | None = None
    language_hint: Language | None = None


class Analysis(BaseModel):
    """The triage of one inbound reply. Immutable."""

    model_config = ConfigDict(frozen=True)

    score: int = Field(ge=-100, le=100)
    intent: Intent
    opt_out: bool = False
    opt_out_scope: OptOutScope | None = None
    legal_threat: bool = False
    complaint: bool = False
    language: Language = "unknown"
    #: Human-readable evidence, e.g. ``"opt-out phrase: 'nu mai scrieți'"``.
    reasons: list[str] = Field(default_factory=list)
    analyzer: AnalyzerName = "offline"
    confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    #: The text tries to instruct the classifier ("ignore previous instructions…"); such a reply
    #: is never auto-answered.
    suspected_injection: bool = False


class Routing(BaseModel):
    """What to do with an analysed reply. ``needs_review`` means exactly one review is opened."""

    model_config = ConfigDict(frozen=True)

    route: Route
    priority: ReviewPriority | None = None
    needs_review: bool = False
    review_reason: ReviewReason | None = None
    draft_wanted: bool = False


@runtime_checkable
class ReplyAnalyzer(Protocol):
    """Classifies the text of an inbound reply. Implementations must never raise on odd input."""

    async def analyze(
        self, text: str, *, channel: str = "WHATSAPP", context: AnalysisContext | None = None
    ) -> Analysis:
        """Return the triage of ``text`` received on ``channel``."""
        ...


def route(analysis: Analysis, *, auto_reply_enabled: bool) -> Routing:
    """Decide what happens to a reply (DESIGN §9); see the module docstring for the table.

    ``auto_reply_enabled`` is the tenant's switch: when off, replies that would be answered
    automatically go to a MEDIUM review carrying a draft instead.
    """
    if analysis.opt_out:
        # The opt-out itself needs no human; a threat or complaint riding on it does.
        if analysis.legal_threat:
            return Routing(
                route=Route.OPT_OUT,
                priority=ReviewPriority.URGENT,
                needs_review=True,
                review_reason=ReviewReason.KEYWORD_TRIGGER,
            )
        if analysis.complaint or analysis.intent is Intent.COMPLAINT:
            return Routing(
                route=Route.OPT_OUT,
                priority=ReviewPriority.HIGH,
                needs_review=True,
                review_reason=ReviewReason.COMPLAINT,
            )
        return Routing(route=Route.OPT_OUT)
    if analysis.legal_threat:
        return _review(ReviewPriority.URGENT, ReviewReason.KEYWORD_TRIGGER)
    if analysis.complaint or analysis.intent is Intent.COMPLAINT:
        priority = ReviewPriority.URGENT if analysis.score < 0 else ReviewPriority.HIGH
        return _review(priority, ReviewReason.COMPLAINT)
    if analysis.intent is Intent.OUT_OF_OFFICE:
        return Routing(route=Route.RESCHEDULE)
    if analysis.intent is Intent.NOT_INTERESTED:
        return Routing(route=Route.CLOSE)
    if analysis.intent is Intent.WRONG_PERSON:
        return _review(ReviewPriority.LOW, ReviewReason.KEYWORD_TRIGGER)
    if analysis.score < 0:
        return _review(ReviewPriority.URGENT, ReviewReason.NEGATIVE_SENTIMENT)
    if analysis.score < AUTO_REPLY_THRESHOLD:
        reason = ReviewReason.QUESTION if analysis.intent is Intent.QUESTION else ReviewReason.AI_UNCERTAIN
        return _review(ReviewPriority.MEDIUM, reason)
    if auto_reply_enabled:
        return Routing(route=Route.AUTO_REPLY, draft_wanted=True)
    return Routing(
        route=Route.REVIEW,
        priority=ReviewPriority.MEDIUM,
        needs_review=True,
        review_reason=ReviewReason.AI_DRAFT,
        draft_wanted=True,
    )


def _review(priority: ReviewPriority, reason: ReviewReason) -> Routing:
    return Routing(route=Route.REVIEW, priority=priority, needs_review=True, review_reason=reason)


def to_api(analysis: Analysis, routing: Routing) -> dict[str, Any]:
    """The JSON body of ``POST /api/v1/outreach/ai/analyze`` (camelCase keys)."""
    return {
        "score": analysis.score,
        "intent": analysis.intent.value,
        "optOut": analysis.opt_out,
        "route": routing.route.value,
        "priority": routing.priority.value if routing.priority is not None else None,
        "reasons": list(analysis.reasons),
        "optOutScope": analysis.opt_out_scope,
        "analyzer": analysis.analyzer,
        "confidence": round(analysis.confidence, 2),
        "needsReview": routing.needs_review,
        "reviewReason": routing.review_reason.value if routing.review_reason is not None else None,
        "legalThreat": analysis.legal_threat,
        "complaint": analysis.complaint,
        "language": analysis.language,
        "suspectedInjection": analysis.suspected_injection,
    }
