"""The model's daily spend in the state table (`ScoreBudget` port), shared by every Lambda.

One item per UTC day, ``pk = score_budget``, ``sk = day#<YYYY-MM-DD>``, ``spent_usd``
(a number, ADDed to) and ``expires_at`` (TTL, a week later). `reserve` is one conditional
UpdateItem: ``ADD spent_usd :amount`` only if ``attribute_not_exists(spent_usd) OR
spent_usd <= :room`` (room = cap − amount), so concurrent reservations can never take the
day past its cap. `settle` then ADDs the difference between the real cost and the
reservation (negative when the call was cheaper). Errors map through `DynamoTable`; the
scoring service treats an unavailable budget as a spent one (the deterministic score).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from chalicelib.adapters.dynamodb_table import ConditionFailed, DynamoTable

BUDGET_PK = "score_budget"
KEEP = timedelta(days=7)


def _num(value: float) -> dict[str, str]:
    return {"N": format(Decimal(repr(float(value))), "f")}


def _key(day: date) -> dict[str, dict[str, str]]:
    return {"pk": {"S": BUDGET_PK}, "sk": {"S": f"day#{day.isoformat()}"}}


def _expires(day: date) -> dict[str, str]:
    return {"N": str(int(datetime.combine(day + KEEP, time(), UTC).timestamp()))}


class DynamoScoreBudget:
    """Daily model spend (USD) in the state table; see the module docstring."""

    def __init__(self, client: Any, table: str) -> None:
        self._db = DynamoTable(client, table, label="state table")

    def reserve(self, day: date, amount_usd: float, cap_usd: float) -> bool:
        if amount_usd > cap_usd:
            return False
        try:
            self._db.call(
                "update_item",
                Key=_key(day),
                UpdateExpression="ADD spent_usd :amount SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(spent_usd) OR spent_usd <= :room",
                ExpressionAttributeValues={
                    ":amount": _num(amount_usd),
                    ":room": _num(cap_usd - amount_usd),
                    ":expires": _expires(day),
                },
            )
        except ConditionFailed:
            return False
        return True

    def settle(self, day: date, delta_usd: float) -> None:
        if delta_usd == 0:
            return
        self._db.call(
            "update_item",
            Key=_key(day),
            UpdateExpression="ADD spent_usd :delta SET expires_at = :expires",
            ExpressionAttributeValues={":delta": _num(delta_usd), ":expires": _expires(day)},
        )

    def spent_usd(self, day: date) -> float:
        item = self._db.call("get_item", Key=_key(day), ConsistentRead=True).get("Item")
        return float(item["spent_usd"]["N"]) if item and "spent_usd" in item else 0.0
