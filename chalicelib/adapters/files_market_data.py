"""A CSV or Parquet bar file as a `MarketData` source, read by the backtest's loader
(`backtest/data.py`: any column case, checked row by row, epoch or ISO times).

For the local stack and the backtest: `backtest/` is not deployed to Lambda, and pandas is
heavy, so the loader is imported only when a file is first read. One file holds one
symbol's bars (or several, with a `symbol` column: `symbol` picks); its bar length is read
from the data.
"""

from __future__ import annotations

import bisect
import importlib
import itertools
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib.domain import Bar, MarketTrade, Quote
from chalicelib.ports import MarketDataUnavailable
from chalicelib.rules.timeframes import aggregate, timeframe_seconds


def symbol_of(path: Path | str) -> str:
    """The symbol a file name stands for: `AMZN_1min_2025-01-13.csv` is AMZN."""
    return Path(path).stem.split("_", 1)[0].upper()


def load_bar_file(path: Path | str, symbol: str = "") -> tuple[str, list[Bar]]:
    """(symbol, bars oldest first) from a bar file; MarketDataUnavailable when unreadable."""
    try:  # by name: chalicelib does not depend on the backtest, which Lambda never gets
        loader: Any = importlib.import_module("backtest.data")
    except ImportError as exc:
        raise MarketDataUnavailable(
            "the files source needs the backtest package (local stack or backtest only)"
        ) from exc
    symbol = (symbol or symbol_of(path)).upper()
    try:
        loaded = loader.load_bars(path, symbol=symbol)
    except loader.DataError as exc:
        raise MarketDataUnavailable(f"bar file: {exc}") from exc
    a = loaded.arrays
    ns = loaded.time_ns_utc
    bars = [
        Bar.model_construct(  # already checked by the loader, row by row
            time=datetime.fromtimestamp(int(ns[i]) / 1e9, UTC),
            open=float(a.open[i]),
            high=float(a.high[i]),
            low=float(a.low[i]),
            close=float(a.close[i]),
            volume=float(a.volume[i]),
            trade_count=None,
            vwap=None,
        )
        for i in range(len(ns))
    ]
    return loaded.symbol, bars


def native_seconds(bars: Sequence[Bar]) -> int:
    """The file's bar length: the shortest step between bars (60 for minute bars)."""
    steps = [int((b.time - a.time).total_seconds()) for a, b in itertools.pairwise(bars[:500])]
    positive = [s for s in steps if s > 0]
    return min(positive) if positive else 60


def bar_seconds(timeframe: str) -> int:
    try:
        return timeframe_seconds(timeframe)
    except ValueError as exc:
        raise MarketDataUnavailable(str(exc)) from exc


class BarSeries:
    """One symbol's bars in memory, answered by time range and resampled on request."""

    def __init__(self, symbol: str, bars: list[Bar]) -> None:
        self.symbol = symbol
        self.bars = bars
        self.times = [b.time for b in bars]
        self.seconds = native_seconds(bars)

    def window(self, start: datetime, end: datetime) -> list[Bar]:
        """Native bars starting in [start, end)."""
        lo = bisect.bisect_left(self.times, start)
        hi = bisect.bisect_left(self.times, end)
        return self.bars[lo:hi]

    def resampled(self, timeframe: str, start: datetime, end: datetime) -> list[Bar]:
        """`timeframe` bars starting in [start, end), built from the native bars."""
        seconds = bar_seconds(timeframe)
        if seconds < self.seconds:
            raise MarketDataUnavailable(
                f"{timeframe} bars asked of a file of {self.seconds // 60}-minute bars"
            )
        if seconds == self.seconds:
            return self.window(start, end)
        # Widen to whole buckets, then keep the buckets that start in range.
        span = timedelta(seconds=seconds) if seconds < 86_400 else timedelta(days=1)
        built = aggregate(self.window(start - span, end + span), timeframe)
        return [b for b in built if start <= b.time < end]


class FilesMarketData:
    """Bars from one file (`MarketData`); no quotes, no tape."""

    name = "files"

    def __init__(self, path: Path | str, symbol: str = "") -> None:
        self.path = Path(path)
        self._symbol = (symbol or "").upper()
        self._series: BarSeries | None = None
        self._lock = threading.Lock()

    @property
    def series(self) -> BarSeries:
        """The file's bars, loaded on first use."""
        with self._lock:
            if self._series is None:
                symbol, bars = load_bar_file(self.path, self._symbol)
                if not bars:
                    raise MarketDataUnavailable(f"bar file {self.path}: no bars")
                self._series = BarSeries(symbol, bars)
            return self._series

    def _for(self, symbol: str) -> BarSeries:
        series = self.series
        if symbol.upper() != series.symbol:
            raise MarketDataUnavailable(
                f"the data file {self.path.name} holds {series.symbol} bars, not {symbol}"
            )
        return series

    def bars(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> list[Bar]:
        return self._for(symbol).resampled(timeframe, start, end)

    def latest_price(self, symbol: str) -> float | None:
        """The file's last close."""
        return self._for(symbol).bars[-1].close

    def latest_quote(self, symbol: str) -> Quote | None:
        return None

    def trades(self, symbol: str, start: datetime, end: datetime) -> list[MarketTrade]:
        return []
