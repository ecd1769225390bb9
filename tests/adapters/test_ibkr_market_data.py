"""IBKR as a market data source: ibind's real client against tests/fakes/ibkr_server.py.

IBKR semantics (spec 2.29.0, https://api.ibkr.com/gw/api/v3/api-docs):
- snapshot: "A pre-flight request must be made prior to ever receiving data" ("Live Market
  Data Snapshot"): the first call for a conid answers without fields; field 31 is the last
  price and "May contain one of the following prefixes: C - Previous day's closing price.
  H - Trading has halted"; 84/86 bid/ask, 88/85 their sizes (`mdFields`).
- history: `bar` sizes min/h/d/w/m, `period` min/h/d/w/m/y, `startTime` "YYYYMMDD-hh:mm:ss"
  UTC with direction −1 ending there; rows `{t, o, h, l, c, v}` with `volumeFactor` (the
  spec's AAPL daily example, `tests/fixtures/ibkr/examples.json` "history").
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.ibkr.market_data import (
    IbkrMarketData,
    _number,
    ibkr_bar,
    ibkr_market_data,
)
from chalicelib.adapters.ibkr.session import forget_sessions
from chalicelib.ports import MarketDataUnavailable
from chalicelib.settings import Settings
from tests.fakes.ibkr_server import FakeIbkr

T0 = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)  # 09:30 New York


@pytest.fixture
def fake() -> Iterator[FakeIbkr]:
    forget_sessions()
    with FakeIbkr() as server:
        server.prices["AAPL"] = 193.18
        server.quotes["AAPL"] = {"bid": 193.17, "ask": 193.19, "bid_size": 3, "ask_size": 5}
        yield server
    forget_sessions()


def source(fake: FakeIbkr, **kwargs: object) -> IbkrMarketData:
    return IbkrMarketData(fake.session(), sleep=lambda _: None, **kwargs)


def snapshot_calls(fake: FakeIbkr) -> list[dict]:
    return [r for r in fake.requests if r["path"] == "iserver/marketdata/snapshot"]


def minute_rows(start: datetime, count: int) -> list[dict]:
    return [
        {
            "t": int((start + timedelta(minutes=i)).timestamp() * 1000),
            "o": 100 + i,
            "h": 101 + i,
            "l": 99 + i,
            "c": 100.5 + i,
            "v": 12.5,
        }
        for i in range(count)
    ]


def test_the_first_snapshot_warms_up_and_the_second_has_the_price(fake):
    price = source(fake).latest_price("AAPL")

    assert price == pytest.approx(193.18)
    calls = snapshot_calls(fake)
    assert len(calls) == 2
    assert calls[0]["query"]["conids"] == "265598"
    assert set(calls[0]["query"]["fields"].split(",")) >= {"31", "84", "86"}


def test_a_warm_snapshot_answers_at_once(fake):
    fake.snapshot_warmup = False

    assert source(fake).latest_price("AAPL") == pytest.approx(193.18)
    assert len(snapshot_calls(fake)) == 1


def test_no_fields_after_the_tries_is_no_price(fake):
    fake.prices.pop("AAPL")
    fake.quotes.pop("AAPL")

    assert source(fake, snapshot_attempts=3).latest_price("AAPL") is None
    assert len(snapshot_calls(fake)) == 3


def test_the_quote_is_the_snapshot_bid_and_ask(fake):
    quote = source(fake).latest_quote("AAPL")

    assert (quote.bid, quote.ask, quote.bid_size, quote.ask_size) == (193.17, 193.19, 3, 5)
    assert quote.symbol == "AAPL"


@pytest.mark.parametrize(
    ("text", "value"), [("C193.18", 193.18), ("H12.5", 12.5), ("1,200", 1200), ("1.2K", 1200)]
)
def test_snapshot_numbers_drop_ibkr_prefixes(text, value):
    assert _number(text) == pytest.approx(value)


@pytest.mark.parametrize(
    ("timeframe", "bar"),
    [("1Min", "1min"), ("5Min", "5min"), ("15Min", "15min"), ("1Hour", "1h"), ("1Day", "1d")],
)
def test_alpaca_timeframes_map_to_ibkr_bars(timeframe, bar):
    assert ibkr_bar(timeframe)[0] == bar


def test_an_unknown_timeframe_is_unavailable():
    with pytest.raises(MarketDataUnavailable):
        ibkr_bar("7Fortnights")


def test_bars_are_the_window_oldest_first_with_ibkr_volume_units(fake):
    fake.bars["AAPL"] = minute_rows(T0, 30)

    bars = source(fake).bars("AAPL", "1Min", T0 + timedelta(minutes=5), T0 + timedelta(minutes=10))

    assert [b.time for b in bars] == [T0 + timedelta(minutes=m) for m in range(5, 10)]
    assert bars[0].open == 105
    assert bars[0].volume == pytest.approx(12.5 * 100)  # volumeFactor 100 in IBKR's answer
    call = next(r for r in fake.requests if r["path"] == "iserver/marketdata/history")
    assert call["query"] == {
        "conid": "265598",
        "bar": "1min",
        "period": "2d",
        "startTime": "20261130-14:40:00",
        "outsideRth": "false",
    }


def test_a_long_window_is_walked_back_in_chunks(fake):
    start = T0 - timedelta(days=5)
    fake.bars["AAPL"] = minute_rows(start, 10) + minute_rows(T0, 10)

    bars = source(fake).bars("AAPL", "1Min", start, T0 + timedelta(minutes=10))

    assert len(bars) == 20
    assert bars[0].time == start
    assert len([r for r in fake.requests if r["path"] == "iserver/marketdata/history"]) == 3


def test_an_unknown_symbol_is_unavailable_and_there_is_no_tape(fake):
    md = source(fake)
    with pytest.raises(MarketDataUnavailable):
        md.latest_price("ZZZZ")
    assert md.trades("AAPL", T0, T0 + timedelta(minutes=1)) == []


def test_ibkr_down_is_unavailable(fake):
    md = source(fake)
    md.latest_price("AAPL")
    fake.inject("GET", "iserver/marketdata/snapshot", status=503)

    with pytest.raises(MarketDataUnavailable, match="unavailable"):
        md.latest_price("AAPL")


def test_the_constructor_builds_the_source_from_settings(fake):
    md = ibkr_market_data(Settings(**fake.settings_env()))

    assert md.name == "ibkr"
    assert md.latest_price("AAPL") == pytest.approx(193.18)


def test_the_constructor_says_what_is_missing():
    forget_sessions()
    with pytest.raises(MarketDataUnavailable, match="consumer_key"):
        ibkr_market_data(Settings(ibkr_account_id="DU1"))


def test_the_container_serves_ibkr_as_a_data_source(fake):
    from chalicelib.bootstrap import Container

    container = Container(Settings(**(fake.settings_env() | {"broker": "paper"})))

    md = container.market_data("ibkr")

    assert md.name == "ibkr"
    assert md.latest_price("AAPL") == pytest.approx(193.18)


def test_a_429_on_history_is_a_rate_limit_that_fetch_waits_out_and_retries(fake, tmp_path):
    """IBKR answers 429 over its pacing ("Pacing Limitations", Web API docs: 10 requests a
    second overall; past it "a penalty box for 10 minutes"). `backtest fetch --source ibkr`
    backs off and retries as it does for Alpaca, instead of failing the download."""
    from backtest.fetch import fetch
    from chalicelib.ports import MarketDataRateLimited

    fake.bars["AAPL"] = minute_rows(T0, 30)
    md = source(fake)
    fake.inject("GET", "iserver/marketdata/history", status=429, times=1)
    with pytest.raises(MarketDataRateLimited):
        md.bars("AAPL", "1Min", T0, T0 + timedelta(minutes=30))

    fake.inject("GET", "iserver/marketdata/history", status=429, times=2)
    waits: list[float] = []
    report = fetch(
        md,
        "AAPL",
        "1Min",
        T0,
        T0 + timedelta(minutes=30),
        tmp_path / "a.parquet",
        sleep=waits.append,
    )
    assert report.total == 30
    assert waits == [1, 2]  # exponential backoff from 1 s
