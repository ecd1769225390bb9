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
