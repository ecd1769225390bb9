"""The dashboard's login session over the Chalice test client (moto's server behind it):
cookie flags and expiry, forged/expired/rotated cookies, CSRF on state changes, logout,
and the token never echoed in a page, a response or a log."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from tests.conftest import API_TOKEN
from tests.ingress.helpers import alert_body, post


def _login(client, token: str = API_TOKEN, **headers: str):
    return client.http.post(
        "/dashboard/login",
        headers={"Content-Type": "application/json", **headers},
        body=json.dumps({"token": token}),
    )


def _cookie(response) -> str:
    set_cookie = response.headers["Set-Cookie"]
    return set_cookie.split(";", 1)[0]  # "ft_session=<id>"


def _session(client) -> tuple[str, str]:
    cookie = _cookie(_login(client))
    csrf = json.loads(client.http.get("/dashboard/session", headers={"Cookie": cookie}).body)
    return cookie, csrf["csrf"]


def test_login_sets_an_httponly_strict_cookie_with_an_expiry(client):
    response = _login(client)

    assert response.status_code == 200
    flags = [part.strip() for part in response.headers["Set-Cookie"].split(";")]
    assert flags[0].startswith("ft_session=")
    assert len(flags[0]) > 40
    assert {"HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"} <= set(flags)
    assert "Secure" not in flags  # plain http (the local stack) cannot carry a Secure cookie
    assert API_TOKEN not in response.body.decode()


def test_login_behind_https_sets_a_secure_cookie(client):
    # API Gateway tells the Lambda the scheme in X-Forwarded-Proto.
    response = _login(client, **{"X-Forwarded-Proto": "https"})

    assert "Secure" in [p.strip() for p in response.headers["Set-Cookie"].split(";")]


def test_session_life_follows_the_setting(client, monkeypatch):
    from chalicelib import bootstrap

    monkeypatch.setenv("FLOWTRADER_DASHBOARD_SESSION_HOURS", "0.5")
    bootstrap.reset()

    assert "Max-Age=1800" in _login(client).headers["Set-Cookie"]


def test_a_wrong_token_is_refused_without_a_cookie(client):
    for body in ({"token": "nope"}, {"token": ""}, {"token": 12}, {}, []):
        response = client.http.post(
            "/dashboard/login",
            headers={"Content-Type": "application/json"},
            body=json.dumps(body),
        )
        assert response.status_code == 401, body
        assert "Set-Cookie" not in response.headers
    garbled = client.http.post(
        "/dashboard/login", headers={"Content-Type": "application/json"}, body=b"\xff{"
    )
    assert garbled.status_code == 401


def test_without_a_session_only_the_login_page_is_served(client):
    page = client.http.get("/dashboard")

    assert page.status_code == 200
    html = page.body.decode()
    assert 'id="login-form"' in html
    assert "panel-setups" not in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert client.http.get("/dashboard/static/login.js").status_code == 200
    assert client.http.get("/dashboard/static/style.css").status_code == 200
    assert client.http.get("/dashboard/static/dashboard.js").status_code == 401
    chart_lib = "/dashboard/static/lightweight-charts.standalone.production.js"
    assert client.http.get(chart_lib).status_code == 401
    assert client.http.get("/dashboard/session").status_code == 401
    assert client.http.get("/dashboard/static/..%2Fapp.py").status_code == 404
    assert client.http.get("/api/positions").status_code == 401


def test_with_a_session_the_dashboard_and_its_assets_are_served(client):
    cookie, _ = _session(client)

    html = client.http.get("/dashboard", headers={"Cookie": cookie}).body.decode()
    assert "panel-setups" in html
    assert "login-form" not in html
    js = client.http.get("/dashboard/static/dashboard.js", headers={"Cookie": cookie})
    assert js.status_code == 200
    assert js.headers["Content-Type"].startswith("text/javascript")
    lib = client.http.get(
        "/dashboard/static/lightweight-charts.standalone.production.js", headers={"Cookie": cookie}
    )
    assert "TradingView Lightweight Charts" in lib.body.decode()[:300]
    assert client.http.get("/api/positions", headers={"Cookie": cookie}).status_code == 200


@pytest.mark.parametrize(
    "cookie",
    [
        "ft_session=forged-session-id-0123456789abcdefghijklmnopqrstuvwxyz",
        "ft_session=",
        "ft_session=" + "x" * 500,
        'ft_session="unterminated',
        "other=1",
    ],
)
def test_a_forged_cookie_gets_the_login_page(client, cookie):
    page = client.http.get("/dashboard", headers={"Cookie": cookie})

    assert 'id="login-form"' in page.body.decode()
    assert client.http.get("/api/positions", headers={"Cookie": cookie}).status_code == 401


def test_an_expired_session_gets_the_login_page(client):
    from chalicelib import bootstrap
    from chalicelib.domain import utc_now
    from chalicelib.services.dashboard_session import open_session

    c = bootstrap.container()
    opened = open_session(
        bootstrap.dashboard_sessions(c),
        API_TOKEN,
        utc_now() - timedelta(hours=13),
        timedelta(hours=12),
    )
    cookie = f"ft_session={opened.cookie_value}"

    assert (
        'id="login-form"' in client.http.get("/dashboard", headers={"Cookie": cookie}).body.decode()
    )
    assert client.http.get("/api/positions", headers={"Cookie": cookie}).status_code == 401


def test_rotating_the_api_token_ends_every_session(client, monkeypatch):
    from chalicelib import bootstrap

    cookie, _ = _session(client)
    monkeypatch.setenv("FLOWTRADER_API_TOKEN", "a-new-token-after-rotation")
    bootstrap.reset()

    assert client.http.get("/api/positions", headers={"Cookie": cookie}).status_code == 401


def test_a_state_change_with_the_cookie_needs_the_csrf_header(client):
    from chalicelib import bootstrap

    cookie, csrf = _session(client)
    body = json.dumps({"engaged": True, "reason": "test"})
    json_type = {"Content-Type": "application/json", "Cookie": cookie}

    missing = client.http.put("/api/kill-switch", headers=json_type, body=body)
    wrong = client.http.put(
        "/api/kill-switch", headers={**json_type, "X-CSRF-Token": "guess"}, body=body
    )
    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert bootstrap.container().state_store.kill_switch() is None

    right = client.http.put(
        "/api/kill-switch", headers={**json_type, "X-CSRF-Token": csrf}, body=body
    )
    assert right.status_code == 200
    assert bootstrap.container().state_store.kill_switch() == "test"
    flatten = client.http.post(
        "/api/positions/flatten", headers=json_type, body=json.dumps({"request_id": "a" * 12})
    )
    assert flatten.status_code == 403


def test_logout_ends_the_session(client):
    cookie, csrf = _session(client)
    headers = {"Content-Type": "application/json", "Cookie": cookie}

    assert client.http.post("/dashboard/logout", headers=headers, body="{}").status_code == 403
    out = client.http.post(
        "/dashboard/logout", headers={**headers, "X-CSRF-Token": csrf}, body="{}"
    )

    assert out.status_code == 200
    assert "Max-Age=0" in out.headers["Set-Cookie"]
    assert (
        'id="login-form"' in client.http.get("/dashboard", headers={"Cookie": cookie}).body.decode()
    )
    assert client.http.get("/api/positions", headers={"Cookie": cookie}).status_code == 401


def test_the_token_never_lands_in_a_page_a_response_or_a_log(client, caplog):
    caplog.set_level(logging.DEBUG)
    cookie, _ = _session(client)
    _login(client, "wrong-" + API_TOKEN)
    post(client, alert_body())
    paths = [
        "/dashboard",
        "/dashboard/session",
        "/dashboard/static/dashboard.js",
        "/dashboard/static/login.js",
        "/api/alerts",
        "/api/kill-switch",
        "/api/positions",
    ]
    for path in paths:
        response = client.http.get(path, headers={"Cookie": cookie})
        assert response.status_code == 200, path
        assert API_TOKEN not in response.body.decode(), path
        assert API_TOKEN not in json.dumps(dict(response.headers)), path
    assert API_TOKEN not in caplog.text
    assert cookie.split("=", 1)[1] not in caplog.text


def test_the_page_policy_allows_only_the_chart_logos_own_style():
    import base64
    import hashlib
    import re
    from pathlib import Path

    from app import CHART_LOGO_STYLE_HASH, PAGE_HEADERS

    build = Path(__file__).resolve().parents[2] / (
        "chalicelib/dashboard/vendor/lightweight-charts.standalone.production.js"
    )
    styles = re.findall(
        r'createElement\("style"\),this\.\w+\.innerText="([^"]*)"', build.read_text()
    )
    digests = {
        "sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in styles
    }

    assert digests == {CHART_LOGO_STYLE_HASH}
    assert "'unsafe-inline'" not in PAGE_HEADERS["Content-Security-Policy"]
