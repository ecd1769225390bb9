"""One symbol's market as the decision sees it: the session's bars and what they say
(ATR, VWAP and bands, relative volume, delta, the breakout-volume verdict).

Pure: the worker's context step (services/context.py) reads the bars and trades through
the `MarketData` port and calls `build_snapshot`; the backtest builds the same snapshot
from its own bars.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np

from chalicelib.domain import Bar, MarketSnapshot, MarketTrade
from chalicelib.rules.indicators import atr as atr_series
from chalicelib.rules.volume import (
    regular_session,
    relative_volume,
    session_delta,
    session_vwap,
    volume_confirmation,
)

ATR_PERIOD = 14
BAR = timedelta(minutes=1)
VOLUME_CONFIRM_K = 1.5


def bar_atr(bars: Sequence[Bar], period: int = ATR_PERIOD) -> float | None:
    """ATR(`period`) over the bars' own timeframe at the last bar (USD per share), the
    number the backtest's ATR stops use (indicators.atr over the same bars); None when
    there are fewer than `period` bars."""
    if len(bars) < period:
        return None
    high = np.array([b.high for b in bars])
    low = np.array([b.low for b in bars])
    close = np.array([b.close for b in bars])
    value = float(atr_series(high, low, close, period)[-1])
    return value if math.isfinite(value) else None


def build_snapshot(
    symbol: str,
    source: str,
    now: datetime,
    session_bars: Sequence[Bar],
    prior_sessions: Sequence[Sequence[Bar]] = (),
    trades: Sequence[MarketTrade] = (),
    last_price: float | None = None,
    k: float = VOLUME_CONFIRM_K,
    *,
    atr_period: int = ATR_PERIOD,
) -> MarketSnapshot:
    """The snapshot at `now` from today's one-minute bars and the prior sessions' (oldest
    first).

    Only regular-session bars that started by `now` count. ATR runs over the last prior
    session and today together, so it is defined from the open. Delta comes from `trades`
    (tick rule on the tape) when given, else from bars by bulk volume classification.
    `last_price` defaults to the last close. The volume verdict judges the last bar
    finished by `now` as a breakout bar against `k`× the usual volume at its time of day.
    """
    session = [b for b in regular_session(session_bars) if b.time <= now]
    # the breakout bar is the last one finished by `now`: a bar still forming has only
    # part of its volume and would understate it
    finished = [b for b in session if b.time + BAR <= now]
    prior = [regular_session(s) for s in prior_sessions]
    prior = [s for s in prior if s]
    atr_bars = (prior[-1] if prior else []) + session
    bands = session_vwap(session)
    tape = [t for t in trades if session and session[0].time <= t.time <= now]
    delta = session_delta(session, tape) if session else None
    if last_price is None and session:
        last_price = session[-1].close
    return MarketSnapshot(
        symbol=symbol,
        source=source,
        as_of=now,
        last_price=last_price,
        bars=tuple(session),
        atr=bar_atr(atr_bars, atr_period),
        vwap=bands.vwap if bands else None,
        vwap_upper=bands.upper_1 if bands else None,
        vwap_lower=bands.lower_1 if bands else None,
        vwap_upper_2=bands.upper_2 if bands else None,
        vwap_lower_2=bands.lower_2 if bands else None,
        relative_volume=relative_volume(session, prior) if session else None,
        delta=delta,
        delta_method=None if delta is None else ("trades" if tape else "bvc"),
        volume_confirmation=volume_confirmation(finished, prior, k) if finished else None,
    )
