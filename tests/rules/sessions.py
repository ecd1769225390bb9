"""Constructed one-minute sessions for the rules' tests (no files, no randomness)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from chalicelib.domain import Bar
from chalicelib.rules import market_calendar


def session_open(day: date) -> datetime:
    bounds = market_calendar.session_bounds(day)
    assert bounds is not None, day
    return bounds[0]


def session(
    day: date,
    closes: Sequence[float],
    volumes: Sequence[float] | float = 1000.0,
    *,
    first_open: float | None = None,
    wick: float = 0.02,
    start_minute: int = 0,
) -> list[Bar]:
    """Bars from the regular open of `day`: each opens at the previous close (the first at
    `first_open`, default its own close), wicks `wick` beyond its body."""
    start = session_open(day) + timedelta(minutes=start_minute)
    vols = [volumes] * len(closes) if isinstance(volumes, int | float) else list(volumes)
    bars, previous = [], first_open if first_open is not None else closes[0]
    for i, (close, volume) in enumerate(zip(closes, vols, strict=True)):
        bars.append(
            Bar(
                time=start + timedelta(minutes=i),
                open=previous,
                high=max(previous, close) + wick,
                low=min(previous, close) - wick,
                close=close,
                volume=volume,
            )
        )
        previous = close
    return bars


def zigzag(base: float, amplitude: float, n: int) -> list[float]:
    """base, base+amplitude, base, ... (n closes)."""
    return [base + (amplitude if i % 2 else 0.0) for i in range(n)]


def prior_sessions(
    last_day: date,
    count: int = 5,
    n: int = 60,
    *,
    drift: float = 1.0,
    amplitude: float = 0.25,
) -> list[list[Bar]]:
    """`count` ordinary sessions before `last_day` (oldest first): a ±`amplitude` zigzag
    around 100 that drifts `drift` over the session (by default it closes near its high:
    a trend day), 1,000 shares a minute."""
    days: list[date] = []
    day = last_day
    while len(days) < count:
        day -= timedelta(days=1)
        if market_calendar.is_trading_day(day):
            days.append(day)
    out = []
    for d in reversed(days):
        closes = [100 + drift * i / n + (amplitude if i % 2 else -amplitude) for i in range(n)]
        out.append(session(d, closes, 1000.0, first_open=100.0))
    return out
