"""The day-type service and its routes: bars through the MarketData port, the
classification stored in the state table (moto), read back by the gate and the API; the
schedule's New York time across daylight saving."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb_state import DynamoStateStore
from chalicelib.domain import Bar, DayType, MarketTrade, Quote
from chalicelib.ports import MarketDataUnavailable
from chalicelib.rules.day_type import DayTypeUnavailable
from chalicelib.rules.risk_state import InMemoryRiskState
from chalicelib.services.classify_day import (
    NotATradingDay,
    classification_due,
    classify_day_now,
    scheduled_classification,
    scheduled_time,
)
from tests.conftest import API_TOKEN
from tests.rules.sessions import prior_sessions, session, session_open

DAY = date(2026, 12, 1)  # a Tuesday, EST
TEN = session_open(DAY) + timedelta(minutes=30)  # 10:00 New York = 15:00 UTC
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def rising(n: int) -> list[float]:
    return [round(100 + 0.1 * i - (0.15 if i % 5 == 0 else 0), 4) for i in range(1, n + 1)]


class ListMarket:
    """A MarketData over a list of bars, answering `bars` by [start, end) as the port says;
    records each call. `down` makes every call fail as an unreachable source does."""

    name = "list"

    def __init__(self, bars: list[Bar], *, down: bool = False) -> None:
        self._bars = sorted(bars, key=lambda b: b.time)
        self.down = down
        self.calls: list[tuple[str, str, datetime, datetime]] = []

    def bars(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> list[Bar]:
        self.calls.append((symbol, timeframe, start, end))
        if self.down:
            raise MarketDataUnavailable("list: down for the test")
        return [b for b in self._bars if start <= b.time < end]

    def latest_price(self, symbol: str) -> float | None:
        return self._bars[-1].close if self._bars else None

    def latest_quote(self, symbol: str) -> Quote | None:
        return None

    def trades(self, symbol: str, start: datetime, end: datetime) -> list[MarketTrade]:
        return []


def trend_market(day: date = DAY) -> ListMarket:
    """14 ordinary sessions, then a day that rises steadily on twice the volume all day."""
    prior = [b for s in prior_sessions(day, count=14) for b in s]
    today = session(day, rising(120), 2000.0, first_open=100.0)
    return ListMarket(prior + today)


@pytest.fixture
def dynamo(aws) -> DynamoStateStore:
    c = bootstrap.container()
    return DynamoStateStore(c.boto_session.client("dynamodb"), c.settings.state_table)


def test_classification_is_stored_in_the_state_table_and_read_back(dynamo):
    market = trend_market()
    now = TEN + timedelta(minutes=7)
    result = classify_day_now(market, dynamo, "SPY", now)
    assert result.day_type is DayType.TREND_UP
    assert result.classified_at == TEN  # the 10:00 cut, not `now`
    assert result.features["bars"] == 30
    assert "source list" in result.reason
    assert dynamo.day_classification(DAY) == result
    assert dynamo.day_type(DAY) is DayType.TREND_UP
    ((symbol, timeframe, start, end),) = market.calls
    assert (symbol, timeframe, end) == ("SPY", "1Min", TEN)
    assert start == session_open(date(2026, 11, 10))  # 14 trading days back (Thanksgiving shut)


def test_before_the_configured_time_it_classifies_on_the_bars_so_far(dynamo):
    now = session_open(DAY) + timedelta(minutes=12)
    result = classify_day_now(trend_market(), dynamo, "SPY", now)
    assert result.features["bars"] == 12
    assert result.classified_at == now


def test_through_now_uses_every_bar_so_far(dynamo):
    now = session_open(DAY) + timedelta(minutes=90)
    result = classify_day_now(trend_market(), dynamo, "SPY", now, through_now=True)
    assert result.features["bars"] == 90


def test_a_configured_time_moves_the_cut(dynamo):
    now = session_open(DAY) + timedelta(minutes=100)
    result = classify_day_now(trend_market(), dynamo, "SPY", now, time(10, 30))
    assert result.features["bars"] == 60


def test_nothing_is_stored_when_the_source_is_down_or_the_bars_are_too_few(dynamo):
    with pytest.raises(MarketDataUnavailable):
        classify_day_now(ListMarket([], down=True), dynamo, "SPY", TEN)
    with pytest.raises(DayTypeUnavailable):
        classify_day_now(ListMarket(session(DAY, [100, 101], 10.0)), dynamo, "SPY", TEN)
    assert dynamo.day_classification(DAY) is None


def test_a_closed_market_day_is_not_classified():
    christmas = datetime(2026, 12, 25, 15, 0, tzinfo=UTC)
    with pytest.raises(NotATradingDay):
        classify_day_now(trend_market(), InMemoryRiskState(), "SPY", christmas)


@pytest.mark.parametrize(
    ("day", "expected_utc"),
    [
        (date(2026, 3, 6), datetime(2026, 3, 6, 15, 0, tzinfo=UTC)),  # still EST
        (date(2026, 3, 9), datetime(2026, 3, 9, 14, 0, tzinfo=UTC)),  # EDT from 3-8
        (date(2026, 10, 30), datetime(2026, 10, 30, 14, 0, tzinfo=UTC)),  # still EDT
        (date(2026, 11, 2), datetime(2026, 11, 2, 15, 0, tzinfo=UTC)),  # EST from 11-1
    ],
)
def test_ten_new_york_is_the_right_utc_hour_either_side_of_daylight_saving(day, expected_utc):
    assert scheduled_time(day, time(10, 0)) == expected_utc


def test_the_minute_schedule_acts_once_at_or_after_the_new_york_time():
    state = InMemoryRiskState()
    march = date(2026, 3, 9)  # the first Monday of daylight time: 10:00 = 14:00 UTC
    market = trend_market(march)
    at_1359 = datetime(2026, 3, 9, 13, 59, tzinfo=UTC)
    assert classification_due(state, at_1359)[0] is False
    first = scheduled_classification(market, state, "SPY", at_1359 + timedelta(minutes=1))
    assert first["classified"] is True
    assert first["day_type"] == "trend_up"
    again = scheduled_classification(market, state, "SPY", at_1359 + timedelta(minutes=2))
    assert again == {"classified": False, "reason": "2026-03-09 is already classified"}
    assert len(market.calls) == 1


def test_the_schedule_retries_next_minute_when_the_source_failed():
    state = InMemoryRiskState()
    market = ListMarket([], down=True)
    tick = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # 10:00 EST
    assert scheduled_classification(market, state, "SPY", tick)["classified"] is False
    market = trend_market(date(2026, 11, 2))
    later = scheduled_classification(market, state, "SPY", tick + timedelta(minutes=1))
    assert later["classified"] is True
    none = scheduled_classification(None, InMemoryRiskState(), "SPY", tick)
    assert none == {"classified": False, "reason": "no market data source is configured"}


def test_the_schedule_stays_quiet_after_the_close_and_on_holidays():
    state = InMemoryRiskState()
    after = datetime(2026, 12, 1, 21, 5, tzinfo=UTC)
    assert classification_due(state, after) == (False, "after the close")
    assert classification_due(state, datetime(2026, 12, 25, 15, 0, tzinfo=UTC))[0] is False


class _WithMarket(bootstrap.Container):
    """The container with a market data source over a list (the real ones are built by
    name the same way: `market_data(current_data_source())`)."""

    market = trend_market()

    def market_data(self, name: str) -> ListMarket:
        return self.market


@pytest.fixture
def api(client, monkeypatch):
    monkeypatch.setattr("chalicelib.domain.utc_now", lambda: TEN + timedelta(minutes=3))
    bootstrap.reset(_WithMarket())
    return client


def test_get_day_type_is_404_with_a_reason_until_classified(api):
    r = api.http.get("/api/day-type", headers=AUTH)
    assert r.status_code == 404
    assert r.json_body["error"] == "2026-12-01 is not classified"
    assert "10:00 New York" in r.json_body["reason"]


def test_refresh_classifies_stores_and_get_shows_it_with_features(api):
    r = api.http.post("/api/day-type/refresh", headers=AUTH)
    assert r.status_code == 200
    assert r.json_body["day_type"] == "trend_up"
    got = api.http.get("/api/day-type", headers=AUTH)
    assert got.status_code == 200
    assert got.json_body == r.json_body
    assert got.json_body["features"]["bars"] == 30
    assert bootstrap.container().state_store.day_type(DAY) is DayType.TREND_UP


def test_day_type_routes_need_the_token_and_good_input(api):
    assert api.http.get("/api/day-type").status_code == 401
    assert api.http.post("/api/day-type/refresh").status_code == 401
    bad_date = api.http.get("/api/day-type?date=yesterday", headers=AUTH)
    assert bad_date.status_code == 400
    bad_flag = api.http.post(
        "/api/day-type/refresh",
        headers={**AUTH, "Content-Type": "application/json"},
        body='{"through_now": "yes"}',
    )
    assert bad_flag.status_code == 400


class _NoMarket(bootstrap.Container):
    market_data = None  # a build without market data sources


def test_refresh_without_a_market_data_source_is_503(client, monkeypatch):
    monkeypatch.setattr("chalicelib.domain.utc_now", lambda: TEN)
    bootstrap.reset(_NoMarket())
    r = client.http.post("/api/day-type/refresh", headers=AUTH)
    assert r.status_code == 503
    assert bootstrap.container().state_store.day_classification(DAY) is None


def test_todays_classification_is_the_new_york_days():
    from chalicelib.services.classify_day import todays_classification

    state = InMemoryRiskState()
    classify_day_now(trend_market(), state, "SPY", TEN)
    evening_utc = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # still Dec 1 in New York
    found = todays_classification(state, evening_utc)
    assert found is not None
    assert found.day == DAY
    assert todays_classification(state, datetime(2026, 12, 2, 15, 0, tzinfo=UTC)) is None
