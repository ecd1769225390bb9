"""Opening-range breakout with VWAP and volume confirmation (intraday).

The opening range is the high and low of a session's first `range_bars` bars. After it is
set, the first bar that closes above the range high, above the session VWAP, on volume of
at least `volume_mult` times the mean of the previous `volume_lookback` bars, is a LONG;
the mirror image (below the low and below VWAP) is a SHORT when shorts are allowed. One
breakout per session: the first confirmed one. Exits are left to stops, targets and the
session close.
"""

from __future__ import annotations

import numpy as np

from chalicelib.rules.indicators import session_starts, session_vwap, sma
from chalicelib.rules.strategies import BarArrays, Signal


def opening_range_breakout(
    bars: BarArrays,
    *,
    range_bars: int = 15,
    volume_mult: float = 1.5,
    volume_lookback: int = 20,
    allow_short: bool = True,
    last_entry_bar: int = 0,
) -> np.ndarray:
    """Signals for the first confirmed breakout of each session's opening range.

    `last_entry_bar` > 0 ignores breakouts later than that many bars into the session.
    """
    if range_bars < 1 or volume_lookback < 1 or volume_mult < 0:
        raise ValueError("range_bars and volume_lookback must be >= 1, volume_mult >= 0")
    n = len(bars)
    signal = np.zeros(n, dtype=np.int8)
    if n == 0:
        return signal
    start = session_starts(bars.session_id)
    pos = np.arange(n) - start
    first = np.flatnonzero(pos == 0)

    in_range = pos < range_bars
    or_high = np.maximum.reduceat(np.where(in_range, bars.high, -np.inf), first)
    or_low = np.minimum.reduceat(np.where(in_range, bars.low, np.inf), first)
    session_index = np.cumsum(pos == 0) - 1
    range_high = or_high[session_index]
    range_low = or_low[session_index]

    vwap = session_vwap(bars.high, bars.low, bars.close, bars.volume, bars.session_id)
    prior_mean = np.full(n, np.nan)
    prior_mean[1:] = sma(bars.volume, volume_lookback)[:-1]
    with np.errstate(invalid="ignore"):
        volume_ok = bars.volume >= volume_mult * prior_mean
    armed = pos >= range_bars
    if last_entry_bar > 0:
        armed &= pos <= last_entry_bar
    close = bars.close
    up = armed & volume_ok & (close > range_high) & (close > vwap)
    down = armed & volume_ok & (close < range_low) & (close < vwap)
    if not allow_short:
        down[:] = False

    idx = np.arange(n)
    first_up = np.minimum.reduceat(np.where(up, idx, n), first)
    first_down = np.minimum.reduceat(np.where(down, idx, n), first)
    first_any = np.minimum(first_up, first_down)
    hit = first_any < n
    winners = first_any[hit]
    signal[winners] = np.where(up[winners], Signal.LONG, Signal.SHORT)
    return signal
