"""The decision seam: every slot within its deadline, a failing or late source is a gap."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from chalicelib.domain import (
    Account,
    Alert,
    DayClassification,
    DayType,
    FlowSummary,
    MarketSnapshot,
    Score,
)
from chalicelib.services.context import ContextSources, MarketView, gather_context

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
BUY = Alert(ticker="NASDAQ:AAPL", action="buy", price=190.0)
EXIT = Alert(ticker="NASDAQ:AAPL", action="exit", price=190.0)


def _market(alert: Alert, now: datetime) -> MarketSnapshot:
    return MarketSnapshot(symbol=alert.symbol, source="files", as_of=now, last_price=190.0, atr=2.5)


def _day(alert: Alert, now: datetime) -> DayClassification:
    return DayClassification(day=now.date(), symbol="SPY", day_type=DayType.CHOPPY, confidence=0.6)


def _flow(alert: Alert, now: datetime) -> FlowSummary:
    return FlowSummary(symbol=alert.symbol, window_minutes=30, direction="bullish", agrees=True)


def _score(alert: Alert, view: MarketView, now: datetime) -> tuple[Score, dict]:
    # the scorer sees what the others found
    value = 70.0 if view.flow and view.flow.agrees else 40.0
    return Score(value=value, source="deterministic"), {"inputs": "seen"}


def test_every_slot_filled_and_timed():
    sources = ContextSources(market=_market, day=_day, flow=_flow, score=_score)
    view = gather_context(BUY, sources, NOW)
    assert view.gaps == {}
    assert view.market.atr == 2.5
    assert view.day.day_type is DayType.CHOPPY
    assert view.score.value == 70.0  # scored after the flow arrived
    assert set(view.timings_ms) == {"market", "day", "flow", "score"}
    context = view.context(NOW, Account(equity=1e5, cash=1e5, buying_power=1e5), [])
    assert context.atr == 2.5
    assert context.day_type is DayType.CHOPPY


def test_a_failing_source_is_a_gap_and_the_others_still_arrive():
    def broken(alert: Alert, now: datetime) -> FlowSummary:
        raise ConnectionError("unusual whales unreachable")

    view = gather_context(BUY, ContextSources(market=_market, flow=broken, score=_score), NOW)
    assert view.gaps["flow"] == "failed: ConnectionError: unusual whales unreachable"
    assert view.gaps["day"] == "not configured"
    assert view.market is not None
    assert view.score.value == 40.0


def test_a_late_source_is_dropped_at_the_deadline():
    release = threading.Event()

    def hanging(alert: Alert, now: datetime) -> MarketSnapshot:
        release.wait(30)
        return _market(alert, now)

    try:
        view = gather_context(BUY, ContextSources(market=hanging, day=_day, deadline_s=0.2), NOW)
    finally:
        release.set()
    assert view.gaps["market"] == "timed out after 0.2 s"
    assert view.market is None
    assert view.day is not None  # the prompt source was kept


def test_a_late_scorer_is_dropped_at_its_own_deadline():
    release = threading.Event()

    def slow(alert: Alert, view: MarketView, now: datetime) -> tuple[Score, dict]:
        release.wait(30)
        return Score(value=99, source="gpt"), {}

    try:
        view = gather_context(BUY, ContextSources(score=slow, score_deadline_s=0.2), NOW)
    finally:
        release.set()
    assert view.score is None
    assert view.gaps["score"] == "timed out after 0.2 s"


def test_an_exit_is_never_scored():
    calls = []

    def counting(alert: Alert, view: MarketView, now: datetime) -> tuple[Score, dict]:
        calls.append(alert)
        return Score(value=50, source="deterministic"), {}

    view = gather_context(EXIT, ContextSources(score=counting), NOW)
    assert calls == []
    assert view.gaps["score"] == "not scored: the alert only exits"


def test_an_empty_answer_is_a_gap():
    view = gather_context(BUY, ContextSources(market=lambda a, n: None), NOW)
    assert view.gaps["market"] == "no data"


def test_the_journal_record_omits_the_bars_but_counts_them():
    from chalicelib.domain import Bar

    def with_bars(alert: Alert, now: datetime) -> MarketSnapshot:
        bar = Bar(time=now, open=1, high=1, low=1, close=1, volume=10)
        return MarketSnapshot(symbol="AAPL", source="files", as_of=now, bars=(bar, bar))

    record = gather_context(BUY, ContextSources(market=with_bars), NOW).as_record()
    assert record["market"]["bars"] == 2
    assert "gaps" in record
    assert "timings_ms" in record
