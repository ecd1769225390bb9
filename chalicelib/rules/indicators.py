"""Indicators over whole bar arrays, shared by the live rules and the backtest.

Pure numpy, vectorised, no I/O. Every function returns a float64 array as long as its
input, NaN where the lookback is not yet filled, so index ``i`` only ever uses bars
``<= i`` (no look-ahead).
"""

from __future__ import annotations

import numpy as np


def _as_float(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64)


def sma(values: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average over `period` bars (the mean of bars ``i-period+1 .. i``).

    Window sums are built from running sums inside blocks of `period` bars (a window is a
    suffix of one block plus a prefix of the next), so the rounding error stays at the size
    of one window's sum however long the series is, unlike one cumulative sum.
    """
    if period < 1:
        raise ValueError("period must be at least 1")
    x = _as_float(values)
    n = x.size
    out = np.full(n, np.nan)
    if n < period:
        return out
    blocks = -(-n // period)
    padded = np.zeros(blocks * period)
    padded[:n] = x
    prefix = np.cumsum(padded.reshape(blocks, period), axis=1)
    total = prefix[:, -1]
    sums = np.empty(blocks * period - period + 1)
    sums[0] = total[0]
    sums[1:] = (prefix[1:, :] + (total[:-1, None] - prefix[:-1, :])).ravel()[: sums.size - 1]
    out[period - 1 :] = sums[: n - period + 1] / period
    return out


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Largest of high−low, |high−previous close|, |low−previous close| (first bar: high−low)."""
    h, lo, c = _as_float(high), _as_float(low), _as_float(close)
    prev = np.empty_like(c)
    prev[0] = c[0] if c.size else np.nan
    prev[1:] = c[:-1]
    return np.maximum(h - lo, np.maximum(np.abs(h - prev), np.abs(lo - prev)))


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Average true range: the simple mean of the true range over `period` bars (USD)."""
    return sma(true_range(high, low, close), period)


def session_starts(session_id: np.ndarray) -> np.ndarray:
    """Index of the first bar of the session each bar belongs to."""
    sid = np.asarray(session_id)
    n = sid.size
    first = np.zeros(n, dtype=bool)
    if n:
        first[0] = True
        first[1:] = sid[1:] != sid[:-1]
    idx = np.where(first, np.arange(n), 0)
    return np.maximum.accumulate(idx) if n else idx


def session_vwap(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    session_id: np.ndarray,
) -> np.ndarray:
    """Volume-weighted average of the typical price (h+l+c)/3 since the session open.

    Bars with no volume so far in the session get the running typical-price mean instead.
    """
    typical = (_as_float(high) + _as_float(low) + _as_float(close)) / 3.0
    vol = _as_float(volume)
    start = session_starts(session_id)
    pv = np.cumsum(typical * vol)
    cv = np.cumsum(vol)
    ct = np.cumsum(typical)
    before = start - 1
    has_before = before >= 0
    prev_idx = np.where(has_before, before, 0)
    pv_s = pv - np.where(has_before, pv[prev_idx], 0.0)
    cv_s = cv - np.where(has_before, cv[prev_idx], 0.0)
    ct_s = ct - np.where(has_before, ct[prev_idx], 0.0)
    count = np.arange(typical.size) - start + 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cv_s > 0, pv_s / np.where(cv_s > 0, cv_s, 1.0), ct_s / count)


def crossed_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True at bar i when a was strictly below b at i−1 and is strictly above it at i."""
    out = np.zeros(a.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        out[1:] = (a[:-1] < b[:-1]) & (a[1:] > b[1:])
    return out


def crossed_below(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True at bar i when a was strictly above b at i−1 and is strictly below it at i."""
    return crossed_above(b, a)
