"""The settings a trader changes at run time (`PUT /api/settings`), in the state table.

One item, ``pk = "settings"``, ``sk = "runtime"``: each setting a string attribute, plus
who changed what when in ``changes`` (the last 20). A write is conditional on the version
read, so two dashboards switching at once never lose one change silently (`Conflict`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chalicelib.adapters.dynamodb_table import ConditionFailed, DynamoTable

KEY = {"pk": {"S": "settings"}, "sk": {"S": "runtime"}}
HISTORY = 20


class Conflict(Exception):
    """Someone else changed the settings since they were read."""


class DynamoRuntimeSettings:
    def __init__(self, client: Any, table: str) -> None:
        self._table = DynamoTable(client, table, label="state table")

    def read(self) -> tuple[dict[str, str], int, list[dict[str, Any]]]:
        """(values, version, recent changes newest first)."""
        item = self._table.call("get_item", Key=KEY, ConsistentRead=True).get("Item")
        if not item:
            return {}, 0, []
        values = json.loads(item["values"]["S"])
        changes = json.loads(item.get("changes", {"S": "[]"})["S"])
        return values, int(item["version"]["N"]), changes

    def write(self, changed: dict[str, str], *, version: int, at: datetime, by: str) -> int:
        """Apply `changed` over what version `version` held; the new version."""
        values, current, changes = self.read()
        if current != version:
            raise Conflict(f"settings changed since version {version} (now {current})")
        entry = {"at": at.isoformat(), "by": by, "changed": changed}
        item = {
            **KEY,
            "values": {"S": json.dumps(values | changed, sort_keys=True)},
            "changes": {"S": json.dumps([entry, *changes][:HISTORY])},
            "version": {"N": str(version + 1)},
        }
        condition = "attribute_not_exists(pk)" if version == 0 else "version = :v"
        kwargs: dict[str, Any] = {"Item": item, "ConditionExpression": condition}
        if version:
            kwargs["ExpressionAttributeValues"] = {":v": {"N": str(version)}}
        try:
            self._table.call("put_item", **kwargs)
        except ConditionFailed as exc:
            raise Conflict("settings changed concurrently; read them again") from exc
        return version + 1
