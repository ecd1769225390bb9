"""What kind of session it is, from its first minutes: trend_up | trend_down | choppy |
no_trade, with a confidence and the features behind it.

The thresholds (`DayTypeThresholds`) come from the literature and from what a random walk
would show over the same number of bars; none was fitted to data. docs/day-type.md gives
each one's source. `hindsight_label` is the after-the-close definition the classification
is validated against (`python -m backtest daytype`).

Pure: bars in, a `DayClassification` out; the service (services/classify_day.py) reads
the bars and stores the answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from chalicelib.domain import Bar, DayClassification, DayType
from chalicelib.rules import market_calendar
from chalicelib.rules.indicators import true_range
from chalicelib.rules.volume import (
    minute_of_session,
    regular_session,
    relative_volume,
    session_vwap,
    vwap_series,
)

BAR = timedelta(minutes=1)


class DayTypeUnavailable(ValueError):
    """Too few bars to say what kind of day it is (the message says how many there are)."""


@dataclass(frozen=True)
class DayTypeThresholds:
    """Every threshold the classifier uses; sources in docs/day-type.md (none fitted)."""

    atr_period: int = 14  # daily ATR over 14 sessions (Wilder 1978)
    adx_period: int = 14  # Wilder 1978
    # Each trend signal is set where a driftless random walk of 30 one-minute bars passes
    # it about one time in ten (docs/day-type.md, scripts/day_type_null.py):
    # Kaufman efficiency ratio ≥ this × 1/√n, the ratio a random walk shows on average.
    efficiency_noise_multiple: float = 2.0
    # VWAP crosses ≤ this × √(2n/π), a random walk's expected number of crossings.
    vwap_cross_fraction: float = 0.5
    vwap_band_sigma: float = 2.0  # the last close beyond the ±2σ VWAP band
    # ADX(14) ≥ 50: Wilder's 25 is for daily bars; on 30 one-minute bars a random walk's
    # median ADX is 25 and its 90th percentile 51 ("very strong trend" in the usual tables).
    adx_trend: float = 50.0
    rvol_trend: float = 1.5  # "in play": relative volume ≥ 1.5 (O'Neil; Aziz 2015)
    trend_votes: int = 3  # of the five trend signals above, at least three (a majority)
    # No-trade: a dead market, both volume and opening range at most half their usual.
    rvol_dead: float = 0.5
    range_dead: float = 0.5
    early_close_no_trade: bool = True  # NYSE half-days (thin, early close)
    min_bars: int = 5
    # Hindsight label (after the close), Dalton/Raschke's trend day in numbers:
    hindsight_body: float = 0.5  # |close − open| ≥ half the session's range
    hindsight_close_location: float = 0.7  # close in the outer 30 % of the range
    hindsight_trend_range_atr: float = 0.8  # and a range of at least 0.8 ATR
    hindsight_dead_range_atr: float = 0.5  # a range under half an ATR: nothing to trade


DEFAULT_THRESHOLDS = DayTypeThresholds()


def daily_ohlc(session: Sequence[Bar]) -> tuple[float, float, float, float] | None:
    """(open, high, low, close) of one session's regular-hours bars, or None."""
    bars = regular_session(session)
    if not bars:
        return None
    return (
        bars[0].open,
        max(b.high for b in bars),
        min(b.low for b in bars),
        bars[-1].close,
    )


def daily_atr(sessions: Sequence[Sequence[Bar]], period: int = 14) -> float | None:
    """The daily average true range (USD) over the last `period` sessions (oldest first),
    from their regular-hours highs, lows and closes; fewer sessions: the mean of those."""
    days = [d for d in (daily_ohlc(s) for s in sessions) if d is not None]
    if not days:
        return None
    high = np.array([d[1] for d in days])
    low = np.array([d[2] for d in days])
    close = np.array([d[3] for d in days])
    tr = true_range(high, low, close)
    return float(tr[-period:].mean())


def adx(bars: Sequence[Bar], period: int = 14) -> float | None:
    """Wilder's average directional index of the bars (0..100), or None under 2·period
    bars. Wilder smoothing throughout (J. Welles Wilder, "New Concepts in Technical
    Trading Systems", 1978)."""
    n = len(bars)
    if n < 2 * period or period < 1:
        return None
    h = np.array([b.high for b in bars])
    lo = np.array([b.low for b in bars])
    c = np.array([b.close for b in bars])
    up = h[1:] - h[:-1]
    down = lo[:-1] - lo[1:]
    plus_dm = np.where((up > down) & (up > 0), up, 0.0)
    minus_dm = np.where((down > up) & (down > 0), down, 0.0)
    tr = true_range(h, lo, c)[1:]

    def wilder(x: np.ndarray) -> np.ndarray:
        out = np.empty(x.size - period + 1)
        out[0] = x[:period].sum()
        for i in range(1, out.size):
            out[i] = out[i - 1] - out[i - 1] / period + x[period - 1 + i]
        return out

    str_ = wilder(tr)
    with np.errstate(invalid="ignore", divide="ignore"):
        plus_di = 100 * wilder(plus_dm) / str_
        minus_di = 100 * wilder(minus_dm) / str_
        total = plus_di + minus_di
        dx = np.where(
            total > 0, 100 * np.abs(plus_di - minus_di) / np.where(total > 0, total, 1), 0
        )
    dx = np.nan_to_num(dx)
    if dx.size < period:
        return None
    value = dx[:period].mean()
    for x in dx[period:]:
        value = (value * (period - 1) + x) / period
    return float(value)


def efficiency_ratio(bars: Sequence[Bar]) -> float | None:
    """Kaufman's efficiency ratio: |net move| / path length, from the first open through
    every close (0 = pure noise, 1 = a straight line; Kaufman, "Smarter Trading", 1995)."""
    if not bars:
        return None
    prices = np.array([bars[0].open] + [b.close for b in bars])
    path = float(np.abs(np.diff(prices)).sum())
    return abs(float(prices[-1] - prices[0])) / path if path > 0 else 0.0


def vwap_crosses(bars: Sequence[Bar]) -> int:
    """How often the close changed sides of the running session VWAP."""
    if len(bars) < 2:
        return 0
    close = np.array([b.close for b in bars])
    side = np.sign(close - vwap_series(bars))
    crosses, last = 0, 0.0
    for s in side:
        if s != 0:
            if last != 0 and s != last:
                crosses += 1
            last = s
    return crosses


def opening_window(session_bars: Sequence[Bar], at: datetime | None) -> list[Bar]:
    """The regular-session bars finished by `at` (all of them when `at` is None)."""
    bars = regular_session(session_bars)
    return bars if at is None else [b for b in bars if b.time + BAR <= at]


def _features(
    bars: list[Bar], prior: Sequence[Sequence[Bar]], t: DayTypeThresholds
) -> dict[str, float]:
    n = len(bars)
    first_open, last_close = bars[0].open, bars[-1].close
    or_high, or_low = max(b.high for b in bars), min(b.low for b in bars)
    or_range = or_high - or_low
    f: dict[str, float] = {
        "bars": float(n),
        "opening_range": or_range,
        "net_move": last_close - first_open,
        "efficiency": efficiency_ratio(bars) or 0.0,
        "efficiency_noise": 1.0 / math.sqrt(n),
        "vwap_crosses": float(vwap_crosses(bars)),
        "vwap_crosses_noise": math.sqrt(2.0 * n / math.pi),
    }
    bands = session_vwap(bars)
    if bands is not None:
        f["vwap"] = bands.vwap
        f["vwap_sigma"] = bands.sigma
        f["vwap_distance_sigma"] = (
            (last_close - bands.vwap) / bands.sigma if bands.sigma > 0 else 0.0
        )
    if (value := adx(bars, t.adx_period)) is not None:
        f["adx"] = value
    atr = daily_atr(prior, t.atr_period)
    if atr:
        f["daily_atr"] = atr
        f["opening_range_atr"] = or_range / atr
        if bands is not None:
            f["vwap_distance_atr"] = (last_close - bands.vwap) / atr
    prior_days = [d for d in (daily_ohlc(s) for s in prior) if d is not None]
    if prior_days:
        gap = first_open - prior_days[-1][3]
        f["gap"] = gap
        f["gap_pct"] = 100.0 * gap / prior_days[-1][3]
        if atr:
            f["gap_atr"] = gap / atr
    through = n - 1
    ranges = []
    for session in prior:
        early = regular_session(session)[: through + 1]
        if early:
            ranges.append(max(b.high for b in early) - min(b.low for b in early))
    if ranges and sum(ranges) > 0:
        f["opening_range_vs_avg"] = or_range / (sum(ranges) / len(ranges))
    minute = minute_of_session(bars[-1].time)
    rvol = relative_volume(bars, prior, through_minute=minute) if minute is not None else None
    if rvol is not None:
        f["relative_volume"] = rvol
    return f


def _trend_votes(f: dict[str, float], t: DayTypeThresholds) -> tuple[int, int, list[str]]:
    """(votes for a trend, signals that could be read, their names)."""
    signals: list[tuple[str, bool | None]] = [
        ("efficiency", f["efficiency"] >= t.efficiency_noise_multiple * f["efficiency_noise"]),
        ("vwap_one_side", f["vwap_crosses"] <= t.vwap_cross_fraction * f["vwap_crosses_noise"]),
        (
            "beyond_vwap_band",
            abs(f["vwap_distance_sigma"]) >= t.vwap_band_sigma
            if "vwap_distance_sigma" in f
            else None,
        ),
        ("adx", f["adx"] >= t.adx_trend if "adx" in f else None),
        (
            "relative_volume",
            f["relative_volume"] >= t.rvol_trend if "relative_volume" in f else None,
        ),
    ]
    read = [(name, yes) for name, yes in signals if yes is not None]
    names = [name for name, yes in read if yes]
    return len(names), len(read), names


def classify_day(
    symbol: str,
    session_bars: Sequence[Bar],
    prior_sessions: Sequence[Sequence[Bar]] = (),
    *,
    at: datetime | None = None,
    thresholds: DayTypeThresholds = DEFAULT_THRESHOLDS,
) -> DayClassification:
    """Classify today's session from its regular-hours bars finished by `at` (UTC; all
    given bars when None), against `prior_sessions` (oldest first) for ATR, the usual
    opening range and relative volume.

    Rules, in order: an NYSE early-close day is no_trade; a dead market (relative volume
    and opening range both at most half their usual) is no_trade; a trend needs a majority
    of five signals (efficiency, one side of VWAP, beyond the 2σ band, ADX, volume) and
    the close on the same side of the open and of VWAP; anything else is choppy.
    Raises DayTypeUnavailable under `thresholds.min_bars` bars.
    """
    t = thresholds
    bars = opening_window(session_bars, at)
    if len(bars) < t.min_bars:
        raise DayTypeUnavailable(
            f"{symbol}: {len(bars)} regular-session bar(s) by "
            f"{at.isoformat() if at else 'now'}; need at least {t.min_bars}"
        )
    day = market_calendar.trading_date(bars[0].time)
    classified_at = at or bars[-1].time + BAR
    f = _features(bars, prior_sessions, t)

    def result(kind: DayType, confidence: float, reason: str) -> DayClassification:
        return DayClassification(
            day=day,
            symbol=symbol,
            day_type=kind,
            confidence=round(min(max(confidence, 0.0), 1.0), 4),
            features={k: round(v, 6) for k, v in f.items()},
            classified_at=classified_at,
            reason=reason,
        )

    if t.early_close_no_trade and day in market_calendar.early_closes(day.year):
        return result(DayType.NO_TRADE, 0.9, "NYSE early close: a thin half-day session")
    rvol = f.get("relative_volume")
    or_avg = f.get("opening_range_vs_avg")
    if rvol is not None and or_avg is not None and rvol <= t.rvol_dead and or_avg <= t.range_dead:
        deadness = max(rvol / t.rvol_dead, or_avg / t.range_dead)
        return result(
            DayType.NO_TRADE,
            0.5 + 0.5 * (1.0 - deadness),
            f"dead market: relative volume {rvol:.2f} and opening range {or_avg:.2f}× its "
            f"average (both ≤ {t.rvol_dead:g} / {t.range_dead:g})",
        )
    votes, read, names = _trend_votes(f, t)
    needed = min(t.trend_votes, read)
    direction = math.copysign(1.0, f["net_move"]) if f["net_move"] else 0.0
    vwap_side = math.copysign(1.0, f.get("vwap_distance_sigma", 0.0) or 0.0)
    agrees = direction != 0 and ("vwap_distance_sigma" not in f or vwap_side == direction)
    summary = f"{votes}/{read} trend signals ({', '.join(names) or 'none'})"
    if read and votes >= needed and agrees:
        kind = DayType.TREND_UP if direction > 0 else DayType.TREND_DOWN
        return result(kind, votes / read, f"{summary}; direction {kind.value.split('_')[1]}")
    confidence = (read - votes) / read if read else 0.5
    why = "" if agrees or not votes else "; direction and VWAP side disagree"
    return result(DayType.CHOPPY, max(confidence, 0.5), f"{summary}{why}")


def hindsight_label(
    session_bars: Sequence[Bar],
    *,
    atr: float | None = None,
    thresholds: DayTypeThresholds = DEFAULT_THRESHOLDS,
) -> DayType:
    """What the whole session turned out to be, known only after the close.

    trend_up/down: the body |close − open| is at least half the day's range, the close in
    the outer 30 % of the range on the body's side, and (with `atr`, the daily ATR before
    the day) the range at least 0.8 ATR — Dalton's and Raschke's trend day, open near one
    extreme and close near the other. no_trade: (with `atr`) a range under half an ATR,
    a day with nothing worth trading. choppy: everything else.
    """
    t = thresholds
    ohlc = daily_ohlc(session_bars)
    if ohlc is None:
        raise DayTypeUnavailable("no regular-session bars to label")
    open_, high, low, close = ohlc
    span = high - low
    if atr and span < t.hindsight_dead_range_atr * atr:
        return DayType.NO_TRADE
    if span <= 0:
        return DayType.CHOPPY
    body = close - open_
    location = (close - low) / span
    big_enough = not atr or span >= t.hindsight_trend_range_atr * atr
    if big_enough and abs(body) >= t.hindsight_body * span:
        if body > 0 and location >= t.hindsight_close_location:
            return DayType.TREND_UP
        if body < 0 and location <= 1.0 - t.hindsight_close_location:
            return DayType.TREND_DOWN
    return DayType.CHOPPY
