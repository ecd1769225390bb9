"""The market slot through the container: the files source over real AMZN minute bars, the
snapshot in the decision's journal, and ATR stops live as in the backtest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chalicelib import bootstrap
from chalicelib.domain import Alert
from chalicelib.services.market_context import market_snapshot
from chalicelib.services.process_alert import process_alert

ROOT = Path(__file__).resolve().parents[2]
AMZN = ROOT / "backtest" / "data" / "AMZN_1min_2025-01-13.csv"
NOW = datetime(2025, 1, 15, 15, 30, tzinfo=UTC)  # 10:30 New York, the sample's 3rd session


@pytest.fixture
def files_source(aws, monkeypatch):
    monkeypatch.setenv("FLOWTRADER_DATA_SOURCE", "files")
    monkeypatch.setenv("FLOWTRADER_DATA_FILE", str(AMZN))
    monkeypatch.setenv("FLOWTRADER_MARKET_HOURS_ONLY", "false")
    monkeypatch.setenv("FLOWTRADER_STOP_ATR_MULTIPLE", "2")
    monkeypatch.setenv("FLOWTRADER_TARGET_ATR_MULTIPLE", "3")
    monkeypatch.setenv("FLOWTRADER_DEFAULT_STOP_PCT", "0")
    monkeypatch.setenv("FLOWTRADER_DEFAULT_TARGET_PCT", "0")
    # correctness, not speed: a cold pandas import on a loaded machine may take seconds
    monkeypatch.setenv("FLOWTRADER_CONTEXT_DEADLINE_S", "10")
    bootstrap.reset()
    return bootstrap.container()


def test_the_snapshot_sees_only_the_past_and_the_prior_sessions(files_source):
    market = files_source.market_data("files")
    alert = Alert(ticker="NASDAQ:AMZN", action="buy", price=220.0)
    snap = market_snapshot(alert, market, NOW)
    assert snap is not None
    assert snap.source == "files"
    assert snap.bars, "today's regular-session bars"
    assert all(b.time < NOW for b in snap.bars)
    assert snap.bars[0].time == datetime(2025, 1, 15, 14, 30, tzinfo=UTC)  # the 09:30 open
    assert snap.vwap is not None
    assert snap.vwap_lower < snap.vwap < snap.vwap_upper
    assert snap.relative_volume is not None  # two prior sessions in the sample
    assert snap.atr is not None
    assert snap.atr > 0


def test_the_atr_is_the_alerts_chart_timeframe(files_source):
    market = files_source.market_data("files")
    one = market_snapshot(Alert(ticker="AMZN", action="buy", price=220.0), market, NOW)
    five = market_snapshot(
        Alert(ticker="AMZN", action="buy", price=220.0, interval="5"), market, NOW
    )
    # five-minute bars range further than one-minute bars
    assert five.atr > one.atr


def test_a_symbol_the_source_lacks_is_a_plain_error_the_context_turns_into_a_gap(files_source):
    from chalicelib.services.context import gather_context

    alert = Alert(ticker="AAPL", action="buy", price=1.0)
    view = gather_context(alert, files_source.context_sources, NOW)
    assert view.market is None
    assert view.gaps["market"].startswith("failed: MarketDataUnavailable")
    assert "AAPL" in view.gaps["market"]


def test_atr_stops_work_live_from_the_context(files_source):
    c = files_source
    alert = Alert(ticker="NASDAQ:AMZN", action="buy", price=220.0, quantity=2, interval="5")
    alert_id = "01JATRLIVE0000000000000000"
    c.alert_store.store_once(alert_id, f"id:{alert_id}", alert, NOW, NOW + timedelta(days=1), None)
    outcome = process_alert(alert_id, store=c.alert_store, now=NOW, execution=c.execution)
    assert outcome.status in ("accepted", "filled"), outcome
    record = c.alert_store.get(alert_id)
    context = record["details"]["context"]
    assert context["market"]["source"] == "files"
    atr = context["market"]["atr"]
    assert atr > 0
    assert "market" in context["timings_ms"]
    (order,) = record["details"]["orders"]
    legs = {leg["type"]: leg for leg in order["legs"]}
    entry = record["details"]["decision"]["intents"][0]["reference_price"]
    assert legs["stop"]["stop_price"] == pytest.approx(entry - 2 * atr, abs=0.01)
    assert legs["limit"]["limit_price"] == pytest.approx(entry + 3 * atr, abs=0.01)
    events = [e["event"] for e in c.state_store.journal(alert_id)]
    assert events[:2] == ["context", "decided"]
