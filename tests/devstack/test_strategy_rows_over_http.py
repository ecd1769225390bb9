"""Issue 8's table against `make run` itself: the local stack as a subprocess, the README's
strategy message posted over HTTP the way TradingView fills it, the read API over HTTP.

TradingView (https://www.tradingview.com/support/solutions/43000531021): a reversal from long
10 to short 10 is one strategy order, so `{{strategy.order.contracts}}` is 20;
`{{strategy.market_position_size}}` / `{{strategy.prev_market_position_size}}` are the
absolute sizes after/before it and `{{strategy.position_size}}` the signed size after it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.devstack.stack import PASSPHRASE, Stack


def fill(ticker, action, contracts, position, prev, size, prev_size, price, **extra) -> dict:
    sign = {"long": 1, "short": -1, "flat": 0}[position]
    return {
        "passphrase": PASSPHRASE,
        "ticker": f"NASDAQ:{ticker}",
        "action": action,
        "market_position": position,
        "market_position_size": size,
        "position_size": sign * size,
        "prev_market_position": prev,
        "prev_market_position_size": prev_size,
        "quantity": contracts,
        "price": price,
        "timenow": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "strategy": "ORB 5m",
        **extra,
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("data"), FLOWTRADER_MAX_TRADES_PER_HOUR="1000")
    yield running
    running.stop()


def send(stack: Stack, body: dict) -> dict:
    status, answer = stack.request("/webhook", body)
    assert status == 202, answer
    alert_id = answer["alert_id"]
    stack.wait_decided([alert_id], timeout_s=60)
    return stack.request(f"/api/alerts/{alert_id}", auth=True)[1]


def held(stack: Stack) -> dict[str, float]:
    positions = stack.request("/api/positions", auth=True)[1]["positions"]
    return {p["symbol"]: p["qty"] for p in positions}


@pytest.mark.slow
def test_issue_8_rows_over_http_against_the_local_stack(stack):
    # Row 1: long 10 MSFT, then the flip TradingView sends → short 10, not 20.
    send(stack, fill("MSFT", "buy", 10, "long", "flat", 10, 0, 400.0))
    flip = send(stack, fill("MSFT", "sell", 20, "short", "long", 10, 10, 401.0))
    assert flip["status"] == "filled", flip
    assert held(stack)["MSFT"] == -10

    # Row 2: long 10 AMD (stop 145 / target 160), partial exit of 5 → 5 left, still
    # protected; a later price of 140 closes them.
    send(
        stack, fill("AMD", "buy", 10, "long", "flat", 10, 0, 150.0, stop_loss=145, take_profit=160)
    )
    partial = send(stack, fill("AMD", "sell", 5, "long", "long", 5, 10, 152.0))
    assert partial["status"] == "filled", partial
    assert held(stack)["AMD"] == 5
    protect = [o for o in partial["details"]["orders"] if o["client_order_id"].endswith("-protect")]
    assert [(o["qty"], o["type"]) for o in protect] == [(5, "limit")]  # the OCO's target
    assert [leg["stop_price"] for leg in protect[0]["legs"]] == [145.0]  # and its stop
    after = send(stack, fill("AMD", "sell", 5, "flat", "long", 0, 5, 140.0))
    assert (after["status"], after["reason"]) == ("ignored", "already flat in AMD")
    assert "AMD" not in held(stack)

    # Row 3: long 10 IBM with stop 196; the strategy's own exit at 195 → the stop fills,
    # the exit is a quiet no-op, IBM is gone from positions, the legs show their truth.
    opened = send(stack, fill("IBM", "buy", 10, "long", "flat", 10, 0, 200.0, stop_loss=196))
    exit_ = send(stack, fill("IBM", "sell", 10, "flat", "long", 0, 10, 195.0))
    assert (exit_["status"], exit_["reason"]) == ("ignored", "already flat in IBM")
    assert "IBM" not in held(stack)
    orders = stack.request("/api/orders", auth=True)[1]["orders"]
    entry = next(o for o in orders if o["client_order_id"] == f"ft-{opened['alert_id']}-open")
    legs = {leg["order_type"]: leg["status"] for leg in entry["legs"]}
    assert legs == {"stop": "filled", "limit": "canceled"}
    assert "Stop-loss hit IBM: −$" in stack.console
    assert "Rejected IBM" not in stack.console

    # The P/L view shows each closed trade with its exit reason.
    pnl = stack.request("/api/pnl", auth=True)[1]
    reasons = {(t["symbol"], t["exit_reason"]) for t in pnl["trades"]}
    assert {
        ("MSFT", "signal"),
        ("AMD", "signal"),
        ("AMD", "stop_loss"),
        ("IBM", "stop_loss"),
    } <= reasons


@pytest.mark.slow
def test_a_denied_reversal_open_is_partially_filled_over_http(tmp_path):
    limited = Stack(tmp_path, FLOWTRADER_MAX_TRADES_PER_HOUR="1")
    try:
        send(limited, fill("MSFT", "buy", 10, "long", "flat", 10, 0, 400.0))
        flip = send(limited, fill("MSFT", "sell", 20, "short", "long", 10, 10, 410.0))
        assert flip["status"] == "partially_filled", flip
        assert "short not opened: cooldown" in flip["reason"]
        assert held(limited) == {}
        limited.wait_for_line("short not opened: cooldown", timeout_s=10)
    finally:
        limited.stop()
