"""Alerts in DynamoDB, stored exactly once per idempotency key.

Table layout (one table, `pk` only):
- ``alert#<alert_id>``: the alert (JSON in ``alert``), its ``status``/``reason`` and
  processing details; ``pending``/``stored_at`` until the worker takes it (a sparse index
  lets the sweeper find alerts whose enqueue failed or that nobody took).
- ``key#<dedupe_key>``: which alert first claimed the key, until ``expires_at``.
- the ``recent`` index (``received_day``, the UTC day; ``received_at``) lists a day's
  alerts newest first for the dashboard, without a scan.
Both are written in one transaction, so a key never points at a missing alert.

Every call goes through `DynamoTable` (`dynamodb_table`): throttling, any other AWS error
and unreachable storage are `StorageUnavailable`; a condition that did not hold is handled
here (a duplicate key returns the first alert's id, a taken alert is left to its worker).
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, date, datetime
from typing import Any

from chalicelib.adapters.dynamodb_table import ConditionFailed, DynamoTable
from chalicelib.domain import Alert, AlertStatus
from chalicelib.ports import StorageUnavailable

PENDING_INDEX = "pending"
RECENT_INDEX = "recent"


def _alert_pk(alert_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"alert#{alert_id}"}}


def _key_pk(dedupe_key: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"key#{dedupe_key}"}}


def _record(item: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "alert_id": item["alert_id"]["S"],
        "status": item["status"]["S"],
        "reason": item.get("reason", {}).get("S", ""),
        "received_at": item["received_at"]["S"],
        "alert": json.loads(item["alert"]["S"]),
    }
    if "details" in item:
        record["details"] = json.loads(item["details"]["S"])
    if "updated_at" in item:
        record["updated_at"] = item["updated_at"]["S"]
    return record


class DynamoAlertStore:
    def __init__(self, client: Any, table: str) -> None:
        self._db = DynamoTable(client, table, label="alerts table")
        self._table = table

    def store_once(
        self,
        alert_id: str,
        dedupe_key: str,
        alert: Alert,
        received_at: datetime,
        dedupe_until: datetime,
        source_ip: str | None,
    ) -> str | None:
        now_epoch = int(received_at.timestamp())
        stamp = received_at.isoformat()
        item = {
            **_alert_pk(alert_id),
            "alert_id": {"S": alert_id},
            "alert": {"S": alert.model_dump_json(exclude_none=True)},
            "symbol": {"S": alert.symbol},
            "action": {"S": alert.action.value},
            # Written as queued so the happy path needs no second update; an enqueue that
            # fails downgrades it to `stored` (mark_unqueued) for the sweeper.
            "status": {"S": AlertStatus.QUEUED.value},
            "reason": {"S": "queued for processing"},
            "received_at": {"S": stamp},
            "received_day": {"S": received_at.astimezone(UTC).date().isoformat()},
            "stored_at": {"S": stamp},
            "pending": {"S": "1"},
            "dedupe_key": {"S": dedupe_key},
        }
        if source_ip:
            item["source_ip"] = {"S": source_ip}
        try:
            self._db.call(
                "transact_write_items",
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                **_key_pk(dedupe_key),
                                "alert_id": {"S": alert_id},
                                "expires_at": {"N": str(int(dedupe_until.timestamp()))},
                            },
                            "ConditionExpression": "attribute_not_exists(pk) OR expires_at < :now",
                            "ExpressionAttributeValues": {":now": {"N": str(now_epoch)}},
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ],
            )
        except ConditionFailed as exc:
            if exc.code != "TransactionCanceledException":
                raise StorageUnavailable(f"alerts table: store failed ({exc.code})") from exc
            first = self._first_claimant(dedupe_key)
            if first is None:
                raise StorageUnavailable("idempotency key conflict without an owner") from exc
            return first
        return None

    def _first_claimant(self, dedupe_key: str) -> str | None:
        got = self._db.call("get_item", Key=_key_pk(dedupe_key), ConsistentRead=True)
        item = got.get("Item")
        return item["alert_id"]["S"] if item else None

    def get(self, alert_id: str) -> dict[str, Any] | None:
        got = self._db.call("get_item", Key=_alert_pk(alert_id), ConsistentRead=True)
        item = got.get("Item")
        return _record(item) if item else None

    def recent(self, day: date, limit: int) -> list[dict[str, Any]]:
        """The day's alerts newest first, from the `recent` index (eventually consistent:
        an alert stored a moment ago may show on the next read)."""
        page = self._db.call(
            "query",
            IndexName=RECENT_INDEX,
            KeyConditionExpression="received_day = :day",
            ExpressionAttributeValues={":day": {"S": day.isoformat()}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [_record(item) for item in page.get("Items", [])]

    def _set_queue_state(self, alert_id: str, update: str, status: str, reason: str) -> None:
        """Apply `update` only while the worker has not taken the alert (status stored/queued)."""
        # An alert a worker already took keeps the worker's status.
        with contextlib.suppress(ConditionFailed):
            self._db.call(
                "update_item",
                Key=_alert_pk(alert_id),
                UpdateExpression=update + " #s = :status, reason = :why",
                ConditionExpression="#s IN (:stored, :queued)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":status": {"S": status},
                    ":stored": {"S": AlertStatus.STORED.value},
                    ":queued": {"S": AlertStatus.QUEUED.value},
                    ":why": {"S": reason},
                },
            )

    def mark_unqueued(self, alert_id: str) -> None:
        """The enqueue failed: say so on the alert; it stays pending for the sweeper."""
        self._set_queue_state(
            alert_id,
            "SET",
            AlertStatus.STORED.value,
            "stored; the queue was unavailable, the sweeper queues it within a minute",
        )

    def mark_queued(self, alert_id: str) -> None:
        """The sweeper queued it: leave the pending index (each alert is swept at most once)."""
        self._set_queue_state(
            alert_id, "REMOVE pending SET", AlertStatus.QUEUED.value, "queued for processing"
        )

    def pending(self, older_than: datetime) -> list[str]:
        items = self._db.query(
            IndexName=PENDING_INDEX,
            KeyConditionExpression="pending = :one AND stored_at < :cutoff",
            ExpressionAttributeValues={
                ":one": {"S": "1"},
                ":cutoff": {"S": older_than.isoformat()},
            },
        )
        return [it["pk"]["S"].removeprefix("alert#") for it in items]

    def record_outcome(
        self,
        alert_id: str,
        status: str,
        reason: str,
        details: dict[str, Any] | None = None,
        only_if_status_in: tuple[str, ...] | None = None,
        updated_at: datetime | None = None,
    ) -> bool:
        try:
            self._update_status(alert_id, status, reason, details, only_if_status_in, updated_at)
        except ConditionFailed:
            return False
        return True

    def claim(
        self,
        alert_id: str,
        status: str,
        reason: str,
        only_if_status_in: tuple[str, ...],
        updated_at: datetime,
    ) -> dict[str, Any] | None:
        try:
            before = self._update_status(
                alert_id, status, reason, None, only_if_status_in, updated_at, "ALL_OLD"
            )
        except ConditionFailed:
            return None
        return _record(before)

    def _update_status(
        self,
        alert_id: str,
        status: str,
        reason: str,
        details: dict[str, Any] | None,
        only_if_status_in: tuple[str, ...] | None,
        updated_at: datetime | None,
        returning: str = "NONE",
    ) -> dict[str, Any]:
        names = {"#s": "status"}
        values: dict[str, Any] = {":s": {"S": status}, ":r": {"S": reason}}
        sets = ["#s = :s", "reason = :r"]
        if details is not None:
            sets.append("details = :d")
            values[":d"] = {"S": json.dumps(details, default=str)}
        if updated_at is not None:
            sets.append("updated_at = :u")
            values[":u"] = {"S": updated_at.isoformat()}
        condition = "attribute_exists(pk)"
        if only_if_status_in:
            placeholders = []
            for i, allowed in enumerate(only_if_status_in):
                values[f":a{i}"] = {"S": allowed}
                placeholders.append(f":a{i}")
            condition += f" AND #s IN ({', '.join(placeholders)})"
        answer = self._db.call(
            "update_item",
            Key=_alert_pk(alert_id),
            UpdateExpression="REMOVE pending SET " + ", ".join(sets),
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues=returning,
        )
        return dict(answer.get("Attributes") or {})
