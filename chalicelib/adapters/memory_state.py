"""The in-memory state store: `InMemoryRiskState` plus journal, orders and positions.

The DynamoDB store's twin for unit tests and single-process runs; the contract suite
(tests/execution/test_state_contract.py) holds both to the same behaviour.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalicelib.domain import Account, ClosedTrade, Order, Position
from chalicelib.rules.market_calendar import trading_date
from chalicelib.rules.risk_state import InMemoryRiskState


class InMemoryStateStore(InMemoryRiskState):
    def __init__(self) -> None:
        super().__init__()
        self._journal: dict[str, dict[tuple[datetime, int, str], dict[str, Any]]] = {}
        self._orders: dict[str, dict[str, Any]] = {}
        self._positions: dict[str, Position] = {}
        self._account_lock: tuple[str, datetime] | None = None
        self._trades: dict[str, ClosedTrade] = {}
        self._booked: tuple[str, ...] = ()
        self._booked_version = 0
        self._account: tuple[Account, datetime] | None = None

    def acquire_account_lock(self, holder: str, now: datetime, ttl: timedelta) -> bool:
        with self._lock:
            current = self._account_lock
            if current is not None and current[0] != holder and current[1] >= now:
                return False
            self._account_lock = (holder, now + ttl)
            return True

    def release_account_lock(self, holder: str) -> None:
        with self._lock:
            if self._account_lock is not None and self._account_lock[0] == holder:
                self._account_lock = None

    def account_lock_held(self, now: datetime) -> bool:
        current = self._account_lock
        return current is not None and current[1] >= now

    def append_journal(
        self, alert_id: str, event: str, data: dict[str, Any], at: datetime, seq: int = 0
    ) -> None:
        entry = {"event": event, "at": at.isoformat(), "data": copy.deepcopy(data)}
        with self._lock:
            events = self._journal.setdefault(alert_id, {})
            events[(at.astimezone(UTC), seq, event)] = entry

    def append_journal_many(
        self, alert_id: str, events: list[tuple[str, dict[str, Any], datetime, int]]
    ) -> None:
        for event, data, at, seq in events:
            self.append_journal(alert_id, event, data, at, seq)

    def journal(self, alert_id: str) -> list[dict[str, Any]]:
        events = self._journal.get(alert_id, {})
        return [copy.deepcopy(events[key]) for key in sorted(events)]

    def record_order(self, alert_id: str, order: Order, at: datetime) -> None:
        doc = {
            **order.model_dump(mode="json"),
            "alert_id": alert_id,
            "recorded_at": at.isoformat(),
        }
        with self._lock:
            self._orders[order.client_order_id] = doc

    def orders(self, limit: int = 100) -> list[dict[str, Any]]:
        newest_first = sorted(self._orders.items(), reverse=True)
        return [copy.deepcopy(doc) for _, doc in newest_first[:limit]]

    def recorded_order(self, client_order_id: str) -> dict[str, Any] | None:
        doc = self._orders.get(client_order_id)
        return copy.deepcopy(doc) if doc is not None else None

    def replace_positions(
        self, positions: list[Position], at: datetime, previous: list[Position] | None = None
    ) -> None:
        with self._lock:
            self._positions = {p.symbol: p for p in positions if p.qty}

    def positions(self) -> list[Position]:
        return sorted(self._positions.values(), key=lambda p: p.symbol)

    def refresh_marks(
        self, positions: list[Position], previous: list[Position], at: datetime
    ) -> int:
        before = {p.symbol: p for p in previous}
        written = 0
        with self._lock:
            for p in positions:
                old = before.get(p.symbol)
                if old is None or old.qty != p.qty or p == old:
                    continue
                if self._positions.get(p.symbol) == old:
                    self._positions[p.symbol] = p
                    written += 1
        return written

    # --- portfolio sync: closed trades, the fills already booked, the account -------------

    def record_trade(self, trade: ClosedTrade) -> bool:
        with self._lock:
            if trade.key in self._trades:
                return False
            self._trades[trade.key] = trade
            return True

    def trades(self, start: date, end: date) -> list[ClosedTrade]:
        chosen = [t for t in self._trades.values() if start <= trading_date(t.exit_time) <= end]
        return sorted(chosen, key=lambda t: (t.exit_time, t.key))

    def booked_fills(self) -> tuple[tuple[str, ...], int]:
        return self._booked, self._booked_version

    def save_booked_fills(self, keys: tuple[str, ...], version: int) -> bool:
        with self._lock:
            if version != self._booked_version:
                return False
            self._booked, self._booked_version = keys, version + 1
            return True

    def save_account(self, account: Account, at: datetime) -> None:
        self._account = (account, at)

    def account_snapshot(self) -> tuple[Account, datetime] | None:
        return self._account
