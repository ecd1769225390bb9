"""Moving-average crossover: long when the fast SMA crosses above the slow one.

A cross is strict on both bars (fast below slow at i−1, above at i), the same definition
as backtesting.py's `crossover`, so a touch without a cross is no signal.
"""

from __future__ import annotations

import numpy as np

from chalicelib.rules.indicators import crossed_above, crossed_below, sma
from chalicelib.rules.strategies import BarArrays, Signal


def sma_cross(
    bars: BarArrays, *, fast: int = 10, slow: int = 30, allow_short: bool = True
) -> np.ndarray:
    """LONG on a golden cross; on a death cross SHORT (or FLAT when shorts are off)."""
    if not 1 <= fast < slow:
        raise ValueError("sma_cross needs 1 <= fast < slow")
    fast_ma = sma(bars.close, fast)
    slow_ma = sma(bars.close, slow)
    signal = np.zeros(len(bars), dtype=np.int8)
    signal[crossed_above(fast_ma, slow_ma)] = Signal.LONG
    signal[crossed_below(fast_ma, slow_ma)] = Signal.SHORT if allow_short else Signal.FLAT
    return signal
