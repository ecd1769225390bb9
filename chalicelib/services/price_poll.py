"""The price poll: the paper broker trades against the market between alerts.

A simulated broker fills only when told prices (`SimulatedBroker.on_price`). Every minute
in the session (app.py; every few seconds in the local stack) each symbol with a working
order or a position gets the market's new one-minute bars — each bar's high, low and close
as one move, oldest first — so a stop, target, trailing stop or resting limit fills when
the market gets there, not when the next alert arrives. What filled is booked by a targeted
`sync_portfolio` pass, which journals the trade under its alert and announces the exit with
its P/L, as every fill is announced.

The market is read and quiet symbols (a position, nothing working) are marked before the
account lease; the lease is held only to work orders and book their fills.

No bar is fed twice and none from before an order existed: each symbol's mark
(`PollMarks`) is where the last pass stopped, and a pass starts no earlier than the newest
working order of that symbol was placed (nor more than `MAX_CATCH_UP` back), so an order
is never filled by a price from before it was placed. A source with no bars gives its
latest price alone. A failing source skips that symbol; the next pass catches up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
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


# (bar start, close, as of, high, low); a latest price starts and ends `now`
Move = tuple[datetime, float, datetime, float | None, float | None]


@dataclass
class _Feed:
    """What one symbol gets this pass: its new bars as moves (or its latest price)."""

    moves: list[Move]
    fed_until: datetime | None  # the mark to set once fed (None: a latest price, no bars)


def _new_moves(
    market: MarketData, marks: PollMarks, symbol: str, now: datetime, placed: datetime | None
) -> _Feed:
    """The symbol's finished bars since its mark (and since its newest working order was
    placed), else its latest price."""
    start = now - MAX_CATCH_UP
    for floor in (marks.fed_until(symbol), placed):
        if floor is not None and floor > start:
            start = floor
    bars = [b for b in market.bars(symbol, "1Min", start, now) if b.time + BAR <= now]
    if bars:
        moves: list[Move] = [(b.time, b.close, b.time + BAR, b.high, b.low) for b in bars]
        return _Feed(moves, bars[-1].time + BAR)
    price = market.latest_price(symbol)
    return _Feed([(now, price, now, None, None)] if price is not None else [], None)


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
    """One pass (module docstring); returns what it did.

    The market is read before the account lease, and a symbol with nothing working only has
    its price remembered (no fill can follow): the lease is taken only to work orders, for
    as short a time as that takes, so alerts rarely wait for the poll. Under the lease the
    working orders are read again, and `clock`, when given, too: an alert may have placed an
    order while the poll waited, and no price may reach it stamped before it was placed (a
    replay's clock runs fast)."""
    watched = broker.working_symbols()
    feeds: dict[str, _Feed] = {}
    errors: dict[str, str] = {}
    for symbol, placed in sorted(watched.items()):
        try:
            feeds[symbol] = _new_moves(market, marks, symbol, now, placed)
        except MarketDataUnavailable as exc:
            errors[symbol] = str(exc)
            log.warning("price poll: no market data for %s: %s", symbol, exc)
    quiet = [s for s in feeds if watched[s] is None]
    for symbol in quiet:
        if feeds[symbol].moves:
            _, close, at, _, _ = feeds[symbol].moves[-1]
            broker.mark(symbol, close, at)
    changed: list[Order] = []
    trades = 0
    if len(quiet) < len(feeds):
        try:
            with account_lease(state, "price-poll", now, wait_s=wait_s, ttl=timedelta(seconds=60)):
                changed, trades = _work_orders(
                    broker, state, clock() if clock else now, feeds, quiet, notifier
                )
        except AccountBusy as exc:
            return {"skipped": str(exc)}
    for symbol, feed in feeds.items():
        if feed.fed_until is not None:
            marks.set_fed_until(symbol, feed.fed_until)
    return {
        "symbols": sorted(watched),
        "source": market.name,
        "bars_fed": sum(len(f.moves) for f in feeds.values() if f.fed_until is not None),
        "filled": [o.client_order_id for o in changed if o.status is OrderStatus.FILLED],
        "canceled": [o.client_order_id for o in changed if o.status is OrderStatus.CANCELED],
        "trades": trades,
        "errors": errors,
    }


def _work_orders(
    broker: SimulatedBroker,
    state: LeasedState,
    now: datetime,
    feeds: dict[str, _Feed],
    quiet: list[str],
    notifier: Notifier | None,
) -> tuple[list[Order], int]:
    """Under the lease: feed each symbol with working orders its moves, none from before its
    newest working order was placed; book what filled. Returns (orders changed, trades)."""
    placed_now = broker.working_symbols()
    changed: list[Order] = []
    for symbol, feed in feeds.items():
        if symbol in quiet and placed_now.get(symbol) is None:
            continue  # still nothing working: its price is already remembered
        floor = placed_now.get(symbol)
        for start, close, at, high, low in feed.moves:
            if floor is not None and start < floor:
                continue  # a bar from before the order was placed
            changed += broker.on_price(symbol, close, at, high=high, low=low)
    if not changed:
        return changed, 0
    try:
        report = sync_portfolio(
            broker, state, now, notifier=notifier, changed=[(None, o) for o in changed]
        )
        return changed, len(report.trades)
    except BrokerUnavailable:  # the scheduled sweep books them within a minute
        log.warning("price poll: fills not booked yet (broker unavailable)", exc_info=True)
        return changed, 0


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
