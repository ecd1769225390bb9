"""The paper broker and the backtest slip market fills by the same bps model.

The backtest's numba kernel cannot import chalicelib's pure-Python fill model, so the two
are twins; this holds them together: the paper price is the backtest's, on a valid tick,
rounded against the trader.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from backtest.costs import fill_price
from chalicelib.domain import Side
from chalicelib.rules.fills import slipped
from chalicelib.rules.prices import tick_size


@given(
    price=st.floats(min_value=0.05, max_value=5_000, allow_nan=False),
    bps=st.floats(min_value=0, max_value=100, allow_nan=False),
    side=st.sampled_from([Side.BUY, Side.SELL]),
)
def test_paper_fill_is_the_backtest_fill_on_a_tick_rounded_against_the_trader(price, bps, side):
    sign = 1 if side is Side.BUY else -1
    backtest = fill_price({"model": "bps", "bps": bps}, price, 100, 1e6, sign)
    paper = slipped(side, price, bps)

    tick = tick_size(backtest)
    assert sign * (paper - backtest) >= -1e-9  # never better for the trader than the model
    assert abs(paper - backtest) < tick + 1e-9
