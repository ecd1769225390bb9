"""Bars from TradingView alerts, stored in the state table (moto's server over HTTP) and read
back as a MarketData source.

TradingView's placeholders (https://www.tradingview.com/support/solutions/43000531021-how-to-use-a-variable-value-in-alert/):
`{{open}} {{high}} {{low}} {{close}} {{volume}}` are "the values of the bar the alert fired
on", `{{time}}` is that bar's open time in UTC (yyyy-MM-ddTHH:mm:ssZ), `{{interval}}` the
chart's timeframe (minutes as a number, D/W/M for days/weeks/months); numbers come as
fixed-point decimals, e.g. 1245.25.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import bootstrap
from chalicelib.adapters.tradingview_bars import TradingViewBars
from chalicelib.domain import Alert
from chalicelib.ports import MarketDataUnavailable
from tests.conftest import PASSPHRASE

NOW = datetime(2025, 1, 13, 14, 36, 5, tzinfo=UTC)

# What TradingView sends for the README's message on a 1-minute AMZN chart (the values are
# the real 14:35 bar of 2025-01-13).
MESSAGE = {
    "ticker": "NASDAQ:AMZN",
    "action": "buy",
    "price": 218.79,
    "open": 218.6,
    "high": 218.9,
    "low": 218.41,
    "close": 218.79,
    "volume": 295713,
    "time": "2025-01-13T14:35:00Z",
    "interval": "1",
}


def alert(**changes) -> Alert:
    return Alert.model_validate({**MESSAGE, **changes})


@pytest.fixture
def bars(aws) -> TradingViewBars:
    c = bootstrap.container()
    return TradingViewBars(c.dynamodb_client, c.settings.state_table)


def test_an_alerts_bar_is_stored_once_and_read_back(bars):
    assert bars.record(alert(), NOW) is True
    assert bars.record(alert(), NOW) is False  # the same bar again: one item

    got = bars.bars("AMZN", "1Min", NOW - timedelta(hours=1), NOW)
    assert len(got) == 1
    bar = got[0]
    assert bar.time == datetime(2025, 1, 13, 14, 35, tzinfo=UTC)
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        218.6,
        218.9,
        218.41,
        218.79,
        295713.0,
    )
    assert bars.latest_price("AMZN") == 218.79


def test_a_later_alert_on_the_same_bar_updates_it(bars):
    bars.record(alert(high=218.9, close=218.79, volume=100), NOW)
    bars.record(alert(high=219.5, close=219.4, volume=300), NOW)

    (bar,) = bars.bars("AMZN", "1Min", NOW - timedelta(hours=1), NOW)
    assert (bar.high, bar.close, bar.volume) == (219.5, 219.4, 300.0)


def test_bars_are_kept_per_interval_in_alpacas_spelling(bars):
    bars.record(alert(), NOW)
    bars.record(alert(interval="5", time="2025-01-13T14:30:00Z"), NOW)
    bars.record(alert(interval="D", time="2025-01-13T00:00:00Z"), NOW)

    day = datetime(2025, 1, 13, tzinfo=UTC)
    assert [b.time.minute for b in bars.bars("AMZN", "1Min", day, NOW)] == [35]
    assert [b.time.minute for b in bars.bars("AMZN", "5Min", day, NOW)] == [30]
    assert [b.time for b in bars.bars("AMZN", "1Day", day, NOW)] == [day]


def test_the_latest_price_is_the_newest_bars_close_whatever_arrives_last(bars):
    bars.record(alert(time="2025-01-13T14:35:00Z", close=218.79), NOW)
    bars.record(alert(time="2025-01-13T14:34:00Z", open=218.5, close=218.5), NOW)  # late

    assert bars.latest_price("AMZN") == 218.79
    assert bars.latest_price("AAPL") is None


def test_start_is_inclusive_end_exclusive_and_oldest_first(bars):
    for minute in (33, 34, 35):
        bars.record(alert(time=f"2025-01-13T14:{minute}:00Z"), NOW)

    got = bars.bars(
        "AMZN",
        "1Min",
        datetime(2025, 1, 13, 14, 33, tzinfo=UTC),
        datetime(2025, 1, 13, 14, 35, tzinfo=UTC),
    )
    assert [b.time.minute for b in got] == [33, 34]


def test_numbers_typed_in_quotes_count_as_numbers(bars):
    assert bars.record(alert(open="218.6", high="218.9", low="218.41", close="218.79"), NOW)


@pytest.mark.parametrize(
    "changes",
    [
        {"open": None},
        {"close": "n/a"},
        {"high": 218.0},  # below the close: not a bar
        {"low": -1},
        {"interval": None},
        {"time": None},
        {"time": "2025-01-13T15:00:00Z"},  # opens after the alert arrived
    ],
)
def test_an_alert_without_a_whole_bar_stores_nothing(bars, changes):
    assert bars.record(alert(**changes), NOW) is False
    assert bars.bars("AMZN", "1Min", NOW - timedelta(days=1), NOW + timedelta(days=1)) == []
    assert bars.latest_price("AMZN") is None


def test_no_quotes_and_no_tape_from_alerts(bars):
    bars.record(alert(), NOW)
    assert bars.latest_quote("AMZN") is None
    assert bars.trades("AMZN", NOW - timedelta(hours=1), NOW) == []


def test_unreachable_storage_is_market_data_unavailable(aws):
    import boto3
    from botocore.config import Config

    dead = boto3.client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 1}, connect_timeout=0.5),
    )
    source = TradingViewBars(dead, "flowtrader-state")
    with pytest.raises(MarketDataUnavailable, match="state table unreachable"):
        source.latest_price("AMZN")
    with pytest.raises(MarketDataUnavailable, match="state table unreachable"):
        source.bars("AMZN", "1Min", NOW - timedelta(hours=1), NOW)


def test_the_readmes_bar_message_passes_the_webhook(client):
    # The message the README shows, as TradingView fills it: accepted, not refused as unknown.
    body = {
        **MESSAGE,
        "passphrase": PASSPHRASE,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:00Z"),
    }
    response = client.http.post(
        "/webhook", headers={"Content-Type": "application/json"}, body=json.dumps(body)
    )
    assert response.status_code == 202, response.body
