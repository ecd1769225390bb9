"""What the limits count: positions, plus our entry orders still working at the broker.

A limit or stop entry adds exposure the moment it is placed, not when it fills; counting
only filled positions would let a string of resting entries pass every position and
exposure limit and then fill together.
"""

from __future__ import annotations

from chalicelib.domain import Order, OrderStatus, Position, Side

WORKING = (
    OrderStatus.NEW,
    OrderStatus.ACCEPTED,
    OrderStatus.PENDING,
    OrderStatus.PARTIALLY_FILLED,
)
ENTRY_SUFFIX = "-open"  # client_order_id of an entry this pipeline placed (rules.orders)


def with_working_entries(
    positions: list[Position] | tuple[Position, ...], orders: list[Order]
) -> tuple[Position, ...]:
    """`positions` as they will be once our working entry orders fill.

    A working entry on the side already held is merged into that position (quantity added,
    entry price weighted); one against it is listed separately, so gross exposure counts both.
    Market orders (no limit or stop price) fill at once and are already positions.
    """
    merged: dict[str, Position] = {p.symbol: p for p in positions if p.qty}
    extra: list[Position] = []
    for order in orders:
        if order.status not in WORKING or not order.client_order_id.endswith(ENTRY_SUFFIX):
            continue
        remaining = order.qty - order.filled_qty
        price = order.limit_price or order.stop_price
        if remaining <= 0 or not price:
            continue
        signed = remaining if order.side is Side.BUY else -remaining
        held = merged.get(order.symbol)
        if held is None:
            merged[order.symbol] = Position(symbol=order.symbol, qty=signed, avg_entry_price=price)
        elif (held.qty > 0) == (signed > 0):
            qty = held.qty + signed
            avg = (held.qty * held.avg_entry_price + signed * price) / qty
            merged[order.symbol] = Position(
                symbol=order.symbol,
                qty=qty,
                avg_entry_price=avg,
                unrealized_pl=held.unrealized_pl,
            )
        else:
            extra.append(Position(symbol=order.symbol, qty=signed, avg_entry_price=price))
    return (*merged.values(), *extra)
