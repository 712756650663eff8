"""Jitter between two WhatsApp sends of one phone (30 s + uniform 0–120 s by default).

The delay is applied as a queue delay between the phone's jobs, never as a sleep that holds a
worker or a lock.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cerniq.config import Settings

__all__ = ["jitter_delay"]

_rng = random.Random()


def jitter_delay(settings: Settings, rng: random.Random | None = None) -> timedelta:
    """``jitter_base + uniform(0, jitter_spread)``; either may be zero.

    Pass ``rng`` (a seeded ``random.Random``) for reproducible delays in tests and benchmarks.
    """
    spread = settings.jitter_spread.total_seconds()
    extra = (rng or _rng).uniform(0.0, spread) if spread > 0 else 0.0
    return settings.jitter_base + timedelta(seconds=extra)
