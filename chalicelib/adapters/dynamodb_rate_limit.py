"""A vendor's request budget shared by every Lambda, in the state table (`SharedRateLimit`).

| pk | sk | holds |
|---|---|---|
| ``ratelimit#<vendor>`` | ``minute#<unix minute>`` | ``used``: requests sent in that minute; TTL |
| ``ratelimit#<vendor>`` | ``blocked`` | ``until_ms``: nobody sends before then (Retry-After); TTL |

Taking a request is one conditional ``ADD used 1`` — ``attribute_not_exists(used) OR used <
:limit`` — so however many Lambdas race, a minute never counts more than `limit` requests
(a fixed window: a burst may straddle two minutes, which the vendor's own per-minute window
tolerates as well). A block only ever moves later.
"""

from __future__ import annotations

import contextlib
from typing import Any

from chalicelib.adapters.dynamodb_table import ConditionFailed, DynamoTable


class DynamoRateLimit:
    def __init__(self, client: Any, table: str, vendor: str) -> None:
        self._db = DynamoTable(client, table, label="state table")
        self._pk = {"S": f"ratelimit#{vendor}"}

    def try_acquire(self, now_s: float, limit: int) -> bool:
        minute = int(now_s // 60)
        try:
            self._db.call(
                "update_item",
                Key={"pk": self._pk, "sk": {"S": f"minute#{minute}"}},
                UpdateExpression="ADD used :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(used) OR used < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":expires": {"N": str((minute + 5) * 60)},
                },
            )
        except ConditionFailed:
            return False
        return True

    def block_until(self, until_s: float) -> None:
        until_ms = int(until_s * 1000)
        with contextlib.suppress(ConditionFailed):  # a later block is already in place
            self._db.call(
                "put_item",
                Item={
                    "pk": self._pk,
                    "sk": {"S": "blocked"},
                    "until_ms": {"N": str(until_ms)},
                    "expires_at": {"N": str(int(until_s) + 3600)},
                },
                ConditionExpression="attribute_not_exists(until_ms) OR until_ms < :until",
                ExpressionAttributeValues={":until": {"N": str(until_ms)}},
            )

    def blocked_until(self) -> float | None:
        item = self._db.call(
            "get_item", Key={"pk": self._pk, "sk": {"S": "blocked"}}, ConsistentRead=True
        ).get("Item")
        return int(item["until_ms"]["N"]) / 1000.0 if item else None

    def used(self, now_s: float) -> int:
        """Requests counted in the minute of `now_s` (for tests and health)."""
        item = self._db.call(
            "get_item",
            Key={"pk": self._pk, "sk": {"S": f"minute#{int(now_s // 60)}"}},
            ConsistentRead=True,
        ).get("Item")
        return int(item["used"]["N"]) if item else 0
