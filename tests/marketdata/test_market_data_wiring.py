"""Container.market_data builds each source by name from the settings, and GET /api/bars
serves the current source's bars (moto over HTTP; Alpaca through its local data server)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chalicelib import bootstrap, clock
from chalicelib.adapters.replay import ReplayClock
from chalicelib.settings import Settings
from tests.conftest import API_TOKEN
from tests.fakes.alpaca_data_server import FakeAlpacaData

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "backtest" / "data" / "AMZN_1min_2025-01-13.csv"
OPEN = datetime(2025, 1, 13, 14, 30, tzinfo=UTC)
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture(autouse=True)
def wall_clock_after():
    yield
    clock.install(None)


def test_the_default_source_is_tradingview_and_each_is_built_once(aws):
    c = bootstrap.Container()

    assert c.settings.data_source == "tradingview"
    assert c.market_data().name == "tradingview"
    assert c.market_data() is c.market_data("tradingview")


def test_files_and_replay_need_their_file_and_say_so():
    c = bootstrap.Container(Settings())

    with pytest.raises(ValueError, match="FLOWTRADER_DATA_FILE"):
        c.market_data("files")
    with pytest.raises(ValueError, match="FLOWTRADER_REPLAY_FILE"):
        c.market_data("replay")
    with pytest.raises(ValueError, match="unknown data source 'bloomberg'"):
        c.market_data("bloomberg")


def test_ibkr_without_its_adapter_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "chalicelib.adapters.ibkr", None)  # import fails

    with pytest.raises(ValueError, match="ibkr data source is not available"):
        bootstrap.Container(Settings()).market_data("ibkr")


def test_alpaca_by_setting_uses_the_feed_and_data_url():
    with FakeAlpacaData() as server:
        settings = Settings(
            data_source="alpaca",
            alpaca_api_key="test-key",
            alpaca_secret_key="test-secret",
            alpaca_data_url=server.url,
            alpaca_data_feed="sip",
        )
        market = bootstrap.Container(settings).market_data()

        assert market.name == "alpaca"
        assert len(market.bars("AMZN", "1Min", OPEN, OPEN + timedelta(minutes=10))) == 10
    assert server.requests[-1]["query"]["feed"] == "sip"


def test_a_replay_needs_the_stacks_replay_clock():
    settings = Settings(data_source="replay", replay_file=str(SAMPLE), replay_speed=60)
    clock.install(None)  # the wall clock: a deployed stage, or a stack not started as a replay

    with pytest.raises(ValueError, match="needs the replay clock"):
        bootstrap.Container(settings).market_data()
    assert clock.current() is clock.wall_clock  # the stack's time was not moved

    clock.install(ReplayClock(OPEN, 60, wall=lambda: 0.0))  # held at 09:30
    market = bootstrap.Container(settings).market_data()
    assert market.latest_price("AMZN") == 218.33  # the 09:29 bar has closed


def test_api_bars_serves_the_replays_closed_bars(aws, client, monkeypatch):
    monkeypatch.setenv("FLOWTRADER_DATA_SOURCE", "replay")
    monkeypatch.setenv("FLOWTRADER_REPLAY_FILE", str(SAMPLE))
    one_hour_in = ReplayClock(OPEN + timedelta(hours=1), 1.0)
    clock.install(one_hour_in)
    bootstrap.reset()

    response = client.http.get("/api/bars?symbol=NASDAQ:AMZN&timeframe=1Min&limit=10", headers=AUTH)

    assert response.status_code == 200, response.body
    body = json.loads(response.body)
    assert (body["symbol"], body["source"], body["timeframe"]) == ("AMZN", "replay", "1Min")
    times = [b["time"] for b in body["bars"]]
    assert times[0] == "2025-01-13T15:20:00Z"
    assert times[-1] == "2025-01-13T15:29:00Z"  # 10:29's bar; 10:30's has not closed
    assert set(body["bars"][0]) == {"time", "open", "high", "low", "close", "volume"}


def test_api_bars_from_tradingview_alerts(aws, client):
    from chalicelib.domain import Alert

    c = bootstrap.container()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    for minutes_ago in (3, 2, 1):
        t = now - timedelta(minutes=minutes_ago)
        alert = {"ticker": "AMZN", "action": "buy", "time": t.isoformat(), "interval": "1"}
        prices = {"open": 200.0, "high": 210.0, "low": 199.0, "close": 200.0 + minutes_ago}
        c.market_data("tradingview").record(Alert.model_validate({**alert, **prices}), now)

    response = client.http.get("/api/bars?symbol=AMZN", headers=AUTH)

    assert response.status_code == 200, response.body
    body = json.loads(response.body)
    assert body["source"] == "tradingview"
    assert [b["close"] for b in body["bars"]] == [203.0, 202.0, 201.0]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "symbol"),
        ("symbol=AM ZN", "symbol"),
        ("symbol=AMZN&timeframe=1Fortnight", "timeframe"),
        ("symbol=AMZN&limit=0", "limit"),
        ("symbol=AMZN&limit=²", "limit"),
        ("symbol=AMZN&limit=100000", "limit"),
    ],
)
def test_api_bars_refuses_bad_queries_naming_the_field(aws, client, query, field):
    response = client.http.get(f"/api/bars?{query}", headers=AUTH)

    assert response.status_code == 400
    assert json.loads(response.body)["field"] == field


def test_api_bars_needs_the_token_and_says_when_the_source_is_down(aws, client, monkeypatch):
    assert client.http.get("/api/bars?symbol=AMZN").status_code == 401

    monkeypatch.setenv("FLOWTRADER_DATA_SOURCE", "files")
    monkeypatch.setenv("FLOWTRADER_DATA_FILE", "/nonexistent/AMZN.csv")
    bootstrap.reset()
    response = client.http.get("/api/bars?symbol=AMZN", headers=AUTH)
    assert response.status_code == 503
    assert "file not found" in json.loads(response.body)["error"]
