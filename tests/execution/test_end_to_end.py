"""Webhook → queue worker → paper broker → the read API, through app.py on moto's server."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from tests.conftest import API_TOKEN, PASSPHRASE

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def trading_client(client, monkeypatch):
    """The app with the paper broker and no market-hours check (the clock is real here)."""
    from chalicelib import bootstrap

    monkeypatch.setenv("FLOWTRADER_MARKET_HOURS_ONLY", "false")
    monkeypatch.setenv("FLOWTRADER_BROKER", "paper")
    bootstrap.reset()
    return client


def _sqs_event(alert_id: str, receive_count: int = 1) -> dict:
    return {
        "Records": [
            {
                "messageId": "m1",
                "receiptHandle": "r1",
                "body": json.dumps({"alert_id": alert_id}),
                "attributes": {"ApproximateReceiveCount": str(receive_count)},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:flowtrader-test-alerts",
                "awsRegion": "us-east-1",
            }
        ]
    }


def _post(client, **fields) -> str:
    body = {"passphrase": PASSPHRASE, "ticker": "NASDAQ:AAPL", "price": 190.0, **fields}
    r = client.http.post(
        "/webhook", headers={"Content-Type": "application/json"}, body=json.dumps(body)
    )
    assert r.status_code == 202, r.body
    return r.json_body["alert_id"]


def test_buy_with_stop_and_target_becomes_a_paper_bracket_and_a_position(trading_client):
    from app import process_alerts

    alert_id = _post(trading_client, action="buy", quantity=3, stop_loss=185.0, take_profit=200.0)
    assert process_alerts(_sqs_event(alert_id), None) == {"batchItemFailures": []}

    alert = trading_client.http.get(f"/api/alerts/{alert_id}", headers=AUTH).json_body
    assert alert["status"] == "filled"
    details = alert["details"]
    assert details["decision"]["kind"] == "open"
    assert all(v["allowed"] for v in details["verdicts"]["open"])
    assert details["orders"][0]["client_order_id"] == f"ft-{alert_id}-open"
    assert len(details["orders"][0]["legs"]) == 2  # take-profit and stop-loss
    # latency by stage: webhook → queue → worker, then each stage of the decision
    latency = details["latency_ms"]
    assert {"queue", "context", "decide", "gate", "broker", "record", "worker", "total"} <= set(
        latency
    )
    assert all(v >= 0 for v in latency.values())
    assert latency["total"] >= latency["worker"] >= latency["broker"]
    assert details["context"]["gaps"]  # the sources not configured here say so

    orders = trading_client.http.get("/api/orders", headers=AUTH).json_body["orders"]
    assert [o["client_order_id"] for o in orders] == [f"ft-{alert_id}-open"]
    positions = trading_client.http.get("/api/positions", headers=AUTH).json_body["positions"]
    assert [(p["symbol"], p["qty"]) for p in positions] == [("AAPL", 3.0)]


def test_exit_closes_the_paper_position_and_cancels_its_bracket(trading_client):
    from app import process_alerts

    opened = _post(trading_client, action="buy", quantity=3, stop_loss=185.0, take_profit=200.0)
    process_alerts(_sqs_event(opened), None)
    closed = _post(trading_client, action="exit", price=192.0)
    assert process_alerts(_sqs_event(closed), None) == {"batchItemFailures": []}

    alert = trading_client.http.get(f"/api/alerts/{closed}", headers=AUTH).json_body
    assert alert["status"] == "filled", alert
    assert alert["details"]["decision"]["kind"] == "close"
    positions = trading_client.http.get("/api/positions", headers=AUTH).json_body
    assert positions["positions"] == []
    orders = trading_client.http.get("/api/orders", headers=AUTH).json_body["orders"]
    assert {o["client_order_id"] for o in orders} == {
        f"ft-{opened}-open",
        f"ft-{closed}-close",
    }
    from chalicelib import bootstrap

    entry = bootstrap.container().broker.get_order_by_client_id(f"ft-{opened}-open")
    assert {leg.status.value for leg in entry.legs} == {"canceled"}


def test_a_worker_that_cannot_build_its_broker_records_why_on_the_alert(client, monkeypatch):
    from app import process_alerts
    from chalicelib import bootstrap

    monkeypatch.setenv("FLOWTRADER_BROKER", "carrier-pigeon")
    bootstrap.reset()
    alert_id = _post(client, action="buy", quantity=1)

    with pytest.raises(BatchProcessingError):  # the whole batch failed: SQS redelivers it
        process_alerts(_sqs_event(alert_id), None)

    alert = client.http.get(f"/api/alerts/{alert_id}", headers=AUTH).json_body
    assert alert["status"] == "failed"
    assert "carrier-pigeon" in alert["reason"]
