"""Small helpers the ingress tests share: alert bodies and a look into the alerts table."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from tests.conftest import PASSPHRASE


def tv_time(moment: datetime) -> str:
    """A time as TradingView's `{{time}}`/`{{timenow}}` spell it: yyyy-MM-ddTHH:mm:ssZ, UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def todays_bar() -> str:
    """The open of today's daily bar (UTC). With `interval` "1D" an alert on it is fresh all
    day, so two alerts built moments apart name the same bar (except across midnight)."""
    return tv_time(datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0))


def minute_bar(minutes_ago: int = 1) -> str:
    """The open of the 1-minute bar `minutes_ago` minutes back (send with interval "1")."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return tv_time(now - timedelta(minutes=minutes_ago))


def alert_body(**fields: Any) -> dict[str, Any]:
    """A valid indicator alert on today's daily bar; a field given as None is left out."""
    body: dict[str, Any] = {
        "passphrase": PASSPHRASE,
        "ticker": "NASDAQ:AAPL",
        "action": "buy",
        "price": 190.12,
        "time": todays_bar(),
        "interval": "1D",
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


def raw_http(
    base_url: str, request: bytes, timeout: float = 10.0, half_close: bool = False
) -> tuple[int, str, bytes]:
    """Send `request` verbatim on a fresh connection; (status, header block, body).

    Reads until the response's Content-Length is in, or the server closes the connection;
    a server that closes without answering gives status 0. `half_close` shuts the sending
    side after the request, as a client that gives up mid-body does.
    """
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(base_url)
    data = b""
    with socket.create_connection((where.hostname, where.port), timeout=timeout) as conn:
        conn.sendall(request)
        if half_close:
            conn.shutdown(socket.SHUT_WR)
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                lengths = [
                    line.split(b":", 1)[1].strip()
                    for line in head.split(b"\r\n")[1:]
                    if line.lower().startswith(b"content-length:")
                ]
                if lengths and len(body) >= int(lengths[0]):
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    if not head:
        return 0, "", b""
    status = int(head.split(b" ", 2)[1])
    return status, head.decode("latin-1"), body
