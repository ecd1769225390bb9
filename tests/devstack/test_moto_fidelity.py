"""The embedded AWS must keep DynamoDB's transaction guarantees our invariants rely on."""

from __future__ import annotations

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
