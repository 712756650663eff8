"""Sentiment bands of a reply's score (-100..100), as the spec's UI shows them: >= 50 positive,
0..49 neutral, -50..-1 negative, below -50 very negative.

One definition for every figure that says "positive": triage, template variant statistics and
analytics all count a reply as positive from :data:`POSITIVE_REPLY_SCORE`.
"""

from __future__ import annotations

from typing import Final

POSITIVE_REPLY_SCORE: Final = 50
