"""The queue worker's use case: one queued alert → decision → gate → broker → recorded outcome.

The order of the steps is the money-safety argument (docs/architecture.md's invariants):

1. **Claim**: only an alert still `stored|queued|received|failed` is processed; a terminal
   one is left alone, so a redelivery does nothing.
2. **Market** (paper broker): the alert's price works the resting orders first, so a stop
   the market already went through fills before the alert is decided; any fill is synced
   (`sync_portfolio`: trades booked, snapshot refreshed, the exit announced with its P/L).
3. **Recover**: when an earlier attempt got past the claim (`received`/`failed`), the broker
   is asked for this alert's deterministic client_order_ids first; an order it already has is
   recorded, never placed again (a crash between the broker call and the record).
4. **Decide** (pure rules) from the broker's account, positions, working orders and the
   stop/target protecting the symbol, holding the account lease through steps 4–7, so two
   workers never decide on the same positions and every limit holds under concurrency.
   Strategy alerts are target positions: an alert whose target is already reached is
   `ignored` (informational, no "Rejected" notification).
5. **Gate**: every check's verdict is journaled; the cooldown slot is claimed atomically.
   A denied close, or a denied open with nothing placed, is `rejected`; a reverse whose
   close filled but whose open was denied is `partially_filled`, and the trader is told they
   are flat, not reversed.
6. **Place** with the deterministic client_order_id. Before a close, the working exits are
   journaled (`protection`) and canceled; a partial close re-protects the remainder with the
   same stop/target (`…-protect`), and a close the broker refuses re-places them
   (`…-restore`), so shares are never left without the stop they had. `BrokerUnavailable` →
   `failed` and redelivered; the next attempt re-protects from the journaled protection.
7. **Record**: `sync_portfolio` books what this run placed and what the market filled
   (a targeted pass) while the lease is held; the outcome, the journal (one batch write)
   and the notifications are written by `_Run.flush` after the lease is released, so the
   next decision need not wait for them. Only the journaled `protection` is written at once:
   a retry must find it even if this attempt dies. A failing notifier is logged and never
   blocks an order.

This module is the flow; one attempt's recording and broker calls (place once, look up,
protect, sync) are `chalicelib.services.attempt.Attempt`, the account lease is
`services/account_lease.py`, and the P/L arithmetic is `rules/pnl.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain import (
    Account,
    Alert,
    AlertStatus,
    ClosedTrade,
    DecisionContext,
    Order,
    OrderIntent,
    OrderStatus,
    Position,
)
from chalicelib.ports import (
    AlertStore,
    Broker,
    BrokerRejected,
    BrokerUnavailable,
)
from chalicelib.rules.exposure import with_working_entries
from chalicelib.rules.gate import GateResult, Proposal
from chalicelib.rules.orders import (
    Decision,
    DecisionKind,
    Protection,
    decide_orders,
    protection_of,
    protective_exit,
)
from chalicelib.services.account_lease import AccountBusy, account_lease
from chalicelib.services.attempt import (
    CLAIMABLE,
    RESUMED,
    TRADES,
    AlertFailed,
    Attempt,
    Execution,
    Outcome,
)
from chalicelib.services.batch_ranking import Prepared
from chalicelib.services.context import MarketView, gather_context
from chalicelib.services.notify import (
    order_error,
    order_rejected,
    order_update,
    position_closed,
    reversal_not_opened,
)
from chalicelib.services.sync_portfolio import SyncReport

log = logging.getLogger(__name__)

__all__ = ["CLAIMABLE", "AccountBusy", "AlertFailed", "Execution", "Outcome", "process_alert"]

MAX_RECEIVES = 5  # the queue's redrive maxReceiveCount (infra/template.yaml)
WORKING = (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING)


def _leg(intent: OrderIntent) -> str:
    return intent.client_order_id.rsplit("-", 1)[-1]


def _positions_before(
    intent: OrderIntent, positions: tuple[Position, ...], closing: bool
) -> tuple[Position, ...]:
    """The positions the gate sees for `intent`: without the symbol when a close precedes it."""
    if closing:
        return tuple(p for p in positions if p.symbol != intent.symbol)
    return tuple(positions)


def process_alert(
    alert_id: str,
    *,
    store: AlertStore,
    now: datetime,
    execution: Execution,
    attempt: int = 1,
    sent_at: datetime | None = None,
    prepared: Prepared | None = None,
    defer_flush: Callable[[Callable[[], None]], None] | None = None,
) -> Outcome:
    """Process one alert to a recorded outcome. `attempt` is the SQS receive count,
    `sent_at` when the queue got the message (SQS `SentTimestamp`; splits ingress from
    queue wait in the latency record); `prepared`, the context its batch gathered and its
    rank among the batch's entries (services/batch_ranking.py); `defer_flush`, where a
    batch runs the recording of a decided alert (outcome, journal, notices) while the next
    alert is decided — the batch waits for it before it answers the queue."""
    record = store.claim(
        alert_id,
        AlertStatus.RECEIVED.value,
        "received by the worker",
        only_if_status_in=CLAIMABLE,
        updated_at=now,
    )
    if record is None:  # missing, or already decided (a redelivery): say which
        latest = store.get(alert_id)
        if latest is None:
            log.warning("queued alert %s is not in the store; dropping the message", alert_id)
            return Outcome(alert_id, "missing", "not in the alert store", skipped=True)
        return Outcome(alert_id, latest["status"], latest["reason"], skipped=True)
    previous = record["status"]
    run = Attempt(alert_id, store, execution, now, attempt)
    run.stages.arrived(record.get("received_at"), sent_at)
    symbol = str(record["alert"].get("ticker", "")).rsplit(":", 1)[-1] or None
    ex = execution
    try:
        alert = Alert.model_validate(record["alert"])
        if prepared is not None:  # gathered with the rest of its batch, before any decision
            view = prepared.view
            run.standing = prepared.standing
            run.details["rank"] = prepared.standing.as_record()
            run.journal("rank", run.details["rank"])
        else:
            with run.stages.timed("context"):
                view = gather_context(alert, ex.context, now, clock=ex.clock)
        run.details["context"] = view.as_record()
        run.journal("context", run.details["context"] | view.records)
        with ExitStack() as held:
            with run.stages.timed("lease"):
                held.enter_context(
                    account_lease(ex.state, alert_id, now, wait_s=ex.lock_wait_s, ttl=ex.lock_ttl)
                )
            outcome = _execute(run, alert, view, resumed=previous in RESUMED)
    except BrokerUnavailable as exc:
        final = attempt >= MAX_RECEIVES
        reason = f"broker unavailable: {exc}" + (
            f"; gave up after {attempt} attempts" if final else f"; will retry (attempt {attempt})"
        )
        run.finish(AlertStatus.FAILED, reason)
        if final:
            run.notify(order_error(reason, alert_id, symbol))
        run.flush()
        raise AlertFailed(reason) from exc
    except Exception as exc:
        reason = f"processing error: {type(exc).__name__}: {exc}"
        log.exception("alert %s failed", alert_id)
        run.finish(AlertStatus.FAILED, reason)
        if attempt >= MAX_RECEIVES:
            run.notify(order_error(reason, alert_id, symbol))
        run.flush()
        raise AlertFailed(reason) from exc
    if defer_flush is not None:
        defer_flush(run.flush)
    else:
        run.flush()
    return outcome


@dataclass
class _Book:
    """What the broker holds for the alert's symbol, read once under the lease."""

    account: Account
    positions: list[Position]
    exposure: tuple[Position, ...]
    working: list[Order]  # open top-level orders of the symbol (entries still resting)
    exits: list[Order]  # working exits protecting the symbol's position

    @property
    def to_cancel_for_close(self) -> list[Order]:
        seen: dict[str, Order] = {}
        for order in (*self.exits, *self.working):
            if order.status in WORKING:
                seen.setdefault(order.broker_order_id, order)
        return list(seen.values())


def _read_book(broker: Broker, symbol: str, synced: SyncReport) -> _Book:
    """The account as the decision sees it: the sync's fresh read, else the broker's."""
    if synced.ran:
        account = synced.account or broker.get_account()
        positions = list(synced.positions)
    else:
        account, positions = broker.get_portfolio()
    open_orders = broker.list_orders(status="open")
    return _Book(
        account=account,
        positions=positions,
        exposure=with_working_entries(positions, open_orders),
        working=[o for o in open_orders if o.symbol == symbol],
        exits=broker.working_exits(symbol),
    )


def _execute(run: Attempt, alert: Alert, view: MarketView, *, resumed: bool) -> Outcome:
    ex = run.ex
    # Book every fill the broker made since the last sync (a stop at Alpaca, the paper
    # stop the alert's price just hit), so this run's own fills replay onto the truth.
    with run.stages.timed("catch_up"):
        synced = run.catch_up(alert)
    done = run.placed_earlier() if resumed else {}
    if "open" in done:
        return _recovered(run, done)

    with run.stages.timed("decide"):
        book = _read_book(ex.broker, alert.symbol, synced)
        context = view.context(run.now, book.account, book.positions, book.working)
        protection = run.protection(book.exits, resumed)
        decision = decide_orders(
            alert,
            run.alert_id,
            account=book.account,
            positions=book.positions,
            rules=ex.rules,
            atr=context.atr,
            protection=protection,
            day_type=context.day_type,
        )
    run.details["decision"] = decision.as_record()
    run.journal("decided", decision.as_record())
    if decision.kind is DecisionKind.IGNORE:
        return _ignored(run, decision.reason, done)
    if decision.kind is DecisionKind.NOTHING:
        return _rejected(run, alert.symbol, decision.reason, done)
    return _place(run, alert, decision, book, context, protection, done)


def _place(
    run: Attempt,
    alert: Alert,
    decision: Decision,
    book: _Book,
    context: DecisionContext,
    protection: Protection,
    done: dict[str, Order],
) -> Outcome:
    """Gate and place the decision's intents in order: close, then open or protect."""
    ex = run.ex
    verdicts: dict[str, list[dict[str, Any]]] = {}
    run.details["verdicts"] = verdicts
    closing = decision.close_intent is not None
    close: Order | None = None
    not_opened: str | None = None
    held = sum(p.qty for p in book.positions if p.symbol == alert.symbol)
    for intent in decision.intents:
        leg = _leg(intent)
        if leg in done:
            run.record_order(done[leg])
            close = done[leg] if intent.closes_position else close
            continue
        if intent.protects_position:  # never gated: protection only ever reduces risk
            run.protect(intent)
            continue
        proposal = Proposal(
            intent,
            book.account,
            _positions_before(intent, book.exposure, closing and leg == "open"),
            context=context,
        )
        with run.stages.timed("gate"):
            result: GateResult = ex.gate.admit(proposal, ex.state, run.now)
        verdicts[leg] = result.as_records()
        run.journal("gate", {"leg": leg, "allowed": result.allowed, "verdicts": verdicts[leg]})
        if not result.allowed:
            reason = result.reason + _outranked(run, result)
            if close is None:
                return _rejected(run, alert.symbol, reason, done)
            not_opened = reason
            break
        if intent.closes_position:
            partial = abs(intent.qty) < abs(held)
            cancels = book.exits if partial else book.to_cancel_for_close
            run.clear_exits(alert.symbol, cancels, protection)
        try:
            order = run.place(intent)
        except BrokerRejected as exc:
            ex.gate.release(proposal, ex.state)
            reason = f"broker rejected {intent.client_order_id}: {exc.reason}" + (
                f" (code {exc.code})" if exc.code else ""
            )
            if intent.closes_position and protection and held:
                run.protect(
                    protective_exit(
                        run.alert_id, alert.symbol, held, protection, rules=ex.rules, leg="restore"
                    )
                )
            if close is None:
                return _rejected(run, alert.symbol, reason, done)
            not_opened = reason
            break
        run.record_order(order)
        if intent.closes_position:
            close = order
        else:
            run.notify(order_update(order, run.alert_id))
    with run.stages.timed("record"):
        report = run.sync(
            quiet=(close.broker_order_id,) if close else (),
            changed=[(run.alert_id, o) for o in run.orders],
        )
    trade = _trade_of(report, close)
    if close is not None and not_opened is not None:
        side = "short" if close.side.value == "sell" else "long"
        run.notify(reversal_not_opened(trade, close, side, not_opened, run.alert_id))
        return run.finish(
            AlertStatus.PARTIALLY_FILLED, f"{decision.reason}; {side} not opened: {not_opened}"
        )
    if close is not None and decision.kind is DecisionKind.CLOSE:
        left = abs(held) - close.qty
        run.notify(position_closed(trade, close, remaining=left) if trade else order_update(close))
    return _accepted(run, decision.reason)


def _outranked(run: Attempt, result: GateResult) -> str:
    """A cooldown denial of an entry that better-ranked batch mates came before: say so."""
    if run.standing is None or not any(v.check == "cooldown" for v in result.denials):
        return ""
    return run.standing.outranked_note()


def _trade_of(report: SyncReport, close: Order | None) -> ClosedTrade | None:
    if close is None:
        return None
    return next((t for t in report.trades if t.key == close.broker_order_id), None)


def _recovered(run: Attempt, done: dict[str, Order]) -> Outcome:
    for order in done.values():
        run.record_order(order)
    run.details["recovered"] = True
    report = run.sync()
    if "close" in done and "protect" not in done:
        _reprotect(run, done["close"].symbol, report)
    return _accepted(run, "order already placed by an earlier or concurrent attempt")


def _reprotect(run: Attempt, symbol: str, report: SyncReport) -> None:
    """An earlier attempt closed part of a position and died before protecting the rest:
    re-place the stop/target it journaled for whatever is still held."""
    held = sum(p.qty for p in report.positions if p.symbol == symbol)
    if not held or protection_of(run.ex.broker.working_exits(symbol)):
        return
    protection = run.protection([], resumed=True)
    if protection:
        run.protect(protective_exit(run.alert_id, symbol, held, protection, rules=run.ex.rules))


def _ignored(run: Attempt, reason: str, done: dict[str, Order]) -> Outcome:
    """Nothing to do — unless an earlier attempt of this alert placed its orders (then the
    target is reached because of them): record those instead."""
    done = done or run.placed_earlier(TRADES)
    if done:
        return _recovered(run, done)
    return run.finish(AlertStatus.IGNORED, reason)


def _rejected(run: Attempt, symbol: str, reason: str, done: dict[str, Order]) -> Outcome:
    """Record a rejection — unless the broker already has this alert's order.

    A concurrent duplicate delivery may have placed it after this run read the positions
    (it then sees "already long" or a full limit); the broker's word wins over the decision.
    """
    done = {leg: o for leg, o in done.items() if leg in TRADES} or run.placed_earlier(TRADES)
    if done:
        return _recovered(run, done)
    run.notify(order_rejected(symbol, reason, run.alert_id))
    return run.finish(AlertStatus.REJECTED, reason)


def _accepted(run: Attempt, reason: str) -> Outcome:
    trading = [o for o in run.orders if not _leg_is_protective(o)]
    filled = trading and all(o.status is OrderStatus.FILLED for o in trading)
    return run.finish(AlertStatus.FILLED if filled else AlertStatus.ACCEPTED, reason)


def _leg_is_protective(order: Order) -> bool:
    return order.client_order_id.endswith(("-protect", "-restore"))
