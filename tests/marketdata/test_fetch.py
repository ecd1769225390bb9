"""`python -m backtest fetch`: history through the Alpaca source, against the local server in
the Market Data API's shapes (tests/fakes/alpaca_data_server.py): paged, retried on 429,
resumed from the file's last bar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from backtest.__main__ import main
from backtest.data import load_bars
from backtest.fetch import FetchError, fetch, parse_time
from chalicelib.adapters.alpaca_market_data import AlpacaMarketData
from chalicelib.ports import MarketDataRateLimited
from tests.fakes.alpaca_data_server import FakeAlpacaData

DAY = datetime(2025, 1, 13, tzinfo=UTC)
FIXTURE_BARS = 419  # 14:00 … 20:59 UTC in tests/fixtures/alpaca/market_data (a minute missing)
BEFORE_15 = 59  # of them before 15:00 UTC (14:00 … 14:59; no 14:14 bar in the data)


@pytest.fixture
def server():
    with FakeAlpacaData() as fake:
        yield fake


def alpaca(server) -> AlpacaMarketData:
    return AlpacaMarketData.connect("test-key", "test-secret", base_url=server.url)


def bar_requests(server) -> list[dict]:
    return [r["query"] for r in server.requests if r["path"] == "/v2/stocks/bars"]


def test_a_day_lands_in_a_parquet_the_backtest_reads(server, tmp_path):
    out = tmp_path / "AMZN.parquet"

    report = fetch(alpaca(server), "AMZN", "1Min", DAY, DAY + timedelta(days=1), out)

    assert (report.fetched, report.total, report.resumed) == (FIXTURE_BARS, FIXTURE_BARS, False)
    frame = pd.read_parquet(out)
    assert list(frame.columns) == [
        "timestamp",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "trade_count",
        "vwap",
    ]  # Alpaca's own CSV shape, as in /work's sample data
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2025-01-13 14:00", tz="UTC")
    assert len(load_bars(out, symbol="AMZN")) == FIXTURE_BARS


def test_pages_and_chunks_all_arrive_once(server, tmp_path):
    server.max_page = 100  # Alpaca may return fewer than `limit`: next_page_token continues
    out = tmp_path / "AMZN.csv"

    report = fetch(
        alpaca(server), "AMZN", "1Min", DAY, DAY + timedelta(days=1), out, chunk=timedelta(hours=2)
    )

    assert report.total == FIXTURE_BARS
    assert report.requests == 12
    assert len(bar_requests(server)) > 12  # chunks, each paged
    assert pd.read_csv(out)["timestamp"].is_unique


def test_a_429_waits_and_retries_instead_of_failing(server, tmp_path):
    server.rate_limit(3)
    waits: list[float] = []

    report = fetch(
        alpaca(server),
        "AMZN",
        "1Min",
        DAY,
        DAY + timedelta(days=1),
        tmp_path / "a.parquet",
        sleep=waits.append,
    )

    assert report.total == FIXTURE_BARS
    assert waits == [1, 2, 4]  # exponential backoff from 1 s


def test_a_rate_limit_that_never_lifts_stops_and_keeps_what_was_fetched(server, tmp_path):
    out = tmp_path / "a.parquet"
    fetch(alpaca(server), "AMZN", "1Min", DAY, DAY + timedelta(hours=15), out)
    server.rate_limit(100)

    with pytest.raises(MarketDataRateLimited):
        fetch(
            alpaca(server),
            "AMZN",
            "1Min",
            DAY,
            DAY + timedelta(days=1),
            out,
            sleep=lambda _s: None,
            attempts=3,
        )
    assert len(pd.read_parquet(out)) == BEFORE_15  # from the first run


def test_a_second_run_resumes_after_the_last_bar(server, tmp_path):
    out = tmp_path / "AMZN.parquet"
    first = fetch(alpaca(server), "AMZN", "1Min", DAY, DAY + timedelta(hours=15), out)
    assert first.total == BEFORE_15

    second = fetch(alpaca(server), "AMZN", "1Min", DAY, DAY + timedelta(days=1), out)

    assert second.resumed
    assert second.start == datetime(2025, 1, 13, 15, 0, tzinfo=UTC)
    assert bar_requests(server)[-1]["start"].startswith("2025-01-13T15:00:00")
    assert (second.fetched, second.total) == (FIXTURE_BARS - BEFORE_15, FIXTURE_BARS)
    whole = tmp_path / "whole.parquet"
    fetch(alpaca(server), "AMZN", "1Min", DAY, DAY + timedelta(days=1), whole)
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(whole))


def test_bad_arguments_fetch_nothing(server, tmp_path):
    with pytest.raises(FetchError, match="not after"):
        fetch(alpaca(server), "AMZN", "1Min", DAY, DAY, tmp_path / "x.csv")
    with pytest.raises(FetchError, match="Alpaca's spelling"):
        fetch(alpaca(server), "AMZN", "1Minute", DAY, DAY + timedelta(1), tmp_path / "x.csv")
    with pytest.raises(FetchError, match="not a date"):
        parse_time("yesterday")
    assert parse_time("2025-01-17", end=True) == datetime(2025, 1, 18, tzinfo=UTC)
    assert server.requests == []


def test_the_cli_fetches_with_the_alpaca_settings(server, tmp_path, monkeypatch, capsys):
    for name, value in {
        "FLOWTRADER_ALPACA_API_KEY": "test-key",
        "FLOWTRADER_ALPACA_SECRET_KEY": "test-secret",
        "FLOWTRADER_ALPACA_DATA_URL": server.url,
        "FLOWTRADER_ALPACA_DATA_FEED": "sip",
    }.items():
        monkeypatch.setenv(name, value)
    args = ["fetch", "--source", "alpaca", "--symbol", "amzn", "--start", "2025-01-13"]
    args += ["--end", "2025-01-13", "--timeframe", "5Min", "--out", str(tmp_path / "a.csv")]

    assert main(args) == 0

    assert "AMZN: 84 5Min bars fetched from alpaca" in capsys.readouterr().out
    assert {q["feed"] for q in bar_requests(server)} == {"sip"}
    assert main(args) == 0  # again: nothing left to fetch
    assert "AMZN: 0 5Min bars fetched" in capsys.readouterr().out


def test_the_cli_says_what_is_wrong(tmp_path, capsys):
    out = str(tmp_path / "a.csv")
    assert (
        main(["fetch", "--source", "alpaca", "--symbol", "X", "--start", "soon", "--out", out]) == 2
    )
    assert "not a date" in capsys.readouterr().err
