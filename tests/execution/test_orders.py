"""Alert → orders: open, close, reverse, sizing, default protection, ticks, client ids."""

from __future__ import annotations

import pytest

from chalicelib.domain import Account, Alert, OrderType, Position, Side
from chalicelib.rules.orders import DecisionKind, OrderRules, client_order_id, decide_orders
from chalicelib.rules.sizing import SizingMode

ACCOUNT = Account(equity=100_000, cash=100_000, buying_power=200_000)
AID = "01JDZ3Q8W7R5T9X2M4N6P8B0CD"


def alert(**fields) -> Alert:
    return Alert.model_validate({"ticker": "NASDAQ:AAPL", "price": 100.0, **fields})


def decide(a: Alert, positions=(), rules: OrderRules | None = None, **kw):
    return decide_orders(
        a,
        AID,
        account=kw.pop("account", ACCOUNT),
        positions=positions,
        rules=rules or OrderRules(),
        **kw,
    )


def long_(qty=10, price=90.0):
    return (Position(symbol="AAPL", qty=qty, avg_entry_price=price),)


def test_buy_when_flat_opens_a_long_bracket_with_default_stop_and_target():
    d = decide(alert(action="buy", quantity=5))
    assert d.kind is DecisionKind.OPEN
    (intent,) = d.intents
    assert intent.side is Side.BUY
    assert intent.qty == 5
    assert intent.stop_loss == 98.0
    assert intent.take_profit == 104.0
    assert intent.client_order_id == f"ft-{AID}-open"
    assert not intent.closes_position


def test_alert_stop_and_target_win_over_defaults_and_are_tick_rounded_away_from_entry():
    d = decide(alert(action="buy", stop_loss=97.123, take_profit=105.551))
    assert d.intents[0].stop_loss == 97.12
    assert d.intents[0].take_profit == 105.56


def test_short_gets_stop_above_and_target_below_from_percents():
    d = decide(alert(action="short", stop_loss_pct=1.5, take_profit_pct=3.0))
    (intent,) = d.intents
    assert intent.side is Side.SELL
    assert intent.stop_loss == 101.5
    assert intent.take_profit == 97.0


def test_atr_multiple_default_stop_when_configured_and_atr_is_given():
    rules = OrderRules(stop_atr_multiple=2.0, target_atr_multiple=3.0)
    d = decide(alert(action="buy"), rules=rules, atr=1.25)
    assert d.intents[0].stop_loss == 97.5
    assert d.intents[0].take_profit == 103.75
    without_atr = decide(alert(action="buy"), rules=rules)
    assert without_atr.intents[0].stop_loss == 98.0


def test_sub_dollar_prices_round_to_hundredths_of_a_cent():
    d = decide(alert(action="buy", price=0.5123, stop_loss_pct=3.0, take_profit_pct=5.0))
    assert d.intents[0].stop_loss == 0.4969
    assert d.intents[0].take_profit == 0.5380


def test_limit_entry_is_rounded_to_the_tick():
    d = decide(alert(action="buy", order_type="limit", limit_price=99.996))
    assert d.intents[0].order_type is OrderType.LIMIT
    assert d.intents[0].limit_price == 100.0


def test_risk_sizing_risks_the_percent_of_equity_between_entry_and_stop():
    rules = OrderRules(sizing_mode=SizingMode.RISK_PCT, risk_per_trade_pct=1.0)
    d = decide(alert(action="buy", stop_loss=95.0), rules=rules)
    assert d.intents[0].qty == 200  # 1 % of 100k = 1000 USD / 5 USD per share


def test_risk_sizing_is_capped_by_max_position_notional():
    rules = OrderRules(
        sizing_mode=SizingMode.RISK_PCT, risk_per_trade_pct=1.0, max_position_notional_usd=5_000
    )
    d = decide(alert(action="buy", stop_loss=95.0), rules=rules)
    assert d.intents[0].qty == 50


def test_notional_sizing_uses_the_default_notional_when_the_alert_has_no_quantity():
    rules = OrderRules(sizing_mode=SizingMode.NOTIONAL, default_notional_usd=2_550)
    assert decide(alert(action="buy"), rules=rules).intents[0].qty == 25


def test_zero_size_is_a_recorded_nothing_not_an_order():
    poor = Account(equity=50, cash=50, buying_power=50)
    d = decide(alert(action="buy", quantity=5), account=poor)
    assert d.kind is DecisionKind.NOTHING
    assert "0 shares" in d.reason


def test_strategy_buy_to_long_while_short_reverses_close_first():
    # {{strategy.order.contracts}} of a flip is the whole reversal: 7 to cover + 3 to open.
    short = (Position(symbol="AAPL", qty=-7, avg_entry_price=110),)
    d = decide(alert(action="buy", market_position="long", quantity=10), positions=short)
    assert d.kind is DecisionKind.REVERSE
    close, opening = d.intents
    assert close.closes_position
    assert close.side is Side.BUY
    assert close.qty == 7
    assert close.client_order_id == f"ft-{AID}-close"
    assert opening.side is Side.BUY
    assert opening.qty == 3


def test_strategy_sell_to_flat_closes_the_whole_long():
    d = decide(alert(action="sell", market_position="flat", quantity=4), positions=long_(10))
    assert d.kind is DecisionKind.CLOSE
    assert d.intents[0].qty == 10
    assert d.intents[0].side is Side.SELL


def test_strategy_sell_while_staying_long_is_a_partial_close_of_the_quantity():
    d = decide(alert(action="sell", market_position="long", quantity=4), positions=long_(10))
    assert d.kind is DecisionKind.CLOSE
    assert d.intents[0].qty == 4


def test_plain_sell_closes_a_long_and_does_nothing_when_flat():
    assert decide(alert(action="sell"), positions=long_()).kind is DecisionKind.CLOSE
    flat = decide(alert(action="sell"))
    assert flat.kind is DecisionKind.IGNORE
    assert "already flat" in flat.reason
    assert "action=short" in flat.reason


def test_cover_does_not_close_a_long():
    d = decide(alert(action="cover"), positions=long_())
    assert d.kind is DecisionKind.IGNORE
    assert "no short position" in d.reason


def test_exit_closes_a_short():
    short = (Position(symbol="AAPL", qty=-3, avg_entry_price=110),)
    d = decide(alert(action="exit"), positions=short)
    assert d.kind is DecisionKind.CLOSE
    assert d.intents[0].side is Side.BUY


def test_buy_when_already_long_does_not_pyramid():
    d = decide(alert(action="buy"), positions=long_())
    assert d.kind is DecisionKind.NOTHING
    assert "already long" in d.reason


def test_open_without_a_price_is_refused_with_a_hint():
    d = decide(Alert.model_validate({"ticker": "AAPL", "action": "buy"}))
    assert d.kind is DecisionKind.NOTHING
    assert "no price" in d.reason


@pytest.mark.parametrize("alert_id", ["A", AID, "x" * 128])
def test_client_order_id_is_deterministic_and_at_most_48_chars(alert_id):
    first = client_order_id(alert_id, "open")
    assert first == client_order_id(alert_id, "open")
    assert len(first) <= 48
    assert first != client_order_id(alert_id, "close")
