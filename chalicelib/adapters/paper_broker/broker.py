"""`PaperBroker`: the `SimulatedBroker` façade over the book (`book.py`) and its store
(`store.py`).

Correct under concurrent calls: placing is a conditional put on the client_order_id (two
racing calls give one order), and a fill is one transaction that moves the order, its legs
or siblings and the book together, each conditional on the version it was computed from; a
conflict re-reads and tries again, so no fill is lost or applied twice.

What each call reads does not grow with the account's history: the open orders, working
exits and the orders a price can fill come from the ``paper#working`` index, the newest
orders from ``paper#history``, marks from the quotes of held symbols only.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from chalicelib.adapters.paper_broker.book import (
    CLOSED,
    OPEN,
    WORKING,
    Book,
    Record,
    activate,
    fill_in_full,
    group_members,
    new_records,
    validate,
    working_view,
)
from chalicelib.adapters.paper_broker.store import Conflict, PaperStore
from chalicelib.domain import (
    Account,
    Order,
    OrderIntent,
    OrderStatus,
    Position,
    Side,
    utc_now,
)
from chalicelib.ports import BrokerRejected, BrokerUnavailable
from chalicelib.rules import fills
from chalicelib.rules.fills import PriceMove

log = logging.getLogger("chalicelib.adapters.paper_broker")

MAX_CONFLICT_RETRIES = 25


class PaperBroker:
    """A simulated account in DynamoDB; a `SimulatedBroker`.

    `slippage_bps` is passed to the fill model; `starting_cash` (USD) seeds a fresh book;
    `clock` stamps orders and fills (injected so tests control time).
    """

    name = "paper"

    def __init__(
        self,
        client: object,
        table: str,
        *,
        slippage_bps: float = 5.0,
        starting_cash: float = 100_000.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = PaperStore(client, table, Decimal(str(starting_cash)))
        self._slippage_bps = slippage_bps
        self._clock = clock

    # --- Broker port -------------------------------------------------------------------

    def place_order(self, intent: OrderIntent) -> Order:
        """Accept the order (once per client_order_id) and work it against the known price.

        A market order fills at once at `intent.reference_price` (else the last quote) with
        slippage; limit/stop/trailing orders fill now only if that price already reaches
        them. With no price known the order waits for `on_price`. A `protects_position`
        intent places an OCO (both prices), a stop or a limit, working at once.

        The id's uniqueness is the create's condition, not a read first: a repeated call
        loses that race and returns the order the first one placed.
        """
        validate(intent)
        price = intent.reference_price
        if price is None:
            quote = self._store.quote(intent.symbol)
            price = float(quote) if quote is not None else None
        book = self._store.book() if price is not None else None
        try:
            self._check_buying_power(intent, price, book)
        except BrokerRejected:
            placed = self.get_order_by_client_id(intent.client_order_id)
            if placed is not None:  # a repeat: the first call's order took the buying power
                return placed
            raise
        now = self._clock()
        records = new_records(intent, now)
        at_once = self._filled_on_arrival(records, price, now, book)
        if at_once is not None:
            filled, after = at_once
            try:
                self._store.put_new(filled, book=after)
            except Conflict:  # a repeat, or the book moved: below tells which
                pass
            else:
                self._log_fill(filled[0])
                return filled[0].with_legs({r.cid: r for r in filled})
        try:
            self._store.put_new(records)
        except Conflict:
            found = self.get_order_by_client_id(intent.client_order_id)
            if found is None:  # pragma: no cover - the winner's write is consistent
                raise BrokerUnavailable("paper broker: order vanished after a race") from None
            return found
        changed: list[Order] = []
        if price is not None:
            working = [r for r in records if r.order.status in WORKING]
            changed = self._work(working, PriceMove(price), now, known=records)
        # The order as placed and worked, from what was written (no read back).
        orders = {r.cid: r.order for r in records} | {o.client_order_id: o for o in changed}
        head = records[0]
        return orders[head.cid].model_copy(
            update={"legs": tuple(orders[c] for c in head.legs if c in orders)}
        )

    def _filled_on_arrival(
        self, records: list[Record], price: float | None, now: datetime, book: Book | None
    ) -> tuple[list[Record], Book] | None:
        """The records as they stand once `price` works the new head, when it fills at once
        (a market order, a limit the price already reaches): head filled, its legs working,
        and the book after the fill, to be created in one write. None: it does not fill now
        (or it is a protective group), and the usual place-then-work path applies."""
        head = records[0]
        if price is None or book is None or head.group is not None:
            return None
        if head.order.status not in WORKING:
            return None
        evaluation = fills.evaluate(working_view(head), PriceMove(price), self._slippage_bps)
        if evaluation.fill_price is None:
            return None
        filled, after = fill_in_full(head, evaluation.fill_price, now, book)
        legs = activate(records[1:])
        return [filled, *legs], after

    def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        record = self._store.record(client_order_id)
        if record is None:
            return None
        return record.with_legs({r.cid: r for r in self._store.records(record.legs)})

    def cancel_order(self, broker_order_id: str) -> None:
        """Cancel an open order with its group: an entry's legs, a leg's or OCO's siblings."""
        cid = self._store.client_id_for(broker_order_id)
        for _ in range(MAX_CONFLICT_RETRIES):
            target = self._store.record(cid) if cid is not None else None
            if target is None:
                raise BrokerRejected("order not found", code="40410000")
            if target.order.status not in OPEN:
                raise BrokerRejected(
                    f"order is not cancelable (it is {target.order.status.value})",
                    code="42210000",
                )
            if target.role == "entry" and target.parent is None:
                group = [target, *self._store.records(target.legs)]
            else:
                group = [target, *self._group_of(target)]
            cancels = [
                r.evolve(status=OrderStatus.CANCELED) for r in group if r.order.status in OPEN
            ]
            try:
                self._store.commit(cancels, None)
                log.info("paper: canceled %s", [r.cid for r in cancels])
                return
            except Conflict:
                continue
        raise BrokerUnavailable("paper broker: cancel kept conflicting; try again")

    def list_orders(self, status: str = "all", limit: int = 100) -> list[Order]:
        """Top-level orders, newest first, legs nested (like Alpaca's `nested=true`).

        "open" reads only the open orders; "all" and "closed" read the newest orders a page
        at a time, so `limit` bounds what is read, not the account's history.
        """
        if status == "open":
            open_records = {r.cid: r for r in self._store.open_records()}
            top = [r for r in open_records.values() if r.parent is None]
            top.sort(key=lambda r: (r.created_at, r.cid), reverse=True)
            return self._nest(top[:limit], open_records)
        wanted = CLOSED if status == "closed" else None
        found: list[Record] = []
        start = None
        while len(found) < limit:
            ids, start = self._store.history(start, limit - len(found))
            found += [
                r for r in self._store.records(ids) if wanted is None or r.order.status in wanted
            ]
            if start is None:
                break
        return self._nest(found[:limit], {})

    def working_exits(self, symbol: str) -> list[Order]:
        """Working orders that protect or close `symbol`'s position, flat (legs unnested).

        Bracket/OTO legs once their entry filled (held legs of an unfilled entry protect
        nothing yet), protective OCO pairs and single stops/limits, closing orders, and any
        other working order on the side that reduces the held position.
        """
        open_records = [r for r in self._store.open_records(symbol) if r.order.status in WORKING]
        exits = [r for r in open_records if r.is_exit]
        entries = [r for r in open_records if not r.is_exit]
        if entries:
            held = self._store.book().held(symbol)
            reducing = Side.SELL if held > 0 else Side.BUY
            exits += [r for r in entries if held and r.order.side is reducing]
        exits.sort(key=lambda r: (r.created_at, r.cid))
        return [r.order for r in exits]

    def foreign_orders(self) -> list[dict[str, object]]:
        """Orders of kinds flowtrader does not trade: a paper account never holds any."""
        return []

    def get_positions(self) -> list[Position]:
        return self.get_portfolio()[1]

    def get_account(self) -> Account:
        """Equity marks positions at the last quote; buying power is equity less exposure."""
        return self.get_portfolio()[0]

    def get_portfolio(self) -> tuple[Account, list[Position]]:
        """The account and its positions from one read of the book and its quotes."""
        book = self._store.book()
        marks = self._store.quotes(book.positions)
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
        return _account(book, marks), positions

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
        """Work every open order of `symbol` against this move; return the orders it filled or
        canceled.

        Legs activated by an entry filling on this move are worked from the next move on.
        """
        self._store.save_quote(symbol, price, time)
        open_records = self._store.open_records(symbol)
        working = [r for r in open_records if r.order.status in WORKING]
        working.sort(key=lambda r: (r.created_at, r.cid))
        changed = self._work(working, PriceMove(price, high, low), time, known=open_records)
        return [o for o in changed if o.status in (OrderStatus.FILLED, OrderStatus.CANCELED)]

    def working_symbols(self) -> dict[str, datetime | None]:
        """From one read of the book and one of the working index."""
        held = {symbol for symbol, (qty, _) in self._store.book().positions.items() if qty}
        newest: dict[str, datetime | None] = dict.fromkeys(held)
        for r in self._store.open_records():
            symbol, placed = r.order.symbol, r.order.submitted_at
            known = newest.setdefault(symbol, None)
            if placed is not None and (known is None or placed > known):
                newest[symbol] = placed
        return newest

    def mark(self, symbol: str, price: float, time: datetime) -> None:
        self._store.save_quote(symbol, price, time)

    # --- working orders ------------------------------------------------------------------

    def _work(
        self,
        records: list[Record],
        move: PriceMove,
        now: datetime,
        known: list[Record] | None = None,
    ) -> list[Order]:
        """Work `records` against `move`; `known` are records as just read or written (the
        fill's first try uses them instead of reading them again: its write is conditional
        on their versions, so a stale one only costs a retry)."""
        known_by_cid = {r.cid: r for r in (known if known is not None else records)}
        changed: list[Order] = []
        done: set[str] = set()
        for record in records:
            if record.cid in done:
                continue
            done.add(record.cid)
            pair = [
                r
                for r in records
                if record.group is not None and r.group == record.group and r.cid != record.cid
            ]
            if pair:
                done.update(r.cid for r in pair)
                changed += self._work_protection([record, *pair], move, now, known_by_cid)
                continue
            evaluation = fills.evaluate(working_view(record), move, self._slippage_bps)
            if evaluation.fill_price is not None:
                changed += self._fill(record, evaluation.fill_price, now, known_by_cid)
            elif (evaluation.hwm, evaluation.triggered) != (record.hwm, record.triggered):
                self._save_state(record, evaluation)
        return changed

    def _work_protection(
        self, group: list[Record], move: PriceMove, now: datetime, known: dict[str, Record]
    ) -> list[Order]:
        """A stop-loss and take-profit of one group: the stop wins when a move touches both."""
        roles = {r.role: r for r in group}
        stop, target = roles.get("stop_loss"), roles.get("take_profit")
        exit_ = fills.resolve_exit(
            group[0].order.side,
            move,
            stop.order.stop_price if stop else None,
            target.order.limit_price if target else None,
            self._slippage_bps,
        )
        if exit_ is None:
            return []
        return self._fill(roles[exit_[0]], exit_[1], now, known)

    def _group_of(self, record: Record) -> list[Record]:
        """The other open members of `record`'s protective group (empty for an entry)."""
        group = record.group
        if group is None:
            return []
        head = record if record.cid == group else self._store.record(group)
        legs = self._store.records(head.legs) if head is not None else []
        return group_members(record, head, legs)

    def _fill(
        self, record: Record, price: float, now: datetime, known: dict[str, Record]
    ) -> list[Order]:
        """Fill `record` at `price`: order, legs or siblings and book in one transaction.

        Returns every order it changed: the fill, the legs it activated, the siblings it
        canceled."""
        for attempt in range(MAX_CONFLICT_RETRIES):
            first = attempt == 0
            fresh = known.get(record.cid) if first else self._store.record(record.cid)
            if fresh is None or fresh.order.status not in WORKING:
                return []
            filled, book = fill_in_full(fresh, price, now, self._store.book())
            if fresh.group is None:  # an entry (or plain exit) activates its held legs
                legs = (
                    [known[c] for c in fresh.legs]
                    if first and all(c in known for c in fresh.legs)
                    else self._store.records(fresh.legs)
                )
                related = activate([leg for leg in legs if leg.order.status is OrderStatus.PENDING])
            else:  # a protective fill cancels the rest of its group
                related = [s.evolve(status=OrderStatus.CANCELED) for s in self._group_of(fresh)]
            try:
                self._store.commit([filled, *related], book)
            except Conflict:
                continue
            self._log_fill(filled)
            return [filled.order, *(r.order for r in related)]
        raise BrokerUnavailable("paper broker: fill kept conflicting; try again")

    @staticmethod
    def _log_fill(filled: Record) -> None:
        order = filled.order
        log.info(
            "paper: filled %s %s %s %s @ %s",
            filled.cid,
            order.side.value,
            order.qty,
            order.symbol,
            order.filled_avg_price,
        )

    def _save_state(self, record: Record, evaluation: fills.Evaluation) -> None:
        """Remember a trailing stop's watermark or a stop-limit's trigger (best effort)."""
        updated = replace(record, hwm=evaluation.hwm, triggered=evaluation.triggered)
        if evaluation.stop_price is not None:
            updated = updated.evolve(stop_price=evaluation.stop_price)
        # Losing the race is fine: another move updated it and the next recomputes from there.
        with contextlib.suppress(Conflict):
            self._store.commit([updated], None)

    def _check_buying_power(
        self, intent: OrderIntent, price: float | None, book: Book | None
    ) -> None:
        if intent.closes_position or intent.protects_position or price is None or book is None:
            return
        held = float(book.held(intent.symbol))
        signed = intent.qty if intent.side is Side.BUY else -intent.qty
        if held and (held > 0) != (signed > 0) and abs(signed) <= abs(held):
            return  # only reduces the position
        basis = intent.limit_price or intent.stop_price or price
        notional = intent.qty * basis
        buying_power = _account(book, self._store.quotes(book.positions)).buying_power
        if notional > buying_power:
            raise BrokerRejected(
                f"insufficient buying power: order ${notional:,.2f} > ${buying_power:,.2f}",
                code="40310000",
            )

    def _nest(self, top: list[Record], known: dict[str, Record]) -> list[Order]:
        """`top` as orders with their legs, reading only the legs not already `known`."""
        missing = [c for r in top for c in r.legs if c not in known]
        legs = {**known, **{r.cid: r for r in self._store.records(missing)}}
        return [r.with_legs(legs) for r in top]


def _account(book: Book, marks: dict[str, Decimal]) -> Account:
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
