"""Issue 8's table, as a TradingView strategy user meets it: the README's strategy message,
filled the way TradingView fills it, through app.py's webhook and worker on moto's server,
against the paper broker.

What TradingView sends (https://www.tradingview.com/support/solutions/43000531021, strategy
placeholders): `{{strategy.order.action}}` buy/sell; `{{strategy.order.contracts}}` the
size of the order that fired — a reversal from long 10 to short 10 is ONE order of 20;
`{{strategy.market_position}}` / `{{strategy.prev_market_position}}` long/flat/short after
and before it; `{{strategy.market_position_size}}` / `{{strategy.prev_market_position_size}}`
their absolute sizes; `{{strategy.position_size}}` the signed position after it.
"""

from __future__ import annotations

import json
import logging

import pytest

from tests.conftest import API_TOKEN, PASSPHRASE
from tests.ingress.helpers import sqs_event, todays_bar

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def paper(client, monkeypatch):
    from chalicelib import bootstrap

    monkeypatch.setenv("FLOWTRADER_MARKET_HOURS_ONLY", "false")
    monkeypatch.setenv("FLOWTRADER_BROKER", "paper")
    monkeypatch.setenv("FLOWTRADER_MAX_TRADES_PER_HOUR", "20")
    bootstrap.reset()
    return client


def strategy_fill(
    ticker: str,
    action: str,
    contracts: float,
    position: str,
    prev: str,
    size: float,
    prev_size: float,
    price: float,
    *,
    sizes: bool = True,
    order_id: str = "Entry",
    **extra,
) -> dict:
    """The README's strategy message after TradingView filled it for one strategy order."""
    body = {
        "passphrase": PASSPHRASE,
        "ticker": f"NASDAQ:{ticker}",
        "action": action,
        "market_position": position,
        "prev_market_position": prev,
        "quantity": contracts,
        "price": price,
        "time": todays_bar(),
        "interval": "1D",
        "order_id": order_id,
        "strategy": "ORB 5m",
        **extra,
    }
    if sizes:
        sign = {"long": 1, "short": -1, "flat": 0}[position]
        body |= {
            "market_position_size": size,
            "prev_market_position_size": prev_size,
            "position_size": sign * size,
        }
    return body


def deliver(client, body: dict) -> dict:
    """POST the alert, run the worker on it as SQS would, and return the alert's record."""
    from app import process_alerts

    r = client.http.post(
        "/webhook", headers={"Content-Type": "text/plain"}, body=json.dumps(body)
    )  # TradingView posts its message as text/plain
    assert r.status_code == 202, r.body
    alert_id = r.json_body["alert_id"]
    assert process_alerts(sqs_event(json.dumps({"alert_id": alert_id})), None) == {
        "batchItemFailures": []
    }
    return get(client, f"/api/alerts/{alert_id}")


def get(client, path: str) -> dict:
    r = client.http.get(path, headers=AUTH)
    assert r.status_code == 200, r.body
    return r.json_body


def positions(client) -> dict[str, float]:
    return {p["symbol"]: p["qty"] for p in get(client, "/api/positions")["positions"]}


def notices(caplog) -> list[str]:
    # the log notifier writes "notify [<event>]: <subject> | <message>"
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("notify [")]


@pytest.mark.parametrize("sizes", [True, False], ids=["with-sizes", "contracts-only"])
def test_a_flip_from_long_10_ends_short_10_not_20(paper, sizes):
    deliver(paper, strategy_fill("MSFT", "buy", 10, "long", "flat", 10, 0, 400.0, sizes=sizes))
    assert positions(paper) == {"MSFT": 10}

    flip = strategy_fill(
        "MSFT", "sell", 20, "short", "long", 10, 10, 401.0, sizes=sizes, order_id="Short"
    )
    record = deliver(paper, flip)

    assert record["status"] == "filled", record
    assert record["details"]["decision"]["kind"] == "reverse"
    assert positions(paper) == {"MSFT": -10}


def test_a_redelivered_flip_finds_its_target_reached_and_places_nothing(paper):
    deliver(paper, strategy_fill("MSFT", "buy", 10, "long", "flat", 10, 0, 400.0))
    flip = strategy_fill("MSFT", "sell", 20, "short", "long", 10, 10, 401.0, order_id="Short")
    deliver(paper, flip)
    again = deliver(paper, {**flip, "alert_id": "tv-retry-of-the-flip"})

    assert again["status"] == "ignored"
    assert "already short 10 MSFT" in again["reason"]
    assert positions(paper) == {"MSFT": -10}


def test_a_partial_exit_keeps_the_remainder_protected_and_its_stop_still_fires(paper):
    from chalicelib import bootstrap

    deliver(
        paper,
        strategy_fill(
            "AMD", "buy", 10, "long", "flat", 10, 0, 150.0, stop_loss=145.0, take_profit=160.0
        ),
    )
    partial = strategy_fill("AMD", "sell", 5, "long", "long", 5, 10, 152.0, order_id="TP1")
    record = deliver(paper, partial)

    assert record["status"] == "filled", record  # the close filled; the protection works
    assert positions(paper) == {"AMD": 5}
    exits = bootstrap.container().broker.working_exits("AMD")
    assert sorted((o.order_type.value, o.qty) for o in exits) == [("limit", 5), ("stop", 5)]
    assert {o.stop_price for o in exits if o.order_type.value == "stop"} == {145.0}
    assert {o.limit_price for o in exits if o.order_type.value == "limit"} == {160.0}

    # The market goes through the stop: the remainder is closed, nothing is left open.
    stop_hit = strategy_fill("AMD", "sell", 5, "flat", "long", 0, 5, 140.0, order_id="Exit")
    after = deliver(paper, stop_hit)
    assert after["status"] == "ignored"
    assert after["reason"] == "already flat in AMD"
    assert positions(paper) == {}
    assert bootstrap.container().broker.working_exits("AMD") == []


def test_stop_then_the_strategys_exit_is_a_quiet_no_op_and_every_view_agrees(paper, caplog):
    caplog.set_level(logging.INFO, logger="chalicelib.services.notify")
    opened = deliver(
        paper, strategy_fill("IBM", "buy", 10, "long", "flat", 10, 0, 200.0, stop_loss=196.0)
    )
    caplog.clear()

    exit_ = deliver(paper, strategy_fill("IBM", "sell", 10, "flat", "long", 0, 10, 195.0))

    assert exit_["status"] == "ignored"
    assert exit_["reason"] == "already flat in IBM"
    assert positions(paper) == {}
    said = notices(caplog)
    assert not any("Rejected" in n for n in said), said
    assert any("Stop-loss hit IBM: −$" in n for n in said), said

    entry = next(
        o
        for o in get(paper, "/api/orders")["orders"]
        if o["client_order_id"] == f"ft-{opened['alert_id']}-open"
    )
    legs = {leg["order_type"]: leg for leg in entry["legs"]}
    assert legs["stop"]["status"] == "filled"
    assert legs["stop"]["filled_avg_price"] is not None
    assert legs["limit"]["status"] == "canceled"

    pnl = get(paper, "/api/pnl")
    (trade,) = pnl["trades"]
    assert (trade["symbol"], trade["exit_reason"], trade["qty"]) == ("IBM", "stop_loss", 10)
    assert trade["pnl_usd"] < 0
    assert pnl["realized_usd"] == trade["pnl_usd"]


def test_a_reversal_whose_open_the_cooldown_denies_tells_the_trader_they_are_flat(
    paper, monkeypatch, caplog
):
    from chalicelib import bootstrap

    monkeypatch.setenv("FLOWTRADER_MAX_TRADES_PER_HOUR", "1")
    bootstrap.reset()
    caplog.set_level(logging.INFO, logger="chalicelib.services.notify")
    deliver(paper, strategy_fill("MSFT", "buy", 10, "long", "flat", 10, 0, 400.0))
    caplog.clear()

    flip = strategy_fill("MSFT", "sell", 20, "short", "long", 10, 10, 410.0, order_id="Short")
    record = deliver(paper, flip)

    assert record["status"] == "partially_filled", record
    assert "short not opened: cooldown" in record["reason"]
    assert positions(paper) == {}
    said = notices(caplog)
    assert any("Closed long 10 MSFT @ " in n and "short not opened: cooldown" in n for n in said)
    assert not any("Filled SELL 10 MSFT" in n for n in said), said


def test_a_close_names_its_pnl_and_the_pnl_view_shows_the_trade(paper, caplog):
    caplog.set_level(logging.INFO, logger="chalicelib.services.notify")
    opening = strategy_fill(
        "NVDA", "buy", 4, "long", "flat", 4, 0, 100.0, stop_loss=90.0, take_profit=130.0
    )
    deliver(paper, opening)
    caplog.clear()
    deliver(paper, strategy_fill("NVDA", "sell", 4, "flat", "long", 0, 4, 110.0, order_id="Exit"))

    said = notices(caplog)
    assert any("Closed NVDA: +$" in n for n in said), said
    pnl = get(paper, "/api/pnl")
    (trade,) = pnl["trades"]
    assert trade["exit_reason"] == "signal"
    assert trade["entry_price"] == pytest.approx(100.05, abs=0.01)  # 5 bps paper slippage
    assert trade["pnl_usd"] == pytest.approx(4 * (110 * 0.9995 - 100 * 1.0005), abs=0.05)
    assert pnl["by_symbol"]["NVDA"]["trades"] == 1
    assert get(paper, "/api/pnl?from=2020-01-01&to=2020-01-31")["trades"] == []


def test_the_pnl_view_refuses_a_bad_range_with_a_400(paper):
    r = paper.http.get("/api/pnl?from=2026-13-01", headers=AUTH)
    assert r.status_code == 400
    assert "from must be a date" in r.json_body["error"]


@pytest.fixture
def alpaca(client, monkeypatch):
    """The app on the alpaca broker: real alpaca-py against the local Alpaca server."""
    from chalicelib import bootstrap
    from tests.fakes.alpaca_server import FakeAlpaca

    with FakeAlpaca() as server:
        monkeypatch.setenv("FLOWTRADER_MARKET_HOURS_ONLY", "false")
        monkeypatch.setenv("FLOWTRADER_BROKER", "alpaca")
        monkeypatch.setenv("FLOWTRADER_ALPACA_API_KEY", server.key_id)
        monkeypatch.setenv("FLOWTRADER_ALPACA_SECRET_KEY", server.secret_key)
        monkeypatch.setenv("FLOWTRADER_ALPACA_BASE_URL", server.url)
        monkeypatch.setenv("FLOWTRADER_MAX_TRADES_PER_HOUR", "20")
        bootstrap.reset()
        yield client, server


def test_orders_alpaca_users_hold_but_flowtrader_does_not_trade_never_fail_an_alert(alpaca):
    """Alpaca's own example orders (trading-api.json, GET /v2/orders examples): a multi-leg
    options order (`side: ""`, legs with `type: ""`) and an IPO order (`asset_class: "ipo"`).
    One of them in the account must not fail every alert that lists the open orders."""
    from tests.fakes.alpaca_server import load_fixture

    client, server = alpaca
    server.add_order(load_fixture("order_mleg_options.json"))
    server.add_order(load_fixture("order_ipo.json"))
    server.prices["AMD"] = 150.0

    opened = deliver(
        client,
        strategy_fill(
            "AMD", "buy", 10, "long", "flat", 10, 0, 150.0, stop_loss=145.0, take_profit=160.0
        ),
    )
    assert opened["status"] == "filled", opened

    partial = deliver(
        client, strategy_fill("AMD", "sell", 5, "long", "long", 5, 10, 152.0, order_id="TP1")
    )
    assert partial["status"] == "filled", partial
    assert positions(client) == {"AMD": 5}
    protect = next(
        o for o in partial["details"]["orders"] if o["client_order_id"].endswith("-protect")
    )
    assert protect["qty"] == 5
    assert {leg["type"] for leg in protect["legs"]} == {"stop"}  # OCO: the limit with its stop leg


def test_an_alpaca_exit_waits_for_its_canceled_legs_to_free_the_shares(alpaca):
    """At Alpaca a cancel settles asynchronously (`pending_cancel`) and the legs keep holding
    the shares until it does; a close sent at once is refused "insufficient qty available".
    The exit must wait for the cancel, then sell."""
    client, server = alpaca
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


def test_a_close_alpaca_refuses_puts_the_protection_back(alpaca):
    """If the close is refused after its legs were canceled, the shares get their stop and
    target back (`-restore`), never left naked."""
    from chalicelib import bootstrap

    client, server = alpaca
    server.prices["AMD"] = 150.0
    deliver(
        client,
        strategy_fill(
            "AMD", "buy", 10, "long", "flat", 10, 0, 150.0, stop_loss=145.0, take_profit=160.0
        ),
    )
    server.reject_next_order("wash_trade")

    refused = deliver(
        client, strategy_fill("AMD", "sell", 10, "flat", "long", 0, 10, 151.0, order_id="Exit")
    )

    assert refused["status"] == "rejected", refused
    assert "wash trade" in refused["reason"]
    assert positions(client) == {"AMD": 10}
    exits = bootstrap.container().broker.working_exits("AMD")
    assert sorted((o.order_type.value, o.qty) for o in exits) == [("limit", 10), ("stop", 10)]
