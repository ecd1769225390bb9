"""The price poll: the paper broker trades against the market between alerts.

A simulated broker fills only when told prices (`SimulatedBroker.on_price`). Every minute
in the session (app.py; every few seconds in the local stack) each symbol with a working
order or a position gets the market's new one-minute bars — each bar's high, low and close
as one move, oldest first — so a stop, target, trailing stop or resting limit fills when
the market gets there, not when the next alert arrives. What filled is booked by a targeted
`sync_portfolio` pass, which journals the trade under its alert and announces the exit with
its P/L, as every fill is announced.

No bar is fed twice and none from before an order existed: each symbol's mark
(`PollMarks`) is where the last pass stopped, and a pass starts no earlier than the newest
working order of that symbol was placed (nor more than `MAX_CATCH_UP` back), so an order
is never filled by a price from before it was placed. A source with no bars gives its
latest price alone. A failing source skips that symbol; the next pass catches up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from chalicelib.domain import Order, OrderStatus
from chalicelib.ports import (
    Broker,
    BrokerUnavailable,
    LeasedState,
    MarketData,
    MarketDataUnavailable,
    Notifier,
    PollMarks,
    SimulatedBroker,
)
from chalicelib.services.account_lease import AccountBusy, account_lease
from chalicelib.services.sync_portfolio import in_sync_window, sync_portfolio

log = logging.getLogger(__name__)

BAR = timedelta(minutes=1)
MAX_CATCH_UP = timedelta(hours=1)  # after a gap (a stopped stack) feed at most this much
WORKING = (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING)


def _working(orders: list[Order]) -> list[Order]:
    """Top-level open orders and their working legs, flat."""
    found = []
    for order in orders:
        for o in (order, *order.legs):
            if o.status in WORKING:
                found.append(o)
    return found


def watched_symbols(broker: SimulatedBroker) -> tuple[list[str], dict[str, datetime]]:
    """Symbols with a position or a working order, and when each one's newest working
    order was placed."""
    held = {p.symbol for p in broker.get_positions() if p.qty}
    symbols = set(held)
    newest: dict[str, datetime] = {}
    orders = _working(broker.list_orders(status="open", limit=500))
    for symbol in sorted(held):  # the legs of filled entries are not open top-level orders
        orders += _working(broker.working_exits(symbol))
    for order in orders:
        symbols.add(order.symbol)
        placed = order.submitted_at
        if placed is not None and (order.symbol not in newest or placed > newest[order.symbol]):
            newest[order.symbol] = placed
    return sorted(symbols), newest


def _feed(
    broker: SimulatedBroker,
    market: MarketData,
    marks: PollMarks,
    symbol: str,
    now: datetime,
    placed: datetime | None,
) -> tuple[list[Order], int]:
    """Feed one symbol's new bars (or its latest price); (orders changed, bars fed)."""
    start = now - MAX_CATCH_UP
    for floor in (marks.fed_until(symbol), placed):
        if floor is not None and floor > start:
            start = floor
    bars = [b for b in market.bars(symbol, "1Min", start, now) if b.time + BAR <= now]
    changed: list[Order] = []
    for bar in bars:
        changed += broker.on_price(symbol, bar.close, bar.time + BAR, high=bar.high, low=bar.low)
    if bars:
        marks.set_fed_until(symbol, bars[-1].time + BAR)
        return changed, len(bars)
    price = market.latest_price(symbol)
    if price is not None:
        changed += broker.on_price(symbol, price, now)
    return changed, 0


def poll_prices(
    broker: SimulatedBroker,
    market: MarketData,
    state: LeasedState,
    now: datetime,
    *,
    marks: PollMarks,
    notifier: Notifier | None = None,
    wait_s: float = 10.0,
    clock: Callable[[], datetime] | None = None,
) -> dict[str, Any]:
    """One pass (module docstring), under the account lease; returns what it did.

    `clock`, when given, is read again once the lease is held: an alert may have placed an
    order while the poll waited, and no price may reach it stamped before it was placed (a
    replay's clock runs fast)."""
    try:
        with account_lease(state, "price-poll", now, wait_s=wait_s, ttl=timedelta(seconds=60)):
            return _pass(broker, market, state, clock() if clock else now, marks, notifier)
    except AccountBusy as exc:
        return {"skipped": str(exc)}


def _pass(
    broker: SimulatedBroker,
    market: MarketData,
    state: LeasedState,
    now: datetime,
    marks: PollMarks,
    notifier: Notifier | None,
) -> dict[str, Any]:
    symbols, placed = watched_symbols(broker)
    changed: list[Order] = []
    fed = 0
    errors: dict[str, str] = {}
    for symbol in symbols:
        try:
            moved, bars = _feed(broker, market, marks, symbol, now, placed.get(symbol))
        except MarketDataUnavailable as exc:
            errors[symbol] = str(exc)
            log.warning("price poll: no market data for %s: %s", symbol, exc)
            continue
        changed += moved
        fed += bars
    trades = 0
    if changed:
        try:
            report = sync_portfolio(
                broker, state, now, notifier=notifier, changed=[(None, o) for o in changed]
            )
            trades = len(report.trades)
        except BrokerUnavailable:  # the scheduled sweep books them within a minute
            log.warning("price poll: fills not booked yet (broker unavailable)", exc_info=True)
    return {
        "symbols": symbols,
        "source": market.name,
        "bars_fed": fed,
        "filled": [o.client_order_id for o in changed if o.status is OrderStatus.FILLED],
        "canceled": [o.client_order_id for o in changed if o.status is OrderStatus.CANCELED],
        "trades": trades,
        "errors": errors,
    }


def scheduled_poll(
    broker: Broker,
    market: Callable[[], MarketData],
    state: LeasedState,
    now: datetime,
    *,
    marks: PollMarks,
    notifier: Notifier | None = None,
    clock: Callable[[], datetime] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """The schedule's pass: only for a simulated broker (a real one works its orders in its
    own market), only in the session unless `force`; a source that cannot be built (no
    keys, no file) skips the pass with its reason."""
    if not hasattr(broker, "on_price"):
        return {"skipped": f"{broker.name} works its orders against its own market"}
    if not force and not in_sync_window(now):
        return {"skipped": "outside the trading session"}
    try:
        source = market()
    except (ValueError, MarketDataUnavailable) as exc:
        return {"skipped": f"no market data: {exc}"}
    return poll_prices(
        cast(SimulatedBroker, broker),
        source,
        state,
        now,
        marks=marks,
        notifier=notifier,
        clock=clock,
    )
