"""Built-in strategies and indicators (chalicelib/rules), and the rules' import hygiene."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtest.synthetic import REGIMES, intraday_bars
from chalicelib.rules.indicators import atr, crossed_above, session_vwap, sma
from chalicelib.rules.strategies import BarArrays, Signal, UnknownStrategy, compute_signals

RULES = Path(__file__).resolve().parents[2] / "chalicelib" / "rules"
FORBIDDEN = {"pandas", "numba", "boto3", "botocore", "requests", "backtest", "httpx", "openai"}


def bars_of(close, *, high=None, low=None, volume=None, session=None) -> BarArrays:
    close = np.asarray(close, dtype=float)
    n = close.size
    return BarArrays(
        open=close.copy(),
        high=close if high is None else np.asarray(high, dtype=float),
        low=close if low is None else np.asarray(low, dtype=float),
        close=close,
        volume=np.full(n, 100.0) if volume is None else np.asarray(volume, dtype=float),
        session_id=np.zeros(n, dtype=np.int64) if session is None else np.asarray(session),
    )


def test_rules_import_no_pandas_numba_or_vendor_sdk():
    offenders = []
    for path in RULES.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_sma_matches_pandas_rolling_mean():
    x = np.random.default_rng(3).normal(0, 1, 50_000).cumsum() + 500
    for period in (1, 2, 7, 30, 200):
        ours = sma(x, period)
        theirs = pd.Series(x).rolling(period).mean().to_numpy()
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert np.isnan(sma(np.arange(3.0), 5)).all()


def test_crosses_are_strict_on_both_bars():
    a = np.array([1.0, 2.0, 2.0, 3.0, 1.0, 3.0])
    b = np.array([2.0, 2.0, 2.0, 2.0, 2.0, 2.0])
    # 1<2 then 2=2: no cross; 2=2 then 3>2: no cross (a was not below); 1<2 then 3>2: cross
    assert list(crossed_above(a, b)) == [False, False, False, False, False, True]


def test_atr_is_the_mean_true_range():
    high = np.array([11.0, 12.0, 13.0])
    low = np.array([9.0, 10.0, 12.5])
    close = np.array([10.0, 11.0, 12.0])
    # true ranges: 2, max(2, |12−10|, |10−10|)=2, max(0.5, |13−11|, |12.5−11|)=2
    np.testing.assert_allclose(atr(high, low, close, 2), [np.nan, 2.0, 2.0])


def test_session_vwap_restarts_each_session():
    price = np.array([10.0, 12.0, 20.0, 22.0])
    volume = np.array([1.0, 3.0, 1.0, 1.0])
    vwap = session_vwap(price, price, price, volume, np.array([1, 1, 2, 2]))
    np.testing.assert_allclose(vwap, [10.0, (10 + 36) / 4, 20.0, 21.0])


def test_sma_cross_signals_long_on_golden_and_short_or_flat_on_death_cross():
    close = [10, 10, 10, 9, 12, 14, 17, 12, 8, 6, 6]
    bars = bars_of(close)
    signals = compute_signals("sma_cross", bars, {"fast": 2, "slow": 3})
    longs = np.flatnonzero(signals == Signal.LONG)
    shorts = np.flatnonzero(signals == Signal.SHORT)
    fast, slow = sma(np.array(close, float), 2), sma(np.array(close, float), 3)
    assert list(longs) == [4]  # fast 9.5 < slow 9.67 at bar 3, 10.5 > 10.33 at bar 4
    assert fast[4] > slow[4]
    assert list(shorts) == [8]
    assert fast[8] < slow[8]
    long_only = compute_signals("sma_cross", bars, {"fast": 2, "slow": 3, "allow_short": False})
    assert list(np.flatnonzero(long_only == Signal.FLAT)) == [8]


def test_unknown_strategy_and_bad_params():
    bars = bars_of([1.0, 2.0])
    with pytest.raises(UnknownStrategy):
        compute_signals("golden_goose", bars, {})
    with pytest.raises(ValueError, match="fast < slow"):
        compute_signals("sma_cross", bars, {"fast": 5, "slow": 5})
    with pytest.raises(TypeError):
        compute_signals("sma_cross", bars, {"fats": 5})


def orb_session(breakout_volume: float) -> BarArrays:
    #            opening range (3 bars)   quiet  breakout  later breakout
    close = [100.0, 101.0, 99.0, 100.5, 102.0, 103.0]
    high = [100.5, 101.5, 100.0, 100.8, 102.2, 103.5]
    low = [99.5, 100.5, 98.5, 100.2, 101.0, 102.5]
    volume = [100.0, 100.0, 100.0, 100.0, breakout_volume, 500.0]
    return bars_of(close, high=high, low=low, volume=volume)


def test_opening_range_breakout_needs_range_vwap_and_volume():
    params = {"range_bars": 3, "volume_mult": 1.5, "volume_lookback": 3}
    signals = compute_signals("orb", orb_session(breakout_volume=400.0), params)
    # range high 101.5; bar 4 closes 102 > 101.5, above VWAP, volume 400 ≥ 1.5 × 100
    assert list(signals) == [0, 0, 0, 0, Signal.LONG, 0]  # bar 5 is a second breakout: ignored
    quiet = compute_signals("orb", orb_session(breakout_volume=120.0), params)
    # bar 4 lacks volume; bar 5 (500 ≥ 1.5 × mean(100, 100, 120)) is the first confirmed one
    assert list(quiet) == [0, 0, 0, 0, 0, Signal.LONG]


def test_opening_range_breakout_on_synthetic_sessions():
    frame = intraday_bars(390 * 30, seed=11)
    days = pd.DatetimeIndex(frame["timestamp"]).tz_localize(None).normalize().asi8
    bars = BarArrays(
        *(frame[c].to_numpy() for c in ("open", "high", "low", "close", "volume")),
        session_id=days,
    )
    signals = compute_signals("orb", bars, {"range_bars": 15})
    hits = np.flatnonzero(signals != 0)
    assert hits.size > 5
    per_session = pd.Series(days[hits]).value_counts()
    assert per_session.max() == 1
    position_in_session = hits - np.searchsorted(days, days[hits])
    assert position_in_session.min() >= 15


def test_synthetic_generator_is_seeded_and_well_formed():
    a = intraday_bars(390 * 10, seed=5)
    b = intraday_bars(390 * 10, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(intraday_bars(390 * 10, seed=6))
    assert (a["high"] >= a[["open", "close"]].max(axis=1)).all()
    assert (a["low"] <= a[["open", "close"]].min(axis=1)).all()
    assert (a["low"] > 0).all()
    assert set(a["regime"]) <= set(REGIMES)
    stamps = pd.DatetimeIndex(a["timestamp"])
    assert stamps[0].strftime("%H:%M") == "09:30"
    assert stamps[389].strftime("%H:%M") == "15:59"
    assert (stamps.day_of_week < 5).all()
