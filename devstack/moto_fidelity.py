"""Make moto's DynamoDB behave like DynamoDB's where our invariants and figures care.

moto 5.2.5 snapshots *every table a transaction touches* with `copy.deepcopy` before it runs
and, on a cancelled transaction, puts those whole-table snapshots back. Two consequences:
each webhook costs O(table size) (the local stack slowed to 100+ ms per alert after a few
hundred alerts), and a cancelled transaction can roll back *other clients' writes* made
while it ran — the opposite of DynamoDB's isolation, and exactly what our concurrent
duplicate tests exercise. This patch snapshots only the items the transaction names,
restores only those, and serialises transactions (DynamoDB runs them isolated).

moto 5.2.5 also answers a Query on the base table by listing and *sorting every item of the
table* (`Table.all_items`) and keeping those of the queried partition: each query costs
O(table log table), so a decision's queries slowed as the journal and order history grew
(20–30 ms each after a few hundred alerts; DynamoDB reads only the partition). The patch
hands that query the partition's items only — in the same order, so every range
condition, sort direction, limit and page key comes out as before.

moto 5.2.5 applies an UpdateItem as read, modify, write without a lock, so two concurrent
`ADD n :one` on one item can both read the old value and one increment is lost; DynamoDB
applies each single-item write atomically (the alert router's burst counter relies on it).
The patch runs UpdateItem under the same lock as transactions.

moto 5.2.5 writes every answer by walking the operation's output shape in botocore's model,
member by member: for a DynamoDB item that is every attribute against the fifteen members
of `AttributeValue`, about a millisecond per item, so a sweep that reads 200 orders held
moto's interpreter for half a second and every decision waiting on it. A data-plane answer
(`DynamoResult`: GetItem, Query, BatchGetItem …) is already DynamoDB's wire JSON, so the
patch writes it with `json.dumps` — keeping only the output shape's top-level members, binary
values base64-encoded as moto does — and leaves anything else (a datetime: the control
plane) to moto. `VERIFY = True` makes every answer be written both ways and compared
(tests/devstack/test_moto_fidelity.py).

Applied by the embedded AWS (devstack.aws) in-process and in `python -m devstack.moto_server`.
"""

from __future__ import annotations

import base64
import copy
import inspect
import json
import threading
from typing import Any

_applied = False
VERIFY = False  # write every DynamoDB data-plane answer both ways and compare them
_lock = threading.RLock()
_querying = threading.local()  # (table, hash key) while a base-table Query runs


class _CopyWithoutTables:
    """`copy` for moto's dynamodb models module: tables are not deep-copied (see above)."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def deepcopy(self, obj: Any, memo: dict[int, Any] | None = None) -> Any:
        if isinstance(obj, self._table_type):
            return obj
        return copy.deepcopy(obj, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _item_key(table: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any] | None:
    if op_type != "Put":
        return op.get("Key")
    attrs = op.get("Item", {})
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    if any(name not in attrs for name in names):
        return None  # moto's own validation reports it
    return {name: attrs[name] for name in names}


def apply() -> None:
    global _applied
    if _applied:
        return
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    models.copy = _CopyWithoutTables(Table)  # type: ignore[attr-defined]
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with _lock:
            backups = []
            for entry in transact_items:
                op_type, op = next(iter(entry.items()))
                table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
                key = _item_key(table, op_type, op) if table is not None else None
                if key is None:
                    continue
                current = self.get_item(table.name, key)
                attrs = copy.deepcopy(current.to_json()["Attributes"]) if current else None
                backups.append((table.name, key, attrs))
            try:
                original(self, transact_items)
            except Exception:
                for table_name, key, attrs in reversed(backups):
                    if attrs is None:
                        if self.get_item(table_name, key) is not None:
                            self.delete_item(table_name, key)
                    else:
                        self.put_item(table_name, attrs)
                raise

    models.DynamoDBBackend.transact_write_items = transact_write_items
    update_item = models.DynamoDBBackend.update_item

    def atomic_update_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _lock:
            return update_item(self, *args, **kwargs)

    models.DynamoDBBackend.update_item = atomic_update_item
    _query_reads_its_partition(Table)
    _answers_as_json()
    _applied = True


def _query_reads_its_partition(table_type: Any) -> None:
    all_items, query = table_type.all_items, table_type.query
    signature = inspect.signature(query)

    def partition_items(self: Any) -> list[Any]:
        scope = getattr(_querying, "scope", None)
        if scope is None or scope[0] is not self:
            return all_items(self)
        found = self.items.get(scope[1])  # .get: the partition dict is a defaultdict
        if found is None:
            return []
        items = list(found.values()) if self.range_key_attr else [found]
        return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

    def partition_query(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs).arguments
        if bound.get("index_name") or bound.get("hash_key") is None:
            return query(self, *args, **kwargs)
        _querying.scope = (self, bound["hash_key"])
        try:
            return query(self, *args, **kwargs)
        finally:
            _querying.scope = None

    table_type.all_items = partition_items
    table_type.query = partition_query


def _binary(value: Any) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(type(value).__name__)  # e.g. a datetime: moto's serializer writes it


def _answers_as_json() -> None:
    from moto.dynamodb.responses import DynamoResult

    shaped = DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        result, shape = self.result, context.operation_model.output_shape
        if not isinstance(result, dict) or shape is None:
            return shaped(self, context)
        members = shape.members
        try:
            body = json.dumps({k: v for k, v in result.items() if k in members}, default=_binary)
        except TypeError:
            return shaped(self, context)
        answer = (200, {"Content-Type": "application/x-amz-json-1.0"}, body)
        if VERIFY:
            status, headers, expected = shaped(self, context)
            if (status, dict(headers), json.loads(expected)) != (
                answer[0],
                answer[1],
                json.loads(body),
            ):
                raise AssertionError(
                    f"{context.operation_model.name}: moto wrote {status} {dict(headers)} "
                    f"{expected[:300]!r}, the fast path {body[:300]!r}"
                )
        return answer

    DynamoResult.execute_result = execute_result
