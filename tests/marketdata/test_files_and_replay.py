"""The files source (the backtest's loader) and the market replay over the shipped sample of
real AMZN minute bars (backtest/data/AMZN_1min_2025-01-13.csv)."""

from __future__ import annotations

import itertools
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from chalicelib import clock
from chalicelib.adapters.files_market_data import FilesMarketData, symbol_of
from chalicelib.adapters.replay import ReplayClock, ReplayMarketData, first_session_open
from chalicelib.ports import MarketDataUnavailable

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "backtest" / "data" / "AMZN_1min_2025-01-13.csv"
OPEN = datetime(2025, 1, 13, 14, 30, tzinfo=UTC)


class Wall:
    """A wall clock the test moves."""

    def __init__(self, at: float = 1_000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def test_the_file_name_says_the_symbol():
    assert symbol_of(SAMPLE) == "AMZN"
    assert symbol_of("data/ibm.parquet") == "IBM"


def test_a_csv_session_reads_back_as_minute_bars():
    files = FilesMarketData(SAMPLE)

    bars = files.bars("AMZN", "1Min", OPEN, OPEN + timedelta(hours=6, minutes=30))
    assert len(bars) == 390
    assert bars[0].time == OPEN
    assert (bars[0].open, bars[0].close, bars[0].volume) == (218.06, 217.92, 844046.0)
    assert all(a.time < b.time for a, b in itertools.pairwise(bars))
    assert files.latest_price("AMZN") == 223.34  # the file's last close (2025-01-15 15:59)


def test_parquet_reads_the_same_as_csv(tmp_path):
    frame = pd.read_csv(SAMPLE)
    frame.to_parquet(tmp_path / "AMZN.parquet")
    end = OPEN + timedelta(minutes=30)

    assert FilesMarketData(tmp_path / "AMZN.parquet").bars("AMZN", "1Min", OPEN, end) == (
        FilesMarketData(SAMPLE).bars("AMZN", "1Min", OPEN, end)
    )


def test_longer_timeframes_are_built_from_the_minutes():
    files = FilesMarketData(SAMPLE)
    minutes = files.bars("AMZN", "1Min", OPEN, OPEN + timedelta(minutes=5))

    (five,) = files.bars("AMZN", "5Min", OPEN, OPEN + timedelta(minutes=5))
    assert five.time == OPEN
    assert (five.open, five.close) == (minutes[0].open, minutes[-1].close)
    assert five.high == max(b.high for b in minutes)
    assert five.low == min(b.low for b in minutes)
    assert five.volume == sum(b.volume for b in minutes)
    days = files.bars(
        "AMZN", "1Day", datetime(2025, 1, 13, tzinfo=UTC), datetime(2025, 1, 16, tzinfo=UTC)
    )
    assert [d.time for d in days] == [
        datetime(2025, 1, d, 5, 0, tzinfo=UTC) for d in (13, 14, 15)
    ]  # New York midnight, as Alpaca stamps daily bars


def test_other_symbols_and_bad_files_are_unavailable_with_the_reason(tmp_path):
    with pytest.raises(MarketDataUnavailable, match="holds AMZN bars, not AAPL"):
        FilesMarketData(SAMPLE).latest_price("AAPL")
    with pytest.raises(MarketDataUnavailable, match="file not found"):
        FilesMarketData(tmp_path / "NOPE.csv").latest_price("NOPE")
    bad = tmp_path / "BAD.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n2025-01-13T14:30:00Z,10,9,11,10,5\n")
    with pytest.raises(MarketDataUnavailable, match="high is below low"):
        FilesMarketData(bad).latest_price("BAD")


def test_the_replay_starts_at_the_files_first_session_open():
    files = FilesMarketData(SAMPLE)

    assert files.series.bars[0].time == datetime(2025, 1, 13, 14, 0, tzinfo=UTC)  # pre-market
    assert first_session_open(files.series.bars) == OPEN


def test_the_replay_clock_runs_speed_times_the_wall():
    wall = Wall()
    replay = ReplayClock(OPEN, 60, wall=wall)

    assert replay() == OPEN
    wall.at += 1.5
    assert replay() == OPEN + timedelta(seconds=90)


def test_the_replay_clock_travels_between_processes_as_its_spec():
    original = ReplayClock(OPEN, 60, wall_start=1_700_000_000.25)

    copy = ReplayClock.from_spec(original.spec.removeprefix("replay:"))
    assert (copy.market_start, copy.speed, copy.wall_start) == (OPEN, 60.0, 1_700_000_000.25)
    installed = clock.from_env({"FLOWTRADER_CLOCK": original.spec})
    assert isinstance(installed, ReplayClock)
    assert installed.market_start == OPEN
    assert clock.from_env({}) is clock.wall_clock
    with pytest.raises(ValueError, match="expected wall or replay"):
        clock.from_env({"FLOWTRADER_CLOCK": "sundial"})


def test_utc_now_follows_the_installed_clock():
    from chalicelib.domain import utc_now

    wall = Wall()
    try:
        clock.install(ReplayClock(OPEN, 60, wall=wall))
        assert utc_now() == OPEN
        wall.at += 10
        assert utc_now() == OPEN + timedelta(minutes=10)
    finally:
        clock.install(None)
    assert abs((utc_now() - datetime.now(UTC)).total_seconds()) < 60


def test_the_replay_never_shows_a_bar_before_it_has_closed():
    wall = Wall()
    market = ReplayMarketData(FilesMarketData(SAMPLE), ReplayClock(OPEN, 60, wall=wall))
    day = OPEN - timedelta(hours=1)

    # 09:30:00: the 09:29 bar just closed; the 09:30 bar has not.
    assert market.bars("AMZN", "1Min", day, OPEN + timedelta(hours=8))[-1].time == OPEN - timedelta(
        minutes=1
    )
    assert market.latest_price("AMZN") == market.latest_bar("AMZN").close
    wall.at += 0.99  # 09:30:59.4
    assert market.latest_bar("AMZN").time == OPEN - timedelta(minutes=1)
    wall.at += 0.01  # 09:31:00: the 09:30 bar is done
    latest = market.latest_bar("AMZN")
    assert latest.time == OPEN
    assert market.latest_price("AMZN") == 217.92

    wall.at += 4  # 09:35
    five = market.bars("AMZN", "5Min", OPEN, OPEN + timedelta(hours=1))
    assert [b.time for b in five] == [OPEN]  # 09:35's five minutes are still to come
    wall.at += 0.5  # 09:35:30
    assert len(market.bars("AMZN", "5Min", OPEN, OPEN + timedelta(hours=1))) == 1


def test_the_replay_plays_only_its_files_symbol(tmp_path):
    shutil.copy(SAMPLE, tmp_path / "AMZN.csv")
    market = ReplayMarketData(FilesMarketData(tmp_path / "AMZN.csv"), lambda: OPEN)

    with pytest.raises(MarketDataUnavailable, match="plays AMZN, not MSFT"):
        market.latest_price("MSFT")
    assert market.latest_quote("AMZN") is None
    assert market.trades("AMZN", OPEN - timedelta(hours=1), OPEN) == []
