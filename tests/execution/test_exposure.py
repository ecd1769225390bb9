"""Working entry orders count towards the position and exposure limits."""

from __future__ import annotations

from chalicelib.domain import Order, OrderStatus, OrderType, Position, Side
from chalicelib.rules.exposure import with_working_entries


def order(cid: str, symbol: str, side: Side, qty: float, status=OrderStatus.NEW, **kw) -> Order:
    return Order(
        broker_order_id=f"b-{cid}",
        client_order_id=cid,
        symbol=symbol,
        side=side,
        qty=qty,
        order_type=OrderType.LIMIT if "limit_price" in kw else OrderType.STOP,
        status=status,
        **kw,
    )


def test_a_working_entry_in_a_new_symbol_counts_as_a_position_at_its_limit():
    got = with_working_entries([], [order("ft-A-open", "TSLA", Side.BUY, 10, limit_price=200.0)])

    assert got == (Position(symbol="TSLA", qty=10, avg_entry_price=200.0),)
    assert got[0].notional_usd == 2_000.0


def test_a_working_entry_on_the_held_side_adds_to_the_position():
    held = [Position(symbol="AAPL", qty=10, avg_entry_price=100.0, unrealized_pl=5.0)]
    working = [
        order(
            "ft-B-open",
            "AAPL",
            Side.BUY,
            30,
            limit_price=80.0,
            filled_qty=10,
            status=OrderStatus.PARTIALLY_FILLED,
        )
    ]

    (merged,) = with_working_entries(held, working)

    assert merged.qty == 30  # 10 held + 20 still to fill
    assert merged.avg_entry_price == (10 * 100 + 20 * 80) / 30
    assert merged.unrealized_pl == 5.0


def test_an_entry_against_the_held_side_is_counted_separately_for_gross_exposure():
    held = [Position(symbol="AAPL", qty=10, avg_entry_price=100.0)]
    working = [order("ft-C-open", "AAPL", Side.SELL, 10, stop_price=90.0)]

    got = with_working_entries(held, working)

    assert sum(p.notional_usd for p in got) == 1_000.0 + 900.0


def test_exits_filled_orders_market_orders_and_foreign_orders_add_nothing():
    held = [Position(symbol="AAPL", qty=10, avg_entry_price=100.0)]
    ignored = [
        order("ft-D-close", "AAPL", Side.SELL, 10, limit_price=110.0),  # an exit
        order("ft-E-open#tp", "AAPL", Side.SELL, 10, limit_price=110.0),  # a bracket leg
        order("ft-F-open", "MSFT", Side.BUY, 5, limit_price=400.0, status=OrderStatus.FILLED),
        order("manual-1", "NVDA", Side.BUY, 5, limit_price=100.0),  # not placed by flowtrader
        Order(
            broker_order_id="b",
            client_order_id="ft-G-open",
            symbol="META",
            side=Side.BUY,
            qty=5,
            order_type=OrderType.MARKET,
            status=OrderStatus.NEW,
        ),  # fills at once
    ]

    assert with_working_entries(held, ignored) == tuple(held)
