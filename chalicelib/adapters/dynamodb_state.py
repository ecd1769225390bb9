"""Risk state, cooldown windows, journal, orders and positions in the DynamoDB state table.

Implements `chalicelib.ports.StateStore`: `RiskState` (what the gate reads and claims),
`TradeRecords` (journal, orders, positions) and `AccountLock`. Every call goes through
`DynamoTable` (`dynamodb_table`): throttling and unreachable storage are `StorageUnavailable`,
a condition that did not hold is handled here (False, or "someone else holds it").
Single table, ``pk`` + ``sk``:

| pk | sk | holds |
|---|---|---|
| ``risk`` | ``kill_switch`` | reason, set_at (absent: trading allowed) |
| ``lock`` | ``account`` | holder (alert id), until_ms: the one-decision-at-a-time lease; TTL |
| ``cooldown#account`` / ``cooldown#symbol#<SYM>`` | ``slot#000`` … | claim_id, claimed_at_ms; TTL |
| ``pnl`` | ``day#<YYYY-MM-DD>`` | realized_usd (ADD) |
| ``pnl_key`` | ``<key>`` | marks a booked P/L key, so a fill is booked once; TTL |
| ``day_type`` | ``<YYYY-MM-DD>`` | the day type, and its classification (JSON ``doc``) |
| ``journal#<alert_id>`` | ``<iso time>#<seq>#<event>`` | one journal event (JSON ``data``) |
| ``order`` | ``<client_order_id>`` | the latest broker view of one order (JSON ``doc``) |
| ``position`` | ``<SYM>`` | the latest position snapshot (JSON ``doc``) |
| ``trade#<YYYY-MM-DD>`` | ``<exit time>#<fill key>`` | one closed trade (JSON ``doc``) |
| ``sync`` | ``booked_fills`` | the fill keys sync_portfolio has booked (bounded), ``version`` |
| ``account`` | ``snapshot`` | the broker's account at the last sync (JSON ``doc``) |

Cooldown: a window with limit N is N slot items. Claiming is a conditional put on one slot —
``attribute_not_exists(pk) OR claimed_at_ms <= window start`` — so each slot has one holder
per window however many Lambdas race for it: N parallel claims of N+k callers succeed
exactly N times. Slots expire by the window, not by deletion; DynamoDB's TTL only tidies.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from chalicelib.adapters.dynamodb_table import ConditionFailed, DynamoTable
from chalicelib.domain import Account, ClosedTrade, DayClassification, DayType, Order, Position
from chalicelib.ports import StorageUnavailable
from chalicelib.rules.market_calendar import trading_date

KILL_KEY = {"pk": {"S": "risk"}, "sk": {"S": "kill_switch"}}
ACCOUNT_LOCK_KEY = {"pk": {"S": "lock"}, "sk": {"S": "account"}}
PNL_KEY_TTL = timedelta(days=30)
SYNC_KEY = {"pk": {"S": "sync"}, "sk": {"S": "booked_fills"}}
ACCOUNT_KEY = {"pk": {"S": "account"}, "sk": {"S": "snapshot"}}


def _num(value: float) -> dict[str, str]:
    return {"N": format(Decimal(repr(float(value))), "f")}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _cooldown_pk(symbol: str | None) -> str:
    return "cooldown#account" if symbol is None else f"cooldown#symbol#{symbol}"


class DynamoStateStore:
    """The live `RiskState` + `TradeRecords`, safe under concurrent Lambdas."""

    def __init__(self, client: Any, table: str) -> None:
        self._db = DynamoTable(client, table, label="state table")
        self._table = table

    # --- low level -------------------------------------------------------------------

    def _call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        return self._db.call(op, **kwargs)

    def _query_all(self, pk: str, **kwargs: Any) -> list[dict[str, Any]]:
        return list(
            self._db.query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
                ConsistentRead=True,
                **kwargs,
            )
        )

    # --- kill switch -----------------------------------------------------------------

    def kill_switch(self) -> str | None:
        item = self._call("get_item", Key=KILL_KEY, ConsistentRead=True).get("Item")
        return item["reason"]["S"] if item else None

    def set_kill_switch(self, reason: str | None, now: datetime) -> None:
        if reason is None:
            self._call("delete_item", Key=KILL_KEY)
            return
        self._call(
            "put_item",
            Item={**KILL_KEY, "reason": {"S": reason}, "set_at": {"S": now.isoformat()}},
        )

    # --- account lock ----------------------------------------------------------------

    def acquire_account_lock(self, holder: str, now: datetime, ttl: timedelta) -> bool:
        until = now + ttl
        try:
            self._call(
                "put_item",
                Item={
                    **ACCOUNT_LOCK_KEY,
                    "holder": {"S": holder},
                    "until_ms": {"N": str(_ms(until))},
                    "expires_at": {"N": str(int(until.timestamp()) + 3600)},
                },
                ConditionExpression="attribute_not_exists(pk) OR holder = :me OR until_ms < :now",
                ExpressionAttributeValues={":me": {"S": holder}, ":now": {"N": str(_ms(now))}},
            )
        except ConditionFailed:
            return False
        return True

    def release_account_lock(self, holder: str) -> None:
        # A lease another holder took after it expired is not ours to release.
        with contextlib.suppress(ConditionFailed):
            self._call(
                "delete_item",
                Key=ACCOUNT_LOCK_KEY,
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={":me": {"S": holder}},
            )

    def account_lock_held(self, now: datetime) -> bool:
        got = self._call("get_item", Key=ACCOUNT_LOCK_KEY, ConsistentRead=True).get("Item")
        return got is not None and int(got["until_ms"]["N"]) >= _ms(now)

    # --- cooldown slots --------------------------------------------------------------

    def _live_claims(self, symbol: str | None, start_ms: int) -> list[dict[str, Any]]:
        return [
            item
            for item in self._query_all(_cooldown_pk(symbol))
            if int(item["claimed_at_ms"]["N"]) > start_ms
        ]

    def trade_times(
        self,
        now: datetime,
        window: timedelta,
        *,
        symbol: str | None = None,
        exclude_claim: str | None = None,
    ) -> list[datetime]:
        start_ms, now_ms = _ms(now - window), _ms(now)
        times = [
            int(item["claimed_at_ms"]["N"])
            for item in self._live_claims(symbol, start_ms)
            if item["claim_id"]["S"] != exclude_claim and int(item["claimed_at_ms"]["N"]) <= now_ms
        ]
        return [datetime.fromtimestamp(ms / 1000, UTC) for ms in sorted(times)]

    def claim_trade_slot(
        self,
        claim_id: str,
        now: datetime,
        *,
        window: timedelta,
        limit: int,
        symbol: str | None = None,
    ) -> bool:
        start_ms = _ms(now - window)
        live = self._live_claims(symbol, start_ms)
        if any(item["claim_id"]["S"] == claim_id for item in live):
            return True
        if len(live) >= limit:  # also covers slots above a limit that was lowered
            return False
        busy = {item["sk"]["S"] for item in live}
        slots = [f"slot#{i:03d}" for i in range(limit)]
        # Free-looking slots first; the condition decides, the order only saves round trips.
        for sk in sorted(slots, key=lambda s: s in busy):
            try:
                self._call(
                    "put_item",
                    Item={
                        "pk": {"S": _cooldown_pk(symbol)},
                        "sk": {"S": sk},
                        "claim_id": {"S": claim_id},
                        "claimed_at_ms": {"N": str(_ms(now))},
                        "claimed_at": {"S": now.isoformat()},
                        "expires_at": {
                            "N": str(int((now + window + timedelta(days=1)).timestamp()))
                        },
                    },
                    ConditionExpression="attribute_not_exists(pk) OR claimed_at_ms <= :start",
                    ExpressionAttributeValues={":start": {"N": str(start_ms)}},
                )
                return True
            except ConditionFailed:
                continue  # held in this window: try the next slot
        return False

    def release_trade_slot(self, claim_id: str, *, symbol: str | None = None) -> None:
        for item in self._query_all(_cooldown_pk(symbol)):
            if item["claim_id"]["S"] != claim_id:
                continue
            # A slot someone else holds now is not ours to free.
            with contextlib.suppress(ConditionFailed):
                self._call(
                    "delete_item",
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    ConditionExpression="claim_id = :mine",
                    ExpressionAttributeValues={":mine": {"S": claim_id}},
                )

    # --- daily P/L and day type --------------------------------------------------------

    def realized_pl(self, day: date) -> float:
        item = self._call(
            "get_item",
            Key={"pk": {"S": "pnl"}, "sk": {"S": f"day#{day.isoformat()}"}},
            ConsistentRead=True,
        ).get("Item")
        return float(item["realized_usd"]["N"]) if item else 0.0

    def add_realized_pl(self, day: date, amount_usd: float, *, key: str) -> bool:
        expires = int((datetime.combine(day, datetime.min.time(), UTC) + PNL_KEY_TTL).timestamp())
        try:
            self._call(
                "transact_write_items",
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                "pk": {"S": "pnl_key"},
                                "sk": {"S": key},
                                "day": {"S": day.isoformat()},
                                "amount_usd": _num(amount_usd),
                                "expires_at": {"N": str(expires)},
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": {"pk": {"S": "pnl"}, "sk": {"S": f"day#{day.isoformat()}"}},
                            "UpdateExpression": "ADD realized_usd :amount",
                            "ExpressionAttributeValues": {":amount": _num(amount_usd)},
                        }
                    },
                ],
            )
        except ConditionFailed:  # the key was booked (or is being booked) already
            return False
        return True

    def day_type(self, day: date) -> DayType | None:
        item = self._call(
            "get_item",
            Key={"pk": {"S": "day_type"}, "sk": {"S": day.isoformat()}},
            ConsistentRead=True,
        ).get("Item")
        return DayType(item["day_type"]["S"]) if item else None

    def set_day_type(self, day: date, day_type: DayType) -> None:
        self._call(
            "put_item",
            Item={
                "pk": {"S": "day_type"},
                "sk": {"S": day.isoformat()},
                "day_type": {"S": day_type.value},
            },
        )

    def save_day_classification(self, classification: DayClassification) -> None:
        self._call(
            "put_item",
            Item={
                "pk": {"S": "day_type"},
                "sk": {"S": classification.day.isoformat()},
                "day_type": {"S": classification.day_type.value},
                "doc": {"S": classification.model_dump_json()},
            },
        )

    def day_classification(self, day: date) -> DayClassification | None:
        item = self._call(
            "get_item",
            Key={"pk": {"S": "day_type"}, "sk": {"S": day.isoformat()}},
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        if "doc" in item:
            return DayClassification.model_validate_json(item["doc"]["S"])
        return DayClassification(
            day=day,
            symbol="",
            day_type=DayType(item["day_type"]["S"]),
            confidence=1.0,
            reason="set directly (set_day_type): no features",
        )

    # --- journal, orders, positions ------------------------------------------------------

    def append_journal(
        self, alert_id: str, event: str, data: dict[str, Any], at: datetime, seq: int = 0
    ) -> None:
        self._call("put_item", Item=self._journal_item(alert_id, event, data, at, seq))

    @staticmethod
    def _journal_item(
        alert_id: str, event: str, data: dict[str, Any], at: datetime, seq: int
    ) -> dict[str, Any]:
        stamp = at.astimezone(UTC).isoformat(timespec="microseconds")
        return {
            "pk": {"S": f"journal#{alert_id}"},
            "sk": {"S": f"{stamp}#{seq:04d}#{event}"},
            "event": {"S": event},
            "at": {"S": at.isoformat()},
            "data": {"S": json.dumps(data, default=str)},
        }

    def append_journal_many(
        self, alert_id: str, events: list[tuple[str, dict[str, Any], datetime, int]]
    ) -> None:
        """One BatchWriteItem per 25 events; unprocessed items are written again."""
        requests = [
            {"PutRequest": {"Item": self._journal_item(alert_id, event, data, at, seq)}}
            for event, data, at, seq in events
        ]
        for start in range(0, len(requests), 25):
            pending = {self._table: requests[start : start + 25]}
            for _ in range(5):
                answer = self._call("batch_write_item", RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}
                if not pending:
                    break
            else:
                raise StorageUnavailable("journal batch kept coming back unprocessed")

    def journal(self, alert_id: str) -> list[dict[str, Any]]:
        return [
            {"event": it["event"]["S"], "at": it["at"]["S"], "data": json.loads(it["data"]["S"])}
            for it in self._query_all(f"journal#{alert_id}")
        ]

    def record_order(self, alert_id: str, order: Order, at: datetime) -> None:
        self._call(
            "put_item",
            Item={
                "pk": {"S": "order"},
                "sk": {"S": order.client_order_id},
                "alert_id": {"S": alert_id},
                "status": {"S": order.status.value},
                "recorded_at": {"S": at.isoformat()},
                "doc": {"S": order.model_dump_json()},
            },
        )

    def orders(self, limit: int = 100) -> list[dict[str, Any]]:
        page = self._call(
            "query",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "order"}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [
            {
                **json.loads(it["doc"]["S"]),
                "alert_id": it["alert_id"]["S"],
                "recorded_at": it["recorded_at"]["S"],
            }
            for it in page.get("Items", [])
        ]

    def recorded_order(self, client_order_id: str) -> dict[str, Any] | None:
        item = self._call(
            "get_item",
            Key={"pk": {"S": "order"}, "sk": {"S": client_order_id}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        return {
            **json.loads(item["doc"]["S"]),
            "alert_id": item["alert_id"]["S"],
            "recorded_at": item["recorded_at"]["S"],
        }

    def replace_positions(
        self, positions: list[Position], at: datetime, previous: list[Position] | None = None
    ) -> None:
        """Make the snapshot equal `positions`, writing only what changed.

        One query reads the stored snapshot; a position whose document is unchanged is not
        written again (its ``as_of`` stays the time it last changed), a changed or new one is
        put, a symbol no longer held is deleted. A call after an alert that moved nothing
        writes nothing, however many positions are held.
        """
        wanted = {p.symbol: p.model_dump_json() for p in positions if p.qty}
        if previous is not None:
            stored = {p.symbol: p.model_dump_json() for p in previous if p.qty}
        else:
            stored = {it["sk"]["S"]: it["doc"]["S"] for it in self._query_all("position")}
        for symbol in stored.keys() - wanted.keys():
            self._call("delete_item", Key={"pk": {"S": "position"}, "sk": {"S": symbol}})
        for symbol, doc in wanted.items():
            if stored.get(symbol) == doc:
                continue
            self._call(
                "put_item",
                Item={
                    "pk": {"S": "position"},
                    "sk": {"S": symbol},
                    "as_of": {"S": at.isoformat()},
                    "doc": {"S": doc},
                },
            )

    def positions(self) -> list[Position]:
        return [Position.model_validate_json(it["doc"]["S"]) for it in self._query_all("position")]

    def refresh_marks(
        self, positions: list[Position], previous: list[Position], at: datetime
    ) -> int:
        """Each put is conditional on the stored document being the one `previous` holds
        (the lease is not held): read as stored, so the condition matches it byte for byte."""
        before = {p.symbol: p for p in previous}
        stored = {it["sk"]["S"]: it["doc"]["S"] for it in self._query_all("position")}
        written = 0
        for p in positions:
            old, raw = before.get(p.symbol), stored.get(p.symbol)
            if old is None or raw is None or old.qty != p.qty or p == old:
                continue
            if Position.model_validate_json(raw) != old:
                continue  # a decision moved it after the sweep read it
            try:
                self._call(
                    "put_item",
                    Item={
                        "pk": {"S": "position"},
                        "sk": {"S": p.symbol},
                        "as_of": {"S": at.isoformat()},
                        "doc": {"S": p.model_dump_json()},
                    },
                    ConditionExpression="doc = :old",
                    ExpressionAttributeValues={":old": {"S": raw}},
                )
            except ConditionFailed:
                continue  # a decision moved it meanwhile: its snapshot is newer
            written += 1
        return written

    # --- portfolio sync: closed trades, the fills already booked, the account -------------

    def record_trade(self, trade: ClosedTrade) -> bool:
        """Store a closed trade once (keyed by its fill); False when it was already there."""
        day = trading_date(trade.exit_time).isoformat()
        try:
            self._call(
                "put_item",
                Item={
                    "pk": {"S": f"trade#{day}"},
                    "sk": {"S": f"{trade.exit_time.isoformat()}#{trade.key}"},
                    "doc": {"S": trade.model_dump_json()},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ConditionFailed:
            return False
        return True

    def trades(self, start: date, end: date) -> list[ClosedTrade]:
        """Closed trades whose exit fell on trading days `start`..`end` (one query per day)."""
        found: list[ClosedTrade] = []
        day = start
        while day <= end:
            found += [
                ClosedTrade.model_validate_json(it["doc"]["S"])
                for it in self._query_all(f"trade#{day.isoformat()}")
            ]
            day += timedelta(days=1)
        return found

    def booked_fills(self) -> tuple[tuple[str, ...], int]:
        """The keys of the fills sync_portfolio already booked (newest last) and a version."""
        item = self._call("get_item", Key=SYNC_KEY, ConsistentRead=True).get("Item")
        if item is None:
            return (), 0
        return tuple(json.loads(item["keys"]["S"])), int(item["version"]["N"])

    def save_booked_fills(self, keys: tuple[str, ...], version: int) -> bool:
        """Replace the booked keys if nobody else did since `version` was read."""
        condition = "attribute_not_exists(pk)" if version == 0 else "version = :v"
        values = {} if version == 0 else {":v": {"N": str(version)}}
        try:
            self._call(
                "put_item",
                Item={
                    **SYNC_KEY,
                    "keys": {"S": json.dumps(list(keys))},
                    "version": {"N": str(version + 1)},
                },
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except ConditionFailed:
            return False
        return True

    def save_account(self, account: Account, at: datetime) -> None:
        self._call(
            "put_item",
            Item={
                **ACCOUNT_KEY,
                "doc": {"S": account.model_dump_json()},
                "at": {"S": at.isoformat()},
            },
        )

    def account_snapshot(self) -> tuple[Account, datetime] | None:
        item = self._call("get_item", Key=ACCOUNT_KEY, ConsistentRead=True).get("Item")
        if item is None:
            return None
        return Account.model_validate_json(item["doc"]["S"]), datetime.fromisoformat(
            item["at"]["S"]
        )
