"""GET /api/orders, /api/positions and /api/alerts/{id}/journal: token-protected JSON."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib import bootstrap
from chalicelib.domain import Order, OrderStatus, OrderType, Position, Side
from tests.conftest import API_TOKEN

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def _seed() -> None:
    state = bootstrap.container().state_store
    for alert_id in ("01A", "01B"):
        state.record_order(
            alert_id,
            Order(
                broker_order_id=f"b-{alert_id}",
                client_order_id=f"ft-{alert_id}-open",
                symbol="AAPL",
                side=Side.BUY,
                qty=2,
                order_type=OrderType.MARKET,
                status=OrderStatus.FILLED,
                filled_qty=2,
                filled_avg_price=100.0,
            ),
            NOW,
        )
    state.replace_positions(
        [Position(symbol="AAPL", qty=4, avg_entry_price=100.0, market_price=101.0)], NOW
    )
    state.append_journal("01A", "decided", {"kind": "open"}, NOW)


def test_orders_route_lists_recorded_orders_newest_first(client):
    _seed()
    r = client.http.get("/api/orders?limit=1", headers=AUTH)
    assert r.status_code == 200
    assert r.json_body["count"] == 1
    assert r.json_body["orders"][0]["client_order_id"] == "ft-01B-open"
    assert r.json_body["orders"][0]["alert_id"] == "01B"


def test_orders_route_refuses_a_bad_limit(client):
    assert client.http.get("/api/orders?limit=lots", headers=AUTH).status_code == 400


def test_positions_route_shows_the_snapshot_with_notional(client):
    _seed()
    r = client.http.get("/api/positions", headers=AUTH)
    assert r.status_code == 200
    (position,) = r.json_body["positions"]
    assert position["symbol"] == "AAPL"
    assert position["notional_usd"] == 404.0
    assert r.json_body["gross_exposure_usd"] == 404.0


def test_journal_route_lists_an_alerts_events(client):
    _seed()
    r = client.http.get("/api/alerts/01A/journal", headers=AUTH)
    assert r.status_code == 200
    assert [e["event"] for e in r.json_body["events"]] == ["decided"]


def test_read_routes_need_the_bearer_token(client):
    for path in ("/api/orders", "/api/positions", "/api/alerts/01A/journal"):
        assert client.http.get(path).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.http.get(path, headers=wrong).status_code == 401
