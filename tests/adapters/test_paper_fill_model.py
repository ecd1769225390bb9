"""The pure paper fill model (chalicelib/rules/fills.py) that the backtest shares."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import OrderType, Side
from chalicelib.rules.fills import (
    PriceMove,
    WorkingOrder,
    evaluate,
    limit_fill,
    resolve_exit,
    slipped,
    trailing_stop_level,
)

prices = st.floats(min_value=0.5, max_value=5_000, allow_nan=False)
bps = st.floats(min_value=0, max_value=100)


@given(prices, bps)
def test_slippage_never_favours_the_taker(price, slippage):
    assert slipped(Side.BUY, price, slippage) >= round(price, 4) - 1e-9
    assert slipped(Side.SELL, price, slippage) <= price + 1e-9


@given(prices, bps)
def test_fills_are_on_valid_ticks(price, slippage):
    for side in Side:
        fill = slipped(side, price, slippage)
        tick = 0.01 if fill >= 1 else 0.0001
        assert abs(fill / tick - round(fill / tick)) < 1e-6


def test_limit_fills_at_its_price_or_better():
    assert limit_fill(Side.BUY, 100.0, PriceMove(101.0)) is None
    assert limit_fill(Side.BUY, 100.0, PriceMove(101.0, low=99.0)) == 100.0
    assert limit_fill(Side.BUY, 100.0, PriceMove(98.0)) == 98.0
    assert limit_fill(Side.SELL, 100.0, PriceMove(102.0)) == 102.0


def test_stop_loss_wins_when_both_legs_are_touched():
    move = PriceMove(100.0, high=120.0, low=80.0)

    assert resolve_exit(Side.SELL, move, 90.0, 110.0, 0.0) == ("stop_loss", 90.0)
    assert resolve_exit(Side.BUY, move, 110.0, 90.0, 0.0) == ("stop_loss", 110.0)
    assert resolve_exit(Side.SELL, PriceMove(115.0), 90.0, 110.0, 0.0) == ("take_profit", 115.0)
    assert resolve_exit(Side.SELL, PriceMove(100.0), 90.0, 110.0, 0.0) is None


@pytest.mark.parametrize(
    ("side", "hwm", "pct", "amount", "level"),
    [
        (Side.SELL, 120.0, 5.0, None, 114.0),
        (Side.SELL, 120.0, None, 2.5, 117.5),
        (Side.BUY, 80.0, 5.0, None, 84.0),
    ],
)
def test_trailing_stop_level(side, hwm, pct, amount, level):
    assert trailing_stop_level(side, hwm, pct, amount) == level


def test_buy_trailing_stop_follows_the_low_water_mark():
    order = WorkingOrder(Side.BUY, OrderType.TRAILING_STOP, trail_price=2.0)

    first = evaluate(order, PriceMove(96.0, low=95.0), 0.0)
    assert (first.fill_price, first.hwm, first.stop_price) == (None, 95.0, 97.0)
    moved = WorkingOrder(Side.BUY, OrderType.TRAILING_STOP, trail_price=2.0, hwm=first.hwm)
    assert evaluate(moved, PriceMove(97.5), 0.0).fill_price == 97.5


fills_seq = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(min_value=1, max_value=50),
        st.decimals(min_value=1, max_value=500, places=2),
    ),
    max_size=30,
)


@given(fills_seq, st.decimals(min_value=1, max_value=500, places=2))
def test_paper_book_accounting_balances_after_any_fills(fills, mark):
    """Equity = starting cash + realized P/L + unrealized P/L, whatever was traded."""
    from decimal import Decimal

    from chalicelib.adapters.paper_broker import Book, apply_fill

    start = Decimal(100_000)
    book = Book(cash=start)
    for side, qty, price in fills:
        book = apply_fill(book, "AAPL", side, Decimal(qty), price)
    qty, avg = book.positions.get("AAPL", (Decimal(0), Decimal(0)))
    equity = book.cash + qty * mark
    unrealized = qty * (mark - avg)

    assert abs(equity - (start + book.realized_pl + unrealized)) < Decimal("0.01")
