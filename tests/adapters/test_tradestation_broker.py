"""The TradeStation adapter through its own HTTP client against a local SIM
(tests/fakes/tradestation_server.py), beyond the contract every broker keeps
(tests/adapters/test_broker_contract.py): what goes on the wire (TradeAction from the
position, strings for numbers, the bracket as an OSO with a BRK group, a held remainder's BRK
group), lookup before any retry (TradeStation echoes no client id: the OrderConfirmID guard and
the fingerprint scan), error mapping, cancel and replace, balances.

Vendor semantics, from TradeStation's API reference (api.tradestation.com/docs, the v3 OpenAPI
document): `TradeAction` "BUY / SELL equities; BUYTOCOVER / SELLSHORT equities"; every
`OrderRequest` number is a string; `OSOs` "Order Sends Order"; Place Group Order: "Bracket
orders are used to exit an existing position ... restricted to closing transactions";
`OrderConfirmID` "used to prevent duplicates"; Cancel Order "Sends a cancellation request".
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.adapters.tradestation import (
    StaticRefreshToken,
    TradeStationBroker,
    build_order_request,
    confirm_id,
    trade_action,
)
from chalicelib.domain import OrderIntent, OrderStatus, OrderType, Side
from chalicelib.ports import BrokerRejected, BrokerUnavailable
from tests.fakes.tradestation_server import FakeTradeStation

ORDERS = "/v3/orderexecution/orders"
GROUPS = "/v3/orderexecution/ordergroups"


@pytest.fixture
def fake():
    with FakeTradeStation() as server:
        server.prices["AAPL"] = 190.0
        yield server


def connect(fake: FakeTradeStation, **kwargs) -> TradeStationBroker:
    return TradeStationBroker.connect(
        fake.account_id,
        fake.client_id,
        fake.client_secret,
        StaticRefreshToken(next(iter(fake.refresh_tokens))),
        base_url=fake.url,
        token_url=fake.token_url,
        wait_s=0,
        sleep=lambda _: None,
        **kwargs,
    )


@pytest.fixture
def broker(fake):
    return connect(fake)


def intent(cid: str = "ft-alert-1", **kwargs) -> OrderIntent:
    base = {"client_order_id": cid, "alert_id": cid, "symbol": "AAPL", "side": Side.BUY, "qty": 5}
    return OrderIntent(**(base | kwargs))


def held(broker: TradeStationBroker) -> float:
    return next((p.qty for p in broker.get_positions() if p.symbol == "AAPL"), 0.0)


def actions(fake: FakeTradeStation) -> list[str]:
    return [r["json"]["TradeAction"] for r in fake.posts(ORDERS) if r["json"]]


# --- TradeAction from the position ----------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "held_qty", "closes", "expected"),
    [
        (Side.BUY, 0, False, "BUY"),  # open a long
        (Side.BUY, 10, False, "BUY"),  # add to it
        (Side.SELL, 0, False, "SELLSHORT"),  # open a short
        (Side.SELL, -10, False, "SELLSHORT"),  # add to it
        (Side.SELL, 10, True, "SELL"),  # close a long
        (Side.BUY, -10, True, "BUYTOCOVER"),  # close a short
        (Side.SELL, 10, False, "SELL"),  # a sell while long reduces it
        (Side.BUY, -10, False, "BUYTOCOVER"),  # a buy while short covers it
    ],
)
def test_trade_action_follows_the_position(side, held_qty, closes, expected):
    assert trade_action(side, Decimal(held_qty), Decimal(5), closes=closes) == expected


@pytest.mark.parametrize(("side", "held_qty"), [(Side.BUY, -3), (Side.SELL, 3)])
def test_an_order_through_zero_is_refused_a_reversal_is_close_then_open(side, held_qty):
    with pytest.raises(BrokerRejected) as err:
        trade_action(side, Decimal(held_qty), Decimal(5), closes=False)

    assert "close and then an open" in err.value.reason


def test_open_close_and_reverse_go_out_as_the_documented_actions(fake, broker):
    broker.place_order(intent("ft-open"))  # long 5
    broker.place_order(intent("ft-close", side=Side.SELL, closes_position=True))
    broker.place_order(intent("ft-short", side=Side.SELL))  # short 5
    # a reversal: the close, then the open (two intents, as the use case sends them)
    broker.place_order(intent("ft-rev-close", closes_position=True))
    broker.place_order(intent("ft-rev-open"))

    assert actions(fake) == ["BUY", "SELL", "SELLSHORT", "BUYTOCOVER", "BUY"]
    assert held(broker) == 5


# --- the wire -------------------------------------------------------------------------------


def test_quantities_and_prices_go_out_as_strings_on_valid_ticks(fake, broker):
    broker.place_order(
        intent(order_type=OrderType.STOP_LIMIT, stop_price=200.004, limit_price=200.5, qty=3)
    )

    [post] = fake.posts(ORDERS)
    body = post["json"]
    assert {k: body[k] for k in ("Quantity", "StopPrice", "LimitPrice", "OrderType")} == {
        "Quantity": "3",
        "StopPrice": "200",
        "LimitPrice": "200.5",
        "OrderType": "StopLimit",
    }
    assert body["TimeInForce"] == {"Duration": "DAY"}
    assert body["OrderConfirmID"] == confirm_id("ft-alert-1")
    assert len(body["OrderConfirmID"]) == 22  # the spec's maxLength


def test_a_trailing_stop_is_a_stop_market_with_a_trailing_offset(fake, broker):
    broker.place_order(intent(side=Side.SELL, order_type=OrderType.TRAILING_STOP, trail_percent=2))

    [post] = fake.posts(ORDERS)
    assert post["json"]["OrderType"] == "StopMarket"
    assert post["json"]["AdvancedOptions"] == {"TrailingStop": {"Percent": "2"}}
    order = broker.list_orders("open")[0]
    assert order.order_type is OrderType.TRAILING_STOP


def test_a_bracket_entry_is_one_oso_with_a_brk_group_of_closing_exits(fake, broker):
    order = broker.place_order(intent(stop_loss=180.0, take_profit=210.0))

    [post] = fake.posts(ORDERS)
    [oso] = post["json"]["OSOs"]
    assert oso["Type"] == "BRK"
    exits = {(o["OrderType"], o["TradeAction"], o.get("LimitPrice"), o.get("StopPrice"))
             for o in oso["Orders"]}  # fmt: skip
    assert exits == {("Limit", "SELL", "210", None), ("StopMarket", "SELL", None, "180")}
    assert all(o["Quantity"] == "5" for o in oso["Orders"])
    assert order.status is OrderStatus.FILLED
    assert {leg.status for leg in order.legs} == {OrderStatus.NEW}


def test_a_short_bracket_exits_by_buying_to_cover(fake, broker):
    broker.place_order(intent(side=Side.SELL, stop_loss=200.0, take_profit=170.0))

    [post] = fake.posts(ORDERS)
    assert post["json"]["TradeAction"] == "SELLSHORT"
    assert {o["TradeAction"] for o in post["json"]["OSOs"][0]["Orders"]} == {"BUYTOCOVER"}


def test_a_resting_entrys_exits_wait_as_oso_orders(fake, broker):
    order = broker.place_order(
        intent(order_type=OrderType.LIMIT, limit_price=150.0, stop_loss=140.0, take_profit=170.0)
    )

    assert order.status is OrderStatus.NEW
    assert {leg.status for leg in order.legs} == {OrderStatus.PENDING}  # "OSO" until it fills
    assert broker.working_exits("AAPL") == []


def test_a_held_remainders_oco_is_a_brk_group_on_ordergroups(fake, broker):
    broker.place_order(intent(qty=10))
    broker.place_order(
        intent("ft-protect", side=Side.SELL, protects_position=True, stop_loss=180, take_profit=210)
    )

    [group] = fake.posts(GROUPS)
    assert group["json"]["Type"] == "BRK"
    assert [o["OrderType"] for o in group["json"]["Orders"]] == ["Limit", "StopMarket"]
    assert {o["TradeAction"] for o in group["json"]["Orders"]} == {"SELL"}


def test_one_exit_leg_is_a_normal_oso():
    _, body = build_order_request(intent(stop_loss=180.0), "SIM1", Decimal(0))

    assert [(o["Type"], len(o["Orders"])) for o in body["OSOs"]] == [("NORMAL", 1)]


# --- lookup before retry --------------------------------------------------------------------


def test_a_5xx_after_the_order_was_placed_finds_it_and_places_nothing_more(fake, broker):
    fake.inject("POST", ORDERS, status=503, after=True)

    order = broker.place_order(intent())

    assert order.status is OrderStatus.FILLED
    assert len(fake.posts(ORDERS)) == 1
    assert broker.get_order_by_client_id("ft-alert-1").broker_order_id == order.broker_order_id


def test_a_timeout_after_the_order_was_placed_finds_it(fake):
    broker = connect(fake, timeout_s=0.3)
    fake.inject("POST", ORDERS, status=504, after=True, delay_s=1.0)

    order = broker.place_order(intent())

    assert order.status is OrderStatus.FILLED
    assert len(fake.orders) == 1


def test_a_fresh_process_retrying_is_refused_as_duplicate_and_finds_the_order(fake, broker):
    placed = broker.place_order(intent())
    restarted = connect(fake)  # a new Lambda: nothing remembered, nothing recorded

    again = restarted.place_order(intent())

    assert again.broker_order_id == placed.broker_order_id
    assert len(fake.orders) == 1
    assert len(fake.posts(ORDERS)) == 2  # the second POST was refused (same OrderConfirmID)


def test_a_recorded_order_id_is_looked_up_before_any_post(fake, broker):
    placed = broker.place_order(intent())
    restarted = connect(fake, recorded_id={"ft-alert-1": placed.broker_order_id}.get)

    again = restarted.place_order(intent(qty=99))

    assert again.broker_order_id == placed.broker_order_id
    assert len(fake.posts(ORDERS)) == 1


def test_an_unknown_outcome_with_nothing_placed_is_unavailable_then_the_retry_places(fake, broker):
    fake.inject("POST", ORDERS, status=429)

    with pytest.raises(BrokerUnavailable, match="did not confirm order ft-alert-1"):
        broker.place_order(intent())

    assert fake.orders == {}
    assert broker.place_order(intent()).status is OrderStatus.FILLED
    assert len(fake.orders) == 1


def test_an_older_identical_order_is_not_taken_for_an_unknown_post(fake):
    broker = connect(fake)
    older = broker.place_order(intent("ft-earlier"))
    fake.orders[older.broker_order_id]["OpenedDateTime"] = "2020-11-16T16:53:37Z"
    restarted = connect(fake)  # nothing remembered: only the fingerprint could match it
    fake.inject("POST", ORDERS, status=503)

    with pytest.raises(BrokerUnavailable):
        restarted.place_order(intent("ft-later"))

    assert restarted.get_order_by_client_id("ft-later") is None
    assert restarted.place_order(intent("ft-later")).broker_order_id != older.broker_order_id


@pytest.mark.parametrize("reversed_answer", [False, True])
def test_the_entry_of_an_oso_is_the_order_remembered_whatever_the_answers_order(
    fake, broker, reversed_answer
):
    fake.answer_reversed = reversed_answer

    order = broker.place_order(intent(stop_loss=180.0, take_profit=210.0))

    assert order.order_type is OrderType.MARKET
    assert {leg.order_type for leg in order.legs} == {OrderType.LIMIT, OrderType.STOP}


# --- errors ---------------------------------------------------------------------------------


def test_a_refusal_is_rejected_with_tradestations_words(fake, broker):
    with pytest.raises(BrokerRejected) as err:
        broker.place_order(intent(side=Side.SELL, closes_position=True))  # nothing held

    assert "Cannot sell 5 AAPL" in err.value.reason
    assert err.value.code == "BadRequest"


def test_reads_retry_while_unavailable_then_say_so(fake, broker):
    fake.inject("GET", f"/v3/brokerage/accounts/{fake.account_id}/positions", status=503, times=3)

    with pytest.raises(BrokerUnavailable, match="HTTP 503"):
        broker.get_positions()


def test_a_wrong_account_is_a_plain_rejection(fake):
    other = TradeStationBroker.connect(
        "SIM999",
        fake.client_id,
        fake.client_secret,
        StaticRefreshToken(next(iter(fake.refresh_tokens))),
        base_url=fake.url,
        token_url=fake.token_url,
    )

    with pytest.raises(BrokerRejected, match="forbidden by TradeStation"):
        other.get_account()


# --- cancel, replace, account ---------------------------------------------------------------


def test_cancel_waits_until_the_cancel_sent_status_settles(fake, broker):
    fake.cancel_latency = 2
    resting = broker.place_order(intent(order_type=OrderType.LIMIT, limit_price=150.0))

    broker.cancel_order(resting.broker_order_id)

    assert fake.orders[resting.broker_order_id]["Status"] == "CAN"  # settled before returning
    assert [
        r["method"] for r in fake.requests if r["path"] == f"{ORDERS}/{resting.broker_order_id}"
    ] == ["DELETE"]
    assert broker.get_order_by_client_id("ft-alert-1").status is OrderStatus.CANCELED


def test_replace_changes_a_working_orders_price(fake, broker):
    resting = broker.place_order(intent(order_type=OrderType.LIMIT, limit_price=150.0))

    replaced = broker.replace_order(resting.broker_order_id, limit_price=151.25, qty=4)

    [put] = [r for r in fake.requests if r["method"] == "PUT"]
    assert put["json"] == {"Quantity": "4", "LimitPrice": "151.25"}
    assert (replaced.limit_price, replaced.qty, replaced.client_order_id) == (
        151.25,
        4,
        "ft-alert-1",
    )


def test_the_account_reads_equity_buying_power_and_day_pl(fake, broker):
    fake.bod_equity = Decimal("99000")

    account = broker.get_account()

    assert (account.equity, account.cash, account.buying_power) == (100000, 100000, 100000)
    assert account.day_pl == 1000
