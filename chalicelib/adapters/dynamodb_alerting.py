"""The alert router's memory in the state table (`AlertThrottle`; services/alerting.py).

| pk | sk | holds |
|---|---|---|
| ``alert_seen`` | ``<hash of event, subject, message>`` | seen_until_ms: de-duplication; TTL |
| ``alert_rate#<event>`` | ``<window start, ISO>`` | n (ADD): the event's messages in the window |
| ``alert_digest`` | ``<window start, ISO>#<event>`` | held (ADD), digest_lines (string set); TTL |

Every write is one atomic call: a conditional put (seen), an ADD (the counter), an ADD to a
set (the digest); a digest is handed out by a conditional delete that returns the item, so
of two schedules flushing at once exactly one sends it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters.dynamodb_table import ConditionFailed, DynamoTable

DIGEST_PK = "alert_digest"
DIGEST_TTL = timedelta(days=2)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _expires(moment: datetime) -> dict[str, str]:
    return {"N": str(int(moment.timestamp()))}


class DynamoAlertThrottle:
    def __init__(self, client: Any, table: str) -> None:
        self._table = DynamoTable(client, table, label="alert throttle")

    def first_time(self, key: str, now: datetime, ttl: timedelta) -> bool:
        try:
            self._table.call(
                "put_item",
                Item={
                    "pk": {"S": "alert_seen"},
                    "sk": {"S": key},
                    "seen_until_ms": {"N": str(_ms(now + ttl))},
                    "expires_at": _expires(now + ttl + timedelta(hours=1)),
                },
                ConditionExpression="attribute_not_exists(pk) OR seen_until_ms <= :now",
                ExpressionAttributeValues={":now": {"N": str(_ms(now))}},
            )
        except ConditionFailed:
            return False
        return True

    def count(self, event: str, window_start: datetime, ttl: timedelta) -> int:
        got = self._table.call(
            "update_item",
            Key={"pk": {"S": f"alert_rate#{event}"}, "sk": {"S": window_start.isoformat()}},
            UpdateExpression="ADD n :one SET expires_at = :exp",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":exp": _expires(window_start + ttl),
            },
            ReturnValues="UPDATED_NEW",
        )
        return int(got["Attributes"]["n"]["N"])

    def add_to_digest(self, event: str, window_start: datetime, line: str) -> None:
        values: dict[str, Any] = {":one": {"N": "1"}, ":exp": _expires(window_start + DIGEST_TTL)}
        update = "ADD held :one"
        if line:
            update += ", digest_lines :line"
            values[":line"] = {"SS": [line]}
        self._table.call(
            "update_item",
            Key={"pk": {"S": DIGEST_PK}, "sk": {"S": f"{window_start.isoformat()}#{event}"}},
            UpdateExpression=f"{update} SET expires_at = :exp",
            ExpressionAttributeValues=values,
        )

    def take_digests(self, before: datetime) -> list[tuple[str, datetime, int, list[str]]]:
        items = self._table.query(
            KeyConditionExpression="pk = :pk AND sk < :before",
            ExpressionAttributeValues={
                ":pk": {"S": DIGEST_PK},
                ":before": {"S": before.astimezone(UTC).isoformat()},
            },
        )
        taken: list[tuple[str, datetime, int, list[str]]] = []
        for item in list(items):
            try:
                old = self._table.call(
                    "delete_item",
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    ConditionExpression="attribute_exists(pk)",
                    ReturnValues="ALL_OLD",
                )["Attributes"]
            except ConditionFailed:
                continue  # another flush took it
            started, _, event = old["sk"]["S"].partition("#")
            lines = sorted(old.get("digest_lines", {}).get("SS", []))
            taken.append((event, datetime.fromisoformat(started), int(old["held"]["N"]), lines))
        return taken
