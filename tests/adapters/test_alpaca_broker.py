"""The Alpaca adapter through the real alpaca-py TradingClient against a local Alpaca
(tests/fakes/alpaca_server.py), beyond the contract every broker keeps
(tests/adapters/test_broker_contract.py): what goes on the wire for every order type, legs
and protections, error mapping, the "look up before any retry" rule under 5xx, 429 and
timeouts (one POST per call: the use case is the one retry layer), and listing an account
that holds orders alpaca-py cannot model."""

from __future__ import annotations

import json

import boto3
import pytest
import requests

from chalicelib.adapters.alpaca import AlpacaBroker
from chalicelib.domain import OrderIntent, OrderStatus, OrderType, Side
from chalicelib.ports import BrokerRejected, BrokerUnavailable
from chalicelib.settings import Settings
from tests.fakes.alpaca_server import FakeAlpaca, load_fixture

LOOKUP = "/v2/orders:by_client_order_id"


@pytest.fixture
def fake():
    with FakeAlpaca() as server:
        server.prices["AAPL"] = 190.0
        yield server


def connect(fake: FakeAlpaca, **kwargs) -> AlpacaBroker:
    kwargs.setdefault("timeout_s", 5.0)
    return AlpacaBroker.connect(
        fake.key_id, fake.secret_key, base_url=fake.url, wait_s=0, sleep=lambda _: None, **kwargs
    )


@pytest.fixture
def broker(fake):
    return connect(fake)


def intent(cid: str = "ft-alert-1", **kwargs) -> OrderIntent:
    base = {"client_order_id": cid, "alert_id": cid, "symbol": "AAPL", "side": Side.BUY, "qty": 5}
    return OrderIntent(**(base | kwargs))


def calls(fake: FakeAlpaca) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in fake.requests]


def test_market_order_passes_client_order_id_and_fills(fake, broker):
    order = broker.place_order(intent())

    [post] = fake.posts()
    assert post["json"] == {
        "symbol": "AAPL",
        "qty": 5.0,
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
        "client_order_id": "ft-alert-1",
    }
    assert (order.client_order_id, order.status) == ("ft-alert-1", OrderStatus.FILLED)
    assert (order.filled_qty, order.filled_avg_price) == (5.0, 190.0)


@pytest.mark.parametrize(
    ("fields", "sent"),
    [
        ({"order_type": OrderType.LIMIT, "limit_price": 189.5}, {"limit_price": 189.5}),
        ({"order_type": OrderType.STOP, "stop_price": 191.0}, {"stop_price": 191.0}),
        (
            {"order_type": OrderType.STOP_LIMIT, "stop_price": 191.0, "limit_price": 191.5},
            {"stop_price": 191.0, "limit_price": 191.5},
        ),
        ({"order_type": OrderType.TRAILING_STOP, "trail_percent": 2.5}, {"trail_percent": 2.5}),
        ({"order_type": OrderType.TRAILING_STOP, "trail_price": 1.25}, {"trail_price": 1.25}),
    ],
)
def test_each_order_type_is_sent_as_alpaca_documents_it(fake, broker, fields, sent):
    order = broker.place_order(intent(**fields))

    body = fake.posts()[0]["json"]
    assert body["type"] == fields["order_type"].value
    assert {k: body[k] for k in sent} == sent
    assert order.order_type is fields["order_type"]
    assert order.status is OrderStatus.ACCEPTED


def test_prices_are_rounded_to_a_valid_tick(fake, broker):
    broker.place_order(intent(order_type=OrderType.LIMIT, limit_price=189.123))

    assert fake.posts()[0]["json"]["limit_price"] == 189.12


def test_both_legs_make_a_bracket(fake, broker):
    order = broker.place_order(
        intent(order_type=OrderType.LIMIT, limit_price=190.0, stop_loss=185.0, take_profit=200.0)
    )

    body = fake.posts()[0]["json"]
    assert body["order_class"] == "bracket"
    assert body["take_profit"] == {"limit_price": 200.0}
    assert body["stop_loss"] == {"stop_price": 185.0}
    legs = {(leg.order_type, leg.side, leg.status) for leg in order.legs}
    assert legs == {
        (OrderType.LIMIT, Side.SELL, OrderStatus.PENDING),
        (OrderType.STOP, Side.SELL, OrderStatus.PENDING),
    }


def test_one_leg_makes_an_oto(fake, broker):
    order = broker.place_order(intent(side=Side.SELL, stop_loss=195.0))

    body = fake.posts()[0]["json"]
    assert body["order_class"] == "oto"
    assert body["stop_loss"] == {"stop_price": 195.0}
    assert "take_profit" not in body
    [leg] = order.legs
    assert (leg.side, leg.stop_price) == (Side.BUY, 195.0)


def test_trailing_stop_with_legs_is_refused_before_any_request(fake, broker):
    with pytest.raises(BrokerRejected) as err:
        broker.place_order(
            intent(order_type=OrderType.TRAILING_STOP, trail_percent=1.0, stop_loss=180.0)
        )

    assert err.value.code == "42210000"
    assert fake.requests == []


def test_duplicate_client_order_id_returns_the_existing_order(fake, broker):
    first = broker.place_order(intent())
    again = broker.place_order(intent())

    assert again.broker_order_id == first.broker_order_id
    assert len(fake.posts()) == 2
    assert len(fake.orders) == 1
    assert calls(fake)[-1] == f"GET {LOOKUP}"


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        ("insufficient_buying_power", "40310000", "insufficient buying power"),
        ("wash_trade", "40310000", "wash trade"),
        ("not_shortable", "40310000", "cannot be sold short"),
        ("pattern_day_trader", "40310100", "pattern day trader"),
        ("invalid_price", "42210000", "invalid price"),
        ("asset_not_found", "42210000", "asset not found"),
    ],
)
def test_alpaca_refusals_become_rejections_with_reasons(fake, broker, error, code, words):
    fake.reject_next_order(error)

    with pytest.raises(BrokerRejected) as err:
        broker.place_order(intent())

    assert err.value.code == code
    assert words in err.value.reason
    assert len(fake.posts()) == 1  # a refusal is final: no retry, no lookup
    assert fake.orders == {}


def test_500_after_the_order_was_created_gives_one_order(fake, broker):
    fake.inject("POST", "/v2/orders", status=500, after=True)

    order = broker.place_order(intent())

    assert calls(fake) == ["POST /v2/orders", f"GET {LOOKUP}"]
    assert len(fake.orders) == 1
    assert order.broker_order_id in fake.orders


def test_500_before_the_order_was_created_looks_up_then_leaves_the_retry_to_the_caller(
    fake, broker
):
    fake.inject("POST", "/v2/orders", status=500)

    with pytest.raises(BrokerUnavailable):
        broker.place_order(intent())
    assert calls(fake) == ["POST /v2/orders", f"GET {LOOKUP}"]  # one POST per call
    order = broker.place_order(intent())  # the use case's one retry

    assert list(fake.orders) == [order.broker_order_id]
    assert len(fake.posts()) == 2


def test_timeout_after_the_order_was_created_looks_it_up_instead_of_posting_again(fake):
    broker = connect(fake, timeout_s=1.0)
    fake.inject("POST", "/v2/orders", after=True, delay_s=3.0)

    order = broker.place_order(intent())

    assert calls(fake) == ["POST /v2/orders", f"GET {LOOKUP}"]
    assert list(fake.orders) == [order.broker_order_id]


def test_429_is_not_retried_by_alpaca_py_behind_our_back(fake, broker):
    fake.inject("POST", "/v2/orders", status=429)

    with pytest.raises(BrokerUnavailable):
        broker.place_order(intent())

    assert calls(fake) == ["POST /v2/orders", f"GET {LOOKUP}"]
    assert fake.orders == {}


def test_submit_attempts_bound_the_posts_of_one_call(fake):
    broker = connect(fake, submit_attempts=3)
    fake.inject("POST", "/v2/orders", status=503, times=10)

    with pytest.raises(BrokerUnavailable):
        broker.place_order(intent())

    assert calls(fake) == ["POST /v2/orders", f"GET {LOOKUP}"] * 3
    assert fake.orders == {}


def test_failing_lookup_never_leads_to_a_blind_second_post(fake, broker):
    fake.inject("POST", "/v2/orders", status=500, after=True)
    fake.inject("GET", LOOKUP, status=502, times=10)

    with pytest.raises(BrokerUnavailable):
        broker.place_order(intent())

    assert len(fake.posts()) == 1
    assert calls(fake).count(f"GET {LOOKUP}") == 3


def test_wrong_keys_are_a_clear_rejection(fake):
    broker = AlpacaBroker.connect("nope", "nope", base_url=fake.url, wait_s=0)

    with pytest.raises(BrokerRejected) as err:
        broker.place_order(intent())

    assert "API keys" in err.value.reason


def test_missing_keys_fail_before_any_request(fake):
    with pytest.raises(BrokerUnavailable, match="ALPACA_API_KEY"):
        AlpacaBroker.connect("", "", base_url=fake.url)


def test_lookup_of_an_unknown_client_order_id_is_none(broker):
    assert broker.get_order_by_client_id("never-placed") is None


def test_list_orders_nests_legs(fake, broker):
    broker.place_order(intent(stop_loss=185.0, take_profit=200.0))

    [order] = broker.list_orders("all")

    assert len(order.legs) == 2
    assert fake.requests[-1]["query"]["nested"] == "true"  # the spec's boolean, not "True"


def test_account_and_positions_in_our_terms(fake, broker):
    broker.place_order(intent(qty=3))
    broker.place_order(intent("ft-short", symbol="TSLA", side=Side.SELL, qty=2))
    fake.prices["TSLA"] = 250.0
    broker.place_order(intent("ft-short-2", symbol="TSLA", side=Side.SELL, qty=2))

    positions = {p.symbol: p.qty for p in broker.get_positions()}
    account = broker.get_account()

    assert positions == {"AAPL": 3.0, "TSLA": -2.0}
    assert account.equity == 123346.11  # tests/fixtures/alpaca/account.json
    assert account.buying_power == 245432.61
    assert account.pattern_day_trader is True


def test_fake_validates_requests_against_the_spec(fake):
    headers = {"APCA-API-KEY-ID": fake.key_id, "APCA-API-SECRET-KEY": fake.secret_key}
    bad = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "yolo", "time_in_force": "day"}

    got = requests.post(f"{fake.url}/v2/orders", json=bad, headers=headers, timeout=5)

    assert got.status_code == 422
    assert "'yolo' is not one of" in got.json()["message"]


def test_keys_come_from_secrets_manager_when_not_in_the_environment(aws, fake):
    secrets = boto3.client("secretsmanager")
    arn = secrets.create_secret(
        Name="flowtrader-test/alpaca",
        SecretString=json.dumps(
            {"ALPACA_API_KEY": fake.key_id, "ALPACA_SECRET_KEY": fake.secret_key}
        ),
    )["ARN"]
    settings = Settings(broker="alpaca", secrets_arn=arn, alpaca_base_url=fake.url)

    order = AlpacaBroker.from_settings(settings).place_order(intent())

    assert order.status is OrderStatus.FILLED


def test_container_builds_the_alpaca_broker_from_settings(aws, fake, monkeypatch):
    from chalicelib import bootstrap

    monkeypatch.setenv("FLOWTRADER_BROKER", "alpaca")
    monkeypatch.setenv("FLOWTRADER_ALPACA_BASE_URL", fake.url)
    monkeypatch.setenv("FLOWTRADER_ALPACA_API_KEY", fake.key_id)
    monkeypatch.setenv("FLOWTRADER_ALPACA_SECRET_KEY", fake.secret_key)
    bootstrap.reset()

    broker = bootstrap.container().broker

    assert broker.name == "alpaca"
    assert broker.place_order(intent()).status is OrderStatus.FILLED


def test_fake_clock_and_account_parse_in_alpaca_py(fake):
    from alpaca.trading.client import TradingClient

    client = TradingClient(fake.key_id, fake.secret_key, url_override=fake.url)

    assert client.get_clock().is_open is True
    assert client.get_account().account_number == "PALPACA_123"


def test_a_protective_oco_is_sent_as_alpaca_documents_it(fake, broker):
    # https://alpaca.markets/blog/oco-oto/: order_class "oco", type "limit", take_profit
    # .limit_price and stop_loss.stop_price, for a position already held.
    broker.place_order(intent())
    broker.place_order(
        intent(
            "ft-protect",
            side=Side.SELL,
            protects_position=True,
            stop_loss=185.004,
            take_profit=200.0,
        )
    )

    body = fake.posts()[-1]["json"]
    assert body == {
        "symbol": "AAPL",
        "qty": 5.0,
        "side": "sell",
        "type": "limit",
        "time_in_force": "day",
        "order_class": "oco",
        "take_profit": {"limit_price": 200.0},
        "stop_loss": {"stop_price": 185.0},
        "client_order_id": "ft-protect",
    }


@pytest.mark.parametrize(
    ("prices", "sent"),
    [
        ({"stop_loss": 185.0}, {"type": "stop", "stop_price": 185.0}),
        ({"take_profit": 200.0}, {"type": "limit", "limit_price": 200.0}),
    ],
)
def test_a_one_priced_protection_is_a_simple_order(fake, broker, prices, sent):
    broker.place_order(intent("ft-protect", side=Side.SELL, protects_position=True, **prices))

    body = fake.posts()[-1]["json"]
    assert {k: body[k] for k in sent} == sent
    assert body.keys().isdisjoint({"order_class", "stop_loss", "take_profit"})


def test_working_exits_reads_all_orders_of_the_symbol_nested_and_its_position(fake, broker):
    broker.place_order(intent(stop_loss=185.0, take_profit=200.0))
    fake.requests.clear()

    exits = broker.working_exits("AAPL")

    assert {o.order_type for o in exits} == {OrderType.LIMIT, OrderType.STOP}
    [listing, position] = fake.requests
    assert listing["path"] == "/v2/orders"
    assert listing["query"] == {
        "status": "all",  # a filled bracket entry is not "open", yet its legs work
        "limit": "500",
        "nested": "true",
        "direction": "desc",
        "symbols": "AAPL",
    }
    assert position["path"] == "/v2/positions/AAPL"


def test_a_spec_strict_server_refuses_alpaca_pys_own_nested_true(fake):
    from alpaca.common.exceptions import APIError
    from alpaca.trading.client import TradingClient
    from alpaca.trading.requests import GetOrdersRequest

    client = TradingClient(fake.key_id, fake.secret_key, url_override=fake.url)

    with pytest.raises(APIError, match="nested must be true or false"):
        client.get_orders(filter=GetOrdersRequest(nested=True))


def test_alpaca_py_alone_cannot_list_an_account_holding_the_specs_ipo_order(fake, broker):
    from alpaca.trading.client import TradingClient

    fake.add_order(load_fixture("order_ipo.json"))
    client = TradingClient(fake.key_id, fake.secret_key, url_override=fake.url)

    with pytest.raises(ValueError, match="asset_class"):  # AssetClass has no "ipo" in 0.44
        client.get_orders()
    assert broker.list_orders("all") == []  # ours reads it as foreign


def test_foreign_orders_are_shown_with_what_they_are(fake, broker):
    fake.add_order(load_fixture("order_mleg_options.json"))
    fake.add_order(load_fixture("order_ipo.json"))

    shown = {f["id"]: f for f in broker.foreign_orders()}

    mleg = shown["83f37e9f-6b1f-49ed-8fc6-3e6af716323f"]
    assert (mleg["class"], mleg["status"]) == ("mleg", "filled")
    assert mleg["symbol"] == "AAPL241213C00250000/AAPL241213C00260000"
    ipo = shown["5e2a8f1a-9c10-4d3a-8c64-7f59c1d18c11"]
    assert (ipo["class"], ipo["symbol"], ipo["status"]) == ("ipo", "FI111225", "accepted")
