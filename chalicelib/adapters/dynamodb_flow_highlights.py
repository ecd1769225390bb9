"""The flow scanner's highlights and the watchlist, in the state table (`FlowHighlights`).

| pk | sk | holds |
|---|---|---|
| ``flow_highlight#<YYYY-MM-DD>`` | ``<key>`` | one highlight (JSON ``doc``), ``seen_at``; TTL 7 d |
| ``watchlist`` | ``symbols`` | the watchlist (JSON list), ``updated_at`` |

The day is the UTC day of the print. A highlight is written with
``attribute_not_exists(pk)``: the same print found by two scans (they overlap on purpose)
is recorded, and notified, once. A day holds a few hundred highlights at most, so
`recent` reads each day's partition and filters by time.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalicelib.adapters.dynamodb_table import ConditionFailed, DynamoTable
from chalicelib.domain import FlowHighlight

HIGHLIGHT_TTL = timedelta(days=7)
WATCHLIST_KEY = {"pk": {"S": "watchlist"}, "sk": {"S": "symbols"}}


def _pk(day: date) -> str:
    return f"flow_highlight#{day.isoformat()}"


class DynamoFlowHighlights:
    def __init__(self, client: Any, table: str) -> None:
        self._db = DynamoTable(client, table, label="state table")

    def record_once(self, highlight: FlowHighlight, seen_at: datetime) -> bool:
        at = highlight.at.astimezone(UTC)
        try:
            self._db.call(
                "put_item",
                Item={
                    "pk": {"S": _pk(at.date())},
                    "sk": {"S": highlight.key},
                    "doc": {"S": highlight.model_dump_json()},
                    "seen_at": {"S": seen_at.astimezone(UTC).isoformat()},
                    "expires_at": {"N": str(int((at + HIGHLIGHT_TTL).timestamp()))},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ConditionFailed:
            return False
        return True

    def recent(self, since: datetime, until: datetime, limit: int = 100) -> list[FlowHighlight]:
        start = since.astimezone(UTC)
        day, last = start.date(), until.astimezone(UTC).date()
        found: list[FlowHighlight] = []
        while day <= last:
            items = self._db.query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": _pk(day)}},
            )
            for item in items:
                highlight = FlowHighlight.model_validate_json(item["doc"]["S"])
                if highlight.at >= start:
                    found.append(highlight)
            day += timedelta(days=1)
        found.sort(key=lambda h: h.at, reverse=True)
        return found[:limit]

    def watchlist(self) -> tuple[str, ...] | None:
        item = self._db.call("get_item", Key=WATCHLIST_KEY, ConsistentRead=True).get("Item")
        return tuple(json.loads(item["symbols"]["S"])) if item else None

    def set_watchlist(self, symbols: tuple[str, ...], at: datetime) -> None:
        self._db.call(
            "put_item",
            Item={
                **WATCHLIST_KEY,
                "symbols": {"S": json.dumps(list(symbols))},
                "updated_at": {"S": at.astimezone(UTC).isoformat()},
            },
        )
