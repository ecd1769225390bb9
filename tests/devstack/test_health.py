"""/api/health reports the worker's liveness where a heartbeat exists (the local stack's
worker writes one; a Lambda does not) and the age of the oldest alert no worker has taken."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import boto3

from chalicelib import bootstrap
from chalicelib.domain import Alert
from chalicelib.services.health import HEARTBEAT_KEY
from chalicelib.services.ingest_alert import new_alert_id


def _component(body: dict, name: str) -> dict | None:
    return next((c for c in body["components"] if c["component"] == name), None)


def _beat(age_s: float, consumers_alive: int = 2) -> None:
    boto3.client("dynamodb").put_item(
        TableName=bootstrap.container().settings.state_table,
        Item={
            **HEARTBEAT_KEY,
            "at_ms": {"N": str(int((time.time() - age_s) * 1000))},
            "every_s": {"N": "2"},
            "pid": {"N": "4242"},
            "consumers": {"N": "2"},
            "consumers_alive": {"N": str(consumers_alive)},
            "taken": {"N": "7"},
        },
    )


def test_without_a_heartbeat_health_reports_no_worker_and_stays_ready(client):
    response = client.http.get("/api/health")
    assert response.status_code == 200
    assert _component(response.json_body, "worker") is None
    queue = _component(response.json_body, "queue")
    assert queue["ready"]
    assert queue["oldest_pending_age_s"] == 0.0


def test_a_fresh_heartbeat_is_a_live_worker(client):
    _beat(age_s=1)
    response = client.http.get("/api/health")
    worker = _component(response.json_body, "worker")
    assert response.status_code == 200
    assert worker["ready"]
    assert worker["pid"] == 4242
    assert worker["alerts_taken"] == 7


def test_a_stale_heartbeat_or_a_stopped_consumer_is_not_ready(client):
    _beat(age_s=60)
    response = client.http.get("/api/health")
    assert response.status_code == 503
    assert "no heartbeat for 60 s" in _component(response.json_body, "worker")["error"]
    _beat(age_s=0, consumers_alive=1)
    response = client.http.get("/api/health")
    assert response.status_code == 503
    assert _component(response.json_body, "worker")["error"] == "1 of 2 consumers stopped"


def test_health_reports_the_age_of_the_oldest_waiting_alert(client):
    c = bootstrap.container()
    stored_at = datetime.now(UTC) - timedelta(seconds=90)
    for offset in (0, 30):
        at = stored_at + timedelta(seconds=offset)
        alert = Alert.model_validate({"ticker": "NASDAQ:AAPL", "action": "buy"})
        alert_id = new_alert_id(at)
        c.alert_store.store_once(alert_id, f"k{offset}", alert, at, at + timedelta(days=1), None)
        c.alert_queue.enqueue(alert_id)
    queue = _component(client.http.get("/api/health").json_body, "queue")
    assert 89 <= queue["oldest_pending_age_s"] <= 120
    assert queue["messages_waiting"] == 2
