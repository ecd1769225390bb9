"""GET/PUT /api/settings: the market-data source switched at run time, no redeploy."""

from __future__ import annotations

import json

from chalicelib import bootstrap
from tests.conftest import API_TOKEN

AUTH = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}


def _put(client, body) -> object:
    return client.http.put("/api/settings", headers=AUTH, body=json.dumps(body))


def test_defaults_show_the_deployments_source_and_the_choices(client):
    r = client.http.get("/api/settings", headers=AUTH)
    assert r.status_code == 200
    assert r.json_body["data_source"] == bootstrap.container().runtime_defaults["data_source"]
    assert "alpaca" in r.json_body["choices"]["data_source"]
    assert r.json_body["version"] == 0


def test_bad_changes_are_400_and_change_nothing(client):
    for body in (
        {"data_source": "bloomberg"},
        {"broker": "alpaca"},
        {},
        ["data_source"],
        {"data_source": 3},
        {"data_source": "tradingview", "version": "x"},
    ):
        r = _put(client, body)
        assert r.status_code == 400, (body, r.body)
    assert client.http.get("/api/settings", headers=AUTH).json_body["version"] == 0
    r = client.http.put("/api/settings", headers=AUTH, body="{not json")
    assert r.status_code == 400


def test_a_source_that_cannot_work_here_is_422_with_the_reason(client):
    # no Alpaca keys are configured in the test environment
    r = _put(client, {"data_source": "alpaca"})
    assert r.status_code == 422, r.body
    assert "data_source=alpaca cannot be used" in r.json_body["error"]
    assert client.http.get("/api/settings", headers=AUTH).json_body["version"] == 0


def test_a_switch_is_stored_journaled_and_seen_by_the_next_decision(client):
    c = bootstrap.container()
    c.why_unusable = lambda name, value: None  # type: ignore[method-assign]  # any source builds
    r = _put(client, {"data_source": c.runtime_defaults["data_source"]})
    assert r.json_body["changed"] == {}  # the value in force already: nothing written
    assert r.json_body["version"] == 0
    r = _put(client, {"data_source": "files", "version": 0})
    assert r.status_code == 200, r.body
    assert r.json_body["changed"] == {"data_source": "files"}
    assert r.json_body["data_source"] == "files"
    assert r.json_body["version"] == 1
    assert r.json_body["changes"][0]["changed"] == {"data_source": "files"}
    assert c.current_data_source() == "files"
    events = c.state_store.journal("settings")
    assert events[-1]["data"]["changed"] == {"data_source": "files"}


def test_a_stale_version_is_a_409(client):
    c = bootstrap.container()
    c.why_unusable = lambda name, value: None  # type: ignore[method-assign]
    assert _put(client, {"data_source": "files", "version": 0}).status_code == 200
    r = _put(client, {"data_source": "replay", "version": 0})
    assert r.status_code == 409
    assert c.current_data_source() == "files"


def test_settings_need_the_token(client):
    assert client.http.get("/api/settings").status_code == 401
    r = client.http.put(
        "/api/settings",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"data_source": "files"}),
    )
    assert r.status_code == 401
