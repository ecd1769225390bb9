"""One contract, four brokers: the fake (tests/fakes/broker.py), the paper broker (on moto's
DynamoDB server), Alpaca (the real alpaca-py against tests/fakes/alpaca_server.py) and IBKR
(the real ibind client, OAuth 1.0a included, against tests/fakes/ibkr_server.py).

Each case is what the use case relies on, whatever the venue: one order per client order id,
a bracket with both legs, a filled order that cannot be canceled, the open-order filter, a
transient failure surfacing as `BrokerUnavailable`, a protected remainder (an OCO, or one
stop or limit) whose filled leg cancels its sibling, the working exits of a position, and an
order of a kind flowtrader does not trade (Alpaca's own multi-leg options and IPO examples)
tolerated in the account.

Alpaca's OCO is a limit order with `order_class: oco`, `take_profit.limit_price` and
`stop_loss.stop_price`, for a position already held; the leg that fills cancels the other
(https://alpaca.markets/blog/oco-oto/, linked from "Orders at Alpaca",
https://docs.alpaca.markets/docs/orders-at-alpaca; the spec's `OrderClass` lists oco for
equities).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from chalicelib.adapters.alpaca import AlpacaBroker
from chalicelib.adapters.paper_broker import PaperBroker
from chalicelib.domain import Order, OrderIntent, OrderStatus, OrderType, Side
from chalicelib.ports import Broker, BrokerRejected, BrokerUnavailable
from tests.fakes.alpaca_server import FakeAlpaca, load_fixture
from tests.fakes.broker import FakeBroker
from tests.fakes.ibkr_server import FakeIbkr
from tests.fakes.tradestation_server import FakeTradeStation
from tests.fakes.tradestation_server import load_fixture as load_ts_fixture

T0 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
OPEN = (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING)


@dataclass
class Venue:
    """A broker and the market around it, as the cases need it."""

    name: str
    broker: Broker
    fill: Callable[[Order, float], None]  # the market fills this working order at a price
    fail_next: Callable[[str], None]  # the next "list" / "place" call fails transiently
    add_foreign: Callable[[], list[str]] | None  # foreign orders appear; their ids


def _fake_venue() -> Venue:
    fake = FakeBroker()

    def fail(_: str) -> None:
        fake.fail_next = 1

    def foreign() -> list[str]:
        raw = load_fixture("order_mleg_options.json")
        fake.foreign.append({"id": raw["id"], "symbol": "", "class": "mleg", "status": "filled"})
        return [raw["id"]]

    return Venue("fake", fake, lambda o, p: fake.fill(o.broker_order_id, p), fail, foreign)


def _paper_venue() -> Venue:
    client = boto3.client("dynamodb")
    failures = {"left": 0}

    def maybe_fail(**_: object) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise EndpointConnectionError(endpoint_url="http://dynamodb.unreachable")

    client.meta.events.register("before-call.dynamodb.*", maybe_fail)
    broker = PaperBroker(
        client, os.environ["FLOWTRADER_STATE_TABLE"], slippage_bps=0.0, clock=lambda: T0
    )

    def fail(_: str) -> None:
        failures["left"] = 1

    return Venue(
        "paper", broker, lambda o, p: broker.on_price(o.symbol, p, T0) and None, fail, None
    )


def _alpaca_venue(fake: FakeAlpaca) -> Venue:
    fake.prices["AAPL"] = 100.0
    fake.prices["MSFT"] = 400.0
    broker = AlpacaBroker.connect(
        fake.key_id, fake.secret_key, base_url=fake.url, wait_s=0, sleep=lambda _: None
    )

    def fail(op: str) -> None:  # reads are retried in the adapter (3 tries); POSTs are not
        if op == "list":
            fake.inject("GET", "/v2/orders", status=503, times=3)
        else:
            fake.inject("POST", "/v2/orders", status=503)

    def foreign() -> list[str]:
        orders = [load_fixture("order_mleg_options.json"), load_fixture("order_ipo.json")]
        for order in orders:
            fake.add_order(order)
        return [o["id"] for o in orders]

    return Venue("alpaca", broker, lambda o, p: fake.fill(o.broker_order_id, p), fail, foreign)


def _ibkr_venue(fake: FakeIbkr) -> Venue:
    """The real ibind client over OAuth 1.0a against tests/fakes/ibkr_server.py."""
    from chalicelib.adapters.ibkr.broker import IbkrBroker

    fake.prices["AAPL"] = 100.0
    fake.prices["MSFT"] = 400.0
    # IBKR paces live orders to one read in 5 s: the session waits on the fake's clock
    broker = IbkrBroker(fake.session(), wait_s=0, sleep=lambda _: None)

    def fail(op: str) -> None:  # reads are retried in the adapter (3 tries); POSTs are not
        if op == "list":
            fake.inject("GET", "iserver/account/orders", status=503, times=3)
        else:
            fake.inject("POST", f"iserver/account/{fake.account_id}/orders", status=503)

    return Venue(
        "ibkr", broker, lambda o, p: fake.fill(o.broker_order_id, p), fail, fake.add_foreign_orders
    )


def _tradestation_venue(fake: FakeTradeStation) -> Venue:
    """TradeStation too: its SIM (tests/fakes/tradestation_server.py) through the adapter's own
    HTTP client; the account's orders are today's and open orders (GET
    /v3/brokerage/accounts/{id}/orders), an option order is the foreign one."""
    from chalicelib.adapters.tradestation import StaticRefreshToken, TradeStationBroker

    fake.prices["AAPL"] = 100.0
    fake.prices["MSFT"] = 400.0
    broker = TradeStationBroker.connect(
        fake.account_id,
        fake.client_id,
        fake.client_secret,
        StaticRefreshToken(next(iter(fake.refresh_tokens))),
        base_url=fake.url,
        token_url=fake.token_url,
        wait_s=0,
        sleep=lambda _: None,
    )

    def fail(op: str) -> None:  # reads are retried in the adapter (3 tries); POSTs are not
        if op == "list":
            fake.inject("GET", f"/v3/brokerage/accounts/{fake.account_id}/orders", times=3)
        else:
            fake.inject("POST", "/v3/orderexecution/orders")

    def foreign() -> list[str]:
        order = load_ts_fixture("order_option.json")
        fake.add_order(order)
        return [order["OrderID"]]

    return Venue(
        "tradestation", broker, lambda o, p: fake.fill(o.broker_order_id, p), fail, foreign
    )


@pytest.fixture(params=["fake", "paper", "alpaca", "ibkr", "tradestation"])
def venue(request: pytest.FixtureRequest) -> Iterator[Venue]:
    if request.param == "fake":
        yield _fake_venue()
    elif request.param == "paper":
        request.getfixturevalue("aws")
        yield _paper_venue()
    elif request.param == "tradestation":
        with FakeTradeStation() as ts:
            yield _tradestation_venue(ts)
    elif request.param == "alpaca":
        with FakeAlpaca() as fake:
            yield _alpaca_venue(fake)
    else:
        with FakeIbkr() as fake:
            yield _ibkr_venue(fake)


def intent(cid: str = "ft-a1-open", **kwargs: object) -> OrderIntent:
    base: dict[str, object] = {
        "client_order_id": cid,
        "alert_id": cid,
        "symbol": "AAPL",
        "side": Side.BUY,
        "qty": 10,
        "reference_price": 100.0,
    }
    return OrderIntent(**(base | kwargs))


def protect(cid: str = "ft-a2-protect", **kwargs: object) -> OrderIntent:
    return intent(cid, side=Side.SELL, qty=5, protects_position=True, **kwargs)


def held(venue: Venue, symbol: str = "AAPL") -> float:
    return next((p.qty for p in venue.broker.get_positions() if p.symbol == symbol), 0.0)


def every(order: Order) -> list[Order]:
    return [order, *order.legs]


def test_same_client_order_id_places_one_order(venue):
    first = venue.broker.place_order(intent())
    again = venue.broker.place_order(intent(qty=99))

    assert again.broker_order_id == first.broker_order_id
    assert [o.client_order_id for o in venue.broker.list_orders("all")] == ["ft-a1-open"]
    assert held(venue) == 10


def test_a_bracket_has_both_legs_on_the_exit_side(venue):
    order = venue.broker.place_order(intent(stop_loss=95.0, take_profit=110.0))

    legs = {(leg.order_type, leg.side, leg.stop_price, leg.limit_price) for leg in order.legs}
    assert legs == {
        (OrderType.STOP, Side.SELL, 95.0, None),
        (OrderType.LIMIT, Side.SELL, None, 110.0),
    }
    assert order.status is OrderStatus.FILLED
    assert all(leg.status in OPEN for leg in order.legs)


def test_cancel_of_a_filled_order_is_refused(venue):
    filled = venue.broker.place_order(intent())

    with pytest.raises(BrokerRejected) as err:
        venue.broker.cancel_order(filled.broker_order_id)

    assert err.value.code == "42210000"
    assert "not cancelable" in err.value.reason


def test_open_filter_lists_working_orders_only(venue):
    venue.broker.place_order(intent("ft-filled"))
    venue.broker.place_order(intent("ft-resting", order_type=OrderType.LIMIT, limit_price=50.0))

    assert [o.client_order_id for o in venue.broker.list_orders("open")] == ["ft-resting"]
    assert [o.client_order_id for o in venue.broker.list_orders("closed")] == ["ft-filled"]
    assert {o.client_order_id for o in venue.broker.list_orders("all")} == {
        "ft-filled",
        "ft-resting",
    }


def test_cancel_of_a_working_order_cancels_it(venue):
    resting = venue.broker.place_order(
        intent("ft-resting", order_type=OrderType.LIMIT, limit_price=50.0)
    )

    venue.broker.cancel_order(resting.broker_order_id)

    assert venue.broker.get_order_by_client_id("ft-resting").status is OrderStatus.CANCELED
    assert venue.broker.list_orders("open") == []


def test_a_transient_failure_listing_orders_is_broker_unavailable(venue):
    venue.fail_next("list")

    with pytest.raises(BrokerUnavailable):
        venue.broker.list_orders("open")


def test_a_transient_failure_placing_is_broker_unavailable_and_places_nothing(venue):
    venue.fail_next("place")

    with pytest.raises(BrokerUnavailable):
        venue.broker.place_order(intent())

    assert venue.broker.get_order_by_client_id("ft-a1-open") is None
    assert venue.broker.place_order(intent()).status is OrderStatus.FILLED  # the retry places


def test_an_oco_protects_a_remainder_and_its_filled_leg_cancels_the_other(venue):
    venue.broker.place_order(intent())  # long 10
    order = venue.broker.place_order(protect(stop_loss=95.0, take_profit=110.0))

    kinds = {(o.order_type, o.side, o.qty, o.stop_price or o.limit_price) for o in every(order)}
    assert kinds == {(OrderType.LIMIT, Side.SELL, 5, 110.0), (OrderType.STOP, Side.SELL, 5, 95.0)}
    assert all(o.status in OPEN for o in every(order))
    again = venue.broker.place_order(protect(stop_loss=95.0, take_profit=110.0))
    assert again.broker_order_id == order.broker_order_id  # idempotent like every placement

    stop = next(o for o in every(order) if o.order_type is OrderType.STOP)
    venue.fill(stop, 94.0)

    after = venue.broker.get_order_by_client_id(order.client_order_id)
    statuses = {o.order_type: o.status for o in every(after)}
    assert statuses == {OrderType.STOP: OrderStatus.FILLED, OrderType.LIMIT: OrderStatus.CANCELED}
    assert held(venue) == 5
    assert venue.broker.working_exits("AAPL") == []


@pytest.mark.parametrize(
    ("prices", "kind", "level"),
    [({"stop_loss": 95.0}, OrderType.STOP, 95.0), ({"take_profit": 110.0}, OrderType.LIMIT, 110.0)],
)
def test_a_one_priced_protection_is_a_plain_stop_or_limit(venue, prices, kind, level):
    venue.broker.place_order(intent())
    order = venue.broker.place_order(protect(**prices))

    assert (order.order_type, order.side, order.qty, order.legs) == (kind, Side.SELL, 5, ())
    assert (order.stop_price or order.limit_price) == level
    assert [o.broker_order_id for o in venue.broker.working_exits("AAPL")] == [
        order.broker_order_id
    ]

    venue.fill(order, 94.0 if kind is OrderType.STOP else 111.0)

    assert venue.broker.get_order_by_client_id(order.client_order_id).status is OrderStatus.FILLED
    assert held(venue) == 5


def test_working_exits_lists_the_legs_of_a_filled_bracket_flat(venue):
    entry = venue.broker.place_order(intent(stop_loss=95.0, take_profit=110.0))
    venue.broker.place_order(  # an entry still resting: its held legs protect nothing yet
        intent(
            "ft-resting",
            order_type=OrderType.LIMIT,
            limit_price=50.0,
            stop_loss=45.0,
            take_profit=60.0,
        )
    )
    venue.broker.place_order(
        intent("ft-other", symbol="MSFT", reference_price=400.0, stop_loss=380.0)
    )

    exits = venue.broker.working_exits("AAPL")

    assert {o.broker_order_id for o in exits} == {leg.broker_order_id for leg in entry.legs}
    assert {(o.order_type, o.side) for o in exits} == {
        (OrderType.STOP, Side.SELL),
        (OrderType.LIMIT, Side.SELL),
    }
    assert all(o.legs == () and o.status in OPEN for o in exits)


def test_a_filled_leg_of_a_bracket_cancels_its_sibling(venue):
    entry = venue.broker.place_order(intent(stop_loss=95.0, take_profit=110.0))
    target = next(leg for leg in entry.legs if leg.order_type is OrderType.LIMIT)

    venue.fill(target, 111.0)

    legs = {
        leg.order_type: leg.status
        for leg in venue.broker.get_order_by_client_id(entry.client_order_id).legs
    }
    assert legs == {OrderType.LIMIT: OrderStatus.FILLED, OrderType.STOP: OrderStatus.CANCELED}
    assert held(venue) == 0


def test_an_order_flowtrader_does_not_trade_is_tolerated_not_a_crash(venue):
    if venue.add_foreign is None:
        pytest.skip(f"a {venue.name} account only holds what flowtrader placed")
    venue.broker.place_order(intent(stop_loss=95.0))
    foreign_ids = venue.add_foreign()

    listed = venue.broker.list_orders("all")
    exits = venue.broker.working_exits("AAPL")

    assert [o.client_order_id for o in listed] == ["ft-a1-open"]
    assert [o.order_type for o in exits] == [OrderType.STOP]
    shown = venue.broker.foreign_orders()
    assert {f["id"] for f in shown} == set(foreign_ids)
    assert all({"id", "symbol", "class", "status"} <= f.keys() for f in shown)


def test_the_portfolio_is_the_account_and_the_positions(venue):
    venue.broker.place_order(intent())
    account, positions = venue.broker.get_portfolio()
    assert account == venue.broker.get_account()
    assert positions == venue.broker.get_positions()
    assert [(p.symbol, p.qty) for p in positions] == [("AAPL", 10)]
