"""Dashboard login sessions in the state table (pk ``session``, sk = SHA-256 of the session
id): the CSRF token, a tag of the API token the session was opened with, and
``expires_at`` (epoch seconds, also the table's TTL attribute, so DynamoDB deletes expired
sessions on its own; the service refuses them before that).

Only the hash of the session id is stored: reading the table gives no usable cookie.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.dynamodb_table import DynamoTable


def _key(key: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": "session"}, "sk": {"S": key}}


class DynamoSessionStore:
    def __init__(self, client: Any, table: str) -> None:
        self._db = DynamoTable(client, table, label="state table")

    def save_session(self, key: str, *, csrf: str, token_tag: str, expires_at: datetime) -> None:
        self._db.call(
            "put_item",
            Item={
                **_key(key),
                "csrf": {"S": csrf},
                "token_tag": {"S": token_tag},
                "expires_at": {"N": str(int(expires_at.timestamp()))},
            },
        )

    def load_session(self, key: str) -> dict[str, Any] | None:
        item = self._db.call("get_item", Key=_key(key), ConsistentRead=True).get("Item")
        if not item:
            return None
        return {
            "csrf": item["csrf"]["S"],
            "token_tag": item["token_tag"]["S"],
            "expires_at": datetime.fromtimestamp(int(item["expires_at"]["N"]), UTC),
        }

    def delete_session(self, key: str) -> None:
        self._db.call("delete_item", Key=_key(key))
