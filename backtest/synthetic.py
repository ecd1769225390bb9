"""A seeded generator of one-minute US-equity bars with documented daily regimes.

No package ships real minute bars we may redistribute, so intraday rules are tested on this.
Same seed, same bars. Each weekday session has 390 bars labelled by their open time, 09:30
to 15:59 America/New_York (weekends skipped, holidays not). Every session draws one regime
from a Markov chain that mostly stays put (p = 0.6) and otherwise picks uniformly:

| regime      | what the session does                                                      |
|-------------|----------------------------------------------------------------------------|
| trend_up    | steady upward drift (+1.5 daily σ over the session), normal volatility     |
| trend_down  | the mirror image                                                           |
| range       | oscillates around the open (one or two swings), low volatility             |
| volatile    | no drift, 2.5× volatility, heavier volume                                  |
| breakout    | quiet first 30 minutes, then a strong move (±2.5 σ) out of that range with |
|             | a volume surge for the next half hour                                      |

Daily volatility is 1.5 %, the overnight gap N(0, 0.4 %), minute volume a U-shaped profile
(heavy at the open and close) times log-normal noise and the regime's multiplier, plus extra
volume on large moves. Highs and lows extend past open/close by a half-normal wick.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REGIMES = ("trend_up", "trend_down", "range", "volatile", "breakout")
BARS_PER_DAY = 390
DAILY_VOL = 0.015
STAY = 0.6


def _sessions(first_day: str, count: int) -> pd.DatetimeIndex:
    return pd.bdate_range(start=first_day, periods=count)


def intraday_bars(
    n_bars: int = BARS_PER_DAY * 20,
    *,
    seed: int = 7,
    start: str = "2020-01-02",
    start_price: float = 100.0,
    tz: str = "America/New_York",
) -> pd.DataFrame:
    """`n_bars` one-minute bars (the last session may be partial) with a `regime` column."""
    rng = np.random.default_rng(seed)
    days = -(-n_bars // BARS_PER_DAY)
    regime = np.empty(days, dtype=np.int64)
    current = int(rng.integers(len(REGIMES)))
    stay = rng.random(days)
    jump = rng.integers(len(REGIMES), size=days)
    for d in range(days):
        if d and stay[d] >= STAY:
            current = int(jump[d])
        regime[d] = current

    m = BARS_PER_DAY
    t = np.arange(m) / m
    sigma = DAILY_VOL / np.sqrt(m)
    vol_mult = np.array([1.0, 1.0, 0.6, 2.5, 1.0])[regime][:, None]
    shocks = rng.standard_normal((days, m)) * sigma * vol_mult
    drift = np.zeros((days, m))
    drift[regime == 0] = 1.5 * DAILY_VOL / m
    drift[regime == 1] = -1.5 * DAILY_VOL / m
    breakout = regime == 4
    direction = np.where(rng.random(days) < 0.5, 1.0, -1.0)
    late = (np.arange(m) >= 30) & (np.arange(m) < 90)
    drift[np.ix_(breakout, late)] = (direction[breakout] * 2.5 * DAILY_VOL / 60)[:, None]
    quiet = np.arange(m) < 30
    shocks[np.ix_(breakout, quiet)] *= 0.4
    log_ret = shocks + drift
    swing = np.zeros((days, m))
    ranging = regime == 2
    cycles = rng.integers(1, 3, size=days)[ranging][:, None]
    phase = rng.random(days)[ranging][:, None] * 2 * np.pi
    level = np.sin(2 * np.pi * cycles * t[None, :] + phase) - np.sin(phase)
    swing[ranging] = 0.6 * DAILY_VOL * level
    swing_ret = np.diff(swing, axis=1, prepend=0.0)
    log_ret += swing_ret

    gaps = rng.normal(0.0, 0.004, size=days)
    gaps[0] = 0.0
    within = np.cumsum(log_ret, axis=1)
    day_close = within[:, -1] + gaps
    day_open_log = np.log(start_price) + np.concatenate([[0.0], np.cumsum(day_close)[:-1]]) + gaps
    close_log = day_open_log[:, None] + within
    open_log = np.concatenate([day_open_log[:, None], close_log[:, :-1]], axis=1)
    close = np.exp(close_log)
    open_ = np.exp(open_log)
    wick = np.abs(rng.standard_normal((2, days, m))) * sigma * 0.6 * vol_mult
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])

    profile = 1.0 + 2.5 * (1 - t) ** 8 + 1.5 * t**10
    noise = rng.lognormal(0.0, 0.35, size=(days, m))
    surge = np.ones((days, m))
    surge[np.ix_(breakout, late)] = 3.0
    move = 1.0 + 40.0 * np.abs(log_ret)
    regime_volume = np.array([1.0, 1.0, 0.7, 1.8, 1.0])[regime][:, None]
    volume = np.round(20_000 * profile * noise * surge * move * regime_volume)

    sessions = _sessions(start, days)
    minutes = pd.to_timedelta(np.arange(m), unit="min") + pd.Timedelta(hours=9, minutes=30)
    stamps = (sessions.values[:, None] + minutes.values[None, :]).ravel()
    index = pd.DatetimeIndex(stamps).tz_localize(tz)
    frame = pd.DataFrame(
        {
            "timestamp": index,
            "open": np.round(open_.ravel(), 2),
            "high": np.round(high.ravel(), 2),
            "low": np.round(low.ravel(), 2),
            "close": np.round(close.ravel(), 2),
            "volume": volume.ravel(),
            "regime": np.repeat(np.array(REGIMES)[regime], m),
        }
    )
    return frame.iloc[:n_bars].reset_index(drop=True)
