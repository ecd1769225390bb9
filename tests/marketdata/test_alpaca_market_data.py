"""The Alpaca source through alpaca-py's StockHistoricalDataClient against a local server in
the shapes of Alpaca's Market Data API v2 spec (tests/fakes/alpaca_data_server.py), serving
real AMZN minute bars (tests/fixtures/alpaca/market_data/)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from chalicelib.adapters.alpaca_market_data import AlpacaMarketData, RateLimited
from chalicelib.ports import MarketDataUnavailable
from tests.fakes.alpaca_data_server import FakeAlpacaData

OPEN = datetime(2025, 1, 13, 14, 30, tzinfo=UTC)  # 09:30 New York
CLOSE = datetime(2025, 1, 13, 21, 0, tzinfo=UTC)


@pytest.fixture
def server():
    with FakeAlpacaData() as fake:
        yield fake


def source(server: FakeAlpacaData, feed: str = "iex") -> AlpacaMarketData:
    return AlpacaMarketData.connect("test-key", "test-secret", feed=feed, base_url=server.url)


def test_a_session_of_minute_bars_comes_back_whole_and_oldest_first(server):
    bars = source(server).bars("AMZN", "1Min", OPEN, CLOSE)

    assert len(bars) == 390  # 09:30 to 15:59 New York
    assert bars[0].time == OPEN
    assert bars[-1].time == datetime(2025, 1, 13, 20, 59, tzinfo=UTC)
    assert all(a.time < b.time for a, b in itertools.pairwise(bars))
    first = bars[0]  # the CSV's 2025-01-13 14:30 row, as Alpaca sent it
    assert (first.open, first.high, first.low, first.close) == (218.06, 218.76, 217.675, 217.92)
    assert (first.volume, first.trade_count, first.vwap) == (844046.0, 12082, 218.073967)


def test_bars_are_paged_by_next_page_token(server):
    # "The API may return less [than limit] … Always check the next_page_token" (the spec's
    # `limit` parameter): a server that pages by 50 still yields every bar.
    server.max_page = 50

    bars = source(server).bars("AMZN", "1Min", OPEN, CLOSE)

    assert len(bars) == 390
    pages = [r for r in server.requests if r["path"] == "/v2/stocks/bars"]
    assert len(pages) == 8
    assert "page_token" not in pages[0]["query"]
    assert all("page_token" in p["query"] for p in pages[1:])


def test_the_ports_end_is_exclusive_though_alpacas_is_inclusive(server):
    # The spec: `end` is "The inclusive end of the interval"; the port's end is exclusive.
    bars = source(server).bars("AMZN", "1Min", OPEN, datetime(2025, 1, 13, 14, 35, tzinfo=UTC))

    assert [b.time.minute for b in bars] == [30, 31, 32, 33, 34]


def test_longer_timeframes_are_asked_of_alpaca(server):
    bars = source(server).bars("AMZN", "5Min", OPEN, CLOSE)

    assert len(bars) == 78
    assert server.requests[-1]["query"]["timeframe"] == "5Min"
    minutes = source(server).bars("AMZN", "1Min", OPEN, OPEN.replace(minute=35))
    assert bars[0].high == max(b.high for b in minutes)
    assert bars[0].volume == sum(b.volume for b in minutes)


def test_the_feed_setting_goes_on_every_request(server):
    sip = source(server, feed="sip")
    sip.bars("AMZN", "1Min", OPEN, CLOSE)
    sip.latest_price("AAPL")
    sip.latest_quote("AAPL")

    assert {r["query"]["feed"] for r in server.requests} == {"sip"}


def test_sip_without_a_subscription_is_unavailable_with_a_plain_reason(server):
    server.sip_entitled = False

    with pytest.raises(MarketDataUnavailable, match=r"HTTP 403.*sip needs a subscription"):
        source(server, feed="sip").bars("AMZN", "1Min", OPEN, CLOSE)
    assert len(source(server, feed="iex").bars("AMZN", "1Min", OPEN, CLOSE)) == 390


def test_latest_trade_quote_and_bar_in_the_specs_shapes(server):
    # The spec's own examples for /v2/stocks/trades/latest and /quotes/latest (AAPL).
    md = source(server)

    assert md.latest_price("AAPL") == 172.78
    quote = md.latest_quote("AAPL")
    assert quote is not None
    assert (quote.bid, quote.ask, quote.bid_size, quote.ask_size) == (
        172.62,
        172.7,
        2.0,
        1.0,
    )
    bar = md.latest_bar("AMZN")
    assert bar is not None
    assert bar.time == datetime(2025, 1, 13, 20, 59, tzinfo=UTC)
    assert md.latest_price("NOPE") is None
    assert md.latest_quote("NOPE") is None


def test_trades_are_the_tape_in_time_order(server):
    trades = source(server).trades(
        "AAPL", datetime(2022, 1, 3, tzinfo=UTC), datetime(2022, 1, 4, tzinfo=UTC)
    )

    assert [(t.price, t.size) for t in trades] == [(178.26, 246.0), (178.26, 1.0)]


def test_a_429_is_rate_limited_at_once_without_alpaca_pys_hidden_sleeps(server):
    server.rate_limit(1)

    with pytest.raises(RateLimited, match="429"):
        source(server).latest_price("AAPL")
    assert len(server.requests) == 1  # no retry behind the caller's back
    assert source(server).latest_price("AAPL") == 172.78


def test_wrong_keys_and_no_server_are_unavailable_without_the_keys_in_the_reason(server):
    wrong = AlpacaMarketData.connect("test-key", "not-the-secret", base_url=server.url)
    with pytest.raises(MarketDataUnavailable, match="HTTP 401") as refused:
        wrong.latest_price("AAPL")
    assert "not-the-secret" not in str(refused.value)

    gone = AlpacaMarketData.connect("k", "s", base_url="http://127.0.0.1:9", timeout_s=0.5)
    with pytest.raises(MarketDataUnavailable, match="unreachable"):
        gone.bars("AMZN", "1Min", OPEN, CLOSE)


def test_no_keys_and_unknown_timeframes_are_refused_plainly(server):
    with pytest.raises(MarketDataUnavailable, match="keys are not configured"):
        AlpacaMarketData.connect("", "", base_url=server.url)
    with pytest.raises(MarketDataUnavailable, match="Alpaca's spelling"):
        source(server).bars("AMZN", "7Fortnight", OPEN, CLOSE)
    assert server.requests == []
