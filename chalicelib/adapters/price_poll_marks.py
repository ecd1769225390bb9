"""The price poll's marks in the state table (`PollMarks`): pk ``poll``, sk ``<SYM>``,
``fed_until`` (ISO UTC) — the end of the last bar fed to the paper broker for that symbol.
Moving a mark is conditional on the stored one being older, so two polls racing cannot move
it back."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.dynamodb_table import ConditionFailed, DynamoTable

PK = "poll"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class DynamoPollMarks:
    def __init__(self, client: Any, table: str) -> None:
        self._db = DynamoTable(client, table, label="state table")

    def fed_until(self, symbol: str) -> datetime | None:
        item = self._db.call(
            "get_item", Key={"pk": {"S": PK}, "sk": {"S": symbol}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return datetime.fromisoformat(item["fed_until"]["S"].replace("Z", "+00:00"))

    def set_fed_until(self, symbol: str, at: datetime) -> None:
        with contextlib.suppress(ConditionFailed):  # a later mark is already stored
            self._db.call(
                "put_item",
                Item={"pk": {"S": PK}, "sk": {"S": symbol}, "fed_until": {"S": _iso(at)}},
                ConditionExpression="attribute_not_exists(pk) OR fed_until < :at",
                ExpressionAttributeValues={":at": {"S": _iso(at)}},
            )


class MemoryPollMarks:
    """The same marks in memory (tests, the backtest)."""

    def __init__(self) -> None:
        self._marks: dict[str, datetime] = {}

    def fed_until(self, symbol: str) -> datetime | None:
        return self._marks.get(symbol)

    def set_fed_until(self, symbol: str, at: datetime) -> None:
        if symbol not in self._marks or self._marks[symbol] < at:
            self._marks[symbol] = at
