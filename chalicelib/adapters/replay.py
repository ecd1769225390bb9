"""Market replay: a bar file played as if it were the market, at `speed` × real time.

`ReplayClock` maps wall time to market time: at `wall_start` the market is at
`market_start` (the file's first regular-session open), and it runs `speed` times faster
than the wall clock. Installed as the stack's clock (chalicelib/clock.py), it makes the
webhook, the worker and the price poll all live in the replayed day.

`ReplayMarketData` answers only with bars that have *closed* by the clock's now (a bar's
end ≤ now), so nothing in the stack can see the future; its latest price is the last
closed bar's close.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from chalicelib.adapters.files_market_data import BarSeries, FilesMarketData, bar_seconds
from chalicelib.domain import Bar, MarketTrade, Quote
from chalicelib.ports import MarketDataUnavailable
from chalicelib.rules.market_calendar import session_bounds, trading_date


def first_session_open(bars: Sequence[Bar]) -> datetime:
    """The first regular-session open the bars reach (their first bar if it starts later
    in a session; the first bar when none falls in a session)."""
    for bar in bars:
        bounds = session_bounds(trading_date(bar.time))
        if bounds is not None and bar.time < bounds[1]:
            return max(bounds[0], bar.time)
    return bars[0].time


class ReplayClock:
    """Market time = `market_start` + (wall − `wall_start`) × `speed` (a `Clock`)."""

    def __init__(
        self,
        market_start: datetime,
        speed: float,
        wall_start: float | None = None,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if speed <= 0:
            raise ValueError("replay speed must be positive")
        self.market_start = market_start.astimezone(UTC)
        self.speed = float(speed)
        self.wall_start = wall() if wall_start is None else float(wall_start)
        self._wall = wall

    def __call__(self) -> datetime:
        elapsed = (self._wall() - self.wall_start) * self.speed
        return self.market_start + timedelta(seconds=elapsed)

    @property
    def spec(self) -> str:
        """This clock as `FLOWTRADER_CLOCK` spells it (chalicelib/clock.py)."""
        return f"replay:{self.market_start.timestamp():.0f}:{self.speed:g}:{self.wall_start:.3f}"

    @classmethod
    def from_spec(cls, spec: str) -> ReplayClock:
        """From `<market start epoch s>:<speed>:<wall start epoch s>`."""
        try:
            start, speed, wall_start = (float(part) for part in spec.split(":"))
        except ValueError as exc:
            raise ValueError(
                f"replay clock {spec!r}: expected <market start epoch>:<speed>:<wall start epoch>"
            ) from exc
        return cls(datetime.fromtimestamp(start, UTC), speed, wall_start)


class ReplayMarketData:
    """A bar file as the market, up to the clock's now (`MarketData`)."""

    name = "replay"

    def __init__(self, source: FilesMarketData, clock: Callable[[], datetime]) -> None:
        self._source = source
        self._clock = clock

    @property
    def symbol(self) -> str:
        return self._source.series.symbol

    def _series(self, symbol: str) -> BarSeries:
        series = self._source.series
        if symbol.upper() != series.symbol:
            raise MarketDataUnavailable(f"the replay plays {series.symbol}, not {symbol}")
        return series

    def _closed(self, series: BarSeries, now: datetime) -> datetime:
        """Bars starting before this have closed by `now`."""
        return now - timedelta(seconds=series.seconds) + timedelta(microseconds=1)

    def bars(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> list[Bar]:
        series = self._series(symbol)
        now = self._clock()
        step = timedelta(seconds=bar_seconds(timeframe))
        native_end = min(end, self._closed(series, now))
        found = series.resampled(timeframe, start, native_end)
        if step > timedelta(seconds=series.seconds):
            # An aggregate is whole only when its last part has closed too.
            found = [b for b in found if b.time + step <= now]
        return found

    def latest_bar(self, symbol: str) -> Bar | None:
        series = self._series(symbol)
        closed = series.window(series.bars[0].time, self._closed(series, self._clock()))
        return closed[-1] if closed else None

    def latest_price(self, symbol: str) -> float | None:
        """The last closed bar's close (None before the file's first bar has closed)."""
        bar = self.latest_bar(symbol)
        return bar.close if bar is not None else None

    def latest_quote(self, symbol: str) -> Quote | None:
        return None

    def trades(self, symbol: str, start: datetime, end: datetime) -> list[MarketTrade]:
        return []
