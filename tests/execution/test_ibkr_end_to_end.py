"""The whole app on `FLOWTRADER_BROKER=ibkr`: TradingView's strategy alerts through the
webhook and the worker to ibind's real client over OAuth 1.0a, against
tests/fakes/ibkr_server.py. Setting the broker is all it takes; the invariants are the ones
the paper and Alpaca brokers keep (one order per alert, a protected remainder, flat after
the exit)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.execution.test_strategy_money_safety import deliver, positions, strategy_fill
from tests.fakes.ibkr_server import FakeIbkr


@pytest.fixture
def ibkr(client, monkeypatch) -> Iterator[tuple[object, FakeIbkr]]:
    from chalicelib import bootstrap
    from chalicelib.adapters.ibkr.session import Pacer, forget_sessions, session_for
    from chalicelib.settings import load_settings

    forget_sessions()
    with FakeIbkr() as server:
        server.prices["AAPL"] = 150.0
        for key, value in server.settings_env().items():
            monkeypatch.setenv(f"FLOWTRADER_{key.upper()}", value)
        monkeypatch.setenv("FLOWTRADER_MARKET_HOURS_ONLY", "false")
        monkeypatch.setenv("FLOWTRADER_MAX_TRADES_PER_HOUR", "20")
        bootstrap.reset()
        # the process's one IBKR session, on the fake's clock (IBKR's 5 s pacing is virtual)
        session_for(load_settings(), pacer=Pacer(clock=server.clock, sleep=server.clock.sleep))
        yield client, server
    forget_sessions()


def test_an_ibkr_bracket_a_protected_partial_exit_and_the_close(ibkr):
    client, server = ibkr

    opened = deliver(
        client,
        strategy_fill(
            "AAPL", "buy", 10, "long", "flat", 10, 0, 150.0, stop_loss=145.0, take_profit=160.0
        ),
    )
    assert opened["status"] == "filled", opened
    assert positions(client) == {"AAPL": 10}

    partial = deliver(
        client, strategy_fill("AAPL", "sell", 4, "long", "long", 6, 10, 152.0, order_id="TP1")
    )
    assert partial["status"] == "filled", partial
    working = sorted(
        (o["order_ref"], o["totalSize"])
        for o in server.orders.values()
        if o["status"] in ("PreSubmitted", "Submitted")
    )
    assert [size for _, size in working] == ["6.0", "6.0"]  # the remainder's OCA pair
    assert all(ref.endswith(("-protect", "-protect-oco")) for ref, _ in working)

    closed = deliver(
        client, strategy_fill("AAPL", "sell", 6, "flat", "long", 0, 6, 151.0, order_id="Exit")
    )
    assert closed["status"] == "filled", closed
    assert positions(client) == {}
    assert server.positions["AAPL"]["qty"] == 0
    assert not [o for o in server.orders.values() if o["status"] in ("PreSubmitted", "Submitted")]
    cids = [o["order_ref"] for o in server.orders.values()]
    assert len(cids) == len(set(cids))  # one order per client order id
