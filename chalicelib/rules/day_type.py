"""What kind of session it is, from its first minutes: trend_up | trend_down | choppy |
no_trade, with a confidence and the features behind it.

The features come from the literature (docs/day-type.md cites each); the vote thresholds
(`DayTypeThresholds`) were calibrated on synthetic seeds 1–10 only
(scripts/day_type_calibrate.py) and evaluated on other seeds and real bars.
`hindsight_label` is the after-the-close definition the classification is validated
against (`python -m backtest daytype`).

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
SESSION_MINUTES = 390  # a full regular session, 09:30–16:00


class DayTypeUnavailable(ValueError):
    """Too few bars to say what kind of day it is (the message says how many there are)."""


@dataclass(frozen=True)
class DayTypeThresholds:
    """Every threshold the classifier uses. The vote thresholds were calibrated on
    synthetic seeds 1–10 only (scripts/day_type_calibrate.py); docs/day-type.md gives each
    one's source and the held-out figures. `math.inf` switches a vote off."""

    atr_period: int = 14  # daily ATR over 14 sessions (Wilder 1978)
    adx_period: int = 14  # Wilder 1978 (reported, does not vote)
    # Quiet votes → no_trade, both of (volatility clusters: Mandelbrot 1963, Engle 1982,
    # Cont 2001; Crabel's range contraction):
    quiet_range: float = 0.7  # opening range ≤ this × the ATR scaled to the minutes so far
    quiet_prior_range: float = 0.75  # yesterday's range ≤ this × the ATR before it
    quiet_rvol: float = math.inf  # relative volume ≤ this (off: added nothing)
    quiet_votes: int = 2  # quiet signals needed (of those that can be read)
    # Direction votes (+1 up / −1 down / 0), summed; a trend needs |sum| ≥ trend_votes:
    momentum_move: float = 0.1  # |net move| ≥ this × the ATR scaled to the minutes so far
    prior_body: float = 0.7  # yesterday's |close − open| ≥ this × its range
    vwap_side_sigma: float = 0.5  # the last close ≥ this many σ from VWAP
    momentum_efficiency: float = math.inf  # signed efficiency ≥ this × 1/√n (off)
    trend_votes: int = 1
    trend_rvol: float = 0.75  # and relative volume ≥ this ("fueled by volume", Dalton)
    wide_range: float = math.inf  # opening range ≥ this × its average → choppy (off)
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
    if atr:
        # a random walk's move and range grow with √time: the day's ATR scaled to n minutes
        expected = atr * math.sqrt(n / SESSION_MINUTES)
        f["net_move_norm"] = f["net_move"] / expected
        f["opening_range_norm"] = or_range / expected
    f.update(_yesterday(prior, t))
    return f


def _yesterday(prior: Sequence[Sequence[Bar]], t: DayTypeThresholds) -> dict[str, float]:
    """The last session's body (signed, as a share of its range) and its range against the
    ATR before it: what kind of day it was, since regimes and volatility persist."""
    last = daily_ohlc(prior[-1]) if prior else None
    if last is None:
        return {}
    open_, high, low, close = last
    span = high - low
    out = {"prior_body": (close - open_) / span if span > 0 else 0.0}
    atr = daily_atr(prior[:-1], t.atr_period)
    if atr:
        out["prior_range_atr"] = span / atr
    return out


Votes = list[tuple[str, bool | None]]


def quiet_votes(f: dict[str, float], t: DayTypeThresholds) -> Votes:
    """The quiet signals (None: cannot be read): thin volume, a narrow opening range for the
    minutes so far, and a narrow yesterday. Quiet follows quiet (volatility clustering)."""
    return [
        ("relative_volume", _at_most(f.get("relative_volume"), t.quiet_rvol)),
        ("opening_range", _at_most(f.get("opening_range_norm"), t.quiet_range)),
        ("yesterday_range", _at_most(f.get("prior_range_atr"), t.quiet_prior_range)),
    ]


def direction_votes(f: dict[str, float], t: DayTypeThresholds) -> list[tuple[str, int | None]]:
    """The direction signals, +1 up, −1 down, 0 neither (None: cannot be read): the move
    since the open (intraday momentum), its efficiency, yesterday's body (a trending regime
    persists) and the side of VWAP."""
    efficiency = math.copysign(f["efficiency"], f["net_move"]) / f["efficiency_noise"]
    return [
        ("momentum", _signed(f.get("net_move_norm"), t.momentum_move)),
        ("efficiency", _signed(efficiency, t.momentum_efficiency)),
        ("yesterday", _signed(f.get("prior_body"), t.prior_body)),
        ("vwap_side", _signed(f.get("vwap_distance_sigma"), t.vwap_side_sigma)),
    ]


def _at_most(value: float | None, limit: float) -> bool | None:
    """Whether `value` is at most `limit` (a vote switched off by inf is not read)."""
    return None if value is None or math.isinf(limit) else value <= limit


def _signed(value: float | None, limit: float) -> int | None:
    """+1 / −1 when |value| reaches `limit` (a vote switched off by inf is not read)."""
    if value is None or math.isinf(limit):
        return None
    return 0 if abs(value) < limit else (1 if value > 0 else -1)


def decide(
    f: dict[str, float], t: DayTypeThresholds = DEFAULT_THRESHOLDS, *, early_close: bool = False
) -> tuple[DayType, float, str]:
    """The day type, its confidence and why, from the features alone (in order):

    1. an NYSE early close → no_trade;
    2. at least `quiet_votes` quiet signals → no_trade (nothing will happen);
    3. a wide opening range (≥ `wide_range` × its average) → choppy (the expansion is spent);
    4. the direction votes summing to ±`trend_votes` or beyond, on relative volume ≥
       `trend_rvol`, → trend_up / trend_down;
    5. anything else → choppy.
    """
    if early_close and t.early_close_no_trade:
        return DayType.NO_TRADE, 0.9, "NYSE early close: a thin half-day session"
    quiet = [(name, yes) for name, yes in quiet_votes(f, t) if yes is not None]
    said = [name for name, yes in quiet if yes]
    if quiet and len(said) >= min(t.quiet_votes, len(quiet)):
        return (
            DayType.NO_TRADE,
            len(said) / len(quiet),
            f"quiet market: {len(said)}/{len(quiet)} quiet signals ({', '.join(said)})",
        )
    wide = f.get("opening_range_vs_avg")
    if wide is not None and wide >= t.wide_range:
        return DayType.CHOPPY, 0.6, f"wide opening range: {wide:.2f}× its average"
    read = [(name, vote) for name, vote in direction_votes(f, t) if vote is not None]
    total = sum(vote for _, vote in read)
    said = [f"{name} {'up' if vote > 0 else 'down'}" for name, vote in read if vote]
    summary = f"direction {total:+d} of {len(read)} ({', '.join(said) or 'none'})"
    rvol = f.get("relative_volume")
    fueled = rvol is None or rvol >= t.trend_rvol
    if read and abs(total) >= min(t.trend_votes, len(read)) and fueled:
        kind = DayType.TREND_UP if total > 0 else DayType.TREND_DOWN
        return kind, abs(total) / len(read), f"{summary}; trend {kind.value.split('_')[1]}"
    why = "" if fueled or abs(total) < t.trend_votes else f"; relative volume {rvol:.2f} too thin"
    confidence = 1.0 - abs(total) / len(read) if read else 0.5
    return DayType.CHOPPY, max(confidence, 0.5), f"{summary}{why}"


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
    opening range, relative volume and what yesterday was (`decide` gives the rules).
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
    # rounded before deciding, so the CSV's features decide the same (the calibration)
    features = {k: round(v, 6) for k, v in _features(bars, prior_sessions, t).items()}
    early = day in market_calendar.early_closes(day.year)
    kind, confidence, reason = decide(features, t, early_close=early)
    return DayClassification(
        day=day,
        symbol=symbol,
        day_type=kind,
        confidence=round(min(max(confidence, 0.0), 1.0), 4),
        features=features,
        classified_at=at or bars[-1].time + BAR,
        reason=reason,
    )


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
