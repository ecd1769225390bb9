"""The paper broker on moto's DynamoDB server: fills, working orders, legs and concurrency,
beyond the contract every broker keeps (tests/adapters/test_broker_contract.py). Each test
builds fresh broker instances, as separate Lambda invocations would."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from chalicelib.adapters.paper_broker import PaperBroker
from chalicelib.domain import OrderIntent, OrderStatus, OrderType, Side
from chalicelib.ports import BrokerRejected

T0 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


@pytest.fixture
def make_broker(aws):
    def make(**kwargs) -> PaperBroker:
        kwargs.setdefault("slippage_bps", 10.0)
        kwargs.setdefault("clock", lambda: T0)
        return PaperBroker(boto3.client("dynamodb"), os.environ["FLOWTRADER_STATE_TABLE"], **kwargs)

    return make


def intent(cid: str = "ft-alert-1", **kwargs) -> OrderIntent:
    base = {
        "client_order_id": cid,
        "alert_id": cid,
        "symbol": "AAPL",
        "side": Side.BUY,
        "qty": 10,
        "reference_price": 100.0,
    }
    return OrderIntent(**(base | kwargs))


def test_market_order_fills_at_reference_price_with_slippage(make_broker):
    broker = make_broker()

    order = broker.place_order(intent())

    assert order.status is OrderStatus.FILLED
    assert order.filled_avg_price == pytest.approx(100.10)  # 10 bps worse for a buyer
    [position] = make_broker().get_positions()
    assert (position.symbol, position.qty, position.avg_entry_price) == ("AAPL", 10, 100.10)
    account = make_broker().get_account()
    assert account.cash == pytest.approx(100_000 - 1001.0)
    assert account.equity == pytest.approx(100_000 - 1001.0 + 1001.0)


def test_parallel_calls_with_one_client_order_id_give_one_order_and_one_fill(make_broker):
    def place(_: int):
        return make_broker().place_order(intent())

    with ThreadPoolExecutor(8) as pool:
        orders = list(pool.map(place, range(8)))

    assert len({o.broker_order_id for o in orders}) == 1
    assert len(make_broker().list_orders()) == 1
    assert [p.qty for p in make_broker().get_positions()] == [10]


def test_parallel_distinct_orders_lose_no_fill(make_broker):
    def place(i: int):
        return make_broker().place_order(intent(f"ft-{i}", qty=1))

    with ThreadPoolExecutor(8) as pool:
        orders = list(pool.map(place, range(12)))

    assert all(o.status is OrderStatus.FILLED for o in orders)
    [position] = make_broker().get_positions()
    assert position.qty == 12
    assert make_broker().get_account().cash == pytest.approx(100_000 - 12 * 100.10)


def test_market_order_without_any_price_waits_for_the_first_price(make_broker):
    broker = make_broker()
    order = broker.place_order(intent(reference_price=None))
    assert order.status is OrderStatus.NEW

    changed = make_broker().on_price("AAPL", 50.0, T0)

    assert [o.status for o in changed] == [OrderStatus.FILLED]
    assert changed[0].filled_avg_price == pytest.approx(50.05)


def test_limit_order_rests_until_the_price_reaches_it(make_broker):
    broker = make_broker()
    placed = broker.place_order(intent(order_type=OrderType.LIMIT, limit_price=98.0))
    assert placed.status is OrderStatus.NEW

    assert make_broker().on_price("AAPL", 99.0, T0) == []
    [filled] = make_broker().on_price("AAPL", 99.5, T0, low=97.5)

    assert filled.status is OrderStatus.FILLED
    assert filled.filled_avg_price == 98.0  # resting limit: its price, no slippage


def test_stop_order_triggers_and_fills_at_the_gap_price(make_broker):
    make_broker().place_order(intent(order_type=OrderType.STOP, stop_price=105.0))

    assert make_broker().on_price("AAPL", 104.0, T0) == []
    [filled] = make_broker().on_price("AAPL", 107.0, T0)

    assert filled.filled_avg_price == pytest.approx(107.11)  # gapped through, plus slippage


def test_bracket_legs_wait_for_entry_then_take_profit_cancels_stop(make_broker):
    entry = make_broker().place_order(
        intent(order_type=OrderType.LIMIT, limit_price=99.0, stop_loss=95.0, take_profit=110.0)
    )
    assert entry.status is OrderStatus.NEW
    assert [leg.status for leg in entry.legs] == [OrderStatus.PENDING, OrderStatus.PENDING]

    # Legs are held: a price below the stop does nothing before the entry fills.
    [filled] = make_broker().on_price("AAPL", 98.5, T0)
    assert filled.client_order_id == "ft-alert-1"
    changed = make_broker().on_price("AAPL", 111.0, T0 + timedelta(minutes=5))

    by_id = {o.client_order_id: o.status for o in changed}
    assert by_id == {"ft-alert-1#tp": OrderStatus.FILLED, "ft-alert-1#sl": OrderStatus.CANCELED}
    assert make_broker().get_positions() == []
    account = make_broker().get_account()
    assert account.cash == pytest.approx(100_000 + 10 * (111.0 - 98.5))


def test_stop_loss_wins_when_one_move_touches_both_legs(make_broker):
    make_broker().place_order(intent(stop_loss=95.0, take_profit=110.0))

    changed = make_broker().on_price("AAPL", 100.0, T0, high=111.0, low=94.0)

    by_id = {o.client_order_id: o for o in changed}
    assert by_id["ft-alert-1#sl"].status is OrderStatus.FILLED
    assert by_id["ft-alert-1#sl"].filled_avg_price == pytest.approx(94.90)  # 95 less 10 bps
    assert by_id["ft-alert-1#tp"].status is OrderStatus.CANCELED


def test_one_legged_order_is_oto_with_a_single_stop(make_broker):
    order = make_broker().place_order(intent(stop_loss=95.0))
    [leg] = order.legs
    assert (leg.order_type, leg.side, leg.status) == (OrderType.STOP, Side.SELL, OrderStatus.NEW)

    [stopped] = make_broker().on_price("AAPL", 94.0, T0)

    assert stopped.client_order_id == "ft-alert-1#sl"
    assert make_broker().get_positions() == []


def test_short_entry_bracket_exits_with_buy_legs(make_broker):
    order = make_broker().place_order(intent(side=Side.SELL, stop_loss=105.0, take_profit=90.0))
    assert order.filled_avg_price == pytest.approx(99.90)
    assert [p.qty for p in make_broker().get_positions()] == [-10]

    [covered, canceled] = make_broker().on_price("AAPL", 89.0, T0)

    assert (covered.side, covered.filled_avg_price) == (Side.BUY, 89.0)
    assert canceled.status is OrderStatus.CANCELED
    assert make_broker().get_account().cash == pytest.approx(100_000 + 10 * (99.90 - 89.0))


def test_trailing_stop_follows_the_high_water_mark(make_broker):
    make_broker().place_order(intent())  # long 10
    trail = intent(
        "ft-trail",
        side=Side.SELL,
        order_type=OrderType.TRAILING_STOP,
        trail_percent=5.0,
        closes_position=True,
        reference_price=None,
    )
    make_broker().place_order(trail)

    assert make_broker().on_price("AAPL", 100.0, T0) == []  # stop at 95
    assert make_broker().on_price("AAPL", 120.0, T0) == []  # stop moves up to 114
    assert make_broker().get_order_by_client_id("ft-trail").stop_price == 114.0
    [sold] = make_broker().on_price("AAPL", 113.0, T0)

    assert sold.filled_avg_price == pytest.approx(112.88)  # gap price 113 less 10 bps, down-tick
    assert make_broker().get_positions() == []


def test_trailing_stop_cannot_carry_legs(make_broker):
    with pytest.raises(BrokerRejected) as err:
        make_broker().place_order(
            intent(order_type=OrderType.TRAILING_STOP, trail_price=2.0, stop_loss=90.0)
        )
    assert err.value.code == "42210000"


def test_order_beyond_buying_power_is_rejected_like_alpaca(make_broker):
    with pytest.raises(BrokerRejected) as err:
        make_broker(starting_cash=1_000.0).place_order(intent(qty=50))

    assert err.value.code == "40310000"
    assert "buying power" in err.value.reason
    assert make_broker().list_orders() == []


def test_cancel_entry_cancels_its_legs(make_broker):
    order = make_broker().place_order(
        intent(order_type=OrderType.LIMIT, limit_price=90.0, stop_loss=85.0, take_profit=99.0)
    )

    make_broker().cancel_order(order.broker_order_id)

    again = make_broker().get_order_by_client_id(order.client_order_id)
    assert again.status is OrderStatus.CANCELED
    assert {leg.status for leg in again.legs} == {OrderStatus.CANCELED}
    assert make_broker().on_price("AAPL", 80.0, T0) == []
    with pytest.raises(BrokerRejected):
        make_broker().cancel_order(order.broker_order_id)


def test_positions_are_marked_at_the_last_price(make_broker):
    make_broker().place_order(intent())
    make_broker().on_price("AAPL", 110.0, T0)
    make_broker().on_price("AAPL", 90.0, T0 - timedelta(minutes=1))  # late: ignored

    [position] = make_broker().get_positions()

    assert position.market_price == 110.0
    assert position.unrealized_pl == pytest.approx(10 * (110.0 - 100.10))


def test_parallel_prices_hitting_both_legs_close_the_position_exactly_once(make_broker):
    make_broker().place_order(intent(stop_loss=95.0, take_profit=110.0))
    moves = [111.0, 94.0] * 4

    def move(price: float):
        return make_broker().on_price("AAPL", price, T0)

    with ThreadPoolExecutor(8) as pool:
        results = [o for changed in pool.map(move, moves) for o in changed]

    filled = [o for o in results if o.status is OrderStatus.FILLED]
    assert len(filled) == 1
    assert make_broker().get_positions() == []
    legs = make_broker().get_order_by_client_id("ft-alert-1").legs
    assert sorted(leg.status.value for leg in legs) == ["canceled", "filled"]
    exit_price = filled[0].filled_avg_price
    assert make_broker().get_account().cash == pytest.approx(100_000 + 10 * (exit_price - 100.10))


def test_stop_limit_remembers_its_trigger_and_then_rests_as_a_limit(make_broker):
    make_broker().place_order(
        intent(order_type=OrderType.STOP_LIMIT, stop_price=105.0, limit_price=106.0)
    )

    assert make_broker().on_price("AAPL", 107.0, T0) == []  # triggered, above the limit
    assert make_broker().on_price("AAPL", 106.5, T0) == []  # now a resting buy limit at 106
    [filled] = make_broker().on_price("AAPL", 104.0, T0)  # below the stop: still triggered

    assert filled.filled_avg_price == 104.0


def test_canceling_a_leg_cancels_its_sibling(make_broker):
    entry = make_broker().place_order(intent(stop_loss=95.0, take_profit=110.0))
    stop_leg = next(leg for leg in entry.legs if leg.order_type is OrderType.STOP)

    make_broker().cancel_order(stop_leg.broker_order_id)

    legs = make_broker().get_order_by_client_id("ft-alert-1").legs
    assert {leg.status for leg in legs} == {OrderStatus.CANCELED}
    assert [p.qty for p in make_broker().get_positions()] == [10]  # the position stays


def test_a_protective_oco_loses_to_its_stop_when_one_move_touches_both(make_broker):
    make_broker().place_order(intent())  # long 10 at 100.10
    protect = intent(
        "ft-protect",
        side=Side.SELL,
        qty=4,
        protects_position=True,
        stop_loss=95.0,
        take_profit=110.0,
        reference_price=None,
    )
    make_broker().place_order(protect)

    changed = make_broker().on_price("AAPL", 100.0, T0, high=111.0, low=94.0)

    by_id = {o.client_order_id: o.status for o in changed}
    assert by_id == {"ft-protect#sl": OrderStatus.FILLED, "ft-protect": OrderStatus.CANCELED}
    assert [p.qty for p in make_broker().get_positions()] == [6]


def test_list_orders_reads_only_the_newest_page_of_history(make_broker):
    for i in range(12):
        make_broker().place_order(intent(f"ft-{i:02d}", qty=1))

    newest = make_broker().list_orders("all", limit=3)

    assert len(newest) == 3
    assert all(o.status is OrderStatus.FILLED for o in newest)
    assert len(make_broker().list_orders("closed", limit=50)) == 12
