"""TradingView strategy alerts through app.py's webhook and worker (moto's server) on
`FLOWTRADER_BROKER=tradestation`, against the local TradeStation SIM
(tests/fakes/tradestation_server.py): the use case's flip, partial exit, full exit and
redelivery keep their invariants on a broker that maps every order to a TradeAction from the
position and echoes no client order id.

TradeStation: equities trade as BUY / SELL / SELLSHORT / BUYTOCOVER (`TradeAction`, API v3
reference); bracket exits are "restricted to closing transactions" (Place Group Order).
"""

from __future__ import annotations

import pytest

from tests.execution.test_strategy_money_safety import deliver, positions, strategy_fill
from tests.fakes.tradestation_server import FakeTradeStation


@pytest.fixture
def tradestation(client, monkeypatch):
    from chalicelib import bootstrap

    with FakeTradeStation() as server:
        env = {
            "MARKET_HOURS_ONLY": "false",
            "MAX_TRADES_PER_HOUR": "20",
            "BROKER": "tradestation",
            "TRADESTATION_ACCOUNT_ID": server.account_id,
            "TRADESTATION_CLIENT_ID": server.client_id,
            "TRADESTATION_CLIENT_SECRET": server.client_secret,
            "TRADESTATION_REFRESH_TOKEN": next(iter(server.refresh_tokens)),
            "TRADESTATION_BASE_URL": server.url,
            "TRADESTATION_TOKEN_URL": server.token_url,
        }
        for key, value in env.items():
            monkeypatch.setenv(f"FLOWTRADER_{key}", value)
        bootstrap.reset()
        yield client, server


def actions(server: FakeTradeStation) -> list[tuple[str, str]]:
    """(TradeAction, Quantity) of every order POSTed, group members included."""
    out = []
    for post in server.posts():
        body = post["json"] or {}
        for order in body.get("Orders") or [body]:
            if "TradeAction" in order:
                out.append((order["TradeAction"], order["Quantity"]))
    return out


def test_a_flip_from_long_10_is_a_sell_then_a_sell_short(tradestation):
    client, server = tradestation
    server.prices["MSFT"] = 400.0
    deliver(client, strategy_fill("MSFT", "buy", 10, "long", "flat", 10, 0, 400.0))

    flip = strategy_fill("MSFT", "sell", 20, "short", "long", 10, 10, 401.0, order_id="Short")
    record = deliver(client, flip)

    assert record["status"] == "filled", record
    assert positions(client) == {"MSFT": -10}
    opens_and_closes = [a for a in actions(server) if a[0] in ("BUY", "SELL", "SELLSHORT")]
    assert opens_and_closes[0] == ("BUY", "10")
    assert opens_and_closes[-2:] == [("SELL", "10"), ("SELLSHORT", "10")]


def test_a_redelivered_alert_places_nothing_more(tradestation):
    from app import process_alerts
    from tests.ingress.helpers import sqs_event

    client, server = tradestation
    server.prices["MSFT"] = 400.0
    record = deliver(client, strategy_fill("MSFT", "buy", 10, "long", "flat", 10, 0, 400.0))
    posted = len(server.posts())

    process_alerts(sqs_event(f'{{"alert_id": "{record["alert_id"]}"}}'), None)  # SQS again

    assert len(server.posts()) == posted
    assert positions(client) == {"MSFT": 10}


def test_a_partial_exit_keeps_the_remainder_protected_by_a_brk_group(tradestation):
    from chalicelib import bootstrap

    client, server = tradestation
    server.prices["AMD"] = 150.0
    deliver(
        client,
        strategy_fill(
            "AMD", "buy", 10, "long", "flat", 10, 0, 150.0, stop_loss=145.0, take_profit=160.0
        ),
    )

    partial = deliver(
        client, strategy_fill("AMD", "sell", 5, "long", "long", 5, 10, 152.0, order_id="TP1")
    )

    assert partial["status"] == "filled", partial
    assert positions(client) == {"AMD": 5}
    exits = bootstrap.container().broker.working_exits("AMD")
    assert sorted((o.order_type.value, o.qty) for o in exits) == [("limit", 5), ("stop", 5)]
    [group] = server.posts("/ordergroups")
    assert group["json"]["Type"] == "BRK"

    stop = next(o for o in exits if o.order_type.value == "stop")
    server.fill(stop.broker_order_id, 144.0)  # the market goes through the stop
    assert bootstrap.container().broker.get_positions() == []  # the BRK limit was canceled
    assert bootstrap.container().broker.working_exits("AMD") == []


def test_an_exit_waits_for_its_canceled_exits_then_sells(tradestation):
    client, server = tradestation
    server.prices["AMD"] = 150.0
    server.cancel_latency = 2
    deliver(
        client,
        strategy_fill(
            "AMD", "buy", 10, "long", "flat", 10, 0, 150.0, stop_loss=145.0, take_profit=160.0
        ),
    )

    closed = deliver(
        client, strategy_fill("AMD", "sell", 10, "flat", "long", 0, 10, 151.0, order_id="Exit")
    )

    assert closed["status"] == "filled", closed
    assert positions(client) == {}
    working = [o for o in server.orders.values() if o["Status"] in ("ACK", "OSO", "UCN")]
    assert working == []


def test_a_new_lambda_finds_an_order_through_the_state_tables_record_without_a_scan(
    tradestation,
):
    """TradeStation echoes no client order id: a Lambda that did not place the order finds it
    by the OrderID the worker recorded (bootstrap's `recorded_id`), not by listing orders."""
    from chalicelib import bootstrap

    client, server = tradestation
    server.prices["MSFT"] = 400.0
    record = deliver(client, strategy_fill("MSFT", "buy", 10, "long", "flat", 10, 0, 400.0))
    placed = record["details"]["orders"][0]
    bootstrap.reset()  # a new Lambda: nothing in memory
    before = len(server.requests)

    found = bootstrap.container().broker.get_order_by_client_id(placed["client_order_id"])

    assert found is not None
    assert found.broker_order_id == placed["broker_order_id"]
    calls = [f"{r['method']} {r['path']}" for r in server.requests[before:]]
    account = f"/v3/brokerage/accounts/{server.account_id}"
    assert f"GET {account}/orders/{placed['broker_order_id']}" in calls  # by the recorded id
    assert f"GET {account}/orders" not in calls  # no scan of today's orders
    assert not [c for c in calls if c.startswith("POST /v3/")]  # nothing placed
