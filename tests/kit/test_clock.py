"""The business clock: Bucharest hours, Romanian holidays, DST, the quota day and midnight."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from cerniq.config import Settings
from cerniq.kit.clock import BusinessClock, utcnow

BUC = ZoneInfo("Europe/Bucharest")
CLOCK = BusinessClock()


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=BUC)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


# --- the window -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "is_open"),
    [
        (local(2026, 11, 26, 7, 0), False),  # Thursday, before opening
        (local(2026, 11, 26, 8, 59, 59), False),
        (local(2026, 11, 26, 9, 0), True),  # opening is inclusive
        (local(2026, 11, 26, 12, 0), True),
        (local(2026, 11, 26, 17, 59, 59), True),
        (local(2026, 11, 26, 18, 0), False),  # closing is exclusive
        (local(2026, 11, 26, 19, 0), False),
        (local(2026, 11, 28, 10, 0), False),  # Saturday
        (local(2026, 11, 29, 10, 0), False),  # Sunday
    ],
)
def test_business_window(at: datetime, is_open: bool) -> None:
    assert CLOCK.is_open(at) is is_open


@pytest.mark.parametrize(
    ("at", "opening"),
    [
        # Thursday 07:00 -> same day 09:00 (EET, +02:00)
        (local(2026, 11, 26, 7, 0), utc(2026, 11, 26, 7, 0)),
        # Thursday 19:00 -> Friday 09:00
        (local(2026, 11, 26, 19, 0), utc(2026, 11, 27, 7, 0)),
        # Thursday 18:00 exactly -> Friday 09:00
        (local(2026, 11, 26, 18, 0), utc(2026, 11, 27, 7, 0)),
        # Saturday and Sunday -> Wednesday 2 Dec: Monday 30 Nov and Tuesday 1 Dec are holidays
        (local(2026, 11, 28, 10, 0), utc(2026, 12, 2, 7, 0)),
        (local(2026, 11, 29, 23, 59), utc(2026, 12, 2, 7, 0)),
        # Friday 18:30 before the St Andrew / National Day pair -> Wednesday 09:00
        (local(2026, 11, 27, 18, 30), utc(2026, 12, 2, 7, 0)),
        # an ordinary Friday evening -> Monday 09:00
        (local(2026, 11, 20, 18, 30), utc(2026, 11, 23, 7, 0)),
    ],
)
def test_next_opening_skips_evenings_weekends_and_holidays(at: datetime, opening: datetime) -> None:
    assert not CLOCK.is_open(at)
    got = CLOCK.next_opening(at)
    assert got == opening
    assert got.tzinfo is UTC
    assert CLOCK.is_open(got)


def test_next_opening_when_open_is_the_same_instant() -> None:
    at = local(2026, 11, 26, 10, 15)
    got = CLOCK.next_opening(at)
    assert got == at
    assert got.tzinfo is UTC
    assert CLOCK.delay_until_open(at) == timedelta(0)


def test_delay_until_open_is_the_wait_for_the_window() -> None:
    assert CLOCK.delay_until_open(local(2026, 11, 26, 7, 30)) == timedelta(hours=1, minutes=30)


# --- Romanian public holidays -----------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "name_part"),
    [
        (date(2026, 1, 1), "New Year"),
        (date(2026, 1, 2), "New Year"),
        (date(2026, 1, 6), "Epiphany"),
        (date(2026, 1, 7), "John"),
        (date(2025, 1, 24), "Unification"),  # a Friday in 2025
        (date(2026, 4, 10), "Good Friday"),  # Orthodox, missing from the spec's list
        (date(2026, 4, 13), "Easter"),  # Orthodox Easter Monday 2026
        (date(2026, 5, 1), "Labo"),
        (date(2026, 6, 1), "Pentecost"),  # Whit Monday and Children's Day
        (date(2026, 11, 30), "Andrew"),
        (date(2026, 12, 1), "National"),
        (date(2026, 12, 25), "Christmas"),
        (date(2027, 4, 30), "Good Friday"),  # Orthodox Easter 2027 is 2 May
        (date(2027, 5, 3), "Easter"),
        (date(2027, 6, 21), "Pentecost"),
    ],
)
def test_romanian_holidays_are_closed(day: date, name_part: str) -> None:
    noon = datetime.combine(day, time(12, 0), tzinfo=BUC)
    assert not CLOCK.is_open(noon)
    name = CLOCK.holiday_name(day)
    assert name is not None
    assert name_part.lower() in name.lower()
    info = CLOCK.explain(noon)
    assert info["isHoliday"] is True
    assert info["holidayName"] == name


def test_days_the_spec_list_wrongly_calls_holidays_are_open() -> None:
    # The wider spec's hard-coded list has 14 Apr and 2 Jun 2026; neither is a holiday.
    assert CLOCK.is_open(local(2026, 4, 14, 9, 0))
    assert CLOCK.is_open(local(2026, 6, 2, 9, 0))


def test_easter_2026_weekend() -> None:
    # Thursday 9 Apr after hours: Good Friday, the weekend and Easter Monday are all closed.
    assert CLOCK.next_opening(local(2026, 4, 9, 18, 0)) == utc(2026, 4, 14, 6, 0)
    assert not CLOCK.is_open(local(2026, 4, 13, 10, 0))
    assert CLOCK.next_opening(local(2026, 4, 13, 10, 0)) == utc(2026, 4, 14, 6, 0)


def test_easter_2027_weekend() -> None:
    # Good Friday 30 Apr, 1 May (Saturday), Easter 2 May, Easter Monday 3 May 2027.
    assert CLOCK.next_opening(local(2027, 4, 29, 18, 0)) == utc(2027, 5, 4, 6, 0)


def test_new_year_2027() -> None:
    # Thursday 31 Dec 2026 evening -> 1 Jan (Fri, holiday), weekend -> Monday 4 Jan 2027.
    assert CLOCK.next_opening(local(2026, 12, 31, 18, 0)) == utc(2027, 1, 4, 7, 0)


def test_christmas_2026() -> None:
    # Thursday 24 Dec evening -> 25 Dec (Fri), weekend -> Monday 28 Dec.
    assert CLOCK.next_opening(local(2026, 12, 24, 18, 0)) == utc(2026, 12, 28, 7, 0)


# --- DST ------------------------------------------------------------------------------


def test_spring_forward_friday_to_monday() -> None:
    # DST starts Sunday 29 Mar 2026: Friday evening is +02:00, Monday 09:00 is +03:00.
    friday = local(2026, 3, 27, 18, 30)
    assert friday.utcoffset() == timedelta(hours=2)
    opening = CLOCK.next_opening(friday)
    assert opening == utc(2026, 3, 30, 6, 0)
    assert opening.astimezone(BUC).time() == time(9, 0)


def test_fall_back_friday_to_monday() -> None:
    # DST ends Sunday 25 Oct 2026: Friday evening is +03:00, Monday 09:00 is +02:00.
    friday = local(2026, 10, 23, 18, 30)
    assert friday.utcoffset() == timedelta(hours=3)
    opening = CLOCK.next_opening(friday)
    assert opening == utc(2026, 10, 26, 7, 0)
    assert opening.astimezone(BUC).time() == time(9, 0)


def test_inputs_in_utc_are_read_in_local_time() -> None:
    # 06:30Z in summer is 09:30 in Bucharest (open); 05:30Z is 08:30 (closed).
    assert CLOCK.is_open(utc(2026, 7, 1, 6, 30))
    assert not CLOCK.is_open(utc(2026, 7, 1, 5, 30))
    # 15:30Z in summer is 18:30 local: closed although 15:30 looks like business hours.
    assert not CLOCK.is_open(utc(2026, 7, 1, 15, 30))
    assert CLOCK.next_opening(utc(2026, 7, 1, 15, 30)) == utc(2026, 7, 2, 6, 0)


# --- the quota day and midnight ------------------------------------------------------


def test_business_day_is_the_local_date() -> None:
    # 22:30Z on 25 Nov is 00:30 on 26 Nov in Bucharest: the quota day is the 26th.
    assert CLOCK.business_day(utc(2026, 11, 25, 22, 30)) == date(2026, 11, 26)
    assert CLOCK.business_day(utc(2026, 11, 25, 21, 59)) == date(2026, 11, 25)


def test_local_midnight_after() -> None:
    assert CLOCK.local_midnight_after(local(2026, 11, 26, 15, 0)) == utc(2026, 11, 26, 22, 0)
    # strictly after: at midnight, the next one
    assert CLOCK.local_midnight_after(local(2026, 11, 26)) == utc(2026, 11, 26, 22, 0)
    assert CLOCK.local_midnight_after(local(2026, 7, 1, 23, 59)) == utc(2026, 7, 1, 21, 0)


def test_seconds_until_midnight_across_dst() -> None:
    assert CLOCK.seconds_until_midnight(local(2026, 11, 26, 23, 0)) == 3600
    assert CLOCK.seconds_until_midnight(local(2026, 11, 26)) == 86400
    assert CLOCK.seconds_until_midnight(local(2026, 3, 29)) == 23 * 3600  # spring forward
    assert CLOCK.seconds_until_midnight(local(2026, 10, 25)) == 25 * 3600  # fall back


# --- follow-up scheduling -------------------------------------------------------------


def test_after_delay_lands_in_business_hours() -> None:
    # Wednesday 10:00 + 72 h = Saturday 10:00 -> Monday 09:00
    assert CLOCK.after_delay(local(2026, 11, 18, 10, 0), timedelta(hours=72)) == utc(2026, 11, 23, 7, 0)
    # Friday 17:00 + 72 h = Monday 17:00, open: kept as is
    assert CLOCK.after_delay(local(2026, 11, 20, 17, 0), timedelta(hours=72)) == utc(2026, 11, 23, 15, 0)
    # Thursday 17:00 + 2 h = 19:00 -> Friday 09:00
    assert CLOCK.after_delay(local(2026, 11, 19, 17, 0), timedelta(hours=2)) == utc(2026, 11, 20, 7, 0)
    # Into the DST change: Friday 27 Mar 12:00 + 48 h -> Sunday -> Monday 09:00 EEST (06:00Z)
    assert CLOCK.after_delay(local(2026, 3, 27, 12, 0), timedelta(hours=48)) == utc(2026, 3, 30, 6, 0)


# --- explain, always open, configuration ---------------------------------------------


def test_explain_a_saturday() -> None:
    info = CLOCK.explain(utc(2026, 11, 28, 8, 0))
    assert info == {
        "isWithinHours": False,
        "localTime": "2026-11-28T10:00:00+02:00",
        "timezone": "Europe/Bucharest",
        "isWeekend": True,
        "isHoliday": False,
        "holidayName": None,
        "nextAvailableSlot": "2026-12-02T07:00:00+00:00",
    }


def test_always_open() -> None:
    demo = BusinessClock(always_open=True)
    sunday_night = local(2026, 11, 29, 3, 0)
    assert demo.is_open(sunday_night)
    assert demo.is_open(local(2026, 12, 1, 20, 0))  # a holiday evening
    assert demo.next_opening(sunday_night) == sunday_night
    assert demo.explain(sunday_night)["isWithinHours"] is True
    # the quota day still follows the timezone
    assert demo.business_day(utc(2026, 11, 25, 22, 30)) == date(2026, 11, 26)


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2026, 11, 26, 10, 0)
    for call in (
        CLOCK.is_open,
        CLOCK.next_opening,
        CLOCK.business_day,
        CLOCK.explain,
        CLOCK.local_midnight_after,
        CLOCK.seconds_until_midnight,
    ):
        with pytest.raises(ValueError, match="naive"):
            call(naive)
    with pytest.raises(ValueError, match="naive"):
        CLOCK.after_delay(naive, timedelta(hours=1))
    with pytest.raises(ValueError, match="naive"):
        BusinessClock(always_open=True).is_open(naive)


def test_from_settings() -> None:
    settings = Settings(
        _env_file=None,
        timezone="Europe/Bucharest",
        business_hours_start=time(8, 0),
        business_hours_end=time(16, 30),
        business_days=[0, 1, 2, 3, 4, 5],
        business_holidays_country="RO",
        business_hours_always_open=False,
    )
    clock = BusinessClock.from_settings(settings)
    assert clock.tz == BUC
    assert clock.is_open(local(2026, 11, 28, 8, 0))  # Saturday is a business day here
    assert not clock.is_open(local(2026, 11, 27, 16, 30))
    assert not clock.is_open(local(2026, 12, 1, 10, 0))  # still a holiday
    assert BusinessClock.from_settings(Settings(_env_file=None, business_hours_always_open=True)).always_open


def test_no_holidays_country() -> None:
    clock = BusinessClock(holidays_country=None)
    assert clock.is_open(local(2026, 12, 1, 10, 0))


def test_invalid_window_rejected() -> None:
    with pytest.raises(ValueError, match="end after"):
        BusinessClock(start=time(18, 0), end=time(9, 0))
    with pytest.raises(ValueError, match="weekday"):
        BusinessClock(days=frozenset({7}))


def test_utcnow_is_aware_utc() -> None:
    now = utcnow()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)
