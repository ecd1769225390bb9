"""A fake of our Broker port for the gate and concurrency invariants, plus a flaky wrapper.

`FakeBroker` honours the port's contract: placing is idempotent on client_order_id, market
orders fill at the intent's reference price and move the position. `FlakyBroker` wraps any
broker (this fake or the paper broker) to fail the way the invariants need: a 500 before the
order reaches the broker, a timeout after it did, or a crash of the caller right after.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from chalicelib.domain import (
    Account,
    Order,
    OrderIntent,
    OrderStatus,
    Position,
    Side,
)
from chalicelib.ports import Broker, BrokerUnavailable


class LambdaCrash(BaseException):
    """The worker died (timeout, OOM) right after a call: nothing after it ran."""


class FakeBroker:
    name = "fake"

    def __init__(self, cash: float = 100_000.0) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.orders: dict[str, Order] = {}
        self.place_calls = 0
        self.cash = cash
        self._positions: dict[str, tuple[float, float]] = {}

    def place_order(self, intent: OrderIntent) -> Order:
        with self._lock:
            self.place_calls += 1
            if intent.client_order_id in self.orders:
                return self.orders[intent.client_order_id]
            price = intent.reference_price
            status = OrderStatus.FILLED if price else OrderStatus.ACCEPTED
            order = Order(
                broker_order_id=f"b{next(self._ids)}",
                client_order_id=intent.client_order_id,
                symbol=intent.symbol,
                side=intent.side,
                qty=intent.qty,
                order_type=intent.order_type,
                status=status,
                filled_qty=intent.qty if price else 0.0,
                filled_avg_price=price,
            )
            self.orders[intent.client_order_id] = order
            if price:
                signed = intent.qty if intent.side is Side.BUY else -intent.qty
                qty, avg = self._positions.get(intent.symbol, (0.0, 0.0))
                new_qty = qty + signed
                if new_qty == 0:
                    self._positions.pop(intent.symbol, None)
                else:
                    same = qty == 0 or (qty > 0) == (signed > 0)
                    new_avg = (avg * qty + price * signed) / new_qty if same else avg
                    self._positions[intent.symbol] = (new_qty, new_avg if same else avg)
            return order

    def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        with self._lock:
            return self.orders.get(client_order_id)

    def cancel_order(self, broker_order_id: str) -> None:
        return None

    def list_orders(self, status: str = "all", limit: int = 100) -> list[Order]:
        with self._lock:
            orders = list(self.orders.values())
        if status == "open":
            orders = [o for o in orders if o.status is not OrderStatus.FILLED]
        return orders[:limit]

    def get_positions(self) -> list[Position]:
        with self._lock:
            return [
                Position(symbol=s, qty=q, avg_entry_price=a)
                for s, (q, a) in sorted(self._positions.items())
            ]

    def get_account(self) -> Account:
        return Account(equity=self.cash, cash=self.cash, buying_power=self.cash * 2)

    def set_position(self, symbol: str, qty: float, avg: float) -> None:
        with self._lock:
            self._positions[symbol] = (qty, avg)


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
