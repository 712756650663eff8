"""The quota guardian: atomic WhatsApp quota reservations in Redis, one Lua script per operation.

Keys, per phone and business day (the local date in Europe/Bucharest, from
``BusinessClock.business_day()``), all with a 48 h TTL:

- ``quota:wa:{phone_id}:{YYYY-MM-DD}``: new contacts spent that day, a plain integer string.
  The runbook reads it with ``GET`` and counts a day's keys with ``KEYS "quota:wa:*:{day}"``,
  so nothing else may match that pattern.
- ``quota:fu:wa:{phone_id}:{YYYY-MM-DD}``: follow-ups sent that day (no new-contact cost, but a
  safety cap per phone per day).
- ``quota:res:wa:{phone_id}:{YYYY-MM-DD}``: hash ``reservation_id -> cost``; it makes a
  reservation idempotent, so a retried or recovered job never spends twice, and lets a definite
  send failure give the quota back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Final, Literal, cast
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "QuotaGuardian",
    "Reservation",
    "ReservationReason",
    "ReservationRequest",
    "followup_key",
    "quota_key",
    "reservations_key",
]

DEFAULT_TTL_SECONDS: Final = 172_800  # 48 h, the runbook's EX
BATCH: Final = 200  # reservations per script call in reserve_many (keeps each call short)

ReservationReason = Literal["QUOTA_OK", "ALREADY_RESERVED", "QUOTA_EXCEEDED", "FOLLOWUP_CAP_EXCEEDED"]
_REASONS: Final[frozenset[str]] = frozenset(
    {"QUOTA_OK", "ALREADY_RESERVED", "QUOTA_EXCEEDED", "FOLLOWUP_CAP_EXCEEDED"}
)


def _day(day: date) -> str:
    # A datetime is a date too; its isoformat() would put the time in the key.
    if isinstance(day, datetime):
        raise TypeError("pass the business day as a date (BusinessClock.business_day()), not a datetime")
    return day.isoformat()


def _phone(phone_id: str) -> str:
    if not phone_id or ":" in phone_id or any(c.isspace() for c in phone_id):
        raise ValueError(f"invalid phone id {phone_id!r}")
    return phone_id


def quota_key(phone_id: str, day: date) -> str:
    """``quota:wa:{phone_id}:{YYYY-MM-DD}``: the runbook's new-contact counter."""
    return f"quota:wa:{_phone(phone_id)}:{_day(day)}"


def followup_key(phone_id: str, day: date) -> str:
    """``quota:fu:wa:{phone_id}:{YYYY-MM-DD}``: the follow-up counter (outside the runbook pattern)."""
    return f"quota:fu:wa:{_phone(phone_id)}:{_day(day)}"


def reservations_key(phone_id: str, day: date) -> str:
    """``quota:res:wa:{phone_id}:{YYYY-MM-DD}``: hash of reservation ids to their cost."""
    return f"quota:res:wa:{_phone(phone_id)}:{_day(day)}"


@lru_cache(maxsize=4096)
def _keys(phone_id: str, day: date) -> tuple[str, str, str]:
    """The three keys of a phone and day (validated and built once: reservations come in bursts)."""
    phone, iso = _phone(phone_id), _day(day)
    return (f"quota:wa:{phone}:{iso}", f"quota:fu:wa:{phone}:{iso}", f"quota:res:wa:{phone}:{iso}")


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _int(value: str | bytes | int | None) -> int:
    return 0 if value is None else int(value)


@lru_cache(maxsize=8)
def _load_script(name: str) -> str:
    # read once per process: a guardian is built per send job
    return resources.files("cerniq.quota").joinpath(name).read_text(encoding="utf-8")


_scripts: WeakKeyDictionary[Redis, tuple[AsyncScript, AsyncScript]] = WeakKeyDictionary()


def _registered(redis: Redis) -> tuple[AsyncScript, AsyncScript]:
    """The reserve and release scripts of ``redis``, registered once per client (registering
    hashes the script text, and a guardian is built per send job)."""
    scripts = _scripts.get(redis)
    if scripts is None:
        scripts = (
            redis.register_script(_load_script("reserve.lua")),
            redis.register_script(_load_script("release.lua")),
        )
        _scripts[redis] = scripts
    return scripts


@dataclass(frozen=True, slots=True)
class Reservation:
    """The guardian's answer to one reservation request.

    ``used`` and ``followups_used`` are the day's counters after the call; ``cost_applied`` is
    what this call spent (0 for ``ALREADY_RESERVED`` and for refusals).
    """

    allowed: bool
    reason: ReservationReason
    used: int
    limit: int
    remaining: int
    followups_used: int
    cost_applied: int


@dataclass(frozen=True, slots=True)
class ReservationRequest:
    """One reservation of a batch for :meth:`QuotaGuardian.reserve_many` (same fields as ``reserve``)."""

    phone_id: str
    day: date
    reservation_id: str
    cost: int
    limit: int
    followup_cap: int


def _reservation(request: ReservationRequest, raw: str | bytes) -> Reservation:
    # reserve.lua answers one line: "<allowed> <reason> <used> <followups> <cost_applied>".
    allowed, reason, used, followups, applied = _text(raw).split(" ")
    if reason not in _REASONS:  # pragma: no cover - the script returns only these
        raise RuntimeError(f"unexpected reserve.lua reply {raw!r}")
    used_int = int(used)
    return Reservation(
        allowed=allowed == "1",
        reason=cast(ReservationReason, reason),
        used=used_int,
        limit=request.limit,
        remaining=max(0, request.limit - used_int),
        followups_used=int(followups),
        cost_applied=int(applied),
    )


class QuotaGuardian:
    """Reserves, releases and reads per-phone daily WhatsApp quota in Redis.

    Works with clients created with or without ``decode_responses``. Scripts are registered
    once and run with EVALSHA (reloaded automatically after ``SCRIPT FLUSH`` or a restart).
    """

    def __init__(self, redis: Redis, *, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._redis = redis
        self.ttl_seconds = ttl_seconds
        self._reserve, self._release = _registered(redis)

    async def reserve(
        self,
        *,
        phone_id: str,
        day: date,
        reservation_id: str,
        cost: int,
        limit: int,
        followup_cap: int,
    ) -> Reservation:
        """Atomically reserve quota for one send on ``phone_id`` on business day ``day``.

        ``cost`` is 1 for a new contact (allowed while ``used + 1 <= limit``) and 0 for a
        follow-up (allowed while the day's follow-ups are below ``followup_cap``; the
        new-contact counter is untouched). A ``reservation_id`` already recorded for this
        phone and day is allowed again as ``ALREADY_RESERVED`` without spending anything.
        """
        request = ReservationRequest(phone_id, day, reservation_id, cost, limit, followup_cap)
        keys, args = self._reserve_call(request)
        return _reservation(request, await self._reserve(keys=keys, args=args))

    async def reserve_many(self, requests: Sequence[ReservationRequest]) -> list[Reservation]:
        """Run several reservations with one script call per :data:`BATCH` requests.

        Each reservation has exactly the semantics of :meth:`reserve` and they are applied in
        order; a batch of up to :data:`BATCH` is atomic as a whole (one script run). The batch
        goes as the distinct keys of its phones and days plus one text argument with a line per
        reservation, so the client encodes a few arguments per batch instead of eight per
        reservation (which is what bounds a Python client's throughput).
        """
        results: list[Reservation] = []
        for start in range(0, len(requests), BATCH):
            chunk = requests[start : start + BATCH]
            keys: list[str] = []
            slots: dict[tuple[str, date], int] = {}
            lines: list[str] = []
            for request in chunk:
                self._check(request)
                slot = slots.get((request.phone_id, request.day))
                if slot is None:
                    keys += _keys(request.phone_id, request.day)
                    slot = slots[(request.phone_id, request.day)] = len(slots) + 1
                lines.append(
                    f"{slot} {request.reservation_id} {request.cost} {request.limit} {request.followup_cap}\n"
                )
            raw = await self._reserve(keys=keys, args=["BATCH", self.ttl_seconds, "".join(lines)])
            replies = _text(raw).split("\n")
            results += [_reservation(request, line) for request, line in zip(chunk, replies, strict=True)]
        return results

    @staticmethod
    def _check(request: ReservationRequest) -> None:
        if request.cost not in (0, 1):
            raise ValueError("cost must be 0 (follow-up) or 1 (new contact)")
        if request.limit < 0 or request.followup_cap < 0:
            raise ValueError("limit and followup_cap cannot be negative")
        if not request.reservation_id or any(c.isspace() for c in request.reservation_id):
            raise ValueError("reservation_id cannot be empty or contain spaces")

    def _reserve_call(self, request: ReservationRequest) -> tuple[Sequence[str], list[str | int]]:
        self._check(request)
        args: list[str | int] = [
            request.reservation_id,
            int(request.cost),
            int(request.limit),
            int(request.followup_cap),
            self.ttl_seconds,
        ]
        return _keys(request.phone_id, request.day), args

    async def release(self, *, phone_id: str, day: date, reservation_id: str) -> bool:
        """Give back a reservation after a definite send failure.

        Pass the same business day the reservation was made on (store it with the send).
        Removes the reservation and decrements its counter (never below 0). Returns False,
        changing nothing, when no such reservation exists. Ambiguous failures must not release.
        """
        raw = await self._release(keys=_keys(phone_id, day), args=[reservation_id])
        return bool(int(raw))

    async def usage(self, phone_id: str, day: date) -> int:
        """New contacts spent by ``phone_id`` on ``day`` (0 when the key is absent)."""
        value = await self._redis.get(quota_key(phone_id, day))
        return _int(value)

    async def usage_many(self, phone_ids: Iterable[str], day: date) -> dict[str, int]:
        """New contacts spent on ``day`` by each phone, read with one MGET."""
        phones = list(phone_ids)
        if not phones:
            return {}
        values = await self._redis.mget([quota_key(p, day) for p in phones])
        return {phone: _int(value) for phone, value in zip(phones, values, strict=True)}

    async def usage_and_reserved(
        self, phone_ids: Iterable[str], day: date, candidates: Mapping[str, Collection[str]]
    ) -> tuple[dict[str, int], set[str]]:
        """New contacts spent on ``day`` by each phone, and which of ``candidates`` (reservation
        ids per phone) already hold a reservation there, read together in one MULTI: a send job
        reserves and only then commits its row as SENDING, so a caller counting QUEUED rows as
        promised quota must not count those a second time."""
        phones = list(phone_ids)
        if not phones:
            return {}, set()
        asked = [(phone, list(ids)) for phone, ids in candidates.items() if ids]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.mget([quota_key(p, day) for p in phones])
            for phone, ids in asked:
                pipe.hmget(reservations_key(phone, day), ids)
            replies = await pipe.execute()
        used = {phone: _int(value) for phone, value in zip(phones, replies[0], strict=True)}
        reserved = {
            rid
            for (_phone_id, ids), costs in zip(asked, replies[1:], strict=True)
            for rid, cost in zip(ids, costs, strict=True)
            if cost is not None
        }
        return used, reserved

    async def followups(self, phone_id: str, day: date) -> int:
        """Follow-ups sent by ``phone_id`` on ``day``."""
        value = await self._redis.get(followup_key(phone_id, day))
        return _int(value)

    async def set_usage(self, phone_id: str, day: date, value: int) -> None:
        """Overwrite the new-contact counter (resync from PostgreSQL, runbook 3.3 manual reset).

        Reservations already recorded are kept: releasing one later still decrements.
        """
        if value < 0:
            raise ValueError("usage cannot be negative")
        await self._redis.set(quota_key(phone_id, day), value, ex=self.ttl_seconds)

    async def reservations(self, phone_id: str, day: date) -> dict[str, int]:
        """The reservations recorded for ``phone_id`` on ``day``: reservation id -> cost."""
        raw = await cast(
            "Awaitable[dict[str | bytes, str | bytes]]",
            self._redis.hgetall(reservations_key(phone_id, day)),
        )
        return {_text(k): int(v) for k, v in raw.items()}

    async def clear_day(self, phone_id: str, day: date) -> int:
        """Delete the day's counter, follow-up counter and reservations; returns keys deleted."""
        return int(await self._redis.delete(*_keys(phone_id, day)))
