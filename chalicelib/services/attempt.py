"""One attempt at one alert: what it records, and the broker calls it makes once.

`Attempt` holds the collaborators (`Execution`), the clock reading and what happened: the
journal events, the orders and the notices, buffered and written by `flush` once the
account lease is released (the outcome first). Its broker calls are the placement rules of
the use case (chalicelib/services/process_alert.py):

- `place`: once per client_order_id; after an unknown outcome, look the id up before the one
  retry (the only retry layer for POSTs: at most `broker_attempts` per receive);
- `placed_earlier`: this alert's deterministic ids at the broker (recovery after a crash);
- `clear_exits` / `protect`: journal a position's stop/target (at once: a retry must find it),
  cancel them before a close, and re-place them for what the close leaves;
- `catch_up` / `sync`: `sync_portfolio` before deciding and after placing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain import Alert, AlertStatus, Order, OrderIntent
from chalicelib.ports import (
    AlertStore,
    Broker,
    BrokerRejected,
    BrokerUnavailable,
    Notifier,
    StateStore,
)
from chalicelib.rules.gate import Gate
from chalicelib.rules.orders import OrderRules, Protection, client_order_id, protection_of
from chalicelib.rules.ranking import Standing
from chalicelib.services.context import ContextSources
from chalicelib.services.notify import Notice, order_error, send
from chalicelib.services.sync_portfolio import SyncReport, sync_portfolio

log = logging.getLogger(__name__)

RESUMED = (AlertStatus.RECEIVED.value, AlertStatus.FAILED.value)
# What a worker may take: not yet decided (a redelivery of a decided alert does nothing).
CLAIMABLE = (AlertStatus.STORED.value, AlertStatus.QUEUED.value, *RESUMED)
TRADES = ("close", "open")  # the legs that trade; an alert that has one was acted on
LEGS = (*TRADES, "protect", "restore")  # every client order id suffix of an alert


@dataclass(frozen=True)
class Execution:
    """Everything process_alert needs besides the alert store; built by the worker."""

    state: StateStore
    broker: Broker
    gate: Gate
    rules: OrderRules
    notifier: Notifier | None = None
    broker_attempts: int = 2  # place_order calls per intent within one receive
    lock_wait_s: float = 20.0  # how long to wait for the account lease (worker timeout 60 s)
    lock_ttl: timedelta = timedelta(seconds=60)  # a crashed holder blocks no longer than this
    context: ContextSources = field(default_factory=ContextSources)
    clock: Callable[[], float] = time.perf_counter  # stage timings (monotonic seconds)


@dataclass(frozen=True)
class Outcome:
    alert_id: str
    status: str
    reason: str
    skipped: bool = False
    orders: tuple[str, ...] = field(default=())


class AlertFailed(Exception):
    """Processing failed after the outcome was recorded; raised so SQS redelivers it."""


def order_record(order: Order) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "broker_order_id": order.broker_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "qty": order.qty,
        "type": order.order_type.value,
        "status": order.status.value,
        "filled_qty": order.filled_qty,
        "filled_avg_price": order.filled_avg_price,
        "legs": [
            {
                "client_order_id": leg.client_order_id,
                "type": leg.order_type.value,
                "status": leg.status.value,
                "stop_price": leg.stop_price,
                "limit_price": leg.limit_price,
            }
            for leg in order.legs
        ],
    }


class Stages:
    """How long each stage of one alert took, in ms: `ingress` (webhook → queue), `queue`
    (queue → worker), `context` (every source; per source in the context record), `lease`
    (waiting for the account), `catch_up` (fills since the last sync), `decide` (account
    read + rules), `gate`, `broker` (every broker call: place, protect, cancel), `record`
    (booking the fills), `worker` (all of the worker's part), `total` (webhook → outcome
    settled); and `placed`, not a stage but a moment: the worker's time until the broker
    had the first order (ingress + queue + placed is alert → order)."""

    def __init__(self, clock: Callable[[], float], now: datetime) -> None:
        self._clock = clock
        self._now = now
        self._t0 = clock()
        self._waited_ms: float | None = None
        self.ms: dict[str, float] = {}

    def arrived(self, received_at: str | None, sent_at: datetime | None) -> None:
        """The stages before the worker, from the webhook's and the queue's timestamps."""
        received = datetime.fromisoformat(received_at) if received_at else None
        if received is not None and sent_at is not None:
            self.ms["ingress"] = _ms((sent_at - received).total_seconds())
        start = sent_at or received
        if start is not None:
            self.ms["queue"] = _ms(max(0.0, (self._now - start).total_seconds()))
            self._waited_ms = _ms((self._now - (received or start)).total_seconds())

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        t0 = self._clock()
        try:
            yield
        finally:
            self.ms[stage] = _ms(self.ms.get(stage, 0.0) / 1000.0 + self._clock() - t0)

    def reached(self, moment: str) -> None:
        """Note the first time the worker reached `moment` (ms since it took the alert)."""
        self.ms.setdefault(moment, _ms(self._clock() - self._t0))

    def as_record(self) -> dict[str, float]:
        worked = _ms(self._clock() - self._t0)
        total = worked + (self._waited_ms or 0.0)
        return {**self.ms, "worker": worked, "total": round(total, 3)}


def _ms(seconds: float) -> float:
    return round(1000.0 * seconds, 3)


class Attempt:
    """One attempt at one alert: the collaborators, the clock reading and what happened."""

    def __init__(
        self, alert_id: str, store: AlertStore, ex: Execution, now: datetime, attempt: int
    ) -> None:
        self.alert_id = alert_id
        self.store = store
        self.ex = ex
        self.now = now
        self.attempt = attempt
        self.details: dict[str, Any] = {"attempt": attempt, "broker": ex.broker.name}
        self.stages = Stages(ex.clock, now)
        self.orders: list[Order] = []
        self.standing: Standing | None = None  # its rank in a batch (rules/ranking.py)
        self._seq = 0  # orders this run's journal events, which share one `now`
        self._events: list[tuple[str, dict[str, Any], datetime, int]] = []
        self._notices: list[Notice] = []
        self._final: tuple[AlertStatus, str] | None = None

    # --- recording: buffered, written by `flush` once the account lease is released ----

    def journal(self, event: str, data: dict[str, Any], *, now: bool = False) -> None:
        """Journal an event; `now=True` writes it at once (a retry must be able to read it
        even if this attempt dies), else it is written with the others by `flush`."""
        self._seq += 1
        if not now:
            self._events.append((event, data, self.now, self._seq))
            return
        try:
            self.ex.state.append_journal(self.alert_id, event, data, self.now, self._seq)
        except Exception:  # the alert's own record carries the same details
            log.warning("journal write failed for %s/%s", self.alert_id, event, exc_info=True)

    def finish(self, status: AlertStatus, reason: str) -> Outcome:
        """Settle the outcome; `flush` records it."""
        self.details["orders"] = [order_record(o) for o in self.orders]
        self.details["latency_ms"] = self.stages.as_record()
        self._final = (status, reason)
        self.journal("outcome", {"status": status.value, "reason": reason})
        return Outcome(
            self.alert_id,
            status.value,
            reason,
            orders=tuple(o.client_order_id for o in self.orders),
        )

    def notify(self, notice: Notice) -> None:
        """Tell the trader once the run is recorded; a failing channel never raises."""
        self._notices.append(notice)

    def flush(self) -> None:
        """Record the outcome, write the journal, then notify — outside the account lease,
        so the next decision need not wait for them. The outcome comes first: a failure to
        record it raises (SQS redelivers; the retry finds the orders and records them)."""
        if self._final is not None:
            status, reason = self._final
            self.store.record_outcome(
                self.alert_id,
                status.value,
                reason,
                details=self.details,
                only_if_status_in=RESUMED,
                updated_at=self.now,
            )
        events, self._events = self._events, []
        if events:
            try:
                self.ex.state.append_journal_many(self.alert_id, events)
            except Exception:  # the alert's own record carries the same details
                log.warning("journal write failed for %s", self.alert_id, exc_info=True)
        notices, self._notices = self._notices, []
        for notice in notices:
            send(self.ex.notifier, notice)

    def record_order(self, order: Order) -> None:
        self.orders.append(order)
        try:
            self.ex.state.record_order(self.alert_id, order, self.now)
        except Exception:
            log.warning("order record failed for %s", order.client_order_id, exc_info=True)
        self.journal("order", order_record(order))

    def sync(
        self,
        *,
        quiet: tuple[str, ...] = (),
        before_deciding: bool = False,
        changed: list[tuple[str | None, Order]] | None = None,
    ) -> SyncReport:
        """Book what filled and refresh the snapshot; the lease is already held.

        Before deciding, an unreachable broker fails the attempt (it is retried: nothing can
        be decided without the broker). After placing, a failing sync never fails the alert:
        the scheduled one catches up within a minute.
        """
        try:
            report = sync_portfolio(
                self.ex.broker,
                self.ex.state,
                self.now,
                notifier=self.ex.notifier,
                quiet=quiet,
                journal=self._journal_for_sync,
                changed=changed,
            )
        except BrokerUnavailable:
            if before_deciding:
                raise
            log.warning("broker unavailable syncing after alert %s", self.alert_id)
            return SyncReport()
        except Exception:
            log.warning("portfolio sync failed for alert %s", self.alert_id, exc_info=True)
            return SyncReport()
        return report

    def _journal_for_sync(self, key: str, event: str, data: dict[str, Any]) -> None:
        """This alert's events in this run's sequence; others' (an earlier alert's stop)
        under their own alert."""
        if key == self.alert_id:
            self.journal(event, data)
            return
        try:
            self.ex.state.append_journal(key, event, data, self.now)
        except Exception:
            log.warning("journal write failed for %s/%s", key, event, exc_info=True)

    # --- broker ----------------------------------------------------------------------

    def placed_earlier(self, legs: tuple[str, ...] = LEGS) -> dict[str, Order]:
        """This alert's orders the broker already has, by leg ("close", "open", ...)."""
        found = {}
        for leg in legs:
            order = self.lookup(client_order_id(self.alert_id, leg))
            if order is not None:
                found[leg] = order
        return found

    def lookup(self, client_id: str) -> Order | None:
        try:
            return self.ex.broker.get_order_by_client_id(client_id)
        except BrokerUnavailable:
            return None

    def place(self, intent: OrderIntent) -> Order:
        """Place once per client_order_id: after an unknown outcome, look up before retrying."""
        with self.stages.timed("broker"):
            order = self._place(intent)
        self.stages.reached("placed")
        return order

    def _place(self, intent: OrderIntent) -> Order:
        last: BrokerUnavailable | None = None
        for _ in range(max(self.ex.broker_attempts, 1)):
            try:
                return self.ex.broker.place_order(intent)
            except BrokerUnavailable as exc:
                last = exc
                log.warning("broker unavailable placing %s: %s", intent.client_order_id, exc)
                found = self.lookup(intent.client_order_id)
                if found is not None:
                    return found
        raise BrokerUnavailable(str(last) or "broker unavailable")

    def catch_up(self, alert: Alert) -> SyncReport:
        """Bring the state table up to the broker before deciding.

        A simulated broker (paper) fills only when told a price: the alert's price works its
        resting orders first, so a stop the market went through fills before the alert is
        decided, and only what that filled needs booking. A real broker fills on its own
        at any time: its recent orders are swept for fills not booked yet.
        """
        work_prices = getattr(self.ex.broker, "on_price", None)
        if work_prices is None:
            return self.sync(before_deciding=True)
        if alert.price is None:
            return SyncReport()
        changed = work_prices(alert.symbol, alert.price, self.now)
        if not changed:
            return SyncReport()
        orders = [order_record(o) for o in changed]
        self.journal("market", {"price": alert.price, "orders": orders})
        return self.sync(before_deciding=True, changed=[(None, o) for o in changed])

    def protection(self, exits: list[Order], resumed: bool) -> Protection:
        """The stop/target on the symbol: its working exits, else (on a retry, after this
        alert already canceled them) what the journal says they were."""
        found = protection_of(exits)
        if found or not resumed:
            return found
        for event in reversed(self.ex.state.journal(self.alert_id)):
            if event["event"] == "protection":
                data = event["data"]
                return Protection(data.get("stop_loss"), data.get("take_profit"))
        return found

    def clear_exits(self, symbol: str, to_cancel: list[Order], protection: Protection) -> None:
        """Free the shares the working exits hold before a close, journaling them first so a
        retry can re-protect whatever the close leaves."""
        if protection:
            self.journal(
                "protection",
                {"stop_loss": protection.stop_loss, "take_profit": protection.take_profit},
                now=True,
            )
        with self.stages.timed("broker"):
            for order in to_cancel:
                try:
                    self.ex.broker.cancel_order(order.broker_order_id)
                except (BrokerRejected, BrokerUnavailable) as exc:
                    log.info("cancel %s before close of %s: %s", order.client_order_id, symbol, exc)

    def protect(self, intent: OrderIntent) -> Order | None:
        """Place a protective exit; a failure is journaled and notified, never raised:
        the close it follows has happened and must be recorded."""
        try:
            order = self.place(intent)
        except (BrokerRejected, BrokerUnavailable) as exc:
            reason = f"could not protect {intent.qty:g} {intent.symbol}: {exc}"
            log.error("%s (alert %s)", reason, self.alert_id)
            self.journal(
                "unprotected", {"symbol": intent.symbol, "qty": intent.qty, "error": str(exc)}
            )
            self.notify(order_error(reason, self.alert_id, intent.symbol))
            return None
        self.record_order(order)
        return order
