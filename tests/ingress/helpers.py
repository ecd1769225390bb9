"""Small helpers the ingress tests share: alert bodies and a look into the alerts table."""

from __future__ import annotations

import json
from typing import Any

import boto3

from tests.conftest import PASSPHRASE


def alert_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "passphrase": PASSPHRASE,
        "ticker": "NASDAQ:AAPL",
        "action": "buy",
        "price": 190.12,
        "time": "2026-11-26T15:30:00Z",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def post(client: Any, body: Any, content_type: str = "application/json") -> Any:
    raw = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.http.post("/webhook", headers={"Content-Type": content_type}, body=raw)


def stored_items(table: str) -> list[dict[str, Any]]:
    """Every item in the alerts table (alerts and idempotency keys)."""
    ddb = boto3.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def queued_alert_ids(queue_url: str) -> list[str]:
    sqs = boto3.client("sqs")
    ids = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return ids
        ids += [json.loads(m["Body"])["alert_id"] for m in messages]


def sqs_event(*bodies: str) -> dict:
    """An SQS event in Lambda's shape, one record per body (messageId m0, m1, ...)."""
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:flowtrader-test-alerts",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }
