"""The pure NYSE calendar agrees with exchange_calendars' XNYS, session by session."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import exchange_calendars as xcals
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.rules import market_calendar as mc

FIRST, LAST = date(2013, 1, 1), date(2030, 12, 31)


@pytest.fixture(scope="module")
def xnys():
    return xcals.get_calendar("XNYS", start=FIRST.isoformat(), end=LAST.isoformat())


def test_trading_days_match_exchange_calendars_2013_to_2030(xnys):
    expected = {ts.date() for ts in xnys.sessions}
    day, ours = FIRST, set()
    while day <= LAST:
        if mc.is_trading_day(day):
            ours.add(day)
        day += timedelta(days=1)
    assert sorted(ours ^ expected) == []


def test_session_open_and_close_match_exchange_calendars_including_early_closes(xnys):
    opens = xnys.schedule["open"]
    closes = xnys.schedule["close"]
    mismatches = []
    for session, open_ts, close_ts in zip(xnys.sessions, opens, closes, strict=True):
        bounds = mc.session_bounds(session.date())
        expected = (open_ts.to_pydatetime(), close_ts.to_pydatetime())
        if bounds != expected:
            mismatches.append((session.date(), bounds, expected))
    assert mismatches == []


def test_early_close_day_after_thanksgiving_2026_closes_at_1pm_eastern():
    assert mc.is_market_open(datetime(2026, 11, 27, 17, 59, tzinfo=UTC))
    assert not mc.is_market_open(datetime(2026, 11, 27, 18, 0, tzinfo=UTC))


def test_thanksgiving_is_closed_and_next_open_is_friday_morning():
    thanksgiving = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    assert not mc.is_market_open(thanksgiving)
    assert mc.next_open(thanksgiving) == datetime(2026, 11, 27, 14, 30, tzinfo=UTC)


def test_session_is_open_inclusive_close_exclusive_across_dst():
    summer = date(2026, 7, 1)
    winter = date(2026, 12, 1)
    assert mc.session_bounds(summer) == (
        datetime(2026, 7, 1, 13, 30, tzinfo=UTC),
        datetime(2026, 7, 1, 20, 0, tzinfo=UTC),
    )
    assert mc.session_bounds(winter)[0] == datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    assert mc.is_market_open(datetime(2026, 7, 1, 13, 30, tzinfo=UTC))
    assert not mc.is_market_open(datetime(2026, 7, 1, 20, 0, tzinfo=UTC))


def test_trading_date_is_the_eastern_date_not_the_utc_one():
    late_evening_eastern = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 22:00 ET on the 24th
    assert mc.trading_date(late_evening_eastern) == date(2026, 11, 24)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(2013, 1, 1), max_value=datetime(2035, 12, 31)))
def test_eastern_offset_matches_the_tz_database(naive_utc):
    from zoneinfo import ZoneInfo

    moment = naive_utc.replace(tzinfo=UTC)
    expected = moment.astimezone(ZoneInfo("America/New_York")).utcoffset()
    assert mc.eastern_utc_offset(moment) == expected
