"""LLM provider: an OpenAI-compatible chat-completions client for reply triage and answer drafts.

Optional: without ``CERNIQ_LLM_BASE_URL`` and ``CERNIQ_LLM_MODEL`` the offline analyzer and the
template drafter of :mod:`cerniq.replies` serve.
"""

from cerniq.providers.llm.client import (
    LLMVerdict,
    OpenAICompatibleAnalyzer,
    build_analyzer,
    build_drafter,
    fence,
)

__all__ = ["LLMVerdict", "OpenAICompatibleAnalyzer", "build_analyzer", "build_drafter", "fence"]
