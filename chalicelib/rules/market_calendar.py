"""NYSE regular session, holidays and early closes, computed — no vendor calendar, no tzdata.

Rules follow the NYSE's published holiday rules as they stand since 2013 (the year the
July early close moved to the 3rd), plus the ad-hoc full-day closures since 2001. Times are
US Eastern; the Eastern UTC offset is computed from the US DST rule (second Sunday of
March to first Sunday of November, 2:00 local), so the rules need no timezone database.
Tests compare every session from 2013 to 2030 against `exchange_calendars`' XNYS.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

REGULAR_OPEN = time(9, 30)
REGULAR_CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)

# Full-day closures not covered by the regular rules (days of mourning, 9/11, Sandy).
ADHOC_CLOSURES = frozenset(
    {
        date(2001, 9, 11),
        date(2001, 9, 12),
        date(2001, 9, 13),
        date(2001, 9, 14),
        date(2004, 6, 11),
        date(2007, 1, 2),
        date(2012, 10, 29),
        date(2012, 10, 30),
        date(2018, 12, 5),
        date(2025, 1, 9),
    }
)

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _nearest_workday(day: date) -> date:
    """Saturday holidays are observed on Friday, Sunday ones on Monday."""
    if day.weekday() == SAT:
        return day - timedelta(days=1)
    if day.weekday() == SUN:
        return day + timedelta(days=1)
    return day


def easter_sunday(year: int) -> date:
    """Gregorian Easter (anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month = (h + leap - 7 * m + 114) // 31
    day = (h + leap - 7 * m + 114) % 31 + 1
    return date(year, month, day)


@lru_cache(maxsize=64)
def holidays(year: int) -> frozenset[date]:
    """The NYSE's full-day holidays observed in `year` (ad-hoc closures included)."""
    days = {
        _nth_weekday(year, 1, MON, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, MON, 3),  # Washington's Birthday
        easter_sunday(year) - timedelta(days=2),  # Good Friday
        _last_weekday(year, 5, MON),  # Memorial Day
        _nearest_workday(date(year, 7, 4)),  # Independence Day
        _nth_weekday(year, 9, MON, 1),  # Labor Day
        _nth_weekday(year, 11, THU, 4),  # Thanksgiving
        _nearest_workday(date(year, 12, 25)),  # Christmas
    }
    new_year = date(year, 1, 1)
    if new_year.weekday() != SAT:  # a Saturday New Year is not observed on the Friday before
        days.add(_nearest_workday(new_year))
    if year >= 2022:
        days.add(_nearest_workday(date(year, 6, 19)))  # Juneteenth
    days |= {d for d in ADHOC_CLOSURES if d.year == year}
    return frozenset(days)


@lru_cache(maxsize=64)
def early_closes(year: int) -> frozenset[date]:
    """Sessions that close at 13:00 ET: July 3rd, the day after Thanksgiving, Christmas Eve."""
    days = {_nth_weekday(year, 11, THU, 4) + timedelta(days=1)}
    july_3 = date(year, 7, 3)
    if july_3.weekday() in (MON, TUE, WED, THU):
        days.add(july_3)
    christmas_eve = date(year, 12, 24)
    if christmas_eve.weekday() in (MON, TUE, WED, THU):
        days.add(christmas_eve)
    return frozenset(days)


def is_trading_day(day: date) -> bool:
    return day.weekday() < SAT and day not in holidays(day.year)


def eastern_utc_offset(moment: datetime) -> timedelta:
    """US Eastern's offset from UTC at `moment` (aware): -4 h in daylight time, else -5 h."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    year = utc.year
    # DST starts 2:00 EST (07:00 UTC) on the 2nd Sunday of March and ends 2:00 EDT
    # (06:00 UTC) on the 1st Sunday of November.
    starts = datetime.combine(_nth_weekday(year, 3, SUN, 2), time(7))
    ends = datetime.combine(_nth_weekday(year, 11, SUN, 1), time(6))
    return timedelta(hours=-4) if starts <= utc < ends else timedelta(hours=-5)


def to_eastern(moment: datetime) -> datetime:
    """`moment` as naive US Eastern wall-clock time."""
    return moment.astimezone(UTC).replace(tzinfo=None) + eastern_utc_offset(moment)


def trading_date(moment: datetime) -> date:
    """The US Eastern calendar date of `moment`: the day daily limits and P/L belong to."""
    return to_eastern(moment).date()


def session_bounds(day: date) -> tuple[datetime, datetime] | None:
    """The regular session's (open, close) in UTC on `day`, or None when the market is shut."""
    if not is_trading_day(day):
        return None
    close = EARLY_CLOSE if day in early_closes(day.year) else REGULAR_CLOSE

    def utc_of(local: time) -> datetime:
        naive = datetime.combine(day, local)
        # Session times are far from the 2:00 DST switch, so noon's offset is the day's.
        offset = eastern_utc_offset(datetime.combine(day, time(12)).replace(tzinfo=UTC))
        return (naive - offset).replace(tzinfo=UTC)

    return utc_of(REGULAR_OPEN), utc_of(close)


def is_market_open(moment: datetime) -> bool:
    """True inside the NYSE regular session (open inclusive, close exclusive)."""
    bounds = session_bounds(trading_date(moment))
    return bounds is not None and bounds[0] <= moment < bounds[1]


def next_open(moment: datetime) -> datetime:
    """The first moment at or after `moment` inside a regular session (UTC).

    `moment` itself when the market is open; a denied order's `until`.
    """
    day = trading_date(moment)
    for _ in range(15):
        bounds = session_bounds(day)
        if bounds is not None and moment < bounds[1]:
            return max(bounds[0], moment)
        day += timedelta(days=1)
    raise ValueError(f"no NYSE session within 15 days of {moment.isoformat()}")


def open_after(day: date) -> datetime:
    """The regular-session open of the first trading day after `day` (UTC)."""
    for offset in range(1, 16):
        bounds = session_bounds(day + timedelta(days=offset))
        if bounds is not None:
            return bounds[0]
    raise ValueError(f"no NYSE session within 15 days after {day.isoformat()}")
