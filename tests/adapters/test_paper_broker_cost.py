"""What one decision costs the paper broker does not grow with the account's history
(issue 9 part 3): the state-table calls of the decision path's broker calls (and the items
they read) are counted after 10 and after 1,000 orders, and must be the same. Calls are
counted, never timed."""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import boto3
import pytest

from chalicelib.adapters.paper_broker import PaperBroker
from chalicelib.adapters.paper_broker.book import new_records
from chalicelib.domain import OrderIntent, OrderStatus, OrderType, Side

T0 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
READS = ("GetItem", "BatchGetItem", "Query", "Scan")
HISTORY_SYMBOLS = 40


@pytest.fixture
def counted(aws):
    """A paper broker whose DynamoDB calls are counted by operation."""
    client = boto3.client("dynamodb")
    calls: Counter[str] = Counter()
    client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.update([model.name])
    )

    def items_read(parsed: dict, **_: object) -> None:
        found = len(parsed.get("Items", [])) + ("Item" in parsed)
        found += sum(len(items) for items in parsed.get("Responses", {}).values())
        calls.update({"items read": found})

    client.meta.events.register("after-call.dynamodb.*", items_read)
    table = os.environ["FLOWTRADER_STATE_TABLE"]
    broker = PaperBroker(client, table, slippage_bps=0.0, clock=lambda: T0)
    return broker, calls, lambda: PaperBroker(boto3.client("dynamodb"), table, clock=lambda: T0)


def history_intent(i: int) -> OrderIntent:
    return OrderIntent(
        client_order_id=f"ft-history-{i:05d}",
        alert_id=f"history-{i}",
        symbol=f"H{i % HISTORY_SYMBOLS:02d}",
        side=Side.BUY,
        qty=1,
        order_type=OrderType.LIMIT,
        limit_price=1.0,
        stop_loss=0.5,
        take_profit=2.0,
        reference_price=50.0,
    )


def add_history(make_broker, start: int, count: int) -> None:
    """`count` closed bracket orders (resting limits that were canceled), as a long trading
    history leaves them. The first ones go through the broker; the bulk is written through
    the broker's own store as the same canceled records, to keep the test quick."""
    through_broker = min(count, 10)

    def placed_and_canceled(i: int) -> None:
        broker = make_broker()
        broker.on_price(f"H{i % HISTORY_SYMBOLS:02d}", 50.0, T0)
        order = broker.place_order(history_intent(i))
        broker.cancel_order(order.broker_order_id)

    def stored_canceled(i: int) -> None:
        records = [
            r.evolve(status=OrderStatus.CANCELED) for r in new_records(history_intent(i), T0)
        ]
        make_broker()._store.put_new(records)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(placed_and_canceled, range(start, start + through_broker)))
        list(pool.map(stored_canceled, range(start + through_broker, start + count)))


def decision(broker: PaperBroker, calls: Counter[str], n: int) -> Counter[str]:
    """The broker calls one alert's decision makes, and the state-table calls they cost."""
    calls.clear()
    broker.on_price("AAPL", 100.0, T0)
    broker.get_account()
    broker.get_positions()
    broker.list_orders(status="open")
    broker.working_exits("AAPL")
    broker.place_order(
        OrderIntent(
            client_order_id=f"ft-decision-{n}",
            alert_id=f"decision-{n}",
            symbol="AAPL",
            side=Side.BUY,
            qty=1,
            reference_price=100.0,
            stop_loss=95.0,
            take_profit=110.0,
        )
    )
    return Counter(calls)


def test_state_table_reads_per_decision_do_not_grow_with_history(counted):
    broker, calls, make_broker = counted
    broker.place_order(  # what is held and working now: a protected position, a resting entry
        OrderIntent(
            client_order_id="ft-held",
            alert_id="held",
            symbol="AAPL",
            side=Side.BUY,
            qty=10,
            reference_price=100.0,
            stop_loss=90.0,
            take_profit=120.0,
        )
    )
    broker.place_order(
        OrderIntent(
            client_order_id="ft-resting",
            alert_id="resting",
            symbol="MSFT",
            side=Side.BUY,
            qty=1,
            order_type=OrderType.LIMIT,
            limit_price=300.0,
            reference_price=400.0,
        )
    )
    add_history(make_broker, 0, 10)
    after_10 = decision(broker, calls, 10)
    broker.cancel_order(broker.get_order_by_client_id("ft-decision-10").legs[0].broker_order_id)

    add_history(make_broker, 10, 990)
    after_1000 = decision(broker, calls, 1000)

    reads_10 = sum(after_10[op] for op in READS)
    reads_1000 = sum(after_1000[op] for op in READS)
    assert reads_1000 == reads_10, (after_10, after_1000)
    assert after_1000 == after_10
    print(f"state-table calls per decision after 10 and after 1,000 orders: {dict(after_10)}")
    assert reads_10 <= 25  # a handful per call, not one per order or quote ever stored
    assert len(broker.list_orders("all", limit=5)) == 5  # the history is really there
    assert broker.get_order_by_client_id("ft-history-00999") is not None


def bracket(cid: str, qty: float = 1) -> OrderIntent:
    return OrderIntent(
        client_order_id=cid,
        alert_id=cid,
        symbol="AAPL",
        side=Side.BUY,
        qty=qty,
        reference_price=100.0,
        stop_loss=95.0,
        take_profit=110.0,
    )


def test_a_market_bracket_fills_in_the_one_write_that_places_it(counted):
    """Placing is the decision's critical path: a market order that fills at once is created
    filled, its legs working and the book moved, in a single transaction (no read of the id
    first: the create's condition keeps it unique)."""
    broker, calls, _ = counted
    calls.clear()
    order = broker.place_order(bracket("ft-once"))
    writes = {op: n for op, n in calls.items() if op not in (*READS, "items read")}
    assert writes == {"TransactWriteItems": 1}, calls
    assert order.status is OrderStatus.FILLED
    assert order.filled_avg_price == 100.0
    assert [leg.status for leg in order.legs] == [OrderStatus.NEW, OrderStatus.NEW]
    assert broker.get_positions()[0].qty == 1
    assert broker.get_account().cash == pytest.approx(100_000.0 - 100.0)
    assert {o.client_order_id for o in broker.working_exits("AAPL")} == {
        "ft-once#tp",
        "ft-once#sl",
    }


def test_a_repeated_place_returns_the_first_order_and_moves_nothing(counted):
    broker, _, make_broker = counted
    first = broker.place_order(bracket("ft-twice"))
    again = make_broker().place_order(bracket("ft-twice"))
    assert again.broker_order_id == first.broker_order_id
    assert again.status is OrderStatus.FILLED
    assert broker.get_positions()[0].qty == 1  # filled once, not twice


def test_a_repeat_that_no_longer_has_the_buying_power_still_returns_the_order(counted):
    """The first call spent the buying power; its retry must get that order back, not a
    rejection that would make the worker think nothing was placed."""
    broker, _, make_broker = counted
    first = broker.place_order(bracket("ft-big", qty=900))  # $90,000 of $100,000
    again = make_broker().place_order(bracket("ft-big", qty=900))
    assert again.broker_order_id == first.broker_order_id
    assert broker.get_positions()[0].qty == 900
