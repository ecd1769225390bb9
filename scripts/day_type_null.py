"""What the day-type signals show on a driftless random walk: the null model the trend
thresholds in chalicelib/rules/day_type.py are set against (docs/day-type.md).

.venv/bin/python scripts/day_type_null.py [--sessions 4000] [--bars 30] [--seed 1]

Each session: `--bars` one-minute bars from 09:30 New York, log returns N(0, 0.04 %), wicks a
half-normal 0.6× that beyond the body, constant volume. Prints the 10th/50th/90th
percentiles of each signal and how often each trend vote passes with the default
thresholds (no prior sessions, so the volume vote is not read).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chalicelib.domain import Bar
from chalicelib.rules.day_type import DEFAULT_THRESHOLDS, classify_day

OPEN = datetime(2025, 1, 14, 14, 30, tzinfo=UTC)  # 09:30 New York


def random_walk_session(rng: np.random.Generator, n: int) -> list[Bar]:
    step = 0.0004
    close = 100 * np.exp(np.cumsum(rng.standard_normal(n) * step))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.standard_normal((2, n))) * step * 0.6 * 100
    return [
        Bar(
            time=OPEN + timedelta(minutes=i),
            open=float(open_[i]),
            high=float(max(open_[i], close[i]) + wick[0, i]),
            low=float(min(open_[i], close[i]) - wick[1, i]),
            close=float(close[i]),
            volume=1000.0,
        )
        for i in range(n)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=4000)
    parser.add_argument("--bars", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    t = DEFAULT_THRESHOLDS
    values: dict[str, list[float]] = {"adx": [], "abs_vwap_distance_sigma": [], "er_sqrt_n": []}
    crosses: list[float] = []
    trend = 0
    for _ in range(args.sessions):
        c = classify_day("NULL", random_walk_session(rng, args.bars))
        f = c.features
        values["adx"].append(f.get("adx", np.nan))
        values["abs_vwap_distance_sigma"].append(abs(f["vwap_distance_sigma"]))
        values["er_sqrt_n"].append(f["efficiency"] * np.sqrt(f["bars"]))
        crosses.append(f["vwap_crosses"] / f["vwap_crosses_noise"])
        trend += c.day_type.is_trend
    for name, xs in {**values, "vwap_crosses / sqrt(2n/pi)": crosses}.items():
        q = np.nanquantile(xs, [0.1, 0.5, 0.9])
        print(f"{name:28s} p10 {q[0]:7.3f}  p50 {q[1]:7.3f}  p90 {q[2]:7.3f}")
    n = args.sessions
    print(
        f"vote passes: adx ≥ {t.adx_trend:g}: "
        f"{np.mean(np.array(values['adx']) >= t.adx_trend):.3f}, "
        f"|distance| ≥ {t.vwap_band_sigma:g}σ: "
        f"{np.mean(np.array(values['abs_vwap_distance_sigma']) >= t.vwap_band_sigma):.3f}, "
        f"efficiency ≥ {t.efficiency_noise_multiple:g}/√n: "
        f"{np.mean(np.array(values['er_sqrt_n']) >= t.efficiency_noise_multiple):.3f}, "
        f"crosses ≤ {t.vwap_cross_fraction:g}·√(2n/π): "
        f"{np.mean(np.array(crosses) <= t.vwap_cross_fraction):.3f}"
    )
    print(f"classified a trend: {trend / n:.3f} of {n} random-walk sessions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
