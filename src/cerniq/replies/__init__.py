"""Reply handling: triage of inbound replies (intent, sentiment, opt-out), routing, answer drafts.

- :mod:`cerniq.replies.analyzer`: the :class:`ReplyAnalyzer` Protocol, :class:`Analysis`,
  :func:`route` (DESIGN §9 sentiment routing) and :func:`to_api`.
- :mod:`cerniq.replies.offline`: :class:`OfflineAnalyzer`, the built-in Romanian/English analyzer.
- :mod:`cerniq.replies.responder`: template answer drafts and the :class:`ResponseDrafter` Protocol.
- The LLM adapter lives in :mod:`cerniq.providers.llm` (``build_analyzer(settings)``).
"""

from cerniq.replies.analyzer import (
    AUTO_REPLY_THRESHOLD,
    Analysis,
    AnalysisContext,
    Intent,
    ReplyAnalyzer,
    Route,
    Routing,
    route,
    to_api,
)
from cerniq.replies.offline import OfflineAnalyzer
from cerniq.replies.responder import NoDraftForOptOutError, ResponseDrafter, TemplateDrafter, draft_reply

__all__ = [
    "AUTO_REPLY_THRESHOLD",
    "Analysis",
    "AnalysisContext",
    "Intent",
    "NoDraftForOptOutError",
    "OfflineAnalyzer",
    "ReplyAnalyzer",
    "ResponseDrafter",
    "Route",
    "Routing",
    "TemplateDrafter",
    "draft_reply",
    "route",
    "to_api",
]
