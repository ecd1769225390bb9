"""The paper account's pure half: the book (cash, positions, realized P/L), the order records
the simulation works, and what placing, filling or canceling changes. No AWS here: the store
(`store.py`) persists these, the façade (`broker.py`) sequences them.

Roles of a record:

- ``entry``: an order that opens or adds (it may carry bracket/OTO legs, held as `pending`
  until it fills);
- ``exit``: a plain closing order (`OrderIntent.closes_position`);
- ``take_profit`` / ``stop_loss``: protective orders. Bracket/OTO legs have the entry as
  `parent`; a protective OCO (`OrderIntent.protects_position` with both prices) is a
  take-profit limit order whose stop-loss is its leg, both working at once, as Alpaca
  lists them. A one-priced protection is a single take-profit or stop-loss record.

Protective records sharing a `group` cancel each other: whichever fills (or is canceled)
takes the rest of its group with it, so a leg's status is always true.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib.domain import Order, OrderIntent, OrderStatus, OrderType, Side
from chalicelib.ports import BrokerRejected
from chalicelib.rules import fills

TAKE_PROFIT_SUFFIX = "#tp"
STOP_LOSS_SUFFIX = "#sl"

WORKING = (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)
OPEN = (*WORKING, OrderStatus.PENDING)
CLOSED = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)
PROTECTIVE = ("take_profit", "stop_loss")


def opposite(side: Side) -> Side:
    return Side.SELL if side is Side.BUY else Side.BUY


@dataclass(frozen=True)
class Book:
    """Cash, realized P/L (USD) and positions: symbol -> (signed qty, avg entry price)."""

    cash: Decimal
    realized_pl: Decimal = Decimal(0)
    positions: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    version: int = 0

    def to_doc(self) -> str:
        return json.dumps(
            {
                "cash": str(self.cash),
                "realized_pl": str(self.realized_pl),
                "positions": {s: [str(q), str(p)] for s, (q, p) in self.positions.items()},
            }
        )

    @classmethod
    def from_doc(cls, doc: str, version: int) -> Book:
        data = json.loads(doc)
        positions = {s: (Decimal(q), Decimal(p)) for s, (q, p) in data["positions"].items()}
        return cls(Decimal(data["cash"]), Decimal(data["realized_pl"]), positions, version)

    def held(self, symbol: str) -> Decimal:
        return self.positions.get(symbol, (Decimal(0), Decimal(0)))[0]


def apply_fill(book: Book, symbol: str, side: Side, qty: Decimal, price: Decimal) -> Book:
    """The book after buying/selling `qty` at `price`: cash, average price, realized P/L.

    Adding to a position averages the entry; reducing it realizes P/L against the average;
    crossing through zero opens the remainder at the fill price.
    """
    signed = qty if side is Side.BUY else -qty
    held, avg = book.positions.get(symbol, (Decimal(0), Decimal(0)))
    realized = book.realized_pl
    new_qty = held + signed
    if held == 0 or (held > 0) == (signed > 0):
        new_avg = (abs(held) * avg + qty * price) / abs(new_qty)
    else:
        closing = min(qty, abs(held))
        realized += closing * (price - avg) * (1 if held > 0 else -1)
        new_avg = avg if (new_qty > 0) == (held > 0) else price
    positions = dict(book.positions)
    if new_qty == 0:
        positions.pop(symbol, None)
    else:
        positions[symbol] = (new_qty, new_avg.quantize(Decimal("0.000001")))
    cash = book.cash - signed * price
    return Book(cash, realized, positions, book.version)


@dataclass(frozen=True)
class Record:
    """One stored order: the broker view plus what the simulation needs to work it."""

    order: Order  # without legs; they are records of their own
    version: int = 0
    role: str = "entry"  # entry | exit | take_profit | stop_loss
    parent: str | None = None
    legs: tuple[str, ...] = ()
    trail_percent: float | None = None
    trail_price: float | None = None
    hwm: float | None = None
    triggered: bool = False
    created_at: str = ""

    @property
    def cid(self) -> str:
        return self.order.client_order_id

    @property
    def group(self) -> str | None:
        """The protective group this record belongs to (its members cancel each other)."""
        if self.parent is not None:
            return self.parent
        return self.cid if self.role in PROTECTIVE else None

    @property
    def is_exit(self) -> bool:
        """Closes or protects a position (never opens one)."""
        return self.role != "entry" or self.parent is not None

    def to_doc(self) -> str:
        return json.dumps(
            {
                "order": self.order.model_dump(mode="json", exclude={"legs"}),
                "role": self.role,
                "parent": self.parent,
                "legs": list(self.legs),
                "trail_percent": self.trail_percent,
                "trail_price": self.trail_price,
                "hwm": self.hwm,
                "triggered": self.triggered,
                "created_at": self.created_at,
            }
        )

    @classmethod
    def from_doc(cls, doc: str, version: int) -> Record:
        data = json.loads(doc)
        return cls(
            order=Order.model_validate(data["order"]),
            version=version,
            role=data.get("role", "entry"),
            parent=data.get("parent"),
            legs=tuple(data.get("legs", ())),
            trail_percent=data.get("trail_percent"),
            trail_price=data.get("trail_price"),
            hwm=data.get("hwm"),
            triggered=data.get("triggered", False),
            created_at=data.get("created_at", ""),
        )

    def evolve(self, **order_changes: Any) -> Record:
        return replace(self, order=self.order.model_copy(update=order_changes))

    def with_legs(self, records: dict[str, Record]) -> Order:
        legs = tuple(records[c].order for c in self.legs if c in records)
        return self.order.model_copy(update={"legs": legs})


def fill_in_full(record: Record, price: float, now: datetime, book: Book) -> tuple[Record, Book]:
    """`record` filled for its whole quantity at `price`, and the book after that fill."""
    order = record.order
    after = apply_fill(book, order.symbol, order.side, Decimal(str(order.qty)), Decimal(str(price)))
    filled = record.evolve(
        status=OrderStatus.FILLED, filled_qty=order.qty, filled_avg_price=price, filled_at=now
    )
    return filled, after


def activate(legs: list[Record]) -> list[Record]:
    """An entry filled: its held (pending) legs start working."""
    return [
        leg.evolve(status=OrderStatus.NEW) if leg.order.status is OrderStatus.PENDING else leg
        for leg in legs
    ]


def group_members(record: Record, head: Record | None, legs: list[Record]) -> list[Record]:
    """The other open records of `record`'s group: its OCO head and the head's legs.

    `head` is the group's head record (a bracket's entry, an OCO's take-profit) and `legs`
    the head's legs; a bracket's filled entry is not open, so it is never among them.
    """
    members = [head, *legs] if head is not None else legs
    return [m for m in members if m.cid != record.cid and m.order.status in OPEN]


def validate(intent: OrderIntent) -> None:
    """Refuse what Alpaca would refuse, with the same codes, so paper trains the real thing."""
    if intent.protects_position:
        _validate_protection(intent)
        return
    kind = intent.order_type
    if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) and intent.limit_price is None:
        raise BrokerRejected(f"a {kind.value} order needs limit_price", code="42210000")
    if kind in (OrderType.STOP, OrderType.STOP_LIMIT) and intent.stop_price is None:
        raise BrokerRejected(f"a {kind.value} order needs stop_price", code="42210000")
    if kind is OrderType.TRAILING_STOP and (intent.trail_percent is None) == (
        intent.trail_price is None
    ):
        raise BrokerRejected(
            "a trailing_stop order needs exactly one of trail_percent, trail_price",
            code="42210000",
        )
    has_legs = intent.stop_loss is not None or intent.take_profit is not None
    if has_legs and kind is OrderType.TRAILING_STOP:
        raise BrokerRejected("a trailing_stop order cannot carry bracket/OTO legs", code="42210000")
    if intent.stop_loss is not None and intent.take_profit is not None:
        _profit_side_of_stop(intent.side, intent.stop_loss, intent.take_profit)


def _validate_protection(intent: OrderIntent) -> None:
    if intent.stop_loss is None and intent.take_profit is None:
        raise BrokerRejected(
            "a protective order needs stop_loss and/or take_profit", code="42210000"
        )
    if intent.stop_loss is not None and intent.take_profit is not None:
        # The order exits: selling protects a long, whose target is above its stop.
        _profit_side_of_stop(opposite(intent.side), intent.stop_loss, intent.take_profit)


def _profit_side_of_stop(position_side: Side, stop_loss: float, take_profit: float) -> None:
    below, above = (
        (stop_loss, take_profit) if position_side is Side.BUY else (take_profit, stop_loss)
    )
    if below >= above:
        raise BrokerRejected("take_profit must be on the profit side of stop_loss", code="42210000")


def new_records(intent: OrderIntent, now: datetime) -> list[Record]:
    """The records one intent places: the head first, then its legs."""
    if intent.protects_position:
        return _protection_records(intent, now)
    stamp = now.isoformat()
    cid = intent.client_order_id
    entry = _order(intent, cid, intent.order_type, intent.limit_price, intent.stop_price, now)
    exit_side = opposite(intent.side)

    def leg(suffix: str, role: str, kind: OrderType, limit: float | None, stop: float | None):
        order = _order(intent, cid + suffix, kind, limit, stop, now).model_copy(
            update={
                "side": exit_side,
                "status": OrderStatus.PENDING,
                "parent_client_order_id": cid,
            }
        )
        return Record(order=order, role=role, parent=cid, created_at=stamp)

    legs: list[Record] = []
    if intent.take_profit is not None:
        legs.append(
            leg(TAKE_PROFIT_SUFFIX, "take_profit", OrderType.LIMIT, intent.take_profit, None)
        )
    if intent.stop_loss is not None:
        legs.append(leg(STOP_LOSS_SUFFIX, "stop_loss", OrderType.STOP, None, intent.stop_loss))
    head = Record(
        order=entry,
        role="exit" if intent.closes_position else "entry",
        legs=tuple(leg.cid for leg in legs),
        trail_percent=intent.trail_percent,
        trail_price=intent.trail_price,
        created_at=stamp,
    )
    return [head, *legs]


def _protection_records(intent: OrderIntent, now: datetime) -> list[Record]:
    """OCO (take-profit limit with its stop-loss leg, both working), or one stop or limit."""
    stamp = now.isoformat()
    cid = intent.client_order_id
    if intent.take_profit is None:
        assert intent.stop_loss is not None
        stop = _order(intent, cid, OrderType.STOP, None, intent.stop_loss, now)
        return [Record(order=stop, role="stop_loss", created_at=stamp)]
    target = _order(intent, cid, OrderType.LIMIT, intent.take_profit, None, now)
    if intent.stop_loss is None:
        return [Record(order=target, role="take_profit", created_at=stamp)]
    stop_cid = cid + STOP_LOSS_SUFFIX
    stop = _order(intent, stop_cid, OrderType.STOP, None, intent.stop_loss, now)
    stop = stop.model_copy(update={"parent_client_order_id": cid})
    return [
        Record(order=target, role="take_profit", legs=(stop_cid,), created_at=stamp),
        Record(order=stop, role="stop_loss", parent=cid, created_at=stamp),
    ]


def _order(
    intent: OrderIntent,
    cid: str,
    kind: OrderType,
    limit: float | None,
    stop: float | None,
    now: datetime,
) -> Order:
    return Order(
        broker_order_id=str(uuid.uuid4()),
        client_order_id=cid,
        symbol=intent.symbol,
        side=intent.side,
        qty=intent.qty,
        order_type=kind,
        status=OrderStatus.NEW,
        limit_price=limit,
        stop_price=stop,
        submitted_at=now,
    )


def working_view(record: Record) -> fills.WorkingOrder:
    order = record.order
    return fills.WorkingOrder(
        side=order.side,
        order_type=order.order_type,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        trail_percent=record.trail_percent,
        trail_price=record.trail_price,
        hwm=record.hwm,
        triggered=record.triggered,
    )
