"""DESIGN §9 sentiment routing: the table, the tenant's auto-reply switch, the API shape."""

from __future__ import annotations

from typing import Any

import pytest

from cerniq.models.enums import ReviewPriority, ReviewReason
from cerniq.replies import Analysis, Intent, OfflineAnalyzer, Route, route, to_api


def analysis(intent: Intent, score: int, **flags: Any) -> Analysis:
    return Analysis(score=score, intent=intent, **flags)


P = ReviewPriority
R = ReviewReason

# (analysis, auto_reply_enabled) -> (route, priority, needs_review, reason, draft_wanted)
CASES: list[tuple[Analysis, bool, tuple[Route, P | None, bool, R | None, bool]]] = [
    # opt-out: no human needed
    (
        analysis(Intent.OPT_OUT, -40, opt_out=True, opt_out_scope="CHANNEL"),
        True,
        (Route.OPT_OUT, None, False, None, False),
    ),
    (
        analysis(Intent.OPT_OUT, -40, opt_out=True, opt_out_scope="ALL"),
        False,
        (Route.OPT_OUT, None, False, None, False),
    ),
    # opt-out riding a complaint or a legal threat: both an opt-out and a review
    (
        analysis(Intent.OPT_OUT, -60, opt_out=True, opt_out_scope="CHANNEL", complaint=True),
        True,
        (Route.OPT_OUT, P.HIGH, True, R.COMPLAINT, False),
    ),
    (
        analysis(Intent.OPT_OUT, -80, opt_out=True, opt_out_scope="ALL", complaint=True, legal_threat=True),
        True,
        (Route.OPT_OUT, P.URGENT, True, R.KEYWORD_TRIGGER, False),
    ),
    # complaints and legal threats
    (
        analysis(Intent.COMPLAINT, -50, complaint=True),
        True,
        (Route.REVIEW, P.URGENT, True, R.COMPLAINT, False),
    ),
    (analysis(Intent.COMPLAINT, 5, complaint=True), True, (Route.REVIEW, P.HIGH, True, R.COMPLAINT, False)),
    (
        analysis(Intent.COMPLAINT, 10, complaint=True, legal_threat=True),
        False,
        (Route.REVIEW, P.URGENT, True, R.KEYWORD_TRIGGER, False),
    ),
    # a legal threat beats a positive score and an auto-reply
    (
        analysis(Intent.INTERESTED, 80, legal_threat=True),
        True,
        (Route.REVIEW, P.URGENT, True, R.KEYWORD_TRIGGER, False),
    ),
    # out of office, not interested, wrong person
    (analysis(Intent.OUT_OF_OFFICE, 0), True, (Route.RESCHEDULE, None, False, None, False)),
    (analysis(Intent.NOT_INTERESTED, -30), True, (Route.CLOSE, None, False, None, False)),
    (analysis(Intent.NOT_INTERESTED, -30), False, (Route.CLOSE, None, False, None, False)),
    (analysis(Intent.WRONG_PERSON, 0), True, (Route.REVIEW, P.LOW, True, R.KEYWORD_TRIGGER, False)),
    # by score
    (analysis(Intent.NEUTRAL, -1), True, (Route.REVIEW, P.URGENT, True, R.NEGATIVE_SENTIMENT, False)),
    (analysis(Intent.QUESTION, -20), True, (Route.REVIEW, P.URGENT, True, R.NEGATIVE_SENTIMENT, False)),
    (analysis(Intent.NEUTRAL, 0), True, (Route.REVIEW, P.MEDIUM, True, R.AI_UNCERTAIN, False)),
    (analysis(Intent.QUESTION, 20), True, (Route.REVIEW, P.MEDIUM, True, R.QUESTION, False)),
    (analysis(Intent.NEUTRAL, 49), True, (Route.REVIEW, P.MEDIUM, True, R.AI_UNCERTAIN, False)),
    (analysis(Intent.INTERESTED, 50), True, (Route.AUTO_REPLY, None, False, None, True)),
    (analysis(Intent.INTERESTED, 100), True, (Route.AUTO_REPLY, None, False, None, True)),
    (analysis(Intent.INTERESTED, 50), False, (Route.REVIEW, P.MEDIUM, True, R.AI_DRAFT, True)),
    (analysis(Intent.INTERESTED, 95), False, (Route.REVIEW, P.MEDIUM, True, R.AI_DRAFT, True)),
]


@pytest.mark.parametrize(("given", "auto", "expected"), CASES)
def test_routing_table(
    given: Analysis, auto: bool, expected: tuple[Route, P | None, bool, R | None, bool]
) -> None:
    decided = route(given, auto_reply_enabled=auto)
    assert (
        decided.route,
        decided.priority,
        decided.needs_review,
        decided.review_reason,
        decided.draft_wanted,
    ) == expected


@pytest.mark.parametrize("intent", list(Intent))
@pytest.mark.parametrize("score", [-100, -1, 0, 49, 50, 100])
@pytest.mark.parametrize("auto", [True, False])
def test_every_decision_is_consistent(intent: Intent, score: int, auto: bool) -> None:
    """A review has a priority and a reason, nothing else has; an opt-out never auto-answers."""
    opt_out = intent is Intent.OPT_OUT
    decided = route(
        Analysis(score=score, intent=intent, opt_out=opt_out, opt_out_scope="CHANNEL" if opt_out else None),
        auto_reply_enabled=auto,
    )
    assert decided.needs_review == (decided.priority is not None) == (decided.review_reason is not None)
    if opt_out:
        assert decided.route is Route.OPT_OUT and not decided.draft_wanted
    if decided.route is Route.AUTO_REPLY:
        assert auto and score >= 50 and not decided.needs_review
    if decided.route is Route.REVIEW:
        assert decided.needs_review


@pytest.mark.parametrize(
    ("text", "auto", "route_", "priority"),
    [
        ("STOP", True, Route.OPT_OUT, None),
        ("Da, sunt interesat. Sunați-mă mâine.", True, Route.AUTO_REPLY, None),
        ("Da, sunt interesat. Sunați-mă mâine.", False, Route.REVIEW, P.MEDIUM),
        ("Cine sunteți?", True, Route.REVIEW, P.MEDIUM),
        ("Ce prostie.", True, Route.REVIEW, P.URGENT),
        ("Nu, mulțumesc.", True, Route.CLOSE, None),
        ("Sunt în concediu până pe 25 august.", True, Route.RESCHEDULE, None),
        ("Număr greșit", True, Route.REVIEW, P.LOW),
        ("Asta e bătaie de joc!", True, Route.REVIEW, P.URGENT),
        ("Merg la ANPC cu screenshot-urile.", True, Route.REVIEW, P.URGENT),
    ],
)
async def test_replies_end_to_end(text: str, auto: bool, route_: Route, priority: P | None) -> None:
    decided = route(await OfflineAnalyzer().analyze(text), auto_reply_enabled=auto)
    assert (decided.route, decided.priority) == (route_, priority)


async def test_api_shape() -> None:
    result = await OfflineAnalyzer().analyze("Nu mai scrieți! Fac plângere la ANPC.")
    body = to_api(result, route(result, auto_reply_enabled=False))
    assert body["optOut"] is True
    assert body["route"] == "OPT_OUT"
    assert body["priority"] == "URGENT"
    assert body["intent"] == "OPT_OUT"
    assert body["needsReview"] is True
    assert isinstance(body["score"], int) and -100 <= body["score"] <= 100
    assert all(isinstance(reason, str) for reason in body["reasons"])
    assert {
        "score",
        "intent",
        "optOut",
        "route",
        "priority",
        "reasons",
        "optOutScope",
        "analyzer",
        "confidence",
    } <= set(body)
    assert body["analyzer"] == "offline"

    plain = await OfflineAnalyzer().analyze("Da, trimiteți oferta.")
    auto = to_api(plain, route(plain, auto_reply_enabled=True))
    assert auto["route"] == "AUTO_REPLY" and auto["priority"] is None and auto["optOut"] is False


def test_analysis_rejects_out_of_range_scores() -> None:
    with pytest.raises(ValueError):
        Analysis(score=101, intent=Intent.NEUTRAL)
    with pytest.raises(ValueError):
        Analysis(score=0, intent=Intent.NEUTRAL, confidence=1.5)
