"""Reply triage benchmark: the offline analyzer against a naive keyword baseline, same labelled set.

Run: ``python bench/bench_triage.py`` (add ``--split holdout2`` to restrict to one split).

Prints, for the offline analyzer and for the baseline: intent accuracy overall, per split, per
language and per intent; a confusion matrix; opt-out precision and recall; opt-out scope
agreement; review-routing agreement (route, review flag, and priority at least the labelled
minimum); messages per second. Asserts nothing about time.

The labelled set (``cerniq/replies/data/labelled_replies.jsonl``) has four splits:

- ``dev`` / ``test``: written first; the lexicon was written while reading them, so their
  figures are in-sample.
- ``holdout1``: written blind afterwards. Its first measurement was 75.4% intent accuracy and
  15/22 opt-outs caught (one missed opt-out was even read as INTERESTED); it then drove one
  round of structural fixes (cessation verbs, negation guard on weak interest words), so it is
  no longer blind.
- ``holdout2``: written blind after those fixes and never tuned on: the honest out-of-sample
  figure (first measurement: 89.4% intent, 19/19 opt-outs, no false opt-out).

Baseline: the wider spec's HITL keyword rule (digest §7): a Romanian substring match on
``urgent, problema, reclamație, nemulțumit, dezabonare, stop, anulare, preț, discount, manager,
șef, director, avocat`` opens a HIGH review, everything else a MEDIUM review; for intent and
opt-out figures it is read generously (``stop``/``dezabonare`` -> OPT_OUT, complaint words ->
COMPLAINT, ``preț``/``discount`` -> INTERESTED, else NEUTRAL), although the spec itself never
records an opt-out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TypedDict

from cerniq.models.enums import ReviewPriority
from cerniq.replies import Intent, OfflineAnalyzer, Route, route

PRIORITY_RANK: dict[str | None, int] = {None: -1, "LOW": 0, "MEDIUM": 1, "HIGH": 2, "URGENT": 3}
KEYWORDS = [
    "urgent",
    "problema",
    "reclamație",
    "nemulțumit",
    "dezabonare",
    "stop",
    "anulare",
    "preț",
    "discount",
    "manager",
    "șef",
    "director",
    "avocat",
]
INTENTS = [i.value for i in Intent]


class Row(TypedDict):
    text: str
    intent: str
    opt_out: bool
    opt_out_scope: str | None
    complaint: bool
    legal_threat: bool
    route: str
    review: bool
    min_priority: str | None
    lang: str
    diacritics: bool
    split: str


@dataclass(frozen=True)
class Prediction:
    intent: str
    opt_out: bool
    scope: str | None
    route: str
    needs_review: bool
    priority: str | None


def load() -> list[Row]:
    text = resources.files("cerniq.replies").joinpath("data/labelled_replies.jsonl").read_text("utf-8")
    rows: list[Row] = [json.loads(line) for line in text.splitlines() if line.strip()]
    return rows


def offline_predict(texts: Sequence[str], auto_reply_enabled: bool) -> list[Prediction]:
    analyzer = OfflineAnalyzer()

    async def run() -> list[Prediction]:
        out: list[Prediction] = []
        for text in texts:
            a = await analyzer.analyze(text)
            r = route(a, auto_reply_enabled=auto_reply_enabled)
            out.append(
                Prediction(
                    a.intent.value,
                    a.opt_out,
                    a.opt_out_scope,
                    r.route.value,
                    r.needs_review,
                    r.priority.value if r.priority else None,
                )
            )
        return out

    return asyncio.run(run())


def keyword_predict(texts: Sequence[str], auto_reply_enabled: bool) -> list[Prediction]:
    del auto_reply_enabled  # the keyword rule never answers automatically
    out: list[Prediction] = []
    for text in texts:
        lowered = text.lower()
        hits = [k for k in KEYWORDS if k in lowered]
        if any(k in ("stop", "dezabonare") for k in hits):
            intent, opt_out = Intent.OPT_OUT.value, True
        elif any(k in ("reclamație", "nemulțumit", "avocat", "problema") for k in hits):
            intent, opt_out = Intent.COMPLAINT.value, False
        elif any(k in ("preț", "discount") for k in hits):
            intent, opt_out = Intent.INTERESTED.value, False
        else:
            intent, opt_out = Intent.NEUTRAL.value, False
        priority = ReviewPriority.HIGH.value if hits else ReviewPriority.MEDIUM.value
        out.append(
            Prediction(intent, opt_out, "CHANNEL" if opt_out else None, Route.REVIEW.value, True, priority)
        )
    return out


def pct(n: int, d: int) -> str:
    return f"{100 * n / d:5.1f}% ({n}/{d})" if d else "   n/a"


def report(name: str, rows: list[Row], preds: list[Prediction], seconds: float) -> None:
    n = len(rows)
    print(f"\n=== {name} ===")
    print(f"messages/second: {n / seconds:,.0f}  ({n} messages in {seconds * 1000:.1f} ms)")
    correct = [p.intent == r["intent"] for r, p in zip(rows, preds, strict=True)]
    print(f"intent accuracy, all: {pct(sum(correct), n)}")
    for key in ("split", "lang"):
        groups: dict[str, list[bool]] = defaultdict(list)
        for r, ok in zip(rows, correct, strict=True):
            groups[str(r[key])].append(ok)
        for value in sorted(groups):
            print(f"  {key}={value:<9} {pct(sum(groups[value]), len(groups[value]))}")
    ro_d = [ok for r, ok in zip(rows, correct, strict=True) if r["lang"] == "ro" and r["diacritics"]]
    ro_nd = [ok for r, ok in zip(rows, correct, strict=True) if r["lang"] == "ro" and not r["diacritics"]]
    print(f"  ro with diacritics     {pct(sum(ro_d), len(ro_d))}")
    print(f"  ro without diacritics  {pct(sum(ro_nd), len(ro_nd))}")

    print("per intent (precision / recall):")
    for intent in INTENTS:
        tp = sum(1 for r, p in zip(rows, preds, strict=True) if p.intent == intent == r["intent"])
        predicted = sum(1 for p in preds if p.intent == intent)
        labelled = sum(1 for r in rows if r["intent"] == intent)
        print(f"  {intent:<15} P {pct(tp, predicted):>16}   R {pct(tp, labelled):>16}")

    print("confusion matrix (rows: labelled, columns: predicted):")
    short = {i: i[:6] for i in INTENTS}
    print("  " + " " * 15 + " ".join(f"{short[i]:>6}" for i in INTENTS))
    matrix = Counter((str(r["intent"]), p.intent) for r, p in zip(rows, preds, strict=True))
    for actual in INTENTS:
        print(f"  {actual:<15}" + " ".join(f"{matrix[(actual, pred)]:>6}" for pred in INTENTS))

    tp = sum(1 for r, p in zip(rows, preds, strict=True) if r["opt_out"] and p.opt_out)
    fp = sum(1 for r, p in zip(rows, preds, strict=True) if not r["opt_out"] and p.opt_out)
    fn = sum(1 for r, p in zip(rows, preds, strict=True) if r["opt_out"] and not p.opt_out)
    print(f"opt-out precision: {pct(tp, tp + fp)}   recall: {pct(tp, tp + fn)}")
    scoped = [(r, p) for r, p in zip(rows, preds, strict=True) if r["opt_out"] and p.opt_out]
    same_scope = sum(r["opt_out_scope"] == p.scope for r, p in scoped)
    print(f"opt-out scope (CHANNEL/ALL) agreement: {pct(same_scope, len(scoped))}")
    missed = [str(r["text"]) for r, p in zip(rows, preds, strict=True) if r["opt_out"] and not p.opt_out]
    for text in missed[:5]:
        print(f"  missed opt-out: {text!r}")

    def routing_ok(r: Row, p: Prediction) -> bool:
        if p.route != r["route"] or p.needs_review != r["review"]:
            return False
        if not r["review"]:
            return True
        return PRIORITY_RANK[p.priority] >= PRIORITY_RANK[r["min_priority"]]

    agree = [routing_ok(r, p) for r, p in zip(rows, preds, strict=True)]
    review_flag = [p.needs_review == r["review"] for r, p in zip(rows, preds, strict=True)]
    over = sum(
        1
        for r, p in zip(rows, preds, strict=True)
        if r["review"] and p.needs_review and PRIORITY_RANK[p.priority] > PRIORITY_RANK[r["min_priority"]]
    )
    print(f"routing agreement (route + review flag + priority >= labelled minimum): {pct(sum(agree), n)}")
    print(f"review-flag agreement: {pct(sum(review_flag), n)}; reviews above the labelled minimum: {over}")
    wrong_auto = sum(
        1 for r, p in zip(rows, preds, strict=True) if p.route == "AUTO_REPLY" and r["route"] != "AUTO_REPLY"
    )
    wrong_close = sum(
        1 for r, p in zip(rows, preds, strict=True) if p.route == "CLOSE" and r["route"] != "CLOSE"
    )
    print(f"costly errors: auto-answered but should not {wrong_auto}; closed but should not {wrong_close}")


def timed(
    fn: Callable[[Sequence[str], bool], list[Prediction]], texts: Sequence[str]
) -> tuple[list[Prediction], float]:
    fn(texts[:20], True)  # warm-up (regex compilation, imports)
    best = float("inf")
    preds: list[Prediction] = []
    for _ in range(3):
        started = time.perf_counter()
        preds = fn(texts, True)
        best = min(best, time.perf_counter() - started)
    return preds, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--split", help="only this split (dev, test, holdout1, holdout2)")
    args = parser.parse_args()
    rows = load()
    if args.split:
        rows = [r for r in rows if r["split"] == args.split]
    texts = [str(r["text"]) for r in rows]
    counts = Counter(str(r["intent"]) for r in rows)
    print(f"labelled replies: {len(rows)}; " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print("labels assume auto-replies enabled (>= 50 -> AUTO_REPLY)")
    offline, offline_s = timed(offline_predict, texts)
    baseline, baseline_s = timed(keyword_predict, texts)
    report("offline analyzer", rows, offline, offline_s)
    report("baseline: digest §7 substring keywords", rows, baseline, baseline_s)


if __name__ == "__main__":
    main()
