"""The kernel's default stop and target are the live decision's (`rules/orders._protective`).

One `OrderRules` (from the backtest's `[sizing]`/`[exits]`) feeds both: the live function
computes and tick-rounds the levels for an alert without its own stops; the compiled
`backtest.kernel._levels` computes them for a backtest entry, and the engine rounds them
with `round_levels` when `exits.round_to_tick` is on. For random entries (both tick
regimes), sides, percents, ATR multiples and ATRs (absent, zero, positive), the rounded
kernel levels equal the live ones exactly, and the unrounded ones are within a tick.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest import kernel as k
from backtest.config import load_config
from backtest.engine import kernel_params, round_levels, run_backtest
from chalicelib.domain import Alert, Side
from chalicelib.rules.indicators import atr as atr_indicator
from chalicelib.rules.orders import _protective
from tests.backtest.conftest import make_bars, only_trade

ALERT = {"buy": Alert.model_validate({"ticker": "AAPL", "action": "buy"})}
ALERT["sell"] = Alert.model_validate({"ticker": "AAPL", "action": "sell"})

entries = st.one_of(st.floats(0.01, 0.9999), st.floats(1.0, 5_000.0))
percents = st.one_of(st.just(0.0), st.floats(0.01, 99.0), st.sampled_from([0.5, 1.0, 2.0, 5.0]))
multiples = st.one_of(st.just(0.0), st.floats(0.1, 10.0))
atrs = st.one_of(st.none(), st.just(0.0), st.floats(1e-4, 500.0))
sides = st.sampled_from([1, -1])


def _config(stop_pct: float, target_pct: float, stop_atr: float, target_atr: float, *extra):
    return load_config(
        None,
        [
            "units=percent",
            f"exits.stop_loss_pct={stop_pct!r}",
            f"exits.take_profit_pct={target_pct!r}",
            f"exits.atr_stop_mult={stop_atr!r}",
            f"exits.atr_target_mult={target_atr!r}",
            *extra,
        ],
    )


def _kernel_levels(config, side: int, entry: float, atr: float | None) -> tuple[float, float]:
    fp, _ip = kernel_params(config)
    px = np.full((k.PX_ROWS, 1), np.nan)
    px[k.CLOSE, 0] = entry
    px[k.ATR, 0] = np.nan if atr is None else atr
    stop, target, _trail = k._levels(px, fp, side, 0, entry)
    return stop, target


def _live_levels(config, side: int, entry: float, atr: float | None):
    alert = ALERT["buy" if side > 0 else "sell"]
    live_side = Side.BUY if side > 0 else Side.SELL
    return _protective(alert, live_side, entry, config.order_rules(), atr)


def _assert_same(side, raw_stop, raw_target, live_stop, live_target):
    stop, target = round_levels(side, raw_stop, raw_target)
    if live_stop is None:  # no stop configured, or one at or below 0
        assert math.isnan(raw_stop)
    else:
        assert stop == live_stop
        assert abs(raw_stop - live_stop) <= 0.01 + 1e-9
    if live_target is None:
        assert math.isnan(raw_target)
    elif raw_target > 0:
        assert target == live_target
        assert abs(raw_target - live_target) <= 0.01 + 1e-9
    else:  # a short's target at or below 0: never reached, on either side
        assert live_target <= 0


@settings(max_examples=600, deadline=None)
@given(entries, sides, percents, percents, multiples, multiples, atrs)
def test_kernel_stop_and_target_equal_the_live_protective_levels(
    entry, side, stop_pct, target_pct, stop_atr, target_atr, atr
):
    config = _config(stop_pct, target_pct, stop_atr, target_atr)
    raw_stop, raw_target = _kernel_levels(config, side, entry, atr)
    live_stop, live_target = _live_levels(config, side, entry, atr)
    _assert_same(side, raw_stop, raw_target, live_stop, live_target)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.5, 500.0),
    st.floats(0.0, 0.05),
    sides,
    percents,
    percents,
    multiples,
    multiples,
)
def test_a_run_s_ticked_levels_are_the_live_ones_for_its_signal_close(
    close, spread, side, stop_pct, target_pct, stop_atr, target_atr
):
    """End to end: `exits.round_to_tick` puts a trade's levels where the live decision would."""
    high, low = close * (1 + spread), close * (1 - spread)
    rows = [(close, high, low, close)] * 4
    extra = ("exits.round_to_tick=true", "exits.atr_period=2", "sizing.qty=1")
    config = _config(stop_pct, target_pct, stop_atr, target_atr, *extra)
    bars = make_bars(rows)
    atr_value = float(atr_indicator(bars.arrays.high, bars.arrays.low, bars.arrays.close, 2)[1])
    atr_known = None if math.isnan(atr_value) else atr_value
    signals = np.array([0, side, 0, 0], dtype=np.int8)
    trade = only_trade(run_backtest(bars, config, progress=False, signals=signals))
    live_stop, live_target = _live_levels(config, side, close, atr_known)
    raw_stop, raw_target = _kernel_levels(config, side, close, atr_known)
    _assert_same(side, raw_stop, raw_target, live_stop, live_target)
    stop, target = round_levels(side, raw_stop, raw_target)
    np.testing.assert_equal(trade.stop_price, stop)
    np.testing.assert_equal(trade.target_price, target)
