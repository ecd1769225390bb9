"""Where the paper account lives: items in the state table (pk / sk).

- ``paper#book`` / ``book``: cash, realized P/L and positions (JSON) and a ``version``.
- ``paper#order`` / ``<client_order_id>``: one order record (JSON in ``doc``) with its
  ``status``, ``symbol``, ``broker_order_id`` and ``version``: the source of truth.
- ``paper#working`` / ``<symbol>#<client_order_id>``: present exactly while that order is
  open (working, or a leg held until its entry fills), with a copy of the record's ``doc``
  and ``version``. Written in the same transaction as the record, so the decision path
  (open orders, working exits, the orders a price can fill) reads only what is open,
  never the history.
- ``paper#history`` / ``<created_at>#<client_order_id>``: one per top-level order, so
  `list_orders("all", limit=N)` reads the newest N, however long the history.
- ``paper#broker_id`` / ``<broker_order_id>``: the client_order_id, for cancels.
- ``paper#quote`` / ``<symbol>``: the last price it was told about.

Every read is consistent; every write that must not be lost is conditional on the version it
was computed from (a lost race is `Conflict`); any other AWS failure — throttling, an AWS
error, unreachable storage — is `BrokerUnavailable` (calls go through `DynamoTable`, the
error mapping every DynamoDB adapter shares).
Records placed before the index items existed are still found (by id, and by a full read
of ``paper#order`` when a broker id is not indexed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib.adapters.dynamodb_table import ConditionFailed, DynamoTable
from chalicelib.adapters.paper_broker.book import OPEN, Book, Record
from chalicelib.ports import BrokerUnavailable

PK_BOOK = "paper#book"
PK_ORDER = "paper#order"
PK_QUOTE = "paper#quote"
PK_WORKING = "paper#working"
PK_HISTORY = "paper#history"
PK_BROKER_ID = "paper#broker_id"
BATCH_GET_MAX = 100


class Conflict(Exception):
    """A conditional write lost a race; re-read and try again."""


class PaperStore:
    """The paper account's items in one DynamoDB table (`client` is a boto3 DynamoDB client)."""

    def __init__(self, client: Any, table: str, starting_cash: Decimal) -> None:
        self._db = DynamoTable(
            client, table, unavailable=BrokerUnavailable, label="paper broker state"
        )
        self._table = table
        self._starting_cash = starting_cash

    # --- reads ---------------------------------------------------------------------------

    def book(self) -> Book:
        item = self._get(PK_BOOK, "book")
        if item is None:
            return Book(cash=self._starting_cash)
        return Book.from_doc(item["doc"]["S"], int(item["version"]["N"]))

    def record(self, client_order_id: str) -> Record | None:
        item = self._get(PK_ORDER, client_order_id)
        return _record(item) if item else None

    def records(self, client_order_ids: Iterable[str]) -> list[Record]:
        """The records of these ids that exist, in the order asked (batched reads)."""
        wanted = list(dict.fromkeys(client_order_ids))
        found = {r.cid: r for r in map(_record, self._batch_get([(PK_ORDER, c) for c in wanted]))}
        return [found[c] for c in wanted if c in found]

    def open_records(self, symbol: str | None = None) -> list[Record]:
        """Every open record (of `symbol`, or all), from the ``paper#working`` copies."""
        prefix = f"{symbol}#" if symbol is not None else ""
        condition = "pk = :pk" + (" AND begins_with(sk, :prefix)" if prefix else "")
        values: dict[str, Any] = {":pk": {"S": PK_WORKING}}
        if prefix:
            values[":prefix"] = {"S": prefix}
        copies: list[Record] = []
        legacy: list[str] = []  # entries written before they carried the record
        for item in self._query(KeyConditionExpression=condition, ExpressionAttributeValues=values):
            if "doc" in item:
                copies.append(_record(item))
            else:
                legacy.append(item["sk"]["S"].split("#", 1)[1])
        copies += self.records(legacy)
        return [r for r in copies if r.order.status in OPEN]

    def history(self, start: dict[str, Any] | None, limit: int) -> tuple[list[str], Any]:
        """Client order ids of top-level orders, newest first: one page of `limit`."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": PK_HISTORY}},
            "ScanIndexForward": False,
            "ConsistentRead": True,
            "Limit": max(1, limit),
        }
        if start is not None:
            kwargs["ExclusiveStartKey"] = start
        page = self._db.call("query", **kwargs)
        ids = [item["cid"]["S"] for item in page.get("Items", [])]
        return ids, page.get("LastEvaluatedKey")

    def client_id_for(self, broker_order_id: str) -> str | None:
        item = self._get(PK_BROKER_ID, broker_order_id)
        if item is not None:
            return str(item["cid"]["S"])
        # Placed before broker ids were indexed: the one read that grows with the history.
        for raw in self._query(
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": PK_ORDER}}
        ):
            if raw["broker_order_id"]["S"] == broker_order_id:
                return str(raw["sk"]["S"])
        return None

    def quote(self, symbol: str) -> Decimal | None:
        item = self._get(PK_QUOTE, symbol)
        return Decimal(item["price"]["N"]) if item else None

    def quotes(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        items = self._batch_get([(PK_QUOTE, s) for s in symbols])
        return {i["sk"]["S"]: Decimal(i["price"]["N"]) for i in items}

    # --- writes --------------------------------------------------------------------------

    def put_new(self, records: list[Record], book: Book | None = None) -> None:
        """Create an order's records and their index items, and write `book` (an order
        filled as it was placed), conditional on its version; `Conflict` if the id exists
        or the book moved."""
        items: list[dict[str, Any]] = []
        for r in records:
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": self._order_item(r),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
            items.append(self._working_entry(r))
            items.append(self._put({"pk": _s(PK_BROKER_ID), "sk": _s(r.order.broker_order_id)}, r))
            if r.parent is None:
                sk = f"{r.created_at}#{r.cid}"
                items.append(self._put({"pk": _s(PK_HISTORY), "sk": _s(sk)}, r))
        if book is not None:
            items.append(self._book_put(book))
        self._write("transact_write_items", TransactItems=items)

    def commit(self, records: list[Record], book: Book | None) -> None:
        """Write records (and the book), each conditional on the version it was read at."""
        items = []
        for r in records:
            bumped = replace(r, version=r.version + 1)
            items.append(self._working_entry(bumped))
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": self._order_item(bumped),
                        "ConditionExpression": "version = :v",
                        "ExpressionAttributeValues": {":v": {"N": str(r.version)}},
                    }
                }
            )
        if book is not None:
            items.append(self._book_put(book))
        self._write("transact_write_items", TransactItems=items)

    def save_quote(self, symbol: str, price: float, time: datetime) -> None:
        """Remember the last price; an older price never overwrites a newer one."""
        try:
            self._write(
                "put_item",
                Item={
                    "pk": _s(PK_QUOTE),
                    "sk": _s(symbol),
                    "price": {"N": str(price)},
                    "time": _s(time.isoformat()),
                },
                ConditionExpression="attribute_not_exists(pk) OR #t <= :t",
                ExpressionAttributeNames={"#t": "time"},
                ExpressionAttributeValues={":t": _s(time.isoformat())},
            )
        except Conflict:
            return  # a newer price is already there

    # --- items ---------------------------------------------------------------------------

    def _order_item(self, r: Record) -> dict[str, Any]:
        return {
            "pk": _s(PK_ORDER),
            "sk": _s(r.cid),
            "doc": _s(r.to_doc()),
            "status": _s(r.order.status.value),
            "symbol": _s(r.order.symbol),
            "broker_order_id": _s(r.order.broker_order_id),
            "version": {"N": str(r.version)},
        }

    def _book_put(self, book: Book) -> dict[str, Any]:
        """The book at the next version, conditional on the version it was computed from."""
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                "pk": _s(PK_BOOK),
                "sk": _s("book"),
                "doc": _s(book.to_doc()),
                "version": {"N": str(book.version + 1)},
            },
        }
        if book.version == 0:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "version = :v"
            put["ExpressionAttributeValues"] = {":v": {"N": str(book.version)}}
        return {"Put": put}

    def _put(self, key: dict[str, Any], r: Record) -> dict[str, Any]:
        return {"Put": {"TableName": self._table, "Item": {**key, "cid": _s(r.cid)}}}

    def _working_entry(self, r: Record) -> dict[str, Any]:
        """Keep ``paper#working`` in step with the record: listed exactly while open."""
        key = {"pk": _s(PK_WORKING), "sk": _s(f"{r.order.symbol}#{r.cid}")}
        if r.order.status in OPEN:
            item = {
                **key,
                "doc": _s(r.to_doc()),
                "status": _s(r.order.status.value),
                "version": {"N": str(r.version)},
            }
            return {"Put": {"TableName": self._table, "Item": item}}
        return {"Delete": {"TableName": self._table, "Key": key}}

    # --- plumbing ------------------------------------------------------------------------

    def _write(self, op: str, **kwargs: Any) -> None:
        """Run a write; a lost condition is `Conflict` (AWS failures: `BrokerUnavailable`)."""
        try:
            self._db.call(op, **kwargs)
        except ConditionFailed as exc:
            raise Conflict() from exc

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        got = self._db.call("get_item", Key={"pk": _s(pk), "sk": _s(sk)}, ConsistentRead=True)
        return got.get("Item")

    def _batch_get(self, keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_MAX):
            request = {
                self._table: {
                    "Keys": [
                        {"pk": _s(pk), "sk": _s(sk)}
                        for pk, sk in keys[start : start + BATCH_GET_MAX]
                    ],
                    "ConsistentRead": True,
                }
            }
            while request:
                page = self._db.call("batch_get_item", RequestItems=request)
                items += page.get("Responses", {}).get(self._table, [])
                request = page.get("UnprocessedKeys") or {}
        return items

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return self._db.query(ConsistentRead=True, **kwargs)


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _record(item: dict[str, Any]) -> Record:
    return Record.from_doc(item["doc"]["S"], int(item["version"]["N"]))
