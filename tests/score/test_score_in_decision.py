"""The score slot in a real decision through the worker: journaled with the decision (source,
reasons, cost, latency), and FLOWTRADER_MIN_SCORE denies an entry scored below it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import bootstrap
from chalicelib.domain import Alert
from chalicelib.services.process_alert import process_alert
from tests.fakes import openai_server as fake

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def _decide(c, alert_id: str, **fields) -> dict:
    alert = Alert.model_validate(
        {"ticker": "NASDAQ:AAPL", "price": 190.0, "quantity": 1, "action": "buy", **fields}
    )
    c.alert_store.store_once(alert_id, f"id:{alert_id}", alert, NOW, NOW + timedelta(days=1), None)
    process_alert(alert_id, store=c.alert_store, now=NOW, execution=c.execution)
    return c.alert_store.get(alert_id)


@pytest.fixture
def env(aws, monkeypatch):
    monkeypatch.setenv("FLOWTRADER_MARKET_HOURS_ONLY", "false")
    monkeypatch.setenv("FLOWTRADER_CONTEXT_DEADLINE_S", "10")  # correctness, not speed
    return monkeypatch


def test_without_a_key_the_deterministic_score_is_journaled_and_says_why(env):
    bootstrap.reset()
    record = _decide(bootstrap.container(), "01JSCORENOKEY0000000000000")
    assert record["status"] in ("accepted", "filled"), record["reason"]
    score = record["details"]["context"]["score"]
    assert score["source"] == "deterministic"
    assert score["fallback_reason"] == "no_key"
    verdicts = {v["check"]: v for v in record["details"]["verdicts"]["open"]}
    assert verdicts["min_score"]["allowed"]  # FLOWTRADER_MIN_SCORE defaults to 0 (off)


def test_a_gpt_score_below_the_minimum_rejects_the_entry_with_the_reason(env):
    with fake.FakeOpenAI() as server:
        env.setenv("FLOWTRADER_OPENAI_API_KEY", server.api_key)
        env.setenv("FLOWTRADER_OPENAI_BASE_URL", server.base_url)
        env.setenv("FLOWTRADER_SCORE_TIMEOUT_S", "20")
        env.setenv("FLOWTRADER_MIN_SCORE", "60")
        bootstrap.reset()
        c = bootstrap.container()
        bootstrap.scorer(c)  # built now, not on the warm-up thread: this test wants GPT
        server.queue(fake.success(score=35, agrees=False, reasons=["extended"], risk_flags=[]))
        record = _decide(c, "01JSCORELOW000000000000000")
    assert record["status"] == "rejected"
    assert "score" in record["reason"]
    assert "35" in record["reason"]
    score = record["details"]["context"]["score"]
    assert (score["source"], score["value"]) == ("gpt", 35.0)
    assert score["reasons"] == ["extended"]
    assert score["cost_usd"] > 0
    journal = {e["event"]: e["data"] for e in c.state_store.journal("01JSCORELOW000000000000000")}
    assert journal["context"]["score"]["prompt"]  # the prompt and the answer are journaled
    assert c.broker.list_orders() == []
