"""The embedded AWS must keep DynamoDB's transaction guarantees our invariants rely on."""

from __future__ import annotations

import json
import os
import threading

import boto3
import pytest
from botocore.exceptions import ClientError


def _cancelled_transaction(ddb, table: str) -> None:
    with pytest.raises(ClientError) as cancelled:
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": "claim"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Put": {"TableName": table, "Item": {"pk": {"S": "never-written"}}}},
            ]
        )
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"


def test_cancelled_transactions_never_undo_other_clients_writes(aws):
    table = os.environ["FLOWTRADER_ALERTS_TABLE"]
    writer, canceller = boto3.client("dynamodb"), boto3.client("dynamodb")
    canceller.put_item(TableName=table, Item={"pk": {"S": "claim"}})
    done = threading.Event()

    def cancel_repeatedly() -> None:
        while not done.is_set():
            _cancelled_transaction(canceller, table)

    thread = threading.Thread(target=cancel_repeatedly)
    thread.start()
    try:
        for i in range(150):
            writer.put_item(TableName=table, Item={"pk": {"S": f"w{i}"}})
    finally:
        done.set()
        thread.join()

    written = {
        item["pk"]["S"]
        for item in boto3.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    }
    assert {f"w{i}" for i in range(150)} <= written
    assert "never-written" not in written  # the cancelled transaction left no partial write


def test_a_query_reads_its_partition_and_answers_as_dynamodb_does(aws):
    """moto lists and sorts the whole table for a base-table Query; the patch hands it only
    the partition. The answers must not change: order, range conditions, reverse scans,
    limits and page keys, with other partitions around."""
    ddb = boto3.client("dynamodb")
    table = os.environ["FLOWTRADER_STATE_TABLE"]
    for pk in ("a", "b", "c"):
        for i in range(12):
            ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": f"k{i:02d}"}})

    def sks(**kwargs):
        found, args = [], {"TableName": table, "ConsistentRead": True, **kwargs}
        while True:
            page = ddb.query(**args)
            found += [item["sk"]["S"] for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return found
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    everything = [f"k{i:02d}" for i in range(12)]
    b = {":pk": {"S": "b"}}
    assert sks(KeyConditionExpression="pk = :pk", ExpressionAttributeValues=b) == everything
    assert (
        sks(KeyConditionExpression="pk = :pk", ExpressionAttributeValues=b, ScanIndexForward=False)
        == everything[::-1]
    )
    assert sks(KeyConditionExpression="pk = :pk", ExpressionAttributeValues=b, Limit=5) == (
        everything
    )  # paged five at a time
    prefix = {**b, ":p": {"S": "k1"}}
    assert sks(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)", ExpressionAttributeValues=prefix
    ) == ["k10", "k11"]
    none = {":pk": {"S": "nobody"}}
    assert sks(KeyConditionExpression="pk = :pk", ExpressionAttributeValues=none) == []
    assert len(ddb.scan(TableName=table)["Items"]) >= 36  # a scan still sees every partition


@pytest.fixture
def verified(aws, monkeypatch):
    """Every DynamoDB answer written by moto's serializer and by the fast path, compared."""
    from devstack import moto_fidelity

    monkeypatch.setattr(moto_fidelity, "VERIFY", True)
    return boto3.client("dynamodb"), os.environ["FLOWTRADER_STATE_TABLE"]


def test_data_plane_answers_written_as_json_are_the_ones_moto_writes(verified):
    ddb, table = verified
    item = {
        "pk": {"S": "fidelity"},
        "sk": {"S": "a"},
        "n": {"N": "1.50"},
        "b": {"B": b"\x00\xffbinary"},
        "l": {"L": [{"S": "x"}, {"N": "2"}, {"M": {"deep": {"BOOL": False}}}]},
        "m": {"M": {"yes": {"BOOL": True}, "none": {"NULL": True}}},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": [b"x", b"y"]},
        "text": {"S": 'ünïcode ✓ "quoted" \\ back'},
    }
    ddb.put_item(TableName=table, Item=item, ReturnConsumedCapacity="TOTAL")
    for i in range(5):
        ddb.put_item(TableName=table, Item={"pk": {"S": "fidelity"}, "sk": {"S": f"b{i}"}})
    key = {"pk": {"S": "fidelity"}, "sk": {"S": "a"}}
    got = ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    assert got["b"] == {"B": b"\x00\xffbinary"}  # base64 on the wire, bytes again in boto3
    assert got == item | {"ss": got["ss"], "ns": got["ns"], "bs": got["bs"]}
    assert ddb.get_item(TableName=table, Key={**key, "sk": {"S": "none"}}).get("Item") is None
    page = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "fidelity"}},
        Limit=3,
        ReturnConsumedCapacity="TOTAL",
    )
    assert len(page["Items"]) == 3
    assert "LastEvaluatedKey" in page
    rest = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "fidelity"}},
        ExclusiveStartKey=page["LastEvaluatedKey"],
        ProjectionExpression="sk",
        ScanIndexForward=False,
    )
    assert rest["Items"]
    assert all(set(i) == {"sk"} for i in rest["Items"])  # the projection
    assert (
        ddb.query(
            TableName=table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "nothing"}},
        )["Items"]
        == []
    )
    batch = ddb.batch_get_item(
        RequestItems={table: {"Keys": [key, {**key, "sk": {"S": "b1"}}, {**key, "sk": {"S": "z"}}]}}
    )
    assert len(batch["Responses"][table]) == 2
    old = ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET n = :v ADD c :one",
        ExpressionAttributeValues={":v": {"N": "3"}, ":one": {"N": "1"}},
        ReturnValues="ALL_OLD",
    )["Attributes"]
    assert old["n"] == {"N": "1.50"}
    new = ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="ADD c :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )["Attributes"]
    assert new == {"c": {"N": "2"}}
    gone = ddb.delete_item(TableName=table, Key=key, ReturnValues="ALL_OLD")["Attributes"]
    assert gone["c"] == {"N": "2"}
    assert ddb.scan(TableName=table, Limit=2)["Count"] == 2
    with pytest.raises(ClientError) as refused:
        ddb.put_item(
            TableName=table,
            Item={"pk": {"S": "fidelity"}, "sk": {"S": "b0"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert ddb.describe_table(TableName=table)["Table"]["TableName"] == table  # moto's own


def test_the_whole_decision_path_answers_the_same_both_ways(verified, client):
    """Alerts through the webhook and the worker (open, then close) with every DynamoDB
    answer written both ways and compared."""
    from app import process_alerts
    from chalicelib import bootstrap
    from tests.ingress.helpers import alert_body, post, sqs_event

    for action in ("buy", "sell"):
        alert_id = json.loads(post(client, alert_body(action=action)).body)["alert_id"]
        assert process_alerts(sqs_event(json.dumps({"alert_id": alert_id})), None) == {
            "batchItemFailures": []
        }
        record = bootstrap.container().alert_store.get(alert_id)
        assert record["status"] == "filled", record["reason"]
