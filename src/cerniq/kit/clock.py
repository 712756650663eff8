"""The business clock: when WhatsApp may send, and which calendar day a quota belongs to.

Business hours are a half-open window ``[start, end)`` of local wall time in the business
timezone (09:00 to 18:00 Europe/Bucharest by default), on business weekdays, excluding the
public holidays of a country (Romania by default, from the ``holidays`` package, which knows
Orthodox Easter, Whit Monday and the rest; the hard-coded list of the wider spec is wrong).

All arithmetic on openings and midnights is done in local wall time and only then localized
with ``zoneinfo``, so DST changes move the UTC instant, never the local hour. Every returned
instant is an aware datetime in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import holidays

if TYPE_CHECKING:
    from cerniq.config import Settings

__all__ = ["DEFAULT_TIMEZONE", "BusinessClock", "utcnow"]

DEFAULT_TIMEZONE = "Europe/Bucharest"
_WEEKDAYS: frozenset[int] = frozenset({0, 1, 2, 3, 4})
# Far more than any real calendar needs; only a misconfiguration (every day a holiday) hits it.
_MAX_SEARCH_DAYS = 3660


def utcnow() -> datetime:
    """The current instant as an aware UTC datetime."""
    return datetime.now(UTC)


@lru_cache(maxsize=128)
def _holidays_of(country: str, year: int) -> dict[date, str]:
    """Public holidays of ``country`` in ``year``, cached (the package computes them lazily)."""
    return dict(holidays.country_holidays(country, years=year).items())


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.tzinfo.utcoffset(at) is None:
        raise ValueError(f"naive datetime {at.isoformat()} given; pass an aware datetime")


@dataclass(frozen=True, slots=True)
class BusinessClock:
    """Business hours, business days and holidays of one timezone.

    ``days`` are weekday numbers, Monday = 0. ``holidays_country`` is an ISO country code for
    the ``holidays`` package, or ``None`` for no holidays. ``always_open`` (the demo) makes
    every instant open; dates and midnights still follow the timezone.
    """

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    start: time = time(9, 0)
    end: time = time(18, 0)
    days: frozenset[int] = _WEEKDAYS
    holidays_country: str | None = "RO"
    always_open: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", frozenset(self.days))
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("business hours are local wall times: pass naive times")
        if self.end <= self.start:
            raise ValueError("the business window must end after it starts")
        if not self.days or any(d < 0 or d > 6 for d in self.days):
            raise ValueError("business days must be weekday numbers 0 (Monday) to 6 (Sunday)")

    @classmethod
    def from_settings(cls, settings: Settings) -> BusinessClock:
        """The clock configured by ``CERNIQ_TIMEZONE``, ``CERNIQ_BUSINESS_*`` settings."""
        country = settings.business_holidays_country.strip()
        return cls(
            tz=ZoneInfo(settings.timezone),
            start=settings.business_hours_start,
            end=settings.business_hours_end,
            days=frozenset(settings.business_days),
            holidays_country=country.upper() or None,
            always_open=settings.business_hours_always_open,
        )

    # Calendar -----------------------------------------------------------------------------

    def local(self, at: datetime) -> datetime:
        """``at`` as a wall-clock datetime in the business timezone."""
        _require_aware(at)
        return at.astimezone(self.tz)

    def business_day(self, at: datetime) -> date:
        """The local calendar date of ``at`` in the business timezone: the quota day."""
        return self.local(at).date()

    def holiday_name(self, day: date) -> str | None:
        """The public holiday's name on ``day``, or ``None`` when it is not a holiday."""
        if self.holidays_country is None:
            return None
        return _holidays_of(self.holidays_country, day.year).get(day)

    def is_business_day(self, day: date) -> bool:
        """True when ``day`` is a business weekday and not a public holiday."""
        return day.weekday() in self.days and self.holiday_name(day) is None

    # Window -------------------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        """True when ``at`` falls inside business hours (``[start, end)`` on a business day)."""
        local = self.local(at)
        if self.always_open:
            return True
        return self.is_business_day(local.date()) and self.start <= local.time() < self.end

    def next_opening(self, at: datetime) -> datetime:
        """``at`` (in UTC) when open; otherwise the next instant business hours begin, in UTC."""
        local = self.local(at)
        if self.always_open or self.is_open(at):
            return at.astimezone(UTC)
        day = local.date()
        if not (self.is_business_day(day) and local.time() < self.start):
            day = self._next_business_day(day)
        return self._instant(day, self.start)

    def delay_until_open(self, at: datetime) -> timedelta:
        """How long a job created at ``at`` must wait for business hours (zero when open)."""
        return self.next_opening(at) - at.astimezone(UTC)

    def after_delay(self, start: datetime, delay: timedelta) -> datetime:
        """``start + delay``, moved forward to the next opening (follow-up scheduling), in UTC."""
        _require_aware(start)
        return self.next_opening(start.astimezone(UTC) + delay)

    # Midnight (the quota reset) -----------------------------------------------------------

    def local_midnight_after(self, at: datetime) -> datetime:
        """The next local 00:00 strictly after ``at`` in the business timezone, in UTC."""
        local = self.local(at)
        return self._instant(local.date() + timedelta(days=1), time(0, 0))

    def seconds_until_midnight(self, at: datetime) -> float:
        """Seconds from ``at`` to the next local midnight (23 h or 25 h on DST days)."""
        return (self.local_midnight_after(at) - at.astimezone(UTC)).total_seconds()

    # Reporting ----------------------------------------------------------------------------

    def explain(self, at: datetime) -> dict[str, Any]:
        """The business-hours verdict for ``at`` in the shape of the spec's hours check."""
        local = self.local(at)
        holiday = self.holiday_name(local.date())
        return {
            "isWithinHours": self.is_open(at),
            "localTime": local.isoformat(),
            "timezone": self.tz.key,
            "isWeekend": local.weekday() not in self.days,
            "isHoliday": holiday is not None,
            "holidayName": holiday,
            "nextAvailableSlot": self.next_opening(at).isoformat(),
        }

    # Internals ----------------------------------------------------------------------------

    def _next_business_day(self, day: date) -> date:
        for offset in range(1, _MAX_SEARCH_DAYS + 1):
            candidate = day + timedelta(days=offset)
            if self.is_business_day(candidate):
                return candidate
        raise RuntimeError(f"no business day within {_MAX_SEARCH_DAYS} days after {day}")

    def _instant(self, day: date, wall: time) -> datetime:
        # fold=0: an ambiguous wall time (DST end) means its first occurrence; a wall time in
        # a DST gap resolves with the pre-transition offset, i.e. just after the gap.
        return datetime.combine(day, wall, tzinfo=self.tz).astimezone(UTC)
