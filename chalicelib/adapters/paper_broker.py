"""The paper broker: the local default `Broker`, a simulated account kept in DynamoDB.

State lives in the state table (never in process memory), so every Lambda-style invocation
sees the same account. Layout (pk / sk):

- ``paper#book`` / ``book``: cash, realized P/L and positions (JSON) and a ``version``.
- ``paper#order`` / ``<client_order_id>``: one order (JSON in ``doc``) with its ``status``,
  ``symbol``, ``broker_order_id`` and ``version``. Bracket/OTO legs are orders of their own
  (``<client_order_id>#tp`` / ``#sl``), held (`pending`) until their entry fills.
- ``paper#working`` / ``<symbol>#<client_order_id>``: present while that order is working,
  written in the same transaction as the order, so `on_price` reads only what can fill.
- ``paper#quote`` / ``<symbol>``: the last price it was told about (marks positions, fills
  market orders placed without a reference price).

Correct under concurrent calls: placing is a conditional put on the client_order_id (two
racing calls give one order), and a fill is one transaction that moves the order, its legs
and the book together, each conditional on the version it was computed from; a conflict
re-reads and tries again, so no fill is lost or applied twice.

Fill prices come from `chalicelib.rules.fills` (the same pure model the backtest uses).
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain import (
    Account,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Position,
    Side,
    utc_now,
)
from chalicelib.ports import BrokerRejected, BrokerUnavailable
from chalicelib.rules import fills
from chalicelib.rules.fills import PriceMove

log = logging.getLogger(__name__)

PK_BOOK = "paper#book"
PK_ORDER = "paper#order"
PK_QUOTE = "paper#quote"
PK_WORKING = "paper#working"
TAKE_PROFIT_SUFFIX = "#tp"
STOP_LOSS_SUFFIX = "#sl"
MAX_CONFLICT_RETRIES = 25

WORKING = (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)
OPEN = (*WORKING, OrderStatus.PENDING)
CLOSED = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)


class _Conflict(Exception):
    """A conditional write lost a race; re-read and try again."""


def _opposite(side: Side) -> Side:
    return Side.SELL if side is Side.BUY else Side.BUY


@dataclass(frozen=True)
class _Book:
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
    def from_doc(cls, doc: str, version: int) -> _Book:
        data = json.loads(doc)
        positions = {s: (Decimal(q), Decimal(p)) for s, (q, p) in data["positions"].items()}
        return cls(Decimal(data["cash"]), Decimal(data["realized_pl"]), positions, version)


def apply_fill(book: _Book, symbol: str, side: Side, qty: Decimal, price: Decimal) -> _Book:
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
    return _Book(cash, realized, positions, book.version)


@dataclass(frozen=True)
class _Record:
    """One stored order: the broker view plus what the simulation needs to work it."""

    order: Order  # without legs; they are records of their own
    version: int = 0
    role: str = "entry"  # entry | take_profit | stop_loss
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

    def to_item(self) -> dict[str, Any]:
        doc = {
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
        return {
            "pk": {"S": PK_ORDER},
            "sk": {"S": self.cid},
            "doc": {"S": json.dumps(doc)},
            "status": {"S": self.order.status.value},
            "symbol": {"S": self.order.symbol},
            "broker_order_id": {"S": self.order.broker_order_id},
            "version": {"N": str(self.version)},
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> _Record:
        doc = json.loads(item["doc"]["S"])
        return cls(
            order=Order.model_validate(doc["order"]),
            version=int(item["version"]["N"]),
            role=doc["role"],
            parent=doc["parent"],
            legs=tuple(doc["legs"]),
            trail_percent=doc["trail_percent"],
            trail_price=doc["trail_price"],
            hwm=doc["hwm"],
            triggered=doc["triggered"],
            created_at=doc["created_at"],
        )

    def evolve(self, **order_changes: Any) -> _Record:
        return replace(self, order=self.order.model_copy(update=order_changes))


class PaperBroker:
    """A simulated account in DynamoDB (see the module docstring); a `SimulatedBroker`.

    `slippage_bps` is passed to the fill model; `starting_cash` (USD) seeds a fresh book;
    `clock` stamps orders and fills (injected so tests control time).
    """

    name = "paper"

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        slippage_bps: float = 5.0,
        starting_cash: float = 100_000.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._ddb = client
        self._table = table
        self._slippage_bps = slippage_bps
        self._starting_cash = Decimal(str(starting_cash))
        self._clock = clock

    # --- Broker port -------------------------------------------------------------------

    def place_order(self, intent: OrderIntent) -> Order:
        """Accept the order (once per client_order_id) and work it against the known price.

        A market order fills at once at `intent.reference_price` (else the last quote) with
        slippage; limit/stop/trailing orders fill now only if that price already reaches
        them. With no price known the order waits for `on_price`.
        """
        existing = self.get_order_by_client_id(intent.client_order_id)
        if existing is not None:
            return existing
        _validate(intent)
        price = intent.reference_price or self._last_price(intent.symbol)
        self._check_buying_power(intent, price)
        now = self._clock()
        records = _new_records(intent, now)
        try:
            self._guard(self._put_new, records)
        except _Conflict:
            found = self.get_order_by_client_id(intent.client_order_id)
            if found is None:  # pragma: no cover - the winner's write is consistent
                raise BrokerUnavailable("paper broker: order vanished after a race") from None
            return found
        if price is not None:
            self._work([records[0]], PriceMove(price), now)
        placed = self.get_order_by_client_id(intent.client_order_id)
        assert placed is not None
        return placed

    def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        record = self._get_record(client_order_id)
        if record is None:
            return None
        return self._with_legs(record, {r.cid: r for r in self._get_records(record.legs)})

    def cancel_order(self, broker_order_id: str) -> None:
        """Cancel a working order; for an entry its legs too, for a leg its sibling."""
        for _ in range(MAX_CONFLICT_RETRIES):
            records = {r.cid: r for r in self._all_records()}
            target = next(
                (r for r in records.values() if r.order.broker_order_id == broker_order_id),
                None,
            )
            if target is None:
                raise BrokerRejected("order not found", code="40410000")
            if target.order.status not in OPEN:
                raise BrokerRejected(
                    f"order is not cancelable (it is {target.order.status.value})",
                    code="42210000",
                )
            group = [target]
            if target.role == "entry":
                group += [records[c] for c in target.legs if c in records]
            elif target.parent in records:
                group += [records[c] for c in records[target.parent].legs if c != target.cid]
            cancels = [
                r.evolve(status=OrderStatus.CANCELED) for r in group if r.order.status in OPEN
            ]
            try:
                self._guard(self._commit, cancels, None)
                log.info("paper: canceled %s", [r.cid for r in cancels])
                return
            except _Conflict:
                continue
        raise BrokerUnavailable("paper broker: cancel kept conflicting; try again")

    def list_orders(self, status: str = "all", limit: int = 100) -> list[Order]:
        """Top-level orders, newest first, legs nested (like Alpaca's `nested=true`)."""
        records = {r.cid: r for r in self._all_records()}
        wanted: tuple[OrderStatus, ...] | None = {
            "open": OPEN,
            "closed": CLOSED,
        }.get(status)
        top = [
            r
            for r in records.values()
            if r.role == "entry" and (wanted is None or r.order.status in wanted)
        ]
        top.sort(key=lambda r: r.created_at, reverse=True)
        return [self._with_legs(r, records) for r in top[:limit]]

    def get_positions(self) -> list[Position]:
        book = self._load_book()
        marks = self._quotes()
        positions = []
        for symbol, (qty, avg) in sorted(book.positions.items()):
            mark = marks.get(symbol)
            positions.append(
                Position(
                    symbol=symbol,
                    qty=float(qty),
                    avg_entry_price=float(avg),
                    market_price=float(mark) if mark is not None else None,
                    unrealized_pl=float((mark - avg) * qty) if mark is not None else None,
                )
            )
        return positions

    def get_account(self) -> Account:
        """Equity marks positions at the last quote; buying power is equity less exposure."""
        book = self._load_book()
        marks = self._quotes()
        value = Decimal(0)
        gross = Decimal(0)
        for symbol, (qty, avg) in book.positions.items():
            mark = marks.get(symbol, avg)
            value += qty * mark
            gross += abs(qty) * mark
        equity = book.cash + value
        return Account(
            equity=float(equity),
            cash=float(book.cash),
            buying_power=float(max(Decimal(0), equity - gross)),
        )

    # --- SimulatedBroker -----------------------------------------------------------------

    def on_price(
        self,
        symbol: str,
        price: float,
        time: datetime,
        *,
        high: float | None = None,
        low: float | None = None,
    ) -> list[Order]:
        """Work every open order of `symbol` against this move; return the orders it changed.

        Legs activated by an entry filling on this move are worked from the next move on.
        """
        self._save_quote(symbol, price, time)
        working = [
            r for r in self._get_records(self._working_ids(symbol)) if r.order.status in WORKING
        ]
        working.sort(key=lambda r: r.created_at)
        return self._work(working, PriceMove(price, high, low), time)

    # --- working orders ------------------------------------------------------------------

    def _work(self, records: list[_Record], move: PriceMove, now: datetime) -> list[Order]:
        changed: list[Order] = []
        done: set[str] = set()
        for record in records:
            if record.cid in done:
                continue
            done.add(record.cid)
            sibling = next(
                (
                    r
                    for r in records
                    if r.parent is not None and r.parent == record.parent and r.cid != record.cid
                ),
                None,
            )
            if record.parent is not None and sibling is not None:
                done.add(sibling.cid)
                changed += self._work_bracket_exit(record, sibling, move, now)
                continue
            evaluation = fills.evaluate(_working_view(record), move, self._slippage_bps)
            if evaluation.fill_price is not None:
                changed += self._fill(record, evaluation.fill_price, now)
            elif (evaluation.hwm, evaluation.triggered) != (record.hwm, record.triggered):
                self._save_state(record, evaluation)
        return changed

    def _work_bracket_exit(
        self, a: _Record, b: _Record, move: PriceMove, now: datetime
    ) -> list[Order]:
        legs = {a.role: a, b.role: b}
        stop, target = legs.get("stop_loss"), legs.get("take_profit")
        side = a.order.side
        exit_ = fills.resolve_exit(
            side,
            move,
            stop.order.stop_price if stop else None,
            target.order.limit_price if target else None,
            self._slippage_bps,
        )
        if exit_ is None:
            return []
        winner = legs[exit_[0]]
        return self._fill(winner, exit_[1], now)

    def _fill(self, record: _Record, price: float, now: datetime) -> list[Order]:
        """Fill `record` at `price`: order, legs/sibling and book in one transaction."""
        for _ in range(MAX_CONFLICT_RETRIES):
            fresh = self._get_record(record.cid)
            if fresh is None or fresh.order.status not in WORKING:
                return []
            qty = Decimal(str(fresh.order.qty))
            book = apply_fill(
                self._load_book(),
                fresh.order.symbol,
                fresh.order.side,
                qty,
                Decimal(str(price)),
            )
            filled = fresh.evolve(
                status=OrderStatus.FILLED,
                filled_qty=fresh.order.qty,
                filled_avg_price=price,
                filled_at=now,
            )
            related: list[_Record] = []
            if fresh.role == "entry":
                related = [
                    leg.evolve(status=OrderStatus.NEW)
                    for leg in self._get_records(fresh.legs)
                    if leg.order.status is OrderStatus.PENDING
                ]
            elif fresh.parent is not None:
                parent = self._get_record(fresh.parent)
                siblings = self._get_records(
                    [c for c in (parent.legs if parent else ()) if c != fresh.cid]
                )
                related = [
                    s.evolve(status=OrderStatus.CANCELED)
                    for s in siblings
                    if s.order.status in OPEN
                ]
            try:
                self._guard(self._commit, [filled, *related], book)
            except _Conflict:
                continue
            log.info(
                "paper: filled %s %s %s %s @ %s",
                fresh.cid,
                fresh.order.side.value,
                fresh.order.qty,
                fresh.order.symbol,
                price,
            )
            canceled = [r.order for r in related if r.order.status is OrderStatus.CANCELED]
            return [filled.order, *canceled]
        raise BrokerUnavailable("paper broker: fill kept conflicting; try again")

    def _save_state(self, record: _Record, evaluation: fills.Evaluation) -> None:
        """Remember a trailing stop's watermark or a stop-limit's trigger (best effort)."""
        updated = replace(record, hwm=evaluation.hwm, triggered=evaluation.triggered)
        if evaluation.stop_price is not None:
            updated = updated.evolve(stop_price=evaluation.stop_price)
        # Losing the race is fine: another move updated it and the next recomputes from there.
        with contextlib.suppress(_Conflict):
            self._guard(self._commit, [updated], None)

    def _check_buying_power(self, intent: OrderIntent, price: float | None) -> None:
        if intent.closes_position or price is None:
            return
        held = next((p.qty for p in self.get_positions() if p.symbol == intent.symbol), 0.0)
        signed = intent.qty if intent.side is Side.BUY else -intent.qty
        if held and (held > 0) != (signed > 0) and abs(signed) <= abs(held):
            return  # only reduces the position
        basis = intent.limit_price or intent.stop_price or price
        notional = intent.qty * basis
        buying_power = self.get_account().buying_power
        if notional > buying_power:
            raise BrokerRejected(
                f"insufficient buying power: order ${notional:,.2f} > ${buying_power:,.2f}",
                code="40310000",
            )

    # --- storage ----------------------------------------------------------------------------

    def _guard(self, write: Callable[..., None], *args: Any) -> None:
        """Run a write; a lost condition is `_Conflict`, an unreachable store unavailable."""
        try:
            write(*args)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                raise _Conflict() from exc
            raise BrokerUnavailable(f"paper broker state: {code or exc}") from exc
        except BotoCoreError as exc:
            raise BrokerUnavailable(f"paper broker state unreachable: {exc}") from exc

    def _read(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (ClientError, BotoCoreError) as exc:
            raise BrokerUnavailable(f"paper broker state unreachable: {exc}") from exc

    def _put_new(self, records: list[_Record]) -> None:
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": r.to_item(),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for r in records
        ]
        items += [self._working_entry(r) for r in records if r.order.status in WORKING]
        self._ddb.transact_write_items(TransactItems=items)

    def _working_entry(self, record: _Record) -> dict[str, Any]:
        """Keep ``paper#working`` in step with the record: listed exactly while working."""
        key = {
            "pk": {"S": PK_WORKING},
            "sk": {"S": f"{record.order.symbol}#{record.cid}"},
        }
        if record.order.status in WORKING:
            return {"Put": {"TableName": self._table, "Item": key}}
        return {"Delete": {"TableName": self._table, "Key": key}}

    def _working_ids(self, symbol: str) -> list[str]:
        prefix = f"{symbol}#"
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": PK_WORKING}, ":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        ids: list[str] = []
        while True:
            page = self._read(lambda: self._ddb.query(**kwargs))
            ids += [i["sk"]["S"].removeprefix(prefix) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return ids
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _commit(self, records: list[_Record], book: _Book | None) -> None:
        """Write records (and the book) each conditional on the version they were read at."""
        items = []
        for r in records:
            item = replace(r, version=r.version + 1).to_item()
            items.append(self._working_entry(r))
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": item,
                        "ConditionExpression": "version = :v",
                        "ExpressionAttributeValues": {":v": {"N": str(r.version)}},
                    }
                }
            )
        if book is not None:
            put: dict[str, Any] = {
                "TableName": self._table,
                "Item": {
                    "pk": {"S": PK_BOOK},
                    "sk": {"S": "book"},
                    "doc": {"S": book.to_doc()},
                    "version": {"N": str(book.version + 1)},
                },
            }
            if book.version == 0:
                put["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                put["ConditionExpression"] = "version = :v"
                put["ExpressionAttributeValues"] = {":v": {"N": str(book.version)}}
            items.append({"Put": put})
        self._ddb.transact_write_items(TransactItems=items)

    def _load_book(self) -> _Book:
        got = self._read(
            lambda: self._ddb.get_item(
                TableName=self._table,
                Key={"pk": {"S": PK_BOOK}, "sk": {"S": "book"}},
                ConsistentRead=True,
            )
        )
        item = got.get("Item")
        if item is None:
            return _Book(cash=self._starting_cash)
        return _Book.from_doc(item["doc"]["S"], int(item["version"]["N"]))

    def _get_record(self, client_order_id: str) -> _Record | None:
        got = self._read(
            lambda: self._ddb.get_item(
                TableName=self._table,
                Key={"pk": {"S": PK_ORDER}, "sk": {"S": client_order_id}},
                ConsistentRead=True,
            )
        )
        item = got.get("Item")
        return _Record.from_item(item) if item else None

    def _get_records(self, client_order_ids: Any) -> list[_Record]:
        found = [self._get_record(c) for c in client_order_ids]
        return [r for r in found if r is not None]

    def _query(self, pk: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        while True:
            page = self._read(lambda: self._ddb.query(**kwargs))
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _all_records(self) -> list[_Record]:
        return [_Record.from_item(item) for item in self._query(PK_ORDER)]

    def _with_legs(self, record: _Record, records: dict[str, _Record]) -> Order:
        legs = tuple(records[c].order for c in record.legs if c in records)
        return record.order.model_copy(update={"legs": legs})

    def _save_quote(self, symbol: str, price: float, time: datetime) -> None:
        """Remember the last price; an older price never overwrites a newer one."""
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": PK_QUOTE},
                    "sk": {"S": symbol},
                    "price": {"N": str(price)},
                    "time": {"S": time.isoformat()},
                },
                ConditionExpression="attribute_not_exists(pk) OR #t <= :t",
                ExpressionAttributeNames={"#t": "time"},
                ExpressionAttributeValues={":t": {"S": time.isoformat()}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise BrokerUnavailable(f"paper broker state: {exc}") from exc
        except BotoCoreError as exc:
            raise BrokerUnavailable(f"paper broker state unreachable: {exc}") from exc

    def _quotes(self) -> dict[str, Decimal]:
        return {i["sk"]["S"]: Decimal(i["price"]["N"]) for i in self._query(PK_QUOTE)}

    def _last_price(self, symbol: str) -> float | None:
        price = self._quotes().get(symbol)
        return float(price) if price is not None else None


def _validate(intent: OrderIntent) -> None:
    """Refuse what Alpaca would refuse, with the same codes, so paper trains the real thing."""
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
        below, above = (
            (intent.stop_loss, intent.take_profit)
            if intent.side is Side.BUY
            else (intent.take_profit, intent.stop_loss)
        )
        if below >= above:
            raise BrokerRejected(
                "take_profit must be on the profit side of stop_loss", code="42210000"
            )


def _new_records(intent: OrderIntent, now: datetime) -> list[_Record]:
    stamp = now.isoformat()
    cid = intent.client_order_id
    entry = Order(
        broker_order_id=str(uuid.uuid4()),
        client_order_id=cid,
        symbol=intent.symbol,
        side=intent.side,
        qty=intent.qty,
        order_type=intent.order_type,
        status=OrderStatus.NEW,
        limit_price=intent.limit_price,
        stop_price=intent.stop_price,
        submitted_at=now,
    )
    exit_side = _opposite(intent.side)

    def leg(suffix: str, role: str, kind: OrderType, limit: float | None, stop: float | None):
        order = entry.model_copy(
            update={
                "broker_order_id": str(uuid.uuid4()),
                "client_order_id": cid + suffix,
                "side": exit_side,
                "order_type": kind,
                "status": OrderStatus.PENDING,
                "limit_price": limit,
                "stop_price": stop,
            }
        )
        return _Record(order=order, role=role, parent=cid, created_at=stamp)

    legs: list[_Record] = []
    if intent.take_profit is not None:
        legs.append(
            leg(TAKE_PROFIT_SUFFIX, "take_profit", OrderType.LIMIT, intent.take_profit, None)
        )
    if intent.stop_loss is not None:
        legs.append(leg(STOP_LOSS_SUFFIX, "stop_loss", OrderType.STOP, None, intent.stop_loss))
    head = _Record(
        order=entry,
        legs=tuple(leg.cid for leg in legs),
        trail_percent=intent.trail_percent,
        trail_price=intent.trail_price,
        created_at=stamp,
    )
    return [head, *legs]


def _working_view(record: _Record) -> fills.WorkingOrder:
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
