"""POST /webhook: every response of the contract, against moto's server over HTTP."""

from __future__ import annotations

import json
import os

import boto3
import pytest

from tests.ingress.helpers import (
    alert_body,
    minute_bar,
    post,
    queued_alert_ids,
    sqs_event,
    stored_items,
)


def _alerts_table() -> str:
    return os.environ["FLOWTRADER_ALERTS_TABLE"]


def _queue_url() -> str:
    return os.environ["FLOWTRADER_QUEUE_URL"]


def test_valid_alert_is_accepted_stored_and_queued(client):
    response = post(client, alert_body())

    assert response.status_code == 202
    body = json.loads(response.body)
    assert body["status"] == "accepted"
    assert queued_alert_ids(_queue_url()) == [body["alert_id"]]
    alerts = [i for i in stored_items(_alerts_table()) if i["pk"]["S"].startswith("alert#")]
    assert [a["alert_id"]["S"] for a in alerts] == [body["alert_id"]]
    assert alerts[0]["status"]["S"] == "queued"
    assert alerts[0]["pending"]["S"] == "1"  # until a worker takes it


def test_worker_takes_the_alert_out_of_the_sweep_and_an_untaken_one_is_swept_once(client):
    from datetime import timedelta

    from app import process_alerts
    from chalicelib import bootstrap
    from chalicelib.domain import utc_now
    from chalicelib.services.ingest_alert import requeue_pending

    taken = json.loads(post(client, alert_body(order_id="taken")).body)["alert_id"]
    lost = json.loads(post(client, alert_body(order_id="lost")).body)["alert_id"]
    messages = queued_alert_ids(_queue_url())
    assert sorted(messages) == sorted([taken, lost])
    boto3.client("sqs").purge_queue(QueueUrl=_queue_url())  # `lost`'s message goes missing
    process_alerts(sqs_event(json.dumps({"alert_id": taken})), None)

    c = bootstrap.container()
    later = utc_now() + timedelta(minutes=1)
    assert c.alert_queue.depth() == 0  # both messages were taken; one alert is still pending
    assert requeue_pending(c.alert_store, c.alert_queue, later, waiting=0) == [lost]
    assert queued_alert_ids(_queue_url()) == [lost]
    assert requeue_pending(c.alert_store, c.alert_queue, later, waiting=0) == []


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded"],
)
def test_tradingview_text_plain_bodies_are_accepted(client, content_type):
    response = post(client, alert_body(), content_type=content_type)

    assert response.status_code == 202


def test_exchange_prefixed_ticker_keeps_symbol_exchange_and_unknown_fields(client, aws):
    response = post(client, alert_body(ticker="NYSE:IBM", my_note="from the 5m chart", rsi=71.5))
    alert_id = json.loads(response.body)["alert_id"]

    from chalicelib import bootstrap

    record = bootstrap.container().alert_store.get(alert_id)
    assert record["alert"]["ticker"] == "NYSE:IBM"
    assert record["alert"]["my_note"] == "from the 5m chart"
    assert record["alert"]["rsi"] == 71.5
    assert "passphrase" not in json.dumps(record)
    items = [i for i in stored_items(_alerts_table()) if i["pk"]["S"] == f"alert#{alert_id}"]
    assert items[0]["symbol"]["S"] == "IBM"


def test_repeat_with_same_alert_id_is_a_duplicate_of_the_first(client):
    first = post(client, alert_body(alert_id="tv-123", time=None))
    again = post(client, alert_body(alert_id="tv-123", time=None, price=191.0))

    assert first.status_code == 202
    assert again.status_code == 200
    assert json.loads(again.body) == {
        "status": "duplicate",
        "alert_id": json.loads(first.body)["alert_id"],
    }
    assert len(queued_alert_ids(_queue_url())) == 1


def test_same_ticker_action_bar_time_order_and_strategy_is_a_duplicate(client):
    first = post(client, alert_body(order_id="Long", strategy="ORB"))
    again = post(client, alert_body(order_id="Long", strategy="ORB", comment="resent"))
    other_bar = post(
        client, alert_body(order_id="Long", strategy="ORB", time=minute_bar(), interval="1")
    )
    other_order = post(client, alert_body(order_id="Short", strategy="ORB"))

    assert first.status_code == 202
    assert again.status_code == 200
    assert json.loads(again.body)["alert_id"] == json.loads(first.body)["alert_id"]
    assert other_bar.status_code == 202
    assert other_order.status_code == 202


def test_identical_alert_without_time_is_a_duplicate_within_the_window(client):
    first = post(client, alert_body(time=None))
    again = post(client, alert_body(time=None))
    different = post(client, alert_body(time=None, price=190.13))

    assert first.status_code == 202
    assert again.status_code == 200
    assert different.status_code == 202


@pytest.mark.parametrize(
    "body",
    [
        alert_body(passphrase="wrong"),
        alert_body(passphrase=None),
        alert_body(passphrase=12345),
        alert_body(passphrase=""),
    ],
    ids=["wrong", "missing", "not-a-string", "empty"],
)
def test_wrong_or_missing_passphrase_is_401_and_stores_nothing(client, body):
    response = post(client, body)

    assert response.status_code == 401
    assert json.loads(response.body)["error"] == "wrong or missing passphrase"
    assert stored_items(_alerts_table()) == []


def test_source_outside_the_allowlist_is_403(client, monkeypatch):
    from chalicelib import bootstrap
    from chalicelib.settings import TRADINGVIEW_IPS

    monkeypatch.setenv("FLOWTRADER_ALLOWED_IPS", ",".join(TRADINGVIEW_IPS))
    bootstrap.reset()
    denied = post(client, alert_body())
    monkeypatch.setenv("FLOWTRADER_ALLOWED_IPS", ",".join([*TRADINGVIEW_IPS, "127.0.0.0/8"]))
    bootstrap.reset()
    allowed = post(client, alert_body())

    assert denied.status_code == 403
    assert allowed.status_code == 202


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json at all", "not valid JSON"),
        (b'{"ticker": "AAPL", "action": "buy",', "not valid JSON"),
        (b'["buy", "AAPL"]', "must be a JSON object"),
        (b'"buy AAPL"', "must be a JSON object"),
        (b"", "empty"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
    ],
)
def test_body_that_is_not_a_json_object_is_400(client, raw, message):
    response = post(client, raw, content_type="text/plain")

    assert response.status_code == 400
    assert message in json.loads(response.body)["error"]
    assert stored_items(_alerts_table()) == []


def test_body_over_16_kib_is_413(client):
    response = post(client, alert_body(comment=None, padding="x" * (16 * 1024)))

    assert response.status_code == 413
    assert stored_items(_alerts_table()) == []


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"price": 0}, "price", "positive"),
        ({"price": -5}, "price", "positive"),
        ({"order_type": "limit"}, "alert", "needs limit_price"),
        ({"order_type": "stop"}, "alert", "needs stop_price"),
        ({"order_type": "trailing_stop"}, "alert", "exactly one of trail_percent"),
        ({"order_type": "trailing_stop", "trail_percent": 0}, "trail_percent", "between 0 and 100"),
        (
            {"order_type": "trailing_stop", "trail_percent": 150},
            "trail_percent",
            "between 0 and 100",
        ),
        ({"stop_loss": 195.0}, "alert", "stop_loss must be below"),
        ({"action": "short", "stop_loss": 185.0}, "alert", "stop_loss must be above"),
        ({"take_profit": 180.0}, "alert", "take_profit must be above"),
        ({"ticker": ""}, "ticker", "at least 1 character"),
        ({"ticker": "NASDAQ:"}, "ticker", "SYMBOL or EXCHANGE:SYMBOL"),
        ({"action": "yolo"}, "action", "'buy', 'sell', 'short', 'cover' or 'exit'"),
        ({"price": "abc"}, "price", "valid number"),
        ({"quantity": [1, 2]}, "quantity", "valid number"),
        ({"time": "yesterday"}, "time", "datetime"),
        ({"market_position": "sideways"}, "market_position", "'long', 'short' or 'flat'"),
        ({"ticker": None}, "ticker", "required"),
        ({"action": None}, "action", "required"),
    ],
)
def test_schema_violation_is_422_with_field_messages(client, fields, field, message):
    body = alert_body()
    for key, value in fields.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value

    response = post(client, body)

    assert response.status_code == 422
    errors = json.loads(response.body)["errors"]
    assert any(e["field"] == field and message in e["message"] for e in errors), errors
    assert stored_items(_alerts_table()) == []


def test_strategy_alert_fields_validate(client):
    body = alert_body(
        action="sell",
        market_position="short",
        prev_market_position="long",
        quantity="100",
        order_id="Short",
        strategy="ORB 5m",
        stop_loss=192.0,
        take_profit=185.0,
    )

    response = post(client, body)

    assert response.status_code == 202


def test_storage_failure_before_anything_is_stored_is_503(client, monkeypatch):
    from chalicelib import bootstrap

    monkeypatch.setenv("FLOWTRADER_ALERTS_TABLE", "no-such-table")
    bootstrap.reset()

    response = post(client, alert_body())

    assert response.status_code == 503
    assert queued_alert_ids(_queue_url()) == []


def test_queue_failure_after_store_still_answers_202_and_the_sweeper_requeues(client, monkeypatch):
    from datetime import timedelta

    from chalicelib import bootstrap
    from chalicelib.domain import utc_now
    from chalicelib.services.ingest_alert import requeue_pending

    good_queue = _queue_url()
    monkeypatch.setenv("FLOWTRADER_QUEUE_URL", good_queue.replace("-alerts", "-missing"))
    bootstrap.reset()

    response = post(client, alert_body())
    repeat = post(client, alert_body())

    assert response.status_code == 202
    assert repeat.status_code == 200
    alert_id = json.loads(response.body)["alert_id"]
    c = bootstrap.container()
    assert c.alert_store.get(alert_id)["status"] == "stored"

    monkeypatch.setenv("FLOWTRADER_QUEUE_URL", good_queue)
    bootstrap.reset()
    c = bootstrap.container()
    assert requeue_pending(c.alert_store, c.alert_queue, utc_now()) == []  # within the grace
    later = utc_now() + timedelta(minutes=1)
    assert requeue_pending(c.alert_store, c.alert_queue, later) == [alert_id]
    assert queued_alert_ids(good_queue) == [alert_id]
    assert c.alert_store.get(alert_id)["status"] == "queued"
    assert requeue_pending(c.alert_store, c.alert_queue, later) == []


def test_missing_passphrase_configuration_refuses_without_storing(client, monkeypatch):
    from chalicelib import bootstrap

    monkeypatch.setenv("FLOWTRADER_WEBHOOK_PASSPHRASE", "")
    bootstrap.reset()

    response = post(client, alert_body())

    assert response.status_code == 503
    assert stored_items(_alerts_table()) == []
