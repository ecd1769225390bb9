"""The queue worker's use case: one queued alert → decision → gate → broker → recorded outcome.

The order of the steps is the money-safety argument (DESIGN.md invariants 1–5):

1. **Claim**: only an alert still `stored|queued|received|failed` is processed; a terminal
   one (`accepted|rejected|filled`) is left alone, so a redelivery does nothing.
2. **Recover**: when an earlier attempt got past the claim (`received`/`failed`), the broker
   is asked for this alert's deterministic client_order_ids first; an order it already has is
   recorded, never placed again (a crash between the broker call and the record).
3. **Decide** (pure rules) from the broker's account and positions and the alert's price,
   holding the account lease (`AccountLock`) through steps 3–5, so two workers never decide
   on the same positions and every limit holds under concurrency.
4. **Gate**: every check's verdict is journaled; the cooldown slot is claimed atomically in
   the state table, so concurrent Lambdas never exceed the limit. A denial is `rejected`
   with every failing check's reason.
5. **Place** with the deterministic client_order_id. `BrokerUnavailable` → look the id up,
   retry with the same id; still unknown → `failed` (the message is redelivered by SQS and
   dead-lettered after 5 receives; the last attempt notifies). `BrokerRejected` → the slot
   is released and the alert is `rejected` with the broker's reason.
6. **Record** the outcome on the alert (details: decision, verdicts, orders) and in the
   journal; refresh the positions snapshot; **notify** — a failing notifier is logged and
   never blocks or repeats an order.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain import (
    Account,
    Alert,
    AlertStatus,
    Order,
    OrderIntent,
    OrderStatus,
    Position,
    Side,
)
from chalicelib.ports import (
    AccountLock,
    AlertStore,
    Broker,
    BrokerRejected,
    BrokerUnavailable,
    Notifier,
    TradeRecords,
)
from chalicelib.rules.exposure import with_working_entries
from chalicelib.rules.gate import Gate, GateResult, Proposal, RiskLimits
from chalicelib.rules.market_calendar import trading_date
from chalicelib.rules.orders import (
    DecisionKind,
    OrderRules,
    client_order_id,
    decide_orders,
)
from chalicelib.rules.risk_state import RiskState
from chalicelib.rules.sizing import SizingMode
from chalicelib.services.notify import (
    Notice,
    order_error,
    order_rejected,
    order_update,
    send,
)

if TYPE_CHECKING:
    from chalicelib.settings import Settings

log = logging.getLogger(__name__)

CLAIMABLE = (
    AlertStatus.STORED.value,
    AlertStatus.QUEUED.value,
    AlertStatus.RECEIVED.value,
    AlertStatus.FAILED.value,
)
RESUMED = (AlertStatus.RECEIVED.value, AlertStatus.FAILED.value)
MAX_RECEIVES = 5  # the queue's redrive maxReceiveCount (infra/template.yaml)


class StateStore(RiskState, TradeRecords, AccountLock, Protocol):
    """The state table: the gate's risk state, journal, orders, positions, account lease."""


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


@dataclass(frozen=True)
class Outcome:
    alert_id: str
    status: str
    reason: str
    skipped: bool = False
    orders: tuple[str, ...] = field(default=())


class AlertFailed(Exception):
    """Processing failed after the outcome was recorded; raised so SQS redelivers it."""


class AccountBusy(Exception):
    """Another alert held the account lease for longer than `lock_wait_s`."""


@contextmanager
def account_lease(run: _Run) -> Iterator[None]:
    """Hold the account lease (AccountLock) while reading the account, gating and placing.

    Waits with capped, jittered backoff; the holder's expiry is judged on this run's clock
    advanced by the time waited.
    """
    ex, started = run.ex, time.monotonic()
    holder = f"{run.alert_id}#{uuid.uuid4().hex[:12]}"  # per run: duplicate deliveries queue too
    delay = 0.02
    while not ex.state.acquire_account_lock(
        holder, run.now + timedelta(seconds=time.monotonic() - started), ex.lock_ttl
    ):
        if time.monotonic() - started > ex.lock_wait_s:
            raise AccountBusy(f"another alert held the account for over {ex.lock_wait_s:g} s")
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.5)
    try:
        yield
    finally:
        try:
            ex.state.release_account_lock(holder)
        except Exception:  # the lease expires by itself after lock_ttl
            log.warning("could not release the account lease for %s", run.alert_id, exc_info=True)


def risk_limits(settings: Settings) -> RiskLimits:
    return RiskLimits(
        kill_switch=settings.kill_switch,
        market_hours_only=settings.enforce_market_hours,
        max_trades_per_hour=settings.max_trades_per_hour,
        cooldown_per_symbol=settings.cooldown_per_symbol,
        max_daily_loss_usd=settings.max_daily_loss_usd,
        max_open_positions=settings.max_open_positions,
        max_position_notional_usd=settings.max_position_notional_usd,
        max_gross_exposure_usd=settings.max_gross_exposure_usd,
        pdt_guard=settings.pdt_guard,
    )


def order_rules(settings: Settings) -> OrderRules:
    return OrderRules(
        sizing_mode=SizingMode(settings.sizing_mode),
        default_qty=settings.default_qty,
        default_notional_usd=settings.default_notional_usd,
        risk_per_trade_pct=settings.risk_per_trade_pct,
        use_alert_quantity=settings.use_alert_quantity,
        default_stop_pct=settings.default_stop_pct,
        default_target_pct=settings.default_target_pct,
        stop_atr_multiple=settings.stop_atr_multiple,
        target_atr_multiple=settings.target_atr_multiple,
        max_position_notional_usd=settings.max_position_notional_usd,
    )


def _order_record(order: Order) -> dict[str, Any]:
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
            {"client_order_id": leg.client_order_id, "status": leg.status.value}
            for leg in order.legs
        ],
    }


class _Run:
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
        self.orders: list[Order] = []
        self._seq = 0  # orders this run's journal events, which share one `now`

    # --- recording -------------------------------------------------------------------

    def journal(self, event: str, data: dict[str, Any]) -> None:
        self._seq += 1
        try:
            self.ex.state.append_journal(self.alert_id, event, data, self.now, self._seq)
        except Exception:  # the alert's own record carries the same details
            log.warning("journal write failed for %s/%s", self.alert_id, event, exc_info=True)

    def finish(self, status: AlertStatus, reason: str) -> Outcome:
        self.details["orders"] = [_order_record(o) for o in self.orders]
        self.store.record_outcome(
            self.alert_id,
            status.value,
            reason,
            details=self.details,
            only_if_status_in=RESUMED,
            updated_at=self.now,
        )
        self.journal("outcome", {"status": status.value, "reason": reason})
        return Outcome(
            self.alert_id,
            status.value,
            reason,
            orders=tuple(o.client_order_id for o in self.orders),
        )

    def notify(self, notice: Notice) -> None:
        """Tell the trader; `send` logs a failing channel and never raises."""
        send(self.ex.notifier, notice)

    def record_order(self, order: Order, *, placed: bool = True) -> None:
        """Record an order; `placed=False` for earlier orders this alert's price moved."""
        if placed:
            self.orders.append(order)
        try:
            self.ex.state.record_order(self.alert_id, order, self.now)
        except Exception:
            log.warning("order record failed for %s", order.client_order_id, exc_info=True)
        self.journal("order", _order_record(order))

    # --- broker ----------------------------------------------------------------------

    def placed_earlier(self) -> dict[str, Order]:
        """This alert's orders the broker already has, by leg ("close", "open")."""
        found = {}
        for leg in ("close", "open"):
            order = self.lookup(client_order_id(self.alert_id, leg))
            if order is not None:
                found[leg] = order
        return found

    def book_realized_pl(self, order: Order, positions: list[Position]) -> None:
        """Book a closing fill's realized P/L for the daily loss limit, once per client_order_id.

        `positions` are the ones held before the fill; an order that does not reduce one
        books nothing.
        """
        pl = _realized_pl(order, positions)
        if pl is None:
            return
        try:
            self.ex.state.add_realized_pl(trading_date(self.now), pl, key=order.client_order_id)
        except Exception:  # the order stands; sync_portfolio can book it later
            log.warning("could not book P/L of %s", order.client_order_id, exc_info=True)

    def lookup(self, client_id: str) -> Order | None:
        try:
            return self.ex.broker.get_order_by_client_id(client_id)
        except BrokerUnavailable:
            return None

    def place(self, intent: OrderIntent) -> Order:
        """Place once per client_order_id: after an unknown outcome, look up before retrying."""
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

    def cancel_working_orders(self, symbol: str) -> None:
        """Free shares held by working exits (bracket legs) before closing the position.

        All recent orders, not only "open" ones: a filled entry's legs are still working.
        """
        try:
            open_orders = self.ex.broker.list_orders(status="all")
        except BrokerUnavailable:
            return
        working = (
            OrderStatus.NEW,
            OrderStatus.ACCEPTED,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.PENDING,
        )
        for order in open_orders:
            for o in (order, *order.legs):
                if o.symbol == symbol and o.status in working:
                    try:
                        self.ex.broker.cancel_order(o.broker_order_id)
                    except (BrokerRejected, BrokerUnavailable) as exc:
                        log.info("cancel %s before close: %s", o.client_order_id, exc)


def _positions_before(
    intent: OrderIntent, positions: tuple[Position, ...], closing: bool
) -> tuple[Position, ...]:
    """The positions the gate sees for `intent`: without the symbol when a close precedes it."""
    if closing:
        return tuple(p for p in positions if p.symbol != intent.symbol)
    return tuple(positions)


def _realized_pl(order: Order, positions: list[Position]) -> float | None:
    held = next((p for p in positions if p.symbol == order.symbol), None)
    if held is None or order.filled_avg_price is None or not order.filled_qty:
        return None
    if (held.qty > 0) != (order.side is Side.SELL):
        return None  # adds to the position: nothing realized
    qty = min(order.filled_qty, abs(held.qty))
    sign = 1.0 if order.side is Side.SELL else -1.0  # selling closes a long
    return sign * (order.filled_avg_price - held.avg_entry_price) * qty


def process_alert(
    alert_id: str,
    *,
    store: AlertStore,
    now: datetime,
    execution: Execution,
    attempt: int = 1,
) -> Outcome:
    """Process one alert to a recorded outcome. `attempt` is the SQS receive count."""
    record = store.get(alert_id)
    if record is None:
        log.warning("queued alert %s is not in the store; dropping the message", alert_id)
        return Outcome(alert_id, "missing", "not in the alert store", skipped=True)
    previous = record["status"]
    if previous not in CLAIMABLE:
        return Outcome(alert_id, previous, record["reason"], skipped=True)
    if not store.record_outcome(
        alert_id,
        AlertStatus.RECEIVED.value,
        "received by the worker",
        only_if_status_in=CLAIMABLE,
        updated_at=now,
    ):
        latest = store.get(alert_id) or record
        return Outcome(alert_id, latest["status"], latest["reason"], skipped=True)
    run = _Run(alert_id, store, execution, now, attempt)
    symbol = str(record["alert"].get("ticker", "")).rsplit(":", 1)[-1] or None
    try:
        with account_lease(run):
            return _execute(run, Alert.model_validate(record["alert"]), resumed=previous in RESUMED)
    except BrokerUnavailable as exc:
        final = attempt >= MAX_RECEIVES
        reason = f"broker unavailable: {exc}" + (
            f"; gave up after {attempt} attempts" if final else f"; will retry (attempt {attempt})"
        )
        run.finish(AlertStatus.FAILED, reason)
        if final:
            run.notify(order_error(reason, alert_id, symbol))
        raise AlertFailed(reason) from exc
    except AlertFailed:
        raise
    except Exception as exc:
        reason = f"processing error: {type(exc).__name__}: {exc}"
        log.exception("alert %s failed", alert_id)
        try:
            run.finish(AlertStatus.FAILED, reason)
        finally:
            if attempt >= MAX_RECEIVES:
                run.notify(order_error(reason, alert_id, symbol))
        raise AlertFailed(reason) from exc


def _execute(run: _Run, alert: Alert, *, resumed: bool) -> Outcome:
    ex = run.ex
    broker = ex.broker
    work_prices = getattr(broker, "on_price", None)
    if work_prices is not None and alert.price is not None:
        held_before = broker.get_positions()
        for changed in work_prices(alert.symbol, alert.price, run.now):
            run.record_order(changed, placed=False)
            if changed.status is OrderStatus.FILLED:
                run.book_realized_pl(changed, held_before)  # a stop or target that filled
                run.notify(order_update(changed))

    done = run.placed_earlier() if resumed else {}
    if "open" in done:
        return _recovered(run, done)

    account: Account = broker.get_account()
    positions: list[Position] = broker.get_positions()
    exposure = with_working_entries(positions, broker.list_orders(status="open"))
    decision = decide_orders(
        alert, run.alert_id, account=account, positions=positions, rules=ex.rules
    )
    run.details["decision"] = decision.as_record()
    run.journal("decided", decision.as_record())
    if decision.kind is DecisionKind.NOTHING:
        return _rejected(run, alert.symbol, decision.reason, done)

    verdicts: dict[str, list[dict[str, Any]]] = {}
    run.details["verdicts"] = verdicts
    closing = decision.close_intent is not None
    notes: list[str] = []
    for intent in decision.intents:
        leg = "close" if intent.closes_position else "open"
        if leg in done:
            run.record_order(done[leg])
            continue
        proposal = Proposal(
            intent, account, _positions_before(intent, exposure, closing and leg == "open")
        )
        result: GateResult = ex.gate.admit(proposal, ex.state, run.now)
        verdicts[leg] = result.as_records()
        run.journal("gate", {"leg": leg, "allowed": result.allowed, "verdicts": verdicts[leg]})
        if not result.allowed:
            if not run.orders or leg == "close":
                return _rejected(run, alert.symbol, result.reason, done)
            notes.append(f"open rejected: {result.reason}")
            break
        if intent.closes_position:
            run.cancel_working_orders(intent.symbol)
        try:
            order = run.place(intent)
        except BrokerRejected as exc:
            ex.gate.release(proposal, ex.state)
            reason = f"broker rejected {intent.client_order_id}: {exc.reason}" + (
                f" (code {exc.code})" if exc.code else ""
            )
            if not run.orders:
                return _rejected(run, alert.symbol, reason, done)
            notes.append(reason)
            break
        run.record_order(order)
        if intent.closes_position:
            run.book_realized_pl(order, positions)
        run.notify(order_update(order, run.alert_id))
    reason = decision.reason + ("; " + "; ".join(notes) if notes else "")
    return _accepted(run, reason)


def _recovered(run: _Run, done: dict[str, Order]) -> Outcome:
    for order in done.values():
        run.record_order(order)
    run.details["recovered"] = True
    return _accepted(run, "order already placed by an earlier or concurrent attempt")


def _rejected(run: _Run, symbol: str, reason: str, done: dict[str, Order]) -> Outcome:
    """Record a rejection — unless the broker already has this alert's order.

    A concurrent duplicate delivery may have placed it after this run read the positions
    (it then sees "already long" or a full limit); the broker's word wins over the decision.
    """
    done = done or run.placed_earlier()
    if done:
        return _recovered(run, done)
    run.notify(order_rejected(symbol, reason, run.alert_id))
    return run.finish(AlertStatus.REJECTED, reason)


def _accepted(run: _Run, reason: str) -> Outcome:
    try:
        run.ex.state.replace_positions(run.ex.broker.get_positions(), run.now)
    except Exception:  # a stale snapshot is refreshed by the next order or sync_portfolio
        log.warning("positions snapshot failed after alert %s", run.alert_id, exc_info=True)
    filled = run.orders and all(o.status is OrderStatus.FILLED for o in run.orders)
    return run.finish(AlertStatus.FILLED if filled else AlertStatus.ACCEPTED, reason)
