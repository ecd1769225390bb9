"""Readiness of each component the webhook and the worker depend on, and how the worker keeps
up: the age of the oldest alert no worker has taken (the queue's age of oldest message, as
CloudWatch's ApproximateAgeOfOldestMessage would say, read from the alerts table's pending
index, which works the same against SQS and the embedded AWS), the queue's message counts,
and — where a worker writes a heartbeat (the local stack's worker does; a Lambda does not) —
whether that worker is alive. A stale heartbeat makes the stack not ready (503).

The AWS clients come from the composition root (`Container.dynamodb_client`, `sqs_client`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.bootstrap import Container

PENDING_INDEX = "pending"  # infra/template.yaml: the alerts table's sparse index of waiting alerts
HEARTBEAT_KEY = {"pk": {"S": "heartbeat"}, "sk": {"S": "worker"}}  # devstack/worker.py writes it
STALE_AFTER_BEATS = 5  # a heartbeat older than this many intervals means the worker is gone


def _probe(name: str, call: Any) -> dict[str, Any]:
    try:
        call()
    except Exception as exc:  # any failure means "not ready"; the type says why
        return {"component": name, "ready": False, "error": type(exc).__name__}
    return {"component": name, "ready": True}


def _queue(c: Container, now: datetime) -> dict[str, Any]:
    """The queue's readiness and backlog: message counts from SQS, the oldest waiting alert's
    age from the pending index."""
    s = c.settings
    try:
        attrs = c.sqs_client.get_queue_attributes(
            QueueUrl=s.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        oldest = c.dynamodb_client.query(
            TableName=s.alerts_table,
            IndexName=PENDING_INDEX,
            KeyConditionExpression="pending = :one",
            ExpressionAttributeValues={":one": {"S": "1"}},
            Limit=1,
        )
    except Exception as exc:
        return {"component": "queue", "ready": False, "error": type(exc).__name__}
    age_s = 0.0
    if oldest.get("Items"):
        stored_at = datetime.fromisoformat(oldest["Items"][0]["stored_at"]["S"])
        age_s = max(0.0, (now - stored_at).total_seconds())
    return {
        "component": "queue",
        "ready": True,
        "messages_waiting": int(attrs.get("ApproximateNumberOfMessages", 0)),
        "messages_in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        "oldest_pending_age_s": round(age_s, 1),
    }


def _worker(c: Container, now_s: float) -> dict[str, Any] | None:
    """The worker's liveness from its heartbeat; None where no worker writes one."""
    try:
        item = c.dynamodb_client.get_item(
            TableName=c.settings.state_table, Key=HEARTBEAT_KEY, ConsistentRead=True
        ).get("Item")
    except Exception as exc:
        return {"component": "worker", "ready": False, "error": type(exc).__name__}
    if not item:
        return None
    age_s = max(0.0, now_s - int(item["at_ms"]["N"]) / 1000)
    every_s = float(item.get("every_s", {}).get("N", "2"))
    consumers = int(item.get("consumers", {}).get("N", "1"))
    alive = int(item.get("consumers_alive", {}).get("N", str(consumers)))
    report: dict[str, Any] = {
        "component": "worker",
        "ready": age_s <= STALE_AFTER_BEATS * every_s and alive == consumers,
        "heartbeat_age_s": round(age_s, 1),
        "pid": int(item.get("pid", {}).get("N", "0")),
        "consumers": consumers,
        "consumers_alive": alive,
        "alerts_taken": int(item.get("taken", {}).get("N", "0")),
    }
    if not report["ready"]:
        report["error"] = (
            f"no heartbeat for {age_s:.0f} s: the worker is not running"
            if alive == consumers
            else f"{consumers - alive} of {consumers} consumers stopped"
        )
    return report


def check_health(c: Container) -> dict[str, Any]:
    s = c.settings
    now_s = time.time()
    components = [
        {
            "component": "webhook_passphrase",
            "ready": bool(s.webhook_passphrase.get_secret_value()),
        },
        _probe(
            "alerts_table",
            lambda: c.dynamodb_client.describe_table(TableName=s.alerts_table),
        ),
        _probe(
            "state_table",
            lambda: c.dynamodb_client.describe_table(TableName=s.state_table),
        ),
        _queue(c, datetime.fromtimestamp(now_s, UTC)),
    ]
    worker = _worker(c, now_s)
    if worker is not None:
        components.append(worker)
    return {
        "ready": all(c["ready"] for c in components),
        "stage": s.stage,
        "components": components,
    }
