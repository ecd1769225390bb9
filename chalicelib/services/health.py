"""Readiness of each component the webhook and the worker depend on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.bootstrap import Container


def _probe(name: str, call: Any) -> dict[str, Any]:
    try:
        call()
    except Exception as exc:  # any failure means "not ready"; the type says why
        return {"component": name, "ready": False, "error": type(exc).__name__}
    return {"component": name, "ready": True}


def check_health(c: Container) -> dict[str, Any]:
    s = c.settings
    session = c.boto_session
    components = [
        {
            "component": "webhook_passphrase",
            "ready": bool(s.webhook_passphrase.get_secret_value()),
        },
        _probe(
            "alerts_table",
            lambda: session.client("dynamodb").describe_table(TableName=s.alerts_table),
        ),
        _probe(
            "state_table",
            lambda: session.client("dynamodb").describe_table(TableName=s.state_table),
        ),
        _probe(
            "queue",
            lambda: session.client("sqs").get_queue_attributes(
                QueueUrl=s.queue_url, AttributeNames=["QueueArn"]
            ),
        ),
    ]
    return {
        "ready": all(c["ready"] for c in components),
        "stage": s.stage,
        "components": components,
    }
