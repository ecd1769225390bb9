"""Vendor answers kept a few seconds in the state table (`ResponseCache`), so concurrent
Lambdas deciding on the same ticker share one vendor call.

| pk | sk | holds |
|---|---|---|
| ``cache#<vendor>`` | ``<sha256 of path and query>`` | ``body`` (zlib), ``fresh_until_ms``; TTL |

The key never includes the token. Bodies larger than DynamoDB's item limit allows are not
cached (the call is simply made again).
"""

from __future__ import annotations

import zlib
from typing import Any

from chalicelib.adapters.dynamodb_table import DynamoTable

MAX_BODY_BYTES = 350_000  # under DynamoDB's 400 KB item limit, with room for the keys


class DynamoResponseCache:
    def __init__(self, client: Any, table: str, vendor: str) -> None:
        self._db = DynamoTable(client, table, label="state table")
        self._pk = {"S": f"cache#{vendor}"}

    def get(self, key: str, now_s: float) -> bytes | None:
        item = self._db.call("get_item", Key={"pk": self._pk, "sk": {"S": key}}).get("Item")
        if not item or int(item["fresh_until_ms"]["N"]) <= int(now_s * 1000):
            return None
        return zlib.decompress(item["body"]["B"])

    def put(self, key: str, body: bytes, now_s: float, ttl_s: float) -> None:
        packed = zlib.compress(body)
        if len(packed) > MAX_BODY_BYTES:
            return
        self._db.call(
            "put_item",
            Item={
                "pk": self._pk,
                "sk": {"S": key},
                "body": {"B": packed},
                "fresh_until_ms": {"N": str(int((now_s + ttl_s) * 1000))},
                "expires_at": {"N": str(int(now_s + ttl_s) + 600)},
            },
        )
