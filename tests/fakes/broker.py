"""An in-memory fake of our Broker port for the service tests, plus a flaky wrapper.

`FakeBroker` honours the port's contract (tests/adapters/test_broker_contract.py holds it to
the same cases as the paper and Alpaca brokers): placing is idempotent on client_order_id;
market orders fill at the intent's reference price (else `prices[symbol]`) and move the
position; bracket/OTO legs are held until their entry fills, then work; a protective intent
(`protects_position`) places an OCO (a take-profit limit with its stop-loss leg), a stop or a
limit, working at once; `fill` fills a working order the way the market would, and a filled
or canceled protective order takes the rest of its group with it. `fail_next` makes the next
calls raise `BrokerUnavailable`; `foreign` holds orders of kinds flowtrader does not trade.

`FlakyBroker` wraps any broker (this fake or the paper broker) to fail the way the
invariants need: a 500 before the order reaches the broker, a timeout after it did, or a
crash of the caller right after.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain import (
    Account,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Position,
    Side,
)
from chalicelib.ports import Broker, BrokerRejected, BrokerUnavailable

WORKING = (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)
OPEN = (*WORKING, OrderStatus.PENDING)


class LambdaCrash(BaseException):
    """The worker died (timeout, OOM) right after a call: nothing after it ran."""


def _opposite(side: Side) -> Side:
    return Side.SELL if side is Side.BUY else Side.BUY


class FakeBroker:
    name = "fake"

    def __init__(self, cash: float = 100_000.0) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.orders: dict[str, Order] = {}  # top-level orders by client_order_id, legs nested
        self.place_calls = 0
        self.cash = cash
        self.prices: dict[str, float] = {}
        self.fail_next = 0  # the next this-many calls raise BrokerUnavailable
        self.foreign: list[dict[str, Any]] = []
        self._positions: dict[str, tuple[float, float]] = {}
        self._parent: dict[str, str] = {}  # leg cid -> top-level cid
        self._roles: dict[str, str] = {}  # cid -> entry | exit | take_profit | stop_loss

    # --- Broker port -------------------------------------------------------------------

    def place_order(self, intent: OrderIntent) -> Order:
        with self._lock:
            self.place_calls += 1
            self._maybe_fail()
            if intent.client_order_id in self.orders:
                return self.orders[intent.client_order_id]
            if intent.protects_position:
                return self._protect(intent)
            order = self._new(
                intent.client_order_id,
                intent.symbol,
                intent.side,
                intent.qty,
                intent.order_type,
                intent.limit_price,
                intent.stop_price,
            )
            self._roles[order.client_order_id] = "exit" if intent.closes_position else "entry"
            legs = []
            exit_side = _opposite(intent.side)
            if intent.take_profit is not None:
                legs.append(
                    self._leg(order, "#tp", exit_side, OrderType.LIMIT, intent.take_profit, None)
                )
            if intent.stop_loss is not None:
                legs.append(
                    self._leg(order, "#sl", exit_side, OrderType.STOP, None, intent.stop_loss)
                )
            self.orders[order.client_order_id] = order.model_copy(update={"legs": tuple(legs)})
            price = intent.reference_price or self.prices.get(intent.symbol)
            if intent.order_type is OrderType.MARKET and price:
                self._fill(order.client_order_id, price)
            return self.orders[intent.client_order_id]

    def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        with self._lock:
            self._maybe_fail()
            if client_order_id in self.orders:
                return self.orders[client_order_id]
            top = self._parent.get(client_order_id)
            return self._find(client_order_id) if top else None

    def cancel_order(self, broker_order_id: str) -> None:
        with self._lock:
            self._maybe_fail()
            target = next((o for o in self._all() if o.broker_order_id == broker_order_id), None)
            if target is None:
                raise BrokerRejected("order not found", code="40410000")
            if target.status not in OPEN:
                raise BrokerRejected(
                    f"order is not cancelable (it is {target.status.value})", code="42210000"
                )
            cid = target.client_order_id
            group = [cid] + (
                [leg.client_order_id for leg in self.orders[cid].legs]
                if self._roles[cid] in ("entry", "exit")
                else self._group(cid)
            )
            for member in group:
                if self._find(member).status in OPEN:
                    self._set(member, status=OrderStatus.CANCELED)

    def list_orders(self, status: str = "all", limit: int = 100) -> list[Order]:
        with self._lock:
            self._maybe_fail()
            orders = list(reversed(self.orders.values()))  # newest first
        if status == "open":
            orders = [o for o in orders if o.status in OPEN]
        elif status == "closed":
            orders = [o for o in orders if o.status not in OPEN]
        return orders[:limit]

    def working_exits(self, symbol: str) -> list[Order]:
        with self._lock:
            self._maybe_fail()
            held = self._positions.get(symbol, (0.0, 0.0))[0]
            reducing = Side.SELL if held > 0 else Side.BUY
            exits = []
            for o in self._all():
                if o.symbol != symbol or o.status not in WORKING:
                    continue
                exiting = self._roles[o.client_order_id] != "entry"
                if exiting or (held and o.side is reducing):
                    exits.append(o.model_copy(update={"legs": ()}))
            return exits

    def get_positions(self) -> list[Position]:
        with self._lock:
            self._maybe_fail()
            return [
                Position(symbol=s, qty=q, avg_entry_price=a)
                for s, (q, a) in sorted(self._positions.items())
            ]

    def get_account(self) -> Account:
        with self._lock:
            self._maybe_fail()
        return Account(equity=self.cash, cash=self.cash, buying_power=self.cash * 2)

    def get_portfolio(self) -> tuple[Account, list[Position]]:
        return self.get_account(), self.get_positions()

    def foreign_orders(self) -> list[dict[str, Any]]:
        return list(self.foreign)

    # --- test controls ------------------------------------------------------------------

    def set_position(self, symbol: str, qty: float, avg: float) -> None:
        with self._lock:
            self._positions[symbol] = (qty, avg)

    def fill(self, broker_order_id: str, price: float) -> list[Order]:
        """Fill a working order at `price` as the market would; return what changed."""
        with self._lock:
            target = next(o for o in self._all() if o.broker_order_id == broker_order_id)
            if target.status not in WORKING:
                raise ValueError(f"{target.client_order_id} is {target.status.value}")
            return self._fill(target.client_order_id, price)

    # --- internals ----------------------------------------------------------------------

    def _maybe_fail(self) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise BrokerUnavailable("HTTP 503 from the fake broker")

    def _new(self, cid, symbol, side, qty, kind, limit, stop, status=OrderStatus.ACCEPTED):
        return Order(
            broker_order_id=f"b{next(self._ids)}",
            client_order_id=cid,
            symbol=symbol,
            side=side,
            qty=qty,
            order_type=kind,
            status=status,
            limit_price=limit,
            stop_price=stop,
        )

    def _leg(self, parent: Order, suffix, side, kind, limit, stop, status=OrderStatus.PENDING):
        leg = self._new(
            parent.client_order_id + suffix, parent.symbol, side, parent.qty, kind, limit, stop
        ).model_copy(update={"status": status, "parent_client_order_id": parent.client_order_id})
        self._parent[leg.client_order_id] = parent.client_order_id
        self._roles[leg.client_order_id] = "take_profit" if suffix == "#tp" else "stop_loss"
        return leg

    def _protect(self, intent: OrderIntent) -> Order:
        if intent.stop_loss is None and intent.take_profit is None:
            raise BrokerRejected("a protective order needs stop_loss and/or take_profit")
        cid = intent.client_order_id
        if intent.take_profit is None:
            head = self._new(
                cid, intent.symbol, intent.side, intent.qty, OrderType.STOP, None, intent.stop_loss
            )
            self._roles[cid] = "stop_loss"
        else:
            head = self._new(
                cid,
                intent.symbol,
                intent.side,
                intent.qty,
                OrderType.LIMIT,
                intent.take_profit,
                None,
            )
            self._roles[cid] = "take_profit"
            if intent.stop_loss is not None:
                stop = self._leg(
                    head, "#sl", intent.side, OrderType.STOP, None, intent.stop_loss, head.status
                )
                head = head.model_copy(update={"legs": (stop,)})
        self.orders[cid] = head
        return head

    def _all(self) -> list[Order]:
        return [o for top in self.orders.values() for o in (top, *top.legs)]

    def _find(self, cid: str) -> Order:
        top = self.orders[self._parent.get(cid, cid)]
        return (
            top
            if top.client_order_id == cid
            else next(leg for leg in top.legs if leg.client_order_id == cid)
        )

    def _set(self, cid: str, **changes: Any) -> Order:
        top_cid = self._parent.get(cid, cid)
        top = self.orders[top_cid]
        if top_cid == cid:
            self.orders[cid] = top.model_copy(update=changes)
        else:
            legs = tuple(
                leg.model_copy(update=changes) if leg.client_order_id == cid else leg
                for leg in top.legs
            )
            self.orders[top_cid] = top.model_copy(update={"legs": legs})
        return self._find(cid)

    def _group(self, cid: str) -> list[str]:
        """The other members of a protective order's group (an OCO or bracket's legs)."""
        head = self.orders[self._parent.get(cid, cid)]
        members = [head.client_order_id] if self._roles[head.client_order_id] != "entry" else []
        members += [leg.client_order_id for leg in head.legs]
        return [m for m in members if m != cid]

    def _fill(self, cid: str, price: float) -> list[Order]:
        order = self._find(cid)
        filled = self._set(
            cid, status=OrderStatus.FILLED, filled_qty=order.qty, filled_avg_price=price
        )
        self._move_position(order.symbol, order.side, order.qty, price)
        changed = [filled]
        if self._roles[cid] in ("entry", "exit"):
            for leg in self.orders[cid].legs:
                if leg.status is OrderStatus.PENDING:
                    self._set(leg.client_order_id, status=OrderStatus.NEW)
        else:
            for member in self._group(cid):
                if self._find(member).status in OPEN:
                    changed.append(self._set(member, status=OrderStatus.CANCELED))
        return changed

    def _move_position(self, symbol: str, side: Side, qty: float, price: float) -> None:
        signed = qty if side is Side.BUY else -qty
        held, avg = self._positions.get(symbol, (0.0, 0.0))
        new_qty = held + signed
        if new_qty == 0:
            self._positions.pop(symbol, None)
        elif held == 0 or (held > 0) == (signed > 0):
            self._positions[symbol] = (new_qty, (avg * held + price * signed) / new_qty)
        elif (new_qty > 0) == (held > 0):
            self._positions[symbol] = (new_qty, avg)
        else:
            self._positions[symbol] = (new_qty, price)
        self.cash -= signed * price


@dataclass
class FlakyBroker:
    """Delegates to `inner`; fails the next place_order calls as scripted.

    `fail_before`: raise BrokerUnavailable (a 500) without placing, this many times.
    `fail_after`: place, then raise BrokerUnavailable (a timeout after the broker got it).
    `crash_after`: place, then raise LambdaCrash (the worker dies before recording).
    """

    inner: Broker
    fail_before: int = 0
    fail_after: int = 0
    crash_after: int = 0
    place_calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.inner.name

    def place_order(self, intent: OrderIntent) -> Order:
        with self._lock:
            self.place_calls += 1
            if self.fail_before:
                self.fail_before -= 1
                raise BrokerUnavailable("HTTP 500 from the broker")
        order = self.inner.place_order(intent)
        with self._lock:
            if self.fail_after:
                self.fail_after -= 1
                raise BrokerUnavailable("read timeout after submitting")
            if self.crash_after:
                self.crash_after -= 1
                raise LambdaCrash("worker died after the broker call")
        return order

    def __getattr__(self, name: str):
        return getattr(self.inner, name)
