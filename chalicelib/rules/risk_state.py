"""The state the gate's checks read, and the in-memory store the backtest and tests use.

`RiskState` is what a check may ask (kill switch, recent trades, today's realized P/L, the
day type) plus the two writes the gate makes itself: claiming and releasing a cooldown slot.
It is defined with every other port in `chalicelib.ports` and re-exported here for the gate,
the checks and the backtest.
A claim is the one write that must be atomic: `claim_trade_slot` either takes a slot under
the limit or returns False, so concurrent callers can never exceed it. The DynamoDB store
(`chalicelib.adapters.dynamodb_state`) does that with conditional writes; this module's
`InMemoryRiskState` with a lock. One contract suite runs against both.

Scopes: `symbol=None` is the account-wide window; `symbol="AAPL"` a per-symbol one.
Claims are keyed by `claim_id` (the alert id), so a redelivered alert re-finds its own
slot instead of taking a second one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from chalicelib.domain import DayClassification, DayType
from chalicelib.ports import RiskState

__all__ = ["InMemoryRiskState", "RiskState"]


@dataclass
class _Claim:
    claim_id: str
    at: datetime


class InMemoryRiskState:
    """`RiskState` in a dict, thread-safe: the backtest's state and the unit tests' fake."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kill: str | None = None
        self._claims: dict[str, list[_Claim]] = {}
        self._pl: dict[date, float] = {}
        self._pl_keys: set[str] = set()
        self._day_types: dict[date, DayType] = {}
        self._day_classes: dict[date, DayClassification] = {}

    @staticmethod
    def _scope(symbol: str | None) -> str:
        return "account" if symbol is None else f"symbol:{symbol}"

    def kill_switch(self) -> str | None:
        return self._kill

    def set_kill_switch(self, reason: str | None, now: datetime) -> None:
        self._kill = reason

    def trade_times(
        self,
        now: datetime,
        window: timedelta,
        *,
        symbol: str | None = None,
        exclude_claim: str | None = None,
    ) -> list[datetime]:
        start = now - window
        with self._lock:
            claims = list(self._claims.get(self._scope(symbol), ()))
        return sorted(c.at for c in claims if start < c.at <= now and c.claim_id != exclude_claim)

    def claim_trade_slot(
        self,
        claim_id: str,
        now: datetime,
        *,
        window: timedelta,
        limit: int,
        symbol: str | None = None,
    ) -> bool:
        start = now - window
        with self._lock:
            live = [c for c in self._claims.get(self._scope(symbol), ()) if c.at > start]
            if any(c.claim_id == claim_id for c in live):
                return True
            if len(live) >= limit:
                return False
            live.append(_Claim(claim_id, now))
            self._claims[self._scope(symbol)] = live
            return True

    def release_trade_slot(self, claim_id: str, *, symbol: str | None = None) -> None:
        with self._lock:
            scope = self._scope(symbol)
            self._claims[scope] = [c for c in self._claims.get(scope, ()) if c.claim_id != claim_id]

    def realized_pl(self, day: date) -> float:
        return self._pl.get(day, 0.0)

    def add_realized_pl(self, day: date, amount_usd: float, *, key: str) -> bool:
        with self._lock:
            if key in self._pl_keys:
                return False
            self._pl_keys.add(key)
            self._pl[day] = self._pl.get(day, 0.0) + amount_usd
            return True

    def day_type(self, day: date) -> DayType | None:
        return self._day_types.get(day)

    def set_day_type(self, day: date, day_type: DayType) -> None:
        with self._lock:
            self._day_types[day] = day_type
            self._day_classes.pop(day, None)

    def save_day_classification(self, classification: DayClassification) -> None:
        with self._lock:
            self._day_types[classification.day] = classification.day_type
            self._day_classes[classification.day] = classification

    def day_classification(self, day: date) -> DayClassification | None:
        with self._lock:
            stored = self._day_classes.get(day)
            kind = self._day_types.get(day)
        if stored is not None or kind is None:
            return stored
        return DayClassification(
            day=day,
            symbol="",
            day_type=kind,
            confidence=1.0,
            reason="set directly (set_day_type): no features",
        )
