"""Helpers for the backtest tests: tiny hand-made bar series and a config builder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from backtest.config import Config, load_config
from backtest.data import Bars, bars_from_arrays
from backtest.engine import BacktestResult, run_backtest

L, S, F = 1, -1, 2  # Signal.LONG, Signal.SHORT, Signal.FLAT


def make_bars(rows: Sequence[tuple[float, float, float, float]], **kwargs) -> Bars:
    """Bars from (open, high, low, close) rows, one minute apart from 09:30."""
    data = np.asarray(rows, dtype=float)
    return bars_from_arrays(data[:, 0], data[:, 1], data[:, 2], data[:, 3], **kwargs)


def config(*overrides: str) -> Config:
    """Defaults (no stops, no costs, 100 shares, next_open), then `overrides` (percents)."""
    return load_config(None, ["units=percent", "sizing.qty=100", *overrides])


def simulate(bars: Bars, signals: Sequence[int], *overrides: str) -> BacktestResult:
    return run_backtest(bars, config(*overrides), progress=False, signals=np.asarray(signals))


def only_trade(result: BacktestResult) -> pd.Series:
    assert len(result.trades) == 1, result.trades
    return result.trades.iloc[0]
