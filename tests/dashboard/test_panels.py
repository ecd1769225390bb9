"""The panels that show other areas' routes (/dashboard/panel/<name>): a route's refusal
is the panel's message in a 200, so the page never logs a failed request."""

from __future__ import annotations

import json

from tests.conftest import API_TOKEN

BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


def test_a_route_that_answers_is_passed_through(client):
    answer = json.loads(client.http.get("/dashboard/panel/settings", headers=BEARER).body)

    direct = json.loads(client.http.get("/api/settings", headers=BEARER).body)
    assert answer == {"ok": True, "data": direct}


def test_a_refusal_becomes_the_panels_reason(client):
    day_type = client.http.get("/dashboard/panel/day-type", headers=BEARER)
    bars = client.http.get("/dashboard/panel/bars?symbol=%24%24", headers=BEARER)

    assert day_type.status_code == 200
    body = json.loads(day_type.body)
    assert body["ok"] is False
    assert body["status"] == 404
    assert "is not classified" in body["reason"]
    assert json.loads(bars.body)["status"] == 400  # the route's own validation, passed on


def test_a_route_this_build_lacks_is_not_available_yet(client, monkeypatch):
    import app

    monkeypatch.setitem(app.PANEL_ROUTES, "later", "/api/not-built-yet")

    body = json.loads(client.http.get("/dashboard/panel/later", headers=BEARER).body)

    assert body == {"ok": False, "status": 404, "reason": "not available yet"}
    assert client.http.get("/dashboard/panel/nope", headers=BEARER).status_code == 404
    assert client.http.get("/dashboard/panel/settings").status_code == 401
