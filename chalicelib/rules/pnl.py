"""Realized P/L from fills, average-cost, shared by the worker, sync_portfolio and reports.

Pure: positions in, fills in, closed trades and the positions they leave out. A fill that
reduces a position realizes `(exit − average entry) × qty` (sign flipped for a short); one
that adds averages the entry; one that crosses zero closes the old side and opens the rest
at the fill price — the same book the paper broker keeps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from chalicelib.domain import ClosedTrade, ExitReason, MarketPosition, Order, OrderType, Side

CLIENT_ORDER_PREFIX = "ft-"


@dataclass(frozen=True)
class Holding:
    """A signed quantity at an average entry price (USD per share)."""

    qty: float = 0.0
    avg_price: float = 0.0


@dataclass(frozen=True)
class FillEvent:
    """One order's fill as the ledger needs it."""

    key: str
    symbol: str
    side: Side
    qty: float
    price: float
    time: datetime
    reason: ExitReason
    client_order_id: str = ""
    alert_id: str | None = None


def apply_fill(held: Holding, fill: FillEvent) -> tuple[Holding, ClosedTrade | None]:
    """The holding after `fill`, and the trade it closed (None when it only added)."""
    signed = fill.qty if fill.side is Side.BUY else -fill.qty
    new_qty = held.qty + signed
    if held.qty == 0 or (held.qty > 0) == (signed > 0):
        avg = (abs(held.qty) * held.avg_price + fill.qty * fill.price) / abs(new_qty)
        return Holding(new_qty, avg), None
    closed = min(fill.qty, abs(held.qty))
    long_ = held.qty > 0
    pnl = closed * (fill.price - held.avg_price) * (1 if long_ else -1)
    trade = ClosedTrade(
        key=fill.key,
        symbol=fill.symbol,
        side=MarketPosition.LONG if long_ else MarketPosition.SHORT,
        qty=closed,
        entry_price=held.avg_price,
        exit_price=fill.price,
        pnl_usd=round(pnl, 6),
        exit_reason=fill.reason,
        exit_time=fill.time,
        client_order_id=fill.client_order_id,
        alert_id=fill.alert_id,
    )
    if new_qty == 0:
        return Holding(), trade
    if (new_qty > 0) == long_:
        return Holding(new_qty, held.avg_price), trade
    return Holding(new_qty, fill.price), trade  # crossed zero: the rest opens at the fill


def replay(
    holdings: dict[str, Holding], fills: Iterable[FillEvent]
) -> tuple[dict[str, Holding], list[ClosedTrade]]:
    """Apply fills in time order to `holdings` (by symbol); return the new ones and trades."""
    book = dict(holdings)
    trades: list[ClosedTrade] = []
    for fill in sorted(fills, key=lambda f: (f.time, f.key)):
        held, trade = apply_fill(book.get(fill.symbol, Holding()), fill)
        if held.qty:
            book[fill.symbol] = held
        else:
            book.pop(fill.symbol, None)
        if trade is not None:
            trades.append(trade)
    return book, trades


def exit_reason(order: Order, *, is_leg: bool) -> ExitReason:
    """What kind of exit `order` is: our alert's close, a stop, a target, or not ours."""
    ours = is_leg or order.client_order_id.startswith(CLIENT_ORDER_PREFIX)
    if not ours:
        return ExitReason.OUTSIDE
    if order.client_order_id.endswith("-close") and not is_leg:
        return ExitReason.SIGNAL
    if order.order_type is OrderType.TRAILING_STOP:
        return ExitReason.TRAILING_STOP
    if order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
        return ExitReason.STOP_LOSS
    if order.order_type is OrderType.LIMIT and (is_leg or "-protect" in order.client_order_id):
        return ExitReason.TAKE_PROFIT
    return ExitReason.SIGNAL
