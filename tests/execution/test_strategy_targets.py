"""Strategy alerts are target positions, read the way TradingView fills its placeholders.

TradingView's alert placeholders (https://www.tradingview.com/support/solutions/43000531021,
"How to use a variable value in alert", strategy section):

- `{{strategy.order.contracts}}` "returns the number of contracts of the executed order" —
  on a reversal the strategy's one order closes the old side and opens the new one, so
  long 10 → short 10 sends contracts 20;
- `{{strategy.market_position}}` / `{{strategy.prev_market_position}}`: "long", "flat" or
  "short", after / before the order;
- `{{strategy.market_position_size}}` / `{{strategy.prev_market_position_size}}`: "the size
  of the current / previous position as an absolute value, i.e. a non-negative number";
- `{{strategy.position_size}}`: the Pine `strategy.position_size`, signed (negative short).

The payloads below are what the README's strategy message renders to for each fill.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chalicelib.domain import Account, Alert, Position, Side
from chalicelib.rules.orders import (
    DecisionKind,
    OrderRules,
    Protection,
    decide_orders,
    strategy_target,
)
from chalicelib.rules.sizing import SizingMode

ACCOUNT = Account(equity=100_000, cash=100_000, buying_power=200_000)


def strategy_alert(**fields) -> Alert:
    """The README's strategy message after TradingView filled it."""
    return Alert.model_validate(
        {"ticker": "NASDAQ:MSFT", "price": 400.0, "order_id": "Entry", **fields}
    )


def held(qty: float, price: float = 390.0) -> tuple[Position, ...]:
    return (Position(symbol="MSFT", qty=qty, avg_entry_price=price),) if qty else ()


def decide(a: Alert, positions=(), rules: OrderRules | None = None, **kw):
    return decide_orders(
        a, "A1", account=ACCOUNT, positions=positions, rules=rules or OrderRules(), **kw
    )


FLIP_TO_SHORT = dict(
    action="sell", market_position="short", prev_market_position="long", quantity=20
)


@pytest.mark.parametrize(
    "sizes",
    [
        {},  # contracts only: the previous size is the position held
        {"prev_market_position_size": 10},
        {"market_position_size": 10, "prev_market_position_size": 10},
        {"position_size": -10},
    ],
    ids=["contracts-only", "prev-size", "market-size", "signed-size"],
)
def test_a_flip_from_long_10_ends_short_10_however_the_sizes_are_sent(sizes):
    d = decide(strategy_alert(**FLIP_TO_SHORT, **sizes), positions=held(10))
    assert d.kind is DecisionKind.REVERSE
    close, opening = d.intents
    assert (close.side, close.qty) == (Side.SELL, 10)
    assert (opening.side, opening.qty) == (Side.SELL, 10)


def test_a_flip_sized_by_the_strategys_previous_size_not_ours():
    """We hold 6 (a partial fill or a manual trim); the strategy held 10 and reverses to 10."""
    alert = strategy_alert(**FLIP_TO_SHORT, prev_market_position_size=10)
    d = decide(alert, positions=held(6))
    close, opening = d.intents
    assert close.qty == 6  # the broker's position is what we close
    assert opening.qty == 10  # the strategy's new side


def test_a_partial_exit_closes_the_difference_and_protects_the_remainder():
    alert = strategy_alert(
        action="sell", market_position="long", prev_market_position="long", quantity=5,
        market_position_size=5, prev_market_position_size=10,
    )  # fmt: skip
    d = decide(alert, positions=held(10), protection=Protection(145.0, 160.0))
    assert d.kind is DecisionKind.CLOSE
    close, protect = d.intents
    assert (close.side, close.qty, close.closes_position) == (Side.SELL, 5, True)
    assert protect.protects_position
    assert not protect.closes_position
    assert (protect.side, protect.qty) == (Side.SELL, 5)
    assert (protect.stop_loss, protect.take_profit) == (145.0, 160.0)
    assert protect.client_order_id == "ft-A1-protect"


def test_a_partial_exit_of_an_unprotected_position_places_no_protection():
    alert = strategy_alert(action="sell", market_position="long", quantity=4)
    d = decide(alert, positions=held(10))
    assert [i.qty for i in d.intents] == [4]


def test_a_resent_contracts_only_flip_finds_the_new_side_held_and_does_nothing():
    """Found by the property test: long 1 → short 1 → long 1, then TradingView resends the
    last flip (buy, long, prev short, contracts 2) with no size placeholders."""
    alert = strategy_alert(
        action="buy", market_position="long", prev_market_position="short", quantity=2
    )
    d = decide(alert, positions=held(1))
    assert d.kind is DecisionKind.IGNORE


def test_a_redelivered_alert_finds_its_target_reached_and_does_nothing():
    alert = strategy_alert(action="sell", market_position="short", position_size=-10)
    d = decide(alert, positions=held(-10))
    assert d.kind is DecisionKind.IGNORE
    assert d.intents == ()


def test_an_exit_that_finds_the_account_flat_is_ignored_not_rejected():
    alert = strategy_alert(action="sell", market_position="flat", quantity=10)
    d = decide(alert, positions=())
    assert d.kind is DecisionKind.IGNORE
    assert d.reason == "already flat in MSFT"


def test_a_strategy_adding_to_its_position_is_refused_no_pyramiding():
    alert = strategy_alert(action="buy", market_position="long", market_position_size=20)
    d = decide(alert, positions=held(10))
    assert d.kind is DecisionKind.NOTHING
    assert "adding to a position is off" in d.reason


def test_with_our_own_sizing_a_partial_exit_closes_the_same_share():
    rules = OrderRules(use_alert_quantity=False, sizing_mode=SizingMode.FIXED_QTY, default_qty=8)
    alert = strategy_alert(
        action="sell", market_position="long", market_position_size=5,
        prev_market_position_size=10,
    )  # fmt: skip
    d = decide(alert, positions=held(8), rules=rules)
    assert [i.qty for i in d.intents] == [4]


@pytest.mark.parametrize(
    ("fields", "held_qty", "target"),
    [
        ({"market_position": "flat", "quantity": 3}, 3, 0.0),
        ({"market_position": "long", "quantity": 5}, 0, 5.0),
        ({"market_position": "long", "prev_market_position": "short", "quantity": 12}, -4, 8.0),
        ({"market_position": "long", "quantity": 2, "action": "sell"}, 10, 8.0),
        ({"market_position": "short", "market_position_size": 3}, 0, -3.0),
        ({"market_position": "long"}, 0, None),
    ],
)
def test_strategy_target(fields, held_qty, target):
    alert = strategy_alert(**{"action": "buy", **fields})
    assert strategy_target(alert, held_qty) == target


def test_an_indicator_alert_has_no_target():
    assert strategy_target(strategy_alert(action="buy"), 0) is None


def test_a_signed_size_that_contradicts_the_market_position_is_refused():
    with pytest.raises(ValidationError, match="disagrees"):
        strategy_alert(action="buy", market_position="long", position_size=-5)


@pytest.mark.parametrize("field", ["market_position_size", "prev_market_position_size"])
@pytest.mark.parametrize("value", [-1, 1e308])
def test_strategy_sizes_out_of_bounds_are_refused(field, value):
    with pytest.raises(ValidationError, match=field):
        strategy_alert(action="buy", market_position="long", **{field: value})
