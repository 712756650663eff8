"""WhatsApp quota: the Redis guardian (reserve/release in Lua) and send jitter.

Business hours and the quota day live in :mod:`cerniq.kit.clock`.
"""

from cerniq.quota.guardian import (
    DEFAULT_TTL_SECONDS,
    QuotaGuardian,
    Reservation,
    ReservationReason,
    ReservationRequest,
    followup_key,
    quota_key,
    reservations_key,
)
from cerniq.quota.jitter import jitter_delay

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "QuotaGuardian",
    "Reservation",
    "ReservationReason",
    "ReservationRequest",
    "followup_key",
    "jitter_delay",
    "quota_key",
    "reservations_key",
]
