"""Volume and order flow from bars (and trades where a source has them): session VWAP with
standard-deviation bands, relative volume by time of day, buy/sell delta, and the
breakout-volume confirmation rule. Pure: bars in, numbers out.

Sources:
- VWAP bands: the volume-weighted standard deviation of the typical price (h+l+c)/3 around
  the session VWAP, as TradingView's built-in "VWAP" indicator draws its "Standard
  Deviation" bands (https://www.tradingview.com/support/solutions/43000502018-volume-weighted-average-price-vwap/).
- Tick rule: a trade above the previous price is a buy, below a sell, at the same price
  it takes the previous trade's side (Lee & Ready, "Inferring Trade Direction from
  Intraday Data", Journal of Finance 46(2), 1991). On bars, the bar's close plays the
  trade's price and its whole volume takes the side.
- Bulk volume classification (BVC): a bar's buy share is Φ(ΔP / σ_ΔP), the normal CDF of
  its close-to-close change over the standard deviation of those changes (Easley,
  López de Prado & O'Hara, "Flow Toxicity and Liquidity in a High-Frequency World",
  Review of Financial Studies 25(5), 2012, eq. 3; "Discerning Information from Trade Data",
  JFE 2016, shows it is more accurate than the tick rule on aggregated bars).
- Volume confirmation: a breakout counts when its bar trades at least k× the usual volume;
  k = 1.5 follows O'Neil's breakout rule (volume at least 40–50 % above average, "How to
  Make Money in Stocks", 4th ed., 2009) and the practitioners' "relative volume ≥ 1.5"
  for a stock in play.

Minutes of the session are counted from the NYSE regular open of the bar's trading day
(rules/market_calendar.py), so relative volume and the time-of-day averages line up across
daylight-saving changes and early closes; bars outside the regular session are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import numpy as np

from chalicelib.domain import Bar, MarketTrade, Verdict
from chalicelib.rules import market_calendar

BAR_SECONDS = 60
VOLUME_CONFIRMATION = "volume_confirmation"


@dataclass(frozen=True)
class VwapBands:
    """The session VWAP and its ±1σ/±2σ bands (USD); `sigma` is the volume-weighted
    standard deviation of the typical price around the VWAP."""

    vwap: float
    sigma: float

    @property
    def upper_1(self) -> float:
        return self.vwap + self.sigma

    @property
    def lower_1(self) -> float:
        return self.vwap - self.sigma

    @property
    def upper_2(self) -> float:
        return self.vwap + 2 * self.sigma

    @property
    def lower_2(self) -> float:
        return self.vwap - 2 * self.sigma


def _typical(bars: Sequence[Bar]) -> np.ndarray:
    return np.array([(b.high + b.low + b.close) / 3.0 for b in bars], dtype=np.float64)


def _volumes(bars: Sequence[Bar]) -> np.ndarray:
    return np.array([b.volume for b in bars], dtype=np.float64)


def vwap_series(bars: Sequence[Bar]) -> np.ndarray:
    """The running VWAP after each bar of one session (index i uses bars ≤ i only).

    Before any volume traded, the running mean of the typical price stands in.
    """
    typical = _typical(bars)
    vol = _volumes(bars)
    cv = np.cumsum(vol)
    pv = np.cumsum(typical * vol)
    mean = np.cumsum(typical) / np.arange(1, typical.size + 1) if typical.size else typical
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cv > 0, pv / np.where(cv > 0, cv, 1.0), mean)


def session_vwap(bars: Sequence[Bar]) -> VwapBands | None:
    """VWAP and bands over one session's bars; None when there are no bars."""
    if not bars:
        return None
    typical = _typical(bars)
    vol = _volumes(bars)
    total = float(vol.sum())
    if total <= 0:
        return VwapBands(vwap=float(typical.mean()), sigma=float(typical.std()))
    vwap = float((typical * vol).sum() / total)
    variance = float((vol * (typical - vwap) ** 2).sum() / total)
    return VwapBands(vwap=vwap, sigma=math.sqrt(max(variance, 0.0)))


_session_bounds = lru_cache(maxsize=8192)(market_calendar.session_bounds)


def minute_of_session(moment: datetime) -> int | None:
    """Whole minutes since the regular open of `moment`'s trading day (09:30 → 0), or None
    outside the regular session.

    A regular session (13:30–21:00 UTC at the widest) lies within one UTC date, the same as
    its New York date, so the UTC date names the session to look in (and is cheap).
    """
    day = moment.date() if moment.tzinfo is UTC else moment.astimezone(UTC).date()
    bounds = _session_bounds(day)
    if bounds is None or not bounds[0] <= moment < bounds[1]:
        return None
    return int((moment - bounds[0]).total_seconds() // 60)


def minutes_of_session(bars: Sequence[Bar]) -> list[int | None]:
    """`minute_of_session` of every bar's start (one calendar look-up per date)."""
    out: list[int | None] = []
    bounds_by_day: dict[date, tuple[datetime, datetime] | None] = {}
    for bar in bars:
        moment = bar.time
        day = moment.date() if moment.tzinfo is UTC else moment.astimezone(UTC).date()
        if day not in bounds_by_day:
            bounds_by_day[day] = _session_bounds(day)
        bounds = bounds_by_day[day]
        if bounds is None or not bounds[0] <= moment < bounds[1]:
            out.append(None)
        else:
            out.append(int((moment - bounds[0]).total_seconds() // 60))
    return out


def regular_session(bars: Sequence[Bar]) -> list[Bar]:
    """The bars that start inside the NYSE regular session (extended hours dropped)."""
    return [b for b, m in zip(bars, minutes_of_session(bars), strict=True) if m is not None]


def volume_by_minute(session: Sequence[Bar]) -> dict[int, float]:
    """Volume per minute of the session (regular-session bars only)."""
    out: dict[int, float] = {}
    for bar, minute in zip(session, minutes_of_session(session), strict=True):
        if minute is not None:
            out[minute] = out.get(minute, 0.0) + bar.volume
    return out


def cumulative_volume(session: Sequence[Bar], through_minute: int) -> float:
    """Volume traded from the open through minute `through_minute` of the session."""
    return sum(v for m, v in volume_by_minute(session).items() if m <= through_minute)


def relative_volume(
    session: Sequence[Bar],
    prior_sessions: Sequence[Sequence[Bar]],
    *,
    through_minute: int | None = None,
) -> float | None:
    """Today's cumulative volume by minute-of-session over the average of the prior
    sessions' cumulative volume by the same minute (1.0 = a usual day so far).

    `through_minute` defaults to the minute of today's last regular-session bar. None when
    today has no bars, no prior session traded by then, or their average is zero.
    """
    if through_minute is None:
        minutes = volume_by_minute(session)
        if not minutes:
            return None
        through_minute = max(minutes)
    usual = [cumulative_volume(p, through_minute) for p in prior_sessions]
    usual = [u for u in usual if u > 0]
    if not usual:
        return None
    average = sum(usual) / len(usual)
    return cumulative_volume(session, through_minute) / average if average > 0 else None


def tick_rule_signs(prices: Sequence[float], first_reference: float | None = None) -> np.ndarray:
    """+1 (buy) / −1 (sell) / 0 (unknown) per price by the tick rule (Lee & Ready 1991).

    A zero tick keeps the previous sign; the first price is compared with
    `first_reference` (e.g. the first bar's open) when given, else it is unknown.
    """
    signs = np.zeros(len(prices), dtype=np.float64)
    previous = first_reference
    last_sign = 0.0
    for i, price in enumerate(prices):
        if previous is not None and price != previous:
            last_sign = 1.0 if price > previous else -1.0
        signs[i] = last_sign
        previous = price
    return signs


def bar_delta_tick(bars: Sequence[Bar]) -> np.ndarray:
    """Buy − sell volume per bar by the tick rule on closes (the first bar against its
    open): the whole bar's volume takes its close's side."""
    if not bars:
        return np.zeros(0)
    signs = tick_rule_signs([b.close for b in bars], first_reference=bars[0].open)
    return signs * _volumes(bars)


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


def bar_delta_bvc(bars: Sequence[Bar]) -> np.ndarray:
    """Buy − sell volume per bar by bulk volume classification (Easley, López de Prado &
    O'Hara 2012): buy share Φ(ΔP/σ), so delta = V·(2Φ(ΔP/σ) − 1).

    ΔP is the close-to-close change (the first bar: close − open); σ the sample standard
    deviation of those changes over the bars given. All changes zero: every delta is 0.
    """
    if not bars:
        return np.zeros(0)
    close = np.array([b.close for b in bars], dtype=np.float64)
    change = np.diff(close, prepend=bars[0].open)
    sigma = float(change.std(ddof=1)) if change.size > 1 else float(abs(change[0]))
    vol = _volumes(bars)
    if sigma <= 0 or not math.isfinite(sigma):
        return np.zeros(close.size)
    return vol * (2.0 * _normal_cdf(change / sigma) - 1.0)


def bar_delta_from_trades(
    bars: Sequence[Bar],
    trades: Sequence[MarketTrade],
    *,
    bar_seconds: int = BAR_SECONDS,
) -> np.ndarray:
    """Buy − sell volume per bar from the tape: each trade signed by the tick rule over the
    trade sequence (time order), summed into the bar whose [start, start + bar_seconds)
    holds it. Trades outside every bar are ignored; the first trade's side is unknown."""
    out = np.zeros(len(bars))
    if not bars or not trades:
        return out
    ordered = sorted(trades, key=lambda t: t.time)
    signs = tick_rule_signs([t.price for t in ordered])
    starts = [b.time for b in bars]
    width = timedelta(seconds=bar_seconds)
    j = 0
    for trade, sign in zip(ordered, signs, strict=True):
        while j < len(starts) and starts[j] + width <= trade.time:
            j += 1
        if j == len(starts):
            break
        if starts[j] <= trade.time:
            out[j] += sign * trade.size
    return out


def session_delta(
    bars: Sequence[Bar], trades: Sequence[MarketTrade] = (), *, method: str = "bvc"
) -> float | None:
    """The session's estimated buy − sell volume: from trades when given, else from bars
    by `method` ("bvc" or "tick"). None when there are no bars."""
    if not bars:
        return None
    if trades:
        return float(bar_delta_from_trades(bars, trades).sum())
    if method == "tick":
        return float(bar_delta_tick(bars).sum())
    if method == "bvc":
        return float(bar_delta_bvc(bars).sum())
    raise ValueError(f"unknown delta method {method!r}: use 'bvc' or 'tick'")


def usual_volume_at(
    minute: int, history: Sequence[Sequence[Bar]], *, window: int = 2
) -> float | None:
    """The average per-minute volume at minute-of-session `minute` (± `window` minutes,
    averaged) over the prior sessions that traded then; None without any."""
    samples: list[float] = []
    for session in history:
        by_minute = volume_by_minute(session)
        near = [by_minute[m] for m in range(minute - window, minute + window + 1) if m in by_minute]
        if near:
            samples.append(sum(near) / len(near))
    return sum(samples) / len(samples) if samples else None


def volume_confirmation(
    bars: Sequence[Bar],
    history: Sequence[Sequence[Bar]],
    k: float = 1.5,
    *,
    window: int = 2,
) -> Verdict:
    """Does the breakout bar (the last of `bars`) trade at least `k`× the usual volume for
    its minute of the session (the prior sessions' average, ± `window` minutes)?

    Denied with the figures when it does not. When there is nothing to compare with (no
    bar, outside the session, no history at that time) the verdict allows and says it
    could not check: missing data never blocks an entry on its own.
    """
    if not bars:
        return Verdict(
            allowed=True, reason="volume not checked: no bars", check=VOLUME_CONFIRMATION
        )
    bar = bars[-1]
    minute = minute_of_session(bar.time)
    if minute is None:
        return Verdict(
            allowed=True,
            reason="volume not checked: the bar is outside the regular session",
            check=VOLUME_CONFIRMATION,
        )
    usual = usual_volume_at(minute, history, window=window)
    if usual is None or usual <= 0:
        return Verdict(
            allowed=True,
            reason=f"volume not checked: no prior session traded at minute {minute}",
            check=VOLUME_CONFIRMATION,
        )
    ratio = bar.volume / usual
    clock = market_calendar.to_eastern(bar.time).strftime("%H:%M")
    figures = (
        f"breakout bar volume {bar.volume:,.0f} is {ratio:.2f}× the usual {usual:,.0f} "
        f"at {clock} New York (need ≥ {k:g}×)"
    )
    if ratio >= k:
        return Verdict(
            allowed=True, reason=f"volume confirms: {figures}", check=VOLUME_CONFIRMATION
        )
    return Verdict.deny(f"volume does not confirm: {figures}", check=VOLUME_CONFIRMATION)
