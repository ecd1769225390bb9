"""No secret is ever logged or returned (docs/architecture.md, money-safety invariants)."""

from __future__ import annotations

import json
import logging

from tests.conftest import API_TOKEN, PASSPHRASE
from tests.ingress.helpers import alert_body, post, sqs_event


def test_passphrase_and_token_never_reach_logs_responses_or_storage(client, caplog):
    from app import process_alerts
    from chalicelib import bootstrap

    caplog.set_level(logging.DEBUG)
    responses = [
        post(client, alert_body()),
        post(client, alert_body()),  # duplicate
        post(client, alert_body(passphrase=PASSPHRASE + "x")),  # near miss
        post(client, alert_body(price=-1)),  # 422 echoes fields, never the passphrase
        post(client, alert_body(order_type="limit")),
        post(client, b'{"passphrase": "' + PASSPHRASE.encode() + b'", broken', "text/plain"),
    ]
    alert_id = json.loads(responses[0].body)["alert_id"]
    responses.append(
        client.http.get(f"/api/alerts/{alert_id}", headers={"Authorization": f"Bearer {API_TOKEN}"})
    )
    responses.append(client.http.get("/api/health"))
    process_alerts(sqs_event(json.dumps({"alert_id": alert_id})), None)
    stored = json.dumps(bootstrap.container().alert_store.get(alert_id))
    journal = json.dumps(bootstrap.container().state_store.journal(alert_id))

    for secret in (PASSPHRASE, API_TOKEN):
        assert secret not in caplog.text
        assert all(secret not in r.body.decode() for r in responses)
        assert secret not in stored
        assert secret not in journal
