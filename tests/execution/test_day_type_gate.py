"""The day type in the decision: no_trade denies entries (from the context or the stored
day), every verdict names the day type, choppy scales the size, volume confirmation."""

from __future__ import annotations

from datetime import UTC, date, datetime

from chalicelib.domain import (
    Account,
    Alert,
    DayClassification,
    DayType,
    DecisionContext,
    MarketSnapshot,
    OrderIntent,
    Side,
    Verdict,
)
from chalicelib.rules.checks import NoTradeDay, VolumeConfirmation
from chalicelib.rules.gate import Gate, Proposal, RiskLimits
from chalicelib.rules.orders import DecisionKind, OrderRules, decide_orders
from chalicelib.rules.risk_state import InMemoryRiskState

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # Tuesday 10:00 New York
DAY = date(2026, 12, 1)
RICH = Account(equity=100_000, cash=100_000, buying_power=200_000)


def classified(kind: DayType, day: date = DAY) -> DayClassification:
    return DayClassification(day=day, symbol="SPY", day_type=kind, confidence=0.8)


def context(day: DayClassification | None = None, volume: Verdict | None = None) -> DecisionContext:
    market = None
    if volume is not None:
        market = MarketSnapshot(
            symbol="AAPL", source="files", as_of=NOW, volume_confirmation=volume
        )
    return DecisionContext(now=NOW, account=RICH, day=day, market=market)


def proposal(ctx: DecisionContext | None = None, closes: bool = False) -> Proposal:
    intent = OrderIntent(
        client_order_id="ft-A1-open",
        alert_id="A1",
        symbol="AAPL",
        side=Side.BUY,
        qty=10,
        reference_price=100.0,
        closes_position=closes,
    )
    return Proposal(intent, RICH, (), context=ctx)


def test_gate_denies_an_entry_on_a_no_trade_day_from_the_context_with_the_reason():
    gate = Gate.from_limits(RiskLimits(market_hours_only=False, max_trades_per_hour=0))
    state = InMemoryRiskState()
    result = gate.admit(proposal(context(classified(DayType.NO_TRADE))), state, NOW)
    assert not result.allowed
    assert "2026-12-01 is classified a no-trade day: no new positions" in result.reason
    assert "day type no_trade (0.80, from the context)" in result.reason
    closing = gate.admit(proposal(context(classified(DayType.NO_TRADE)), closes=True), state, NOW)
    assert closing.allowed


def test_the_context_wins_over_the_stored_day_type():
    state = InMemoryRiskState()
    state.set_day_type(DAY, DayType.NO_TRADE)
    verdict = NoTradeDay()(proposal(context(classified(DayType.TREND_UP))), state, NOW)
    assert verdict.allowed
    assert verdict.reason == "day type trend_up (0.80, from the context)"


def test_without_a_day_in_the_context_the_stored_day_type_is_read():
    state = InMemoryRiskState()
    state.set_day_type(DAY, DayType.NO_TRADE)
    denied = NoTradeDay()(proposal(context()), state, NOW)
    assert not denied.allowed
    assert "(day type no_trade (stored))" in denied.reason


def test_yesterdays_classification_in_the_context_is_not_todays():
    state = InMemoryRiskState()
    stale = context(classified(DayType.NO_TRADE, date(2026, 11, 30)))
    verdict = NoTradeDay()(proposal(stale), state, NOW)
    assert verdict.allowed
    assert verdict.reason == "day not classified"


def test_journaled_verdicts_name_the_day_type():
    gate = Gate.from_limits(RiskLimits(market_hours_only=False))
    state = InMemoryRiskState()
    result = gate.evaluate(proposal(context(classified(DayType.CHOPPY))), state, NOW)
    (record,) = [r for r in result.as_records() if r["check"] == "no_trade_day"]
    assert record == {
        "allowed": True,
        "reason": "day type choppy (0.80, from the context)",
        "check": "no_trade_day",
    }


def test_volume_confirmation_denies_entries_only_when_required():
    weak = Verdict.deny("volume does not confirm: 0.8× (need ≥ 1.5×)", check="volume_confirmation")
    required = VolumeConfirmation(enabled=True)
    state = InMemoryRiskState()
    denied = required(proposal(context(volume=weak)), state, NOW)
    assert not denied.allowed
    assert denied.reason.startswith("volume does not confirm")
    assert required(proposal(context(volume=weak), closes=True), state, NOW).allowed
    journal_only = VolumeConfirmation()(proposal(context(volume=weak)), state, NOW)
    assert journal_only.allowed
    assert journal_only.reason.startswith("volume does not confirm")
    no_data = required(proposal(None), state, NOW)
    assert no_data.allowed
    assert no_data.reason == "volume not checked: no market data"


def decide(alert: Alert, day_type: DayType | None, scale: float = 0.5):
    rules = OrderRules(choppy_size_scale=scale, default_qty=10)
    return decide_orders(alert, "A1", account=RICH, positions=(), rules=rules, day_type=day_type)


def test_a_choppy_day_scales_the_size_and_says_so():
    buy = Alert.model_validate({"ticker": "AAPL", "action": "buy", "price": 100.0})
    normal = decide(buy, DayType.TREND_UP)
    assert normal.open_intent is not None
    assert normal.open_intent.qty == 10
    choppy = decide(buy, DayType.CHOPPY)
    assert choppy.open_intent is not None
    assert choppy.open_intent.qty == 5
    assert choppy.reason == "open long 5 AAPL (choppy day: 10 × 0.5)"


def test_a_choppy_day_that_scales_to_nothing_places_nothing():
    one = Alert.model_validate({"ticker": "AAPL", "action": "buy", "price": 100.0, "quantity": 1})
    d = decide(one, DayType.CHOPPY)
    assert d.kind is DecisionKind.NOTHING
    assert "choppy day" in d.reason


def test_a_strategy_target_is_not_scaled_so_the_account_follows_the_strategy():
    target = Alert.model_validate(
        {
            "ticker": "AAPL",
            "action": "buy",
            "market_position": "long",
            "market_position_size": 8,
            "price": 100.0,
        }
    )
    d = decide(target, DayType.CHOPPY)
    assert d.open_intent is not None
    assert d.open_intent.qty == 8
