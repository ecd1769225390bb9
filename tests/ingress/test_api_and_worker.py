"""Reading alerts back, health, the queue worker's batch contract, and a light app.py."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import API_TOKEN
from tests.ingress.helpers import alert_body, post, sqs_event


def _bearer(token: str = API_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_get_alert_needs_the_bearer_token(client):
    alert_id = json.loads(post(client, alert_body()).body)["alert_id"]

    assert client.http.get(f"/api/alerts/{alert_id}").status_code == 401
    assert client.http.get(f"/api/alerts/{alert_id}", headers=_bearer("nope")).status_code == 401
    ok = client.http.get(f"/api/alerts/{alert_id}", headers=_bearer())
    assert ok.status_code == 200
    record = json.loads(ok.body)
    assert record["status"] == "queued"
    assert record["alert"]["ticker"] == "NASDAQ:AAPL"
    assert client.http.get("/api/alerts/nope", headers=_bearer()).status_code == 404


def test_health_reports_each_component_without_auth(client):
    response = client.http.get("/api/health")

    assert response.status_code == 200
    report = json.loads(response.body)
    assert report["ready"] is True
    assert report["version"]
    names = {c["component"] for c in report["components"]}
    assert {"alerts_table", "state_table", "queue", "webhook_passphrase"} <= names


def test_health_is_503_when_a_component_is_missing(client, monkeypatch):
    from chalicelib import bootstrap

    monkeypatch.setenv("FLOWTRADER_STATE_TABLE", "no-such-table")
    bootstrap.reset()

    report = json.loads(client.http.get("/api/health").body)

    assert report["ready"] is False
    assert {c["component"]: c["ready"] for c in report["components"]}["state_table"] is False


def test_worker_records_an_outcome_and_reports_only_bad_records(client):
    from app import process_alerts
    from chalicelib import bootstrap

    alert_id = json.loads(post(client, alert_body()).body)["alert_id"]

    result = process_alerts(sqs_event(json.dumps({"alert_id": alert_id}), "not json"), None)

    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    record = bootstrap.container().alert_store.get(alert_id)
    assert record["status"] != "queued"
    assert record["reason"]


def test_redelivered_message_is_processed_once(client):
    from app import process_alerts
    from chalicelib import bootstrap

    alert_id = json.loads(post(client, alert_body()).body)["alert_id"]
    message = json.dumps({"alert_id": alert_id})

    process_alerts(sqs_event(message), None)
    first = bootstrap.container().alert_store.get(alert_id)
    again = process_alerts(sqs_event(message), None)
    second = bootstrap.container().alert_store.get(alert_id)

    assert again == {"batchItemFailures": []}
    assert second["status"] == first["status"]
    assert second["reason"] == first["reason"]


def test_app_module_imports_nothing_heavy():
    heavy = ["pandas", "numpy", "openai", "alpaca", "boto3", "twilio"]
    code = f"import sys, app; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()

    assert out == "[]"
