"""Flatten and the kill switch over HTTP (Chalice's test client, moto's server, the paper
broker in the state table): one close per request id, working exits canceled first,
journaled and announced."""

from __future__ import annotations

import json
import logging

import pytest

from tests.conftest import API_TOKEN
from tests.ingress.helpers import alert_body, post, sqs_event

BEARER = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def any_hour(aws, monkeypatch):
    """Trade whenever the test runs (the paper broker has no session of its own)."""
    from chalicelib import bootstrap

    monkeypatch.setenv("FLOWTRADER_MARKET_HOURS_ONLY", "false")
    monkeypatch.setenv("FLOWTRADER_MAX_TRADES_PER_HOUR", "0")
    bootstrap.reset()


def _open_position(client, ticker: str = "AAPL", qty: float = 5) -> None:
    """An alert through the webhook and the worker: a bracket entry fills at the price."""
    from app import process_alerts

    alert_id = json.loads(post(client, alert_body(ticker=ticker, quantity=qty)).body)["alert_id"]
    assert process_alerts(sqs_event(json.dumps({"alert_id": alert_id})), None) == {
        "batchItemFailures": []
    }


def _flatten(client, path: str, request_id: str):
    return client.http.post(path, headers=BEARER, body=json.dumps({"request_id": request_id}))


def _positions(client) -> list[dict]:
    return json.loads(client.http.get("/api/positions", headers=BEARER).body)["positions"]


def test_flatten_closes_the_position_once_and_cancels_its_exits(client, caplog):
    from chalicelib import bootstrap

    caplog.set_level(logging.INFO)
    _open_position(client)
    broker = bootstrap.container().broker
    exits_before = broker.working_exits("AAPL")
    assert exits_before  # the bracket's stop and target

    first = _flatten(client, "/api/positions/AAPL/flatten", "click-0001")
    again = _flatten(client, "/api/positions/AAPL/flatten", "click-0001")  # resent

    assert first.status_code == 200, first.body
    result = json.loads(first.body)["results"][0]
    assert result["status"] == "closed"
    # The stop and target are one OCO pair: canceling one takes the other along.
    assert set(result["canceled"]) <= {o.client_order_id for o in exits_before}
    assert result["canceled"]
    assert json.loads(again.body)["results"][0]["status"] == "flat"
    flat_orders = [
        o for o in broker.list_orders("all", 500) if o.client_order_id.startswith("ft-flat-")
    ]
    assert [o.client_order_id for o in flat_orders] == [result["order"]["client_order_id"]]
    assert broker.working_exits("AAPL") == []
    assert _positions(client) == []
    pnl = json.loads(client.http.get("/api/pnl", headers=BEARER).body)
    assert [t["symbol"] for t in pnl["trades"]] == ["AAPL"]
    actions = json.loads(client.http.get("/api/actions", headers=BEARER).body)["events"]
    assert [e["event"] for e in actions] == ["flatten", "flatten"]
    assert "]: flowtrader: flatten AAPL" in caplog.text


def test_flatten_all_closes_every_position(client):
    _open_position(client, "AAPL", 3)
    _open_position(client, "NASDAQ:MSFT", 2)

    response = _flatten(client, "/api/positions/flatten", "click-all-0001")

    results = json.loads(response.body)["results"]
    assert sorted((r["symbol"], r["status"]) for r in results) == [
        ("AAPL", "closed"),
        ("MSFT", "closed"),
    ]
    assert _positions(client) == []


def test_flatten_refuses_bad_input_and_changes_nothing(client):
    _open_position(client)

    for body in ({}, {"request_id": "short"}, {"request_id": "x" * 40}, {"request_id": 5}):
        response = client.http.post(
            "/api/positions/AAPL/flatten", headers=BEARER, body=json.dumps(body)
        )
        assert response.status_code == 400, body
    bad_symbol = _flatten(client, "/api/positions/A%24PL/flatten", "click-0002")
    assert bad_symbol.status_code == 400
    assert client.http.post("/api/positions/flatten", body="{}").status_code == 401
    assert [p["symbol"] for p in _positions(client)] == ["AAPL"]


def test_kill_switch_on_then_off_is_journaled_and_announced(client, caplog):
    caplog.set_level(logging.INFO)

    on = client.http.put(
        "/api/kill-switch", headers=BEARER, body=json.dumps({"engaged": True, "reason": "news"})
    )
    state = json.loads(client.http.get("/api/kill-switch", headers=BEARER).body)
    off = client.http.put("/api/kill-switch", headers=BEARER, body=json.dumps({"engaged": False}))
    bad = client.http.put("/api/kill-switch", headers=BEARER, body=json.dumps({"engaged": "yes"}))

    assert (on.status_code, off.status_code, bad.status_code) == (200, 200, 400)
    assert state["engaged"] is True
    assert state["reason"] == "news"
    assert json.loads(client.http.get("/api/kill-switch", headers=BEARER).body)["engaged"] is False
    events = json.loads(client.http.get("/api/actions", headers=BEARER).body)["events"]
    assert [(e["event"], e["data"]["engaged"]) for e in events] == [
        ("kill_switch", True),
        ("kill_switch", False),
    ]
    assert "]: flowtrader: kill switch on | Kill switch ON: news" in caplog.text


def test_alerts_list_newest_first_with_filters(client):
    from app import process_alerts

    ids = []
    for ticker, action in (("AAPL", "buy"), ("MSFT", "buy"), ("AAPL", "sell")):
        body = alert_body(ticker=ticker, action=action)
        ids.append(json.loads(post(client, body).body)["alert_id"])
    assert process_alerts(sqs_event(json.dumps({"alert_id": ids[0]})), None) == {
        "batchItemFailures": []
    }

    listed = json.loads(client.http.get("/api/alerts?limit=10", headers=BEARER).body)
    aapl = json.loads(client.http.get("/api/alerts?symbol=aapl", headers=BEARER).body)
    filled = json.loads(client.http.get("/api/alerts?status=filled", headers=BEARER).body)

    assert [a["alert_id"] for a in listed["alerts"]] == ids[::-1]
    assert [a["alert_id"] for a in aapl["alerts"]] == [ids[2], ids[0]]
    decided = filled["alerts"]
    assert [a["alert_id"] for a in decided] == [ids[0]]
    assert decided[0]["decision"] == "open"
    assert {v["check"] for v in decided[0]["verdicts"]} >= {"kill_switch", "max_open_positions"}
    assert decided[0]["latency_ms"] is not None
    for query in (
        "limit=0",
        "limit=201",
        "limit=²",
        "date=yesterday",
        "symbol=%24%24",
        "status=a;b",
    ):
        assert client.http.get(f"/api/alerts?{query}", headers=BEARER).status_code == 400, query
