"""Invariants over random bars and signals: money adds up, fills stay inside the bars."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest.data import bars_from_arrays
from backtest.engine import run_backtest
from tests.backtest.conftest import config


@st.composite
def scenarios(draw):
    n = draw(st.integers(min_value=3, max_value=60))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1] * np.exp(rng.normal(0, 0.005, n - 1))])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, n)))
    signals = rng.choice([0, 0, 0, 0, 1, -1, 2, 3, 4], size=n).astype(np.int8)
    overrides = [
        f"exits.stop_loss_pct={draw(st.sampled_from([0, 0.3, 1]))}",
        f"exits.take_profit_pct={draw(st.sampled_from([0, 0.5, 2]))}",
        f"exits.trail_pct={draw(st.sampled_from([0, 0.4]))}",
        f"exits.stop_ref='{draw(st.sampled_from(['signal_close', 'fill']))}'",
        f"fill.entry='{draw(st.sampled_from(['next_open', 'close']))}'",
        f"costs.commission={{ model = 'percent', rate = {draw(st.sampled_from([0, 0.001]))} }}",
        f"costs.slippage={{ model = 'bps', bps = {draw(st.sampled_from([0, 5]))} }}",
    ]
    return open_, high, low, close, signals, overrides


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_money_adds_up_and_fills_stay_inside_their_bars(scenario):
    open_, high, low, close, signals, overrides = scenario
    bars = bars_from_arrays(open_, high, low, close)
    result = run_backtest(bars, config(*overrides), progress=False, signals=signals)
    trades = result.trades
    assert result.final_equity == pytest.approx(
        result.start_equity + trades["net_pnl"].sum(), abs=1e-6
    )
    assert result.equity[-1] == pytest.approx(result.final_equity)
    np.testing.assert_allclose(
        trades["net_pnl"],
        np.where(trades["side"] == "long", 1, -1) * trades["qty"]
        * (trades["exit_price"] - trades["entry_price"]) - trades["commission"],
        atol=1e-6,
    )  # fmt: skip
    no_slip = "bps = 0" in overrides[-1]
    for t in trades.itertuples():
        assert t.entry_bar <= t.exit_bar
        if no_slip:
            assert low[t.exit_bar] - 1e-9 <= t.exit_price <= high[t.exit_bar] + 1e-9
            assert low[t.entry_bar] - 1e-9 <= t.entry_price <= high[t.entry_bar] + 1e-9
        if t.exit_reason == "take_profit":
            beyond = (
                t.exit_price >= t.target_price
                if t.side == "long"
                else t.exit_price <= t.target_price
            )
            assert beyond
    if len(trades) > 1:
        assert (trades["entry_bar"].to_numpy()[1:] >= trades["exit_bar"].to_numpy()[:-1]).all()
    assert set(trades["exit_reason"]) <= {
        "stop_loss", "take_profit", "trailing_stop", "signal", "end_of_data",
    }  # fmt: skip
