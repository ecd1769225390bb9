"""The average-cost ledger sync_portfolio books trades with (pure, chalicelib/rules/pnl.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import ExitReason, MarketPosition, Order, OrderStatus, OrderType, Side
from chalicelib.rules.pnl import FillEvent, Holding, exit_reason, replay

T0 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def fill(key: str, side: Side, qty: float, price: float, minute: int = 0) -> FillEvent:
    return FillEvent(
        key, "AAPL", side, qty, price, T0 + timedelta(minutes=minute), ExitReason.SIGNAL
    )


def test_adds_average_and_a_reduction_realizes_against_the_average():
    book, trades = replay(
        {},
        [
            fill("a", Side.BUY, 10, 100.0, 0),
            fill("b", Side.BUY, 10, 110.0, 1),
            fill("c", Side.SELL, 5, 120.0, 2),
        ],
    )
    assert book == {"AAPL": Holding(15, 105.0)}
    (trade,) = trades
    assert (trade.side, trade.qty, trade.entry_price, trade.pnl_usd) == (
        MarketPosition.LONG, 5, 105.0, 75.0,
    )  # fmt: skip
    assert trade.pnl_pct == pytest.approx(100 * 75 / 525)


def test_a_fill_through_zero_closes_the_old_side_and_opens_the_rest_at_its_price():
    book, trades = replay({"AAPL": Holding(-4, 50.0)}, [fill("x", Side.BUY, 10, 45.0)])
    assert book == {"AAPL": Holding(6, 45.0)}
    (trade,) = trades
    assert (trade.side, trade.qty, trade.pnl_usd) == (MarketPosition.SHORT, 4, 20.0)


def test_fills_replay_in_time_order_whatever_order_they_come_in():
    late, early = fill("2", Side.SELL, 10, 99.0, 5), fill("1", Side.BUY, 10, 100.0, 1)
    _, trades = replay({}, [late, early])
    assert [t.pnl_usd for t in trades] == [-10.0]


def leg(kind: OrderType, cid: str = "ft-A-open#sl") -> Order:
    return Order(
        broker_order_id="b", client_order_id=cid, symbol="AAPL", side=Side.SELL, qty=1,
        order_type=kind, status=OrderStatus.FILLED,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("order", "is_leg", "reason"),
    [
        (leg(OrderType.STOP), True, ExitReason.STOP_LOSS),
        (leg(OrderType.LIMIT, "ft-A-open#tp"), True, ExitReason.TAKE_PROFIT),
        (leg(OrderType.TRAILING_STOP, "ft-A-open"), False, ExitReason.TRAILING_STOP),
        (leg(OrderType.MARKET, "ft-A-close"), False, ExitReason.SIGNAL),
        (leg(OrderType.LIMIT, "ft-A-protect"), False, ExitReason.TAKE_PROFIT),
        (leg(OrderType.MARKET, "my-manual-order"), False, ExitReason.OUTSIDE),
    ],
)
def test_exit_reasons(order, is_leg, reason):
    assert exit_reason(order, is_leg=is_leg) is reason
