"""The flow scanner and the flow routes: the real adapter against the local UW server, the
highlights and the watchlist in the state table (moto's server), the routes through
Chalice's test client."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb_flow_highlights import DynamoFlowHighlights
from chalicelib.domain import utc_now
from chalicelib.rules.flow_highlights import ScanRules
from chalicelib.services.flow_scan import scan_flow
from tests.conftest import API_TOKEN
from tests.fakes.unusual_whales_server import FLOW_ALERTS
from tests.flow.conftest import NOW, TOKEN, alert_row, darkpool_row, make_client

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
RULES = ScanRules(darkpool_min_prints=3)


class Recorder:
    """A Notifier (our port) that keeps what it was told."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def notify(self, subject: str, message: str) -> None:
        self.sent.append((subject, message))


def seed(uw, now):
    """A big AAPL call sweep, three hits on one TSLA put, a large NVDA dark-pool print."""
    uw.alerts = [
        alert_row(
            ticker="AAPL",
            option_chain="AAPL260320C00200000",
            total_premium="600000",
            total_ask_side_prem="600000",
            total_bid_side_prem="0",
            has_sweep=True,
            created_at=now - timedelta(minutes=2),
        ),
        *[
            alert_row(
                ticker="TSLA",
                option_chain="TSLA260320P00300000",
                type="put",
                total_premium="50000",
                total_ask_side_prem="50000",
                total_bid_side_prem="0",
                has_sweep=False,
                created_at=now - timedelta(minutes=m),
            )
            for m in (1, 3, 5)
        ],
    ]
    small = [
        darkpool_row(
            ticker="NVDA",
            price="100",
            size=1000,
            premium="100000",
            executed_at=now - timedelta(minutes=m),
        )
        for m in (90, 80, 70)
    ]
    big = darkpool_row(
        ticker="NVDA",
        price="100",
        size=50000,
        premium="5000000",
        tracking_id=424242,
        executed_at=now - timedelta(minutes=1),
    )
    uw.darkpool["NVDA"] = [*small, big]


@pytest.fixture
def store(aws) -> DynamoFlowHighlights:
    return DynamoFlowHighlights(
        boto3.session.Session().client("dynamodb"), os.environ["FLOWTRADER_STATE_TABLE"]
    )


def test_a_scan_records_highlights_once_and_notifies_the_watchlist(aws, uw, clock, store):
    seed(uw, NOW)
    source, told = make_client(uw, clock), Recorder()

    first = scan_flow(source, store, told, NOW, rules=RULES, watchlist=("AAPL", "NVDA"))
    again = scan_flow(source, store, told, NOW, rules=RULES, watchlist=("AAPL", "NVDA"))

    assert (first["highlights"], first["new"], first["notified"]) == (3, 3, 2)
    assert (again["new"], again["notified"]) == (0, 0)  # overlapping scans: recorded once
    ((subject, message),) = told.sent
    assert subject == "flowtrader: flow on AAPL, NVDA"
    assert "AAPL call sweep $600.0K at the ask" in message
    assert "NVDA dark pool 50,000 shares $5.0M" in message
    assert "TSLA" not in message  # recorded, but not on the watchlist
    kinds = {h.kind: h.symbol for h in store.recent(NOW - timedelta(hours=1), NOW)}
    assert kinds == {"sweep": "AAPL", "repeated_hits": "TSLA", "darkpool": "NVDA"}
    market, watch = uw.calls(FLOW_ALERTS)[:2]
    assert "ticker_symbol" not in market["query"]
    assert market["query"]["min_premium"] == "33333"  # the smallest any rule can use
    assert watch["query"]["ticker_symbol"] == "AAPL,NVDA"


def test_a_failing_call_is_reported_and_the_rest_of_the_scan_goes_on(aws, uw, clock, store):
    seed(uw, NOW)
    uw.inject("/api/darkpool/NVDA", status=500, body="Something went wrong", times=10)

    result = scan_flow(
        make_client(uw, clock), store, Recorder(), NOW, rules=RULES, watchlist=("NVDA",)
    )

    assert "server error 500" in result["errors"]["darkpool:NVDA"]
    assert result["new"] == 2  # the sweep and the repeated hits


def test_no_token_or_a_closed_market_skips_the_scan(aws, uw, clock, store):
    assert (
        "no Unusual Whales token"
        in scan_flow(None, store, Recorder(), NOW, rules=RULES, watchlist=())["skipped"]
    )
    saturday = NOW + timedelta(days=5)
    skipped = scan_flow(
        make_client(uw, clock), store, Recorder(), saturday, rules=RULES, watchlist=()
    )
    assert skipped == {"skipped": "outside the trading session"}
    assert uw.calls() == []


def test_flow_route_without_a_token_says_flow_is_off(client):
    r = client.http.get("/api/flow", headers=AUTH)
    assert r.status_code == 200
    assert r.json_body["highlights"] == []
    assert r.json_body["source"] is None
    assert "no Unusual Whales token" in r.json_body["reason"]


def test_flow_route_lists_the_scanners_highlights(client, uw, monkeypatch):
    monkeypatch.setenv("FLOWTRADER_UNUSUAL_WHALES_API_KEY", TOKEN)
    monkeypatch.setenv("FLOWTRADER_UW_BASE_URL", uw.url)
    now = utc_now()
    seed(uw, now)
    c = bootstrap.container()
    scan_flow(
        bootstrap.flow_source(c, timeout_s=c.settings.uw_scan_timeout_s),
        bootstrap.flow_highlights(c),
        Recorder(),
        now,
        rules=RULES,
        watchlist=("NVDA",),
        force=True,
    )

    r = client.http.get("/api/flow?hours=2", headers=AUTH)
    only = client.http.get("/api/flow?symbol=tsla", headers=AUTH)

    assert r.status_code == 200
    assert r.json_body["source"] == "unusual_whales"
    assert [h["kind"] for h in r.json_body["highlights"]] == ["darkpool", "sweep", "repeated_hits"]
    assert [h["symbol"] for h in only.json_body["highlights"]] == ["TSLA"]
    assert TOKEN not in json.dumps(r.json_body)


@pytest.mark.parametrize("query", ["hours=0", "hours=abc", "limit=9999", "symbol=../etc"])
def test_flow_route_refuses_bad_parameters(client, query):
    assert client.http.get(f"/api/flow?{query}", headers=AUTH).status_code == 400


def test_flow_and_watchlist_routes_need_the_api_token(client):
    assert client.http.get("/api/flow").status_code == 401
    assert client.http.get("/api/watchlist").status_code == 401
    put = client.http.put(
        "/api/watchlist", body='{"symbols": ["AAPL"]}', headers={"Content-Type": "application/json"}
    )
    assert put.status_code == 401


def test_watchlist_from_the_setting_until_one_is_put(client, monkeypatch):
    monkeypatch.setenv("FLOWTRADER_WATCHLIST", "tsla, NVDA,tsla")
    headers = {**AUTH, "Content-Type": "application/json"}

    before = client.http.get("/api/watchlist", headers=AUTH).json_body
    put = client.http.put("/api/watchlist", body='{"symbols": ["aapl", "BRK.B"]}', headers=headers)
    after = client.http.get("/api/watchlist", headers=AUTH).json_body

    assert before == {"watchlist": ["TSLA", "NVDA"], "source": "setting"}
    assert put.status_code == 200
    assert after == {"watchlist": ["AAPL", "BRK.B"], "source": "state"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("not json", 400),
        ('["AAPL"]', 422),
        ('{"tickers": ["AAPL"]}', 422),
        ('{"symbols": ["AAPL; DROP"]}', 422),
        ('{"symbols": [1, 2]}', 422),
        ('{"symbols": ' + json.dumps([f"T{i}" for i in range(51)]) + "}", 422),
    ],
)
def test_a_bad_watchlist_is_refused_and_changes_nothing(client, body, status):
    headers = {**AUTH, "Content-Type": "application/json"}
    client.http.put("/api/watchlist", body='{"symbols": ["AAPL"]}', headers=headers)

    r = client.http.put("/api/watchlist", body=body, headers=headers)

    assert r.status_code == status
    assert client.http.get("/api/watchlist", headers=AUTH).json_body["watchlist"] == ["AAPL"]


def test_the_scheduled_handler_runs_the_scan(client):
    result = client.lambda_.invoke(
        "scan_flow", client.events.generate_cw_event("Scheduled Event", "aws.events", {}, [])
    ).payload
    assert "no Unusual Whales token" in result["skipped"]


def test_the_local_stacks_scan_job_records_highlights(aws, uw, monkeypatch):
    from devstack.worker import flow_scan_job

    monkeypatch.setenv("FLOWTRADER_UNUSUAL_WHALES_API_KEY", TOKEN)
    monkeypatch.setenv("FLOWTRADER_UW_BASE_URL", uw.url)
    now = utc_now()
    seed(uw, now)
    c = bootstrap.Container()

    flow_scan_job(c)()

    found = bootstrap.flow_highlights(c).recent(now - timedelta(hours=1), now)
    assert {h.kind for h in found} == {"sweep", "repeated_hits"}  # no watchlist: no dark pool


def test_a_scan_starts_no_call_once_its_budget_is_used(aws, uw, clock, store):
    seed(uw, NOW)
    ticks = iter([0.0, 5.0, 25.0, 30.0])  # the scan starts, NVDA's call, then time is up

    result = scan_flow(
        make_client(uw, clock),
        store,
        Recorder(),
        NOW,
        rules=RULES,
        watchlist=("NVDA", "AAPL"),
        budget_s=20.0,
        clock=lambda: next(ticks),
    )

    assert result["errors"] == {"darkpool:AAPL": "skipped: the scan's 20 s were used up"}
    assert [c["path"] for c in uw.calls("/api/darkpool/")] == ["/api/darkpool/NVDA"]
