"""Each gate check allows and denies for the reason it names; the gate runs them all."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import Account, DayType, OrderIntent, Position, Side
from chalicelib.rules.checks import (
    Cooldown,
    DailyLossLimit,
    KillSwitch,
    MarketHours,
    MaxGrossExposure,
    MaxOpenPositions,
    MaxPositionNotional,
    NoTradeDay,
    PatternDayTrader,
)
from chalicelib.rules.gate import Gate, Proposal, RiskLimits
from chalicelib.rules.risk_state import InMemoryRiskState

OPEN_SESSION = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # Tuesday 10:00 ET
RICH = Account(equity=100_000, cash=100_000, buying_power=200_000)


def proposal(
    alert_id: str = "A1",
    symbol: str = "AAPL",
    qty: float = 10,
    price: float = 100.0,
    side: Side = Side.BUY,
    closes: bool = False,
    account: Account = RICH,
    positions: tuple[Position, ...] = (),
) -> Proposal:
    intent = OrderIntent(
        client_order_id=f"ft-{alert_id}-{'close' if closes else 'open'}",
        alert_id=alert_id,
        symbol=symbol,
        side=side,
        qty=qty,
        reference_price=price,
        closes_position=closes,
    )
    return Proposal(intent, account, positions)


def test_kill_switch_from_state_denies_even_closing_orders_with_its_reason():
    state = InMemoryRiskState()
    state.set_kill_switch("manual halt after outage", OPEN_SESSION)
    verdict = KillSwitch()(proposal(closes=True), state, OPEN_SESSION)
    assert not verdict.allowed
    assert "kill switch" in verdict.reason
    assert "manual halt" in verdict.reason


def test_kill_switch_setting_denies_without_state():
    verdict = KillSwitch(engaged_by_setting=True)(proposal(), InMemoryRiskState(), OPEN_SESSION)
    assert not verdict.allowed
    assert verdict.check == "kill_switch"


def test_market_hours_denies_on_a_holiday_until_the_next_open():
    thanksgiving = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)
    verdict = MarketHours()(proposal(), InMemoryRiskState(), thanksgiving)
    assert not verdict.allowed
    assert verdict.until == datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
    assert MarketHours()(proposal(), InMemoryRiskState(), OPEN_SESSION).allowed
    assert MarketHours(enabled=False)(proposal(), InMemoryRiskState(), thanksgiving).allowed


def test_no_trade_day_blocks_opens_but_not_closes():
    state = InMemoryRiskState()
    state.set_day_type(date(2026, 12, 1), DayType.NO_TRADE)
    assert not NoTradeDay()(proposal(), state, OPEN_SESSION).allowed
    assert NoTradeDay()(proposal(closes=True), state, OPEN_SESSION).allowed


def test_cooldown_denies_the_fourth_trade_in_an_hour_and_says_when_it_lifts():
    state = InMemoryRiskState()
    check = Cooldown(max_trades=3)
    for i in range(3):
        assert check.reserve(proposal(f"A{i}"), state, OPEN_SESSION + timedelta(minutes=i)).allowed
    later = OPEN_SESSION + timedelta(minutes=10)
    verdict = check(proposal("A9"), state, later)
    assert not verdict.allowed
    assert verdict.reason.startswith("cooldown")
    assert verdict.until == OPEN_SESSION + timedelta(minutes=60)
    assert check(proposal("A9"), state, OPEN_SESSION + timedelta(minutes=60)).allowed


def test_cooldown_per_symbol_limits_one_symbol_only():
    state = InMemoryRiskState()
    check = Cooldown(max_trades=10, per_symbol=1)
    assert check.reserve(proposal("A1", symbol="AAPL"), state, OPEN_SESSION).allowed
    assert not check(proposal("A2", symbol="AAPL"), state, OPEN_SESSION).allowed
    assert check(proposal("A3", symbol="MSFT"), state, OPEN_SESSION).allowed


def test_cooldown_does_not_count_the_alerts_own_earlier_claim():
    state = InMemoryRiskState()
    check = Cooldown(max_trades=1)
    assert check.reserve(proposal("A1"), state, OPEN_SESSION).allowed
    assert check(proposal("A1"), state, OPEN_SESSION).allowed  # a redelivery of A1
    assert check.reserve(proposal("A1"), state, OPEN_SESSION).allowed
    assert len(state.trade_times(OPEN_SESSION, timedelta(hours=1))) == 1


def test_daily_loss_limit_counts_realized_and_unrealized_pl():
    state = InMemoryRiskState()
    state.add_realized_pl(date(2026, 12, 1), -300.0, key="fill-1")
    losing = (Position(symbol="MSFT", qty=5, avg_entry_price=400, unrealized_pl=-250.0),)
    check = DailyLossLimit(max_loss_usd=500)
    verdict = check(proposal(positions=losing), state, OPEN_SESSION)
    assert not verdict.allowed
    assert verdict.reason.startswith("daily loss limit")
    assert verdict.until == datetime(2026, 12, 2, 14, 30, tzinfo=UTC)
    assert check(proposal(), state, OPEN_SESSION).allowed
    assert check(proposal(closes=True, positions=losing), state, OPEN_SESSION).allowed


def test_daily_loss_limit_counts_the_brokers_day_pl_for_exits_it_filled_unseen():
    state = InMemoryRiskState()  # nothing booked: a bracket stop filled at the broker
    down = Account(equity=99_400, cash=99_400, buying_power=99_400, last_equity=100_000)
    up = Account(equity=100_100, cash=100_100, buying_power=100_100, last_equity=100_000)
    check = DailyLossLimit(max_loss_usd=500)

    denied = check(proposal(account=down), state, OPEN_SESSION)

    assert not denied.allowed
    assert "-600.00" in denied.reason
    assert check(proposal(account=up), state, OPEN_SESSION).allowed
    state.add_realized_pl(date(2026, 12, 1), -700.0, key="fill-1")  # the worse reading wins
    assert not check(proposal(account=up), state, OPEN_SESSION).allowed


def test_max_open_positions_allows_adding_to_a_held_symbol():
    held = (
        Position(symbol="AAPL", qty=10, avg_entry_price=100),
        Position(symbol="MSFT", qty=-5, avg_entry_price=400),
    )
    check = MaxOpenPositions(max_positions=2)
    assert not check(
        proposal(symbol="TSLA", positions=held), InMemoryRiskState(), OPEN_SESSION
    ).allowed
    assert check(proposal(symbol="AAPL", positions=held), InMemoryRiskState(), OPEN_SESSION).allowed


def test_max_position_notional_includes_the_held_position():
    held = (Position(symbol="AAPL", qty=10, avg_entry_price=100),)
    check = MaxPositionNotional(max_notional_usd=1500)
    assert check(proposal(qty=5, positions=held), InMemoryRiskState(), OPEN_SESSION).allowed
    verdict = check(proposal(qty=6, positions=held), InMemoryRiskState(), OPEN_SESSION)
    assert not verdict.allowed
    assert "1,600.00" in verdict.reason


def test_max_gross_exposure_counts_shorts_by_absolute_notional():
    held = (Position(symbol="MSFT", qty=-10, avg_entry_price=100),)
    check = MaxGrossExposure(max_exposure_usd=1500)
    assert not check(proposal(qty=6, positions=held), InMemoryRiskState(), OPEN_SESSION).allowed
    assert check(proposal(qty=5, positions=held), InMemoryRiskState(), OPEN_SESSION).allowed


def test_pdt_guard_blocks_a_small_account_with_three_day_trades():
    small = Account(equity=10_000, cash=10_000, buying_power=20_000, daytrade_count=3)
    verdict = PatternDayTrader()(proposal(account=small), InMemoryRiskState(), OPEN_SESSION)
    assert not verdict.allowed
    assert "pattern day trader" in verdict.reason
    fresh = small.model_copy(update={"daytrade_count": 2})
    assert PatternDayTrader()(proposal(account=fresh), InMemoryRiskState(), OPEN_SESSION).allowed
    big = small.model_copy(update={"equity": 30_000})
    assert PatternDayTrader()(proposal(account=big), InMemoryRiskState(), OPEN_SESSION).allowed


def test_gate_returns_every_verdict_and_joins_denial_reasons():
    state = InMemoryRiskState()
    state.set_kill_switch("halt", OPEN_SESSION)
    gate = Gate.from_limits(RiskLimits(max_open_positions=1))
    held = (Position(symbol="MSFT", qty=1, avg_entry_price=1),)
    result = gate.admit(proposal(positions=held), state, OPEN_SESSION)
    assert not result.allowed
    assert len(result.verdicts) == len(gate.checks)
    assert [v.check for v in result.denials] == ["kill_switch", "max_open_positions"]
    assert "kill switch" in result.reason
    assert "max open positions" in result.reason
    assert state.trade_times(OPEN_SESSION, timedelta(hours=1)) == []  # nothing reserved


def test_gate_admit_reserves_and_release_gives_the_slot_back():
    state = InMemoryRiskState()
    gate = Gate.from_limits(RiskLimits(max_trades_per_hour=1))
    first = proposal("A1")
    assert gate.admit(first, state, OPEN_SESSION).allowed
    assert not gate.admit(proposal("A2"), state, OPEN_SESSION).allowed
    gate.release(first, state)
    assert gate.admit(proposal("A2"), state, OPEN_SESSION).allowed


def test_gate_admit_turns_a_lost_slot_race_into_a_cooldown_denial():
    class RacingState(InMemoryRiskState):
        """Reads see a free slot; the claim finds it taken, as a concurrent Lambda would."""

        def claim_trade_slot(self, claim_id, now, **kwargs):
            return False

    result = Gate.from_limits(RiskLimits()).admit(proposal(), RacingState(), OPEN_SESSION)
    assert not result.allowed
    assert [v.check for v in result.denials] == ["cooldown"]


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=5),
    gaps=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=40),
)
def test_no_rolling_hour_ever_holds_more_than_the_limit(limit, gaps):
    state = InMemoryRiskState()
    gate = Gate.from_limits(RiskLimits(max_trades_per_hour=limit, market_hours_only=False))
    now, admitted = OPEN_SESSION, []
    for i, gap in enumerate(gaps):
        now += timedelta(minutes=gap)
        if gate.admit(proposal(f"A{i}"), state, now).allowed:
            admitted.append(now)
    for start in admitted:
        in_window = [t for t in admitted if start <= t < start + timedelta(minutes=60)]
        assert len(in_window) <= limit
