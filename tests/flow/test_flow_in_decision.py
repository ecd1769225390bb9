"""The flow slot in a real decision: the worker journals the summary with the decision, and
with FLOWTRADER_REQUIRE_FLOW_AGREEMENT an entry against the flow is rejected with the figures."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import bootstrap
from chalicelib.domain import Alert
from chalicelib.services.process_alert import process_alert
from tests.flow.conftest import NOW, TOKEN
from tests.flow.test_flow_summary_service import aapl  # noqa: F401  (the fixture)


@pytest.fixture
def worker(aws, aapl, monkeypatch):  # noqa: F811
    monkeypatch.setenv("FLOWTRADER_UNUSUAL_WHALES_API_KEY", TOKEN)
    monkeypatch.setenv("FLOWTRADER_UW_BASE_URL", aapl.url)
    monkeypatch.setenv("FLOWTRADER_UW_TIMEOUT_S", "20")  # correctness, not speed
    monkeypatch.setenv("FLOWTRADER_CONTEXT_DEADLINE_S", "10")
    monkeypatch.setenv("FLOWTRADER_MARKET_HOURS_ONLY", "false")
    monkeypatch.setenv("FLOWTRADER_REQUIRE_FLOW_AGREEMENT", "true")
    bootstrap.reset()
    return bootstrap.container()


def _decide(c, alert_id: str, **fields) -> dict:
    alert = Alert.model_validate({"ticker": "NASDAQ:AAPL", "price": 190.0, "quantity": 1, **fields})
    c.alert_store.store_once(alert_id, f"id:{alert_id}", alert, NOW, NOW + timedelta(days=1), None)
    process_alert(alert_id, store=c.alert_store, now=NOW, execution=c.execution)
    return c.alert_store.get(alert_id)


def test_an_entry_with_the_flow_is_placed_and_the_summary_journaled(worker):
    record = _decide(worker, "01JFLOWWITH000000000000000", action="buy")
    assert record["status"] in ("accepted", "filled"), record["reason"]
    flow = record["details"]["context"]["flow"]
    assert (flow["direction"], flow["agrees"]) == ("bullish", True)
    verdicts = {v["check"]: v for v in record["details"]["verdicts"]["open"]}
    assert verdicts["flow_agreement"]["allowed"]


def test_a_short_against_bullish_flow_is_rejected_with_the_figures(worker):
    record = _decide(worker, "01JFLOWAGAINST000000000000", action="short")
    assert record["status"] == "rejected"
    assert "flow" in record["reason"]
    assert "bullish" in record["reason"]
    assert worker.broker.list_orders() == []
