"""Flatten: close one position, or all, at market, now — the trader's emergency exit.

For each symbol, under the account lease (no alert decides meanwhile): the broker's own
position is read (the truth, not the snapshot), the symbol's working orders are canceled
(its stop and target first, so the close cannot be doubled by an exit filling), and one
market order closes the position. Its client order id is `ft-flat-<request>-<SYM>`: the
request id comes from the page's confirmed click, so a retried or double-sent request names
the same order, and the broker (idempotent on the client order id) places it once. A
flatten order already working for the symbol (market closed: it waits) is never doubled.
Afterwards the portfolio is synced (fills booked, positions refreshed), the action journaled
and announced. The kill switch does not stop a flatten: it only ever reduces risk.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain import Order, OrderIntent, OrderStatus, OrderType, Side
from chalicelib.ports import Broker, BrokerRejected, Notifier, StateStore
from chalicelib.services.account_lease import account_lease
from chalicelib.services.notify import Notice, send, sms_text
from chalicelib.services.trader_actions import journal_action

log = logging.getLogger(__name__)

PREFIX = "ft-flat-"
WORKING = {OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING}


class BadRequestId(ValueError):
    """The request id is not 8 to 32 letters, digits or dashes."""


def check_request_id(request_id: str) -> str:
    if not (
        8 <= len(request_id) <= 32
        and request_id.isascii()
        and request_id.replace("-", "").isalnum()
    ):
        raise BadRequestId("request_id must be 8 to 32 letters, digits or dashes")
    return request_id


def flatten_order_id(request_id: str, symbol: str) -> str:
    """`ft-flat-<hash of request>-<SYM>` (≤ 48 characters, the broker's limit here)."""
    digest = hashlib.sha256(request_id.encode()).hexdigest()[:16]
    return f"{PREFIX}{digest}-{symbol}"[:48]


@dataclass
class FlattenResult:
    symbol: str
    status: str  # closed | working | already_flattening | flat | rejected
    reason: str
    order: dict[str, Any] | None = None
    canceled: list[str] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "status": self.status,
            "reason": self.reason,
            "order": self.order,
            "canceled": self.canceled,
        }


def _order_record(order: Order) -> dict[str, Any]:
    return order.model_dump(mode="json", exclude={"legs"})


def _flatten_one(
    broker: Broker, symbol: str, qty: float, price: float | None, request_id: str
) -> FlattenResult:
    cid = flatten_order_id(request_id, symbol)
    working = [o for o in broker.list_orders(status="open", limit=500) if o.symbol == symbol]
    pending = [o for o in working if o.client_order_id.startswith(PREFIX) and o.status in WORKING]
    if pending and pending[0].client_order_id != cid:
        return FlattenResult(
            symbol,
            "already_flattening",
            f"a flatten order is already working ({pending[0].client_order_id})",
            _order_record(pending[0]),
        )
    canceled: list[str] = []
    exits = {o.broker_order_id: o for o in [*broker.working_exits(symbol), *working]}
    for order in exits.values():
        if order.client_order_id == cid or order.status not in WORKING:
            continue
        try:
            broker.cancel_order(order.broker_order_id)
        except BrokerRejected:  # gone meanwhile: an OCO sibling's cancel took it along
            continue
        canceled.append(order.client_order_id)
    intent = OrderIntent(
        client_order_id=cid,
        alert_id=f"flatten-{request_id}",
        symbol=symbol,
        side=Side.SELL if qty > 0 else Side.BUY,
        qty=abs(qty),
        order_type=OrderType.MARKET,
        reference_price=price,
        closes_position=True,
    )
    try:
        placed = broker.place_order(intent)  # idempotent on the client order id
    except BrokerRejected as exc:
        return FlattenResult(symbol, "rejected", exc.reason, None, canceled)
    status = "closed" if placed.status is OrderStatus.FILLED else "working"
    what = "closed" if status == "closed" else "close order working"
    return FlattenResult(
        symbol,
        status,
        f"{what}: {placed.side.value} {abs(qty):g} at market",
        _order_record(placed),
        canceled,
    )


def flatten(
    broker: Broker,
    state: StateStore,
    notifier: Notifier | None,
    *,
    request_id: str,
    now: datetime,
    symbol: str | None = None,
) -> dict[str, Any]:
    """Close `symbol`'s position (or every position when None); see the module docstring."""
    from chalicelib.services.sync_portfolio import sync_portfolio

    request_id = check_request_id(request_id)
    results: list[FlattenResult] = []
    with account_lease(state, "flatten", now, wait_s=10, ttl=timedelta(seconds=60)):
        held = {p.symbol: p for p in broker.get_positions() if p.qty}
        targets = [symbol] if symbol else sorted(held)
        for sym in targets:
            position = held.get(sym)
            if position is None:
                results.append(FlattenResult(sym, "flat", f"no {sym} position to close"))
                continue
            results.append(
                _flatten_one(broker, sym, position.qty, position.market_price, request_id)
            )
        try:
            sync_portfolio(broker, state, now, notifier=notifier)
        except Exception:  # the scheduled sync books it within a minute
            log.warning("portfolio sync after flatten failed", exc_info=True)
    records = [r.as_record() for r in results]
    journal_action(
        state,
        "flatten",
        {"request_id": request_id, "symbol": symbol or "*", "results": records},
        now,
    )
    lines = [f"{r.symbol}: {r.reason}" for r in results] or ["no open positions"]
    subject = f"flowtrader: flatten {symbol or 'all'}"
    text = f"Flatten {symbol or 'all'}: " + "; ".join(lines)
    send(notifier, Notice("flatten", subject, sms_text(text), "\n".join(lines)))
    return {"results": records, "count": len(records)}
