"""TradeStation requests per broker call, against the local SIM (tests/fakes): what an alert
spends of TradeStation's quotas (250 requests per 5 minutes in each of the Accounts, Order
Details, Balances and Positions categories; https://api.tradestation.com/docs/fundamentals/rate-limiting).

Counts HTTP requests (not time) for: a market entry, a bracket entry, a lookup by client order
id, the working exits of a symbol, a cancel, the portfolio, and a POST whose answer is lost
(503 after the order was placed). The first call of a process also spends one token grant.

    .venv/bin/python bench/tradestation_requests.py
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chalicelib.adapters.tradestation import StaticRefreshToken, TradeStationBroker
from chalicelib.domain import OrderIntent, OrderType, Side
from tests.fakes.tradestation_server import FakeTradeStation


def intent(cid: str, **kwargs: object) -> OrderIntent:
    base: dict[str, object] = {
        "client_order_id": cid,
        "alert_id": cid,
        "symbol": "AAPL",
        "side": Side.BUY,
        "qty": 10,
    }
    return OrderIntent(**(base | kwargs))


def category(path: str) -> str:
    for name in ("positions", "bodbalances", "balances", "orders", "ordergroups", "token"):
        if name in path:
            return name
    return path


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with FakeTradeStation() as fake:
        fake.prices["AAPL"] = 100.0
        broker = TradeStationBroker.connect(
            fake.account_id,
            fake.client_id,
            fake.client_secret,
            StaticRefreshToken(next(iter(fake.refresh_tokens))),
            base_url=fake.url,
            token_url=fake.token_url,
        )
        resting = {}

        def run(label: str, call: Callable[[], object]) -> None:
            before = len(fake.requests)
            call()
            seen = fake.requests[before:]
            kinds = Counter(f"{r['method']} {category(r['path'])}" for r in seen)
            detail = ", ".join(f"{n}× {k}" for k, n in sorted(kinds.items()))
            print(f"{label:<44} {len(seen):>2} requests  ({detail})")

        run("first call of a process (token + positions)", broker.get_positions)
        run("market entry", lambda: broker.place_order(intent("b-1")))
        run("bracket entry (OSO + BRK)", lambda: broker.place_order(
            intent("b-2", stop_loss=95.0, take_profit=110.0)))  # fmt: skip
        run("lookup by client order id", lambda: broker.get_order_by_client_id("b-2"))
        run("working exits of a symbol", lambda: broker.working_exits("AAPL"))
        run("resting limit entry", lambda: resting.setdefault("o", broker.place_order(
            intent("b-3", order_type=OrderType.LIMIT, limit_price=90.0))))  # fmt: skip
        run("cancel (settled at once)", lambda: broker.cancel_order(resting["o"].broker_order_id))
        run("portfolio (balances, BOD, positions)", broker.get_portfolio)
        fake.inject("POST", "/v3/orderexecution/orders", status=503, after=True)
        run("entry whose answer is lost (503 after)", lambda: broker.place_order(intent("b-4")))


if __name__ == "__main__":
    main()
