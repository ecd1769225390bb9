"""Pre-market notes in the state table (`NoteStore` port).

``pk = note``, ``sk = day#<YYYY-MM-DD>``: one note per trading day (a rerun replaces it),
the note as JSON in ``doc``, kept 30 days (TTL ``expires_at``). The latest is the last
item of one descending query.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

from chalicelib.adapters.dynamodb_table import DynamoTable
from chalicelib.domain import MarketNote

NOTE_PK = "note"
KEEP = timedelta(days=30)


class DynamoNoteStore:
    def __init__(self, client: Any, table: str) -> None:
        self._db = DynamoTable(client, table, label="state table")

    def save_note(self, note: MarketNote) -> None:
        expires = int(datetime.combine(note.day + KEEP, time(), UTC).timestamp())
        self._db.call(
            "put_item",
            Item={
                "pk": {"S": NOTE_PK},
                "sk": {"S": f"day#{note.day.isoformat()}"},
                "doc": {"S": note.model_dump_json()},
                "expires_at": {"N": str(expires)},
            },
        )

    def latest_note(self) -> MarketNote | None:
        page = self._db.call(
            "query",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": NOTE_PK}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = page.get("Items", [])
        return MarketNote.model_validate(json.loads(items[0]["doc"]["S"])) if items else None
