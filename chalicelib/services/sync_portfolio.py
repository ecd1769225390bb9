"""sync_portfolio: the broker is the truth; the state table is made to agree with it.

Run every minute in the session (a schedule in app.py) and by the worker after every fill
it sees, always under the account lease. One pass:

1. **Fills.** The broker's recent orders (legs included) are read; every fill not booked
   yet is replayed, in time order, onto the last positions snapshot (`chalicelib.rules.pnl`):
   each reducing fill is a `ClosedTrade` (entry, exit, qty, P/L, exit reason), stored once
   by its fill key, added to the day's realized P/L once (the daily loss limit reads it),
   journaled under the alert that placed it and — for exits the broker worked on its own
   (stop, target, trailing) — announced with its P/L.
2. **Orders.** Recorded orders whose status or legs changed at the broker are re-recorded,
   so `/api/orders` shows each leg's true status.
3. **Positions.** The broker's positions replace the snapshot. Where they differ from the
   snapshot plus flowtrader's own fills, the position changed outside flowtrader: that is
   *drift*, journaled and notified, never acted on.
4. **Account.** Equity and the broker's day P/L are kept for the P/L view.

The first pass on a fresh state table takes the broker's word as the baseline: fills
already on the broker are marked booked without being replayed (their effect is in the
positions it reports).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain import Account, ClosedTrade, ExitReason, Order, OrderStatus, Position
from chalicelib.ports import Broker, LeasedState, Notifier, SyncState
from chalicelib.rules.market_calendar import session_bounds, trading_date
from chalicelib.rules.pnl import FillEvent, Holding, exit_reason, replay
from chalicelib.services.account_lease import account_lease, waited_for_a_holder
from chalicelib.services.notify import position_closed, position_drift, send

log = logging.getLogger(__name__)

ORDER_WINDOW = 200  # recent broker orders read per pass; a minute's fills fit many times over
MAX_BOOKED = 2_000  # fill keys remembered; older fills are outside ORDER_WINDOW anyway
SETTLE_LOOKS = 3  # looks again while a decision holds the lease, then the full pass
SYNC_JOURNAL = "portfolio"  # journal id prefix for events that belong to no alert


Journal = Callable[[str, str, dict[str, Any]], None]  # (alert id or key, event, data)


@dataclass(frozen=True)
class Drift:
    symbol: str
    expected_qty: float
    broker_qty: float


@dataclass(frozen=True)
class SyncReport:
    trades: tuple[ClosedTrade, ...] = ()
    drift: tuple[Drift, ...] = ()
    orders_updated: int = 0
    positions: tuple[Position, ...] = ()
    baseline: bool = False
    account: Account | None = None  # read by a sweep; a targeted pass leaves it out
    ran: bool = False  # False for the empty report of a pass that did not run

    def as_record(self) -> dict[str, Any]:
        return {
            "trades": [t.model_dump(mode="json") for t in self.trades],
            "drift": [d.__dict__ for d in self.drift],
            "orders_updated": self.orders_updated,
            "positions": len(self.positions),
            "baseline": self.baseline,
        }


def _legs_of(order: Order) -> Iterable[tuple[Order, bool]]:
    yield order, False
    for leg in order.legs:
        yield leg, True


def _alert_ids(rows: list[dict[str, Any]]) -> dict[str, str]:
    """client_order_id → alert id, for recorded orders and their legs."""
    found: dict[str, str] = {}
    for row in rows:
        found[row["client_order_id"]] = row["alert_id"]
        for leg in row.get("legs") or ():
            if leg.get("client_order_id"):
                found[leg["client_order_id"]] = row["alert_id"]
    return found


def _fingerprint(order: dict[str, Any]) -> tuple[Any, ...]:
    legs = tuple(
        (leg.get("client_order_id"), leg.get("status"), leg.get("filled_qty"))
        for leg in order.get("legs") or ()
    )
    return order.get("status"), order.get("filled_qty"), order.get("filled_avg_price"), legs


def _fill(order: Order, is_leg: bool, alert_id: str | None, now: datetime) -> FillEvent | None:
    if order.status is not OrderStatus.FILLED or not order.filled_qty:
        return None
    if order.filled_avg_price is None:
        return None
    return FillEvent(
        key=order.broker_order_id,
        symbol=order.symbol,
        side=order.side,
        qty=order.filled_qty,
        price=order.filled_avg_price,
        time=order.filled_at or now,
        reason=exit_reason(order, is_leg=is_leg),
        client_order_id=order.client_order_id,
        alert_id=alert_id,
    )


def _holdings(positions: Iterable[Position]) -> dict[str, Holding]:
    return {p.symbol: Holding(p.qty, p.avg_entry_price) for p in positions if p.qty}


def sync_portfolio(
    broker: Broker,
    state: SyncState,
    now: datetime,
    *,
    notifier: Notifier | None = None,
    quiet: tuple[str, ...] = (),
    journal: Journal | None = None,
    changed: Sequence[tuple[str | None, Order]] | None = None,
) -> SyncReport:
    """One reconciliation pass (see the module docstring); the caller holds the lease.

    Every trade booked for the first time is announced with its P/L, except fills in
    `quiet` (the worker announces its own close with more to say). `journal(key, event,
    data)` writes the journal (the worker passes its own, to keep its events in order).

    `changed` — (alert id when known, order) — makes it a *targeted* pass: only those orders'
    fills are booked, without reading the broker's recent orders. The worker passes what it
    placed and what the market just filled, which is everything that can have moved a
    simulated account; a real broker's own fills are swept by the scheduled pass.
    """
    journal = journal or _journal_to(state, now)
    booked, version = state.booked_fills()
    seen = set(booked)
    if changed is None:
        fills, stale = _sweep(broker, state, now, seen)
        updated = _rerecord(state, stale, now)
    else:
        fills, updated = _targeted(broker, state, now, seen, changed)

    positions = broker.get_positions()
    baseline = version == 0 and not booked
    trades: list[ClosedTrade] = []
    drift: list[Drift] = []
    previous = None if baseline else state.positions()
    if previous is not None:
        before = _holdings(previous)
        _, trades = replay(before, fills)
        expected, _ = replay(before, [f for f in fills if f.reason is not ExitReason.OUTSIDE])
        drift = _drift(expected, positions)
    for trade in trades:
        _book(state, trade, journal, None if trade.key in quiet else notifier)
    for d in drift:
        log.warning("position drift in %s: %s", d.symbol, d)
        journal(f"{SYNC_JOURNAL}-{trading_date(now).isoformat()}", "drift", d.__dict__)
        send(notifier, position_drift(d.symbol, d.expected_qty, d.broker_qty))

    state.replace_positions(positions, now, previous=previous)
    keys = (*booked, *(f.key for f in fills))[-MAX_BOOKED:]
    if (fills or baseline) and not state.save_booked_fills(keys, version):
        log.info("another sync booked fills concurrently; its bookings are idempotent")
    account = None
    if changed is None:  # the account (equity, day P/L) is the sweep's: once a minute is enough
        account = broker.get_account()
        _save_account(state, account, now)
    return SyncReport(
        tuple(trades), tuple(drift), updated, tuple(positions), baseline, account, ran=True
    )


def _sweep(
    broker: Broker, state: SyncState, now: datetime, seen: set[str]
) -> tuple[list[FillEvent], list[tuple[str, Order]]]:
    """The broker's recent orders: the fills not yet booked, and the recorded orders whose
    status or legs changed at the broker (alert id, order as the broker has it)."""
    rows = state.orders(limit=ORDER_WINDOW)
    recorded = {row["client_order_id"]: row for row in rows}
    alert_of = _alert_ids(rows)
    stale: list[tuple[str, Order]] = []
    fills: list[FillEvent] = []
    for order in broker.list_orders(status="all", limit=ORDER_WINDOW):
        row = recorded.get(order.client_order_id)
        if row is not None and _fingerprint(row) != _fingerprint(order.model_dump(mode="json")):
            stale.append((row["alert_id"], order))
        for o, is_leg in _legs_of(order):
            event = _fill(o, is_leg, alert_of.get(o.client_order_id), now)
            if event is not None and event.key not in seen:
                fills.append(event)
    return fills, stale


def _rerecord(state: SyncState, stale: list[tuple[str, Order]], now: datetime) -> int:
    for alert_id, order in stale:
        state.record_order(alert_id, order, now)
    return len(stale)


def _targeted(
    broker: Broker,
    state: SyncState,
    now: datetime,
    seen: set[str],
    changed: Sequence[tuple[str | None, Order]],
) -> tuple[list[FillEvent], int]:
    """Only `changed` orders: a leg's parent is re-read and re-recorded (true leg statuses)."""
    updated = 0
    refreshed: set[str] = set()
    fills: list[FillEvent] = []
    for alert_id, order in changed:
        top = order.parent_client_order_id or order.client_order_id
        if alert_id is None or order.parent_client_order_id:
            row = state.recorded_order(top)
            alert_id = alert_id or (row["alert_id"] if row else None)
            if order.parent_client_order_id and row is not None and top not in refreshed:
                refreshed.add(top)
                parent = broker.get_order_by_client_id(top)
                fresh = parent is not None and _fingerprint(row) != _fingerprint(
                    parent.model_dump(mode="json")
                )
                if parent is not None and fresh:
                    state.record_order(row["alert_id"], parent, now)
                    updated += 1
        for o, is_leg in _legs_of(order):
            leg = is_leg or o.parent_client_order_id is not None
            event = _fill(o, leg, alert_id, now)
            if event is not None and event.key not in seen:
                seen.add(event.key)
                fills.append(event)
    return fills, updated


def _drift(expected: dict[str, Holding], positions: list[Position]) -> list[Drift]:
    actual = {p.symbol: p.qty for p in positions if p.qty}
    symbols = sorted(set(expected) | set(actual))
    return [
        Drift(s, expected.get(s, Holding()).qty, actual.get(s, 0.0))
        for s in symbols
        if abs(expected.get(s, Holding()).qty - actual.get(s, 0.0)) > 1e-9
    ]


def _book(
    state: SyncState, trade: ClosedTrade, journal: Journal, notifier: Notifier | None
) -> None:
    """Store the trade, add its P/L to the day once, journal it, announce it."""
    fresh = state.record_trade(trade)
    state.add_realized_pl(trading_date(trade.exit_time), trade.pnl_usd, key=trade.key)
    if not fresh:
        return
    if trade.alert_id:
        journal(trade.alert_id, "trade", trade.model_dump(mode="json"))
    send(notifier, position_closed(trade))


def _journal_to(state: SyncState, now: datetime) -> Journal:
    def write(key: str, event: str, data: dict[str, Any]) -> None:
        try:
            state.append_journal(key, event, data, now)
        except Exception:
            log.warning("journal write failed for %s/%s", key, event, exc_info=True)

    return write


SESSION_MARGIN = timedelta(minutes=15)  # keep syncing a little past the close: late fills


def in_sync_window(now: datetime) -> bool:
    """Whether a scheduled sync has work: within the regular session, plus a margin."""
    bounds = session_bounds(trading_date(now))
    return bounds is not None and bounds[0] - SESSION_MARGIN <= now <= bounds[1] + SESSION_MARGIN


def scheduled_sync(
    broker: Broker,
    state: LeasedState,
    now: datetime,
    *,
    notifier: Notifier | None = None,
    force: bool = False,
    wait_s: float = 20.0,
    settle_s: float = 1.0,
) -> dict[str, Any]:
    """The schedule's pass: skipped outside the session unless `force`.

    It looks first without the account lease: when nothing is to be booked (no new fill,
    every quantity as the snapshot has it) it only refreshes order statuses, marks and the
    account, and no alert waits for it. A decision between its order and its booking shows
    for a moment as a fill to book or a moved quantity: while the lease is held, the sweep
    waits (up to `settle_s`) for it to be free and looks again. What is still there then
    is real, and the full pass runs under the lease."""
    if not force and not in_sync_window(now):
        return {"skipped": "outside the trading session"}
    quiet = _quiet_pass(broker, state, now)
    for _ in range(SETTLE_LOOKS):
        if quiet is not None or not settle_s or not waited_for_a_holder(state, now, settle_s):
            break
        quiet = _quiet_pass(broker, state, now)
    if quiet is not None:
        return quiet.as_record() | {"leased": False}
    with account_lease(state, "sync", now, wait_s=wait_s, ttl=timedelta(seconds=60)):
        report = sync_portfolio(broker, state, now, notifier=notifier)
    return report.as_record() | {"leased": True}


def _save_account(state: SyncState, account: Account, now: datetime) -> None:
    try:
        state.save_account(account, now)
    except Exception:  # the P/L view falls back to its own sums
        log.warning("account snapshot failed", exc_info=True)


def _quiet_pass(broker: Broker, state: SyncState, now: datetime) -> SyncReport | None:
    """The sweep when it finds nothing to book, else None.

    Without the lease it refreshes what no decision reads: order statuses (a canceled leg)
    are re-recorded from the broker, and the marks and the account. A write of it that
    races a decision can only leave a status a sweep old; the next sweep puts it right."""
    booked, version = state.booked_fills()
    if version == 0 and not booked:
        return None  # the baseline pass books
    fills, stale = _sweep(broker, state, now, set(booked))
    if fills:
        log.info("sync: %d fill(s) to book: %s", len(fills), [f.key for f in fills][:5])
        return None
    account, positions = broker.get_portfolio()
    previous = state.positions()
    if moved := _drift(_holdings(previous), positions):
        log.info("sync: quantities moved: %s", moved[:5])
        return None  # the full pass says why
    updated = _rerecord(state, stale, now)
    state.refresh_marks(positions, previous, now)
    _save_account(state, account, now)
    return SyncReport(positions=tuple(positions), account=account, orders_updated=updated, ran=True)
