"""The embedded AWS keeps DynamoDB's items across a SIGKILL of its server (devstack.moto_server):
whatever a client was answered is replayed from the write-ahead log, refused writes stay
refused, and a restart compacts the log into a snapshot."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from devstack.aws import aws_client, start_embedded_aws


def _items(endpoint: str, table: str) -> list[dict]:
    ddb = aws_client("dynamodb", endpoint)
    items, kwargs = [], {"TableName": table}
    while True:
        page = ddb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return sorted(items, key=lambda i: json.dumps(i, sort_keys=True))
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _writes(endpoint: str, alerts: str, state: str) -> None:
    """Every kind of mutating call the app makes, including ones DynamoDB refuses."""
    ddb = aws_client("dynamodb", endpoint)
    for i in range(20):
        ddb.put_item(TableName=state, Item={"pk": {"S": "order"}, "sk": {"S": f"o{i}"}})
    ddb.update_item(
        TableName=state,
        Key={"pk": {"S": "pnl"}, "sk": {"S": "day#2026-11-26"}},
        UpdateExpression="ADD realized_usd :x",
        ExpressionAttributeValues={":x": {"N": "12.5"}},
    )
    ddb.update_item(
        TableName=state,
        Key={"pk": {"S": "pnl"}, "sk": {"S": "day#2026-11-26"}},
        UpdateExpression="ADD realized_usd :x",
        ExpressionAttributeValues={":x": {"N": "-2.5"}},
    )
    ddb.delete_item(TableName=state, Key={"pk": {"S": "order"}, "sk": {"S": "o3"}})
    slot = {"pk": {"S": "cooldown#account"}, "sk": {"S": "slot#000"}}
    ddb.put_item(TableName=state, Item={**slot, "claim_id": {"S": "first"}})
    with pytest.raises(ClientError):  # a second claim of the same slot is refused …
        ddb.put_item(
            TableName=state,
            Item={**slot, "claim_id": {"S": "second"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": alerts, "Item": {"pk": {"S": "key#k1"}}}},
            {"Put": {"TableName": alerts, "Item": {"pk": {"S": "alert#a1"}}}},
        ]
    )
    with pytest.raises(ClientError):  # … and so is a transaction that would repeat a key
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": alerts,
                        "Item": {"pk": {"S": "key#k1"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Put": {"TableName": alerts, "Item": {"pk": {"S": "alert#a2"}}}},
            ]
        )
    ddb.batch_write_item(
        RequestItems={
            state: [
                {"PutRequest": {"Item": {"pk": {"S": "position"}, "sk": {"S": s}}}}
                for s in ("AAPL", "MSFT")
            ]
        }
    )


def _start(data_dir: Path):
    return start_embedded_aws(own_process=True, data_dir=data_dir, stage="durable")


def test_items_survive_a_sigkill_of_the_embedded_aws(tmp_path: Path):
    first = _start(tmp_path)
    try:
        alerts, state = first.outputs["AlertsTableName"], first.outputs["StateTableName"]
        _writes(first.endpoint_url, alerts, state)
        before = {t: _items(first.endpoint_url, t) for t in (alerts, state)}
    finally:
        os.kill(first.server.pid, signal.SIGKILL)
        first.server.stop()

    second = _start(tmp_path)
    try:
        assert second.restored["replayed_requests"] > 20
        after = {t: _items(second.endpoint_url, t) for t in (alerts, state)}
        assert after == before
        pnl = [i for i in after[state] if i["pk"]["S"] == "pnl"]
        assert float(pnl[0]["realized_usd"]["N"]) == 10.0  # both ADDs, each once
        slot = [i for i in after[state] if i["pk"]["S"] == "cooldown#account"]
        assert slot[0]["claim_id"] == {"S": "first"}
        assert {"pk": {"S": "alert#a2"}} not in after[alerts]
    finally:
        second.stop()

    third = _start(tmp_path)  # the restart compacted the log into a snapshot
    try:
        assert third.restored["replayed_requests"] == 0
        assert third.restored["snapshot_items"] == sum(len(v) for v in before.values())
        assert {t: _items(third.endpoint_url, t) for t in (alerts, state)} == before
    finally:
        third.stop()
    assert sorted(p.name for p in (tmp_path / "aws").iterdir()) == [
        "lock",
        "snapshot-3.json",
        "wal-3.jsonl",
    ]


def test_a_torn_last_log_line_is_ignored(tmp_path: Path):
    first = _start(tmp_path)
    try:
        state = first.outputs["StateTableName"]
        ddb = aws_client("dynamodb", first.endpoint_url)
        ddb.put_item(TableName=state, Item={"pk": {"S": "order"}, "sk": {"S": "kept"}})
    finally:
        os.kill(first.server.pid, signal.SIGKILL)
        first.server.stop()
    (wal,) = (tmp_path / "aws").glob("wal-*.jsonl")
    with wal.open("a") as log:
        log.write('{"headers": {"X-Amz-Target": "DynamoDB_20120810.PutItem"}, "bo')

    second = _start(tmp_path)
    try:
        assert second.restored["replayed_requests"] == 1
        assert [i["sk"]["S"] for i in _items(second.endpoint_url, state)] == ["kept"]
    finally:
        second.stop()


def test_two_stacks_cannot_share_a_data_directory(tmp_path: Path):
    first = _start(tmp_path)
    try:
        with pytest.raises(RuntimeError, match="in use by another local stack"):
            _start(tmp_path)
    finally:
        first.stop()
