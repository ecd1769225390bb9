"""IBKR adapter cost: requests per operation and local time, against tests/fakes/ibkr_server.py.

IBKR paces live orders and trades to one read every 5 seconds, so what an operation costs
at IBKR is mostly *how many* requests it makes and which ones must wait. This prints, for a
cold session and for each broker operation, the requests sent (by endpoint), the pacing
wait the session would have slept at IBKR (virtual here) and the local wall time through
ibind's real client (signing included). Local times are this machine's, not IBKR's.

Usage: `.venv/bin/python bench/ibkr_adapter.py`. Prints only.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chalicelib.adapters.ibkr.broker import IbkrBroker  # noqa: E402
from chalicelib.domain import OrderIntent, OrderType, Side  # noqa: E402
from tests.fakes.ibkr_server import FakeIbkr  # noqa: E402

ENDPOINT_ID = re.compile(r"(?<=/)(DU\d+|\d+|[0-9a-f-]{36})(?=/|$)")


def intent(cid: str, **kwargs: object) -> OrderIntent:
    base: dict[str, object] = {
        "client_order_id": cid,
        "alert_id": cid,
        "symbol": "AAPL",
        "side": Side.BUY,
        "qty": 10,
    }
    return OrderIntent(**(base | kwargs))


def main() -> None:
    import logging

    logging.disable(logging.INFO)
    with FakeIbkr() as fake:
        fake.prices["AAPL"] = 100.0
        session = fake.session()
        broker = IbkrBroker(session, sleep=lambda _: None)
        steps = [
            ("cold session (LST, status, ssodh, pre-flight)", session.ensure_ready),
            (
                "place market + bracket",
                lambda: broker.place_order(intent("b1", stop_loss=95.0, take_profit=110.0)),
            ),
            ("place again (found, no POST)", lambda: broker.place_order(intent("b1"))),
            ("working_exits", lambda: broker.working_exits("AAPL")),
            ("get_portfolio", broker.get_portfolio),
            (
                "place limit 1 s later",
                lambda: broker.place_order(
                    intent("l1", order_type=OrderType.LIMIT, limit_price=90.0)
                ),
            ),
            (
                "cancel it",
                lambda: broker.cancel_order(broker.get_order_by_client_id("l1").broker_order_id),
            ),
        ]
        print(f"{'operation':48} {'requests':>8} {'paced wait s':>12} {'local ms':>9}  endpoints")
        for name, step in steps:
            before, waited = len(fake.requests), session.pacer.waited_s
            if name.startswith("place limit"):
                fake.clock.advance(1.0)
            started = time.perf_counter()
            step()
            ms = (time.perf_counter() - started) * 1000
            sent = fake.requests[before:]
            kinds = Counter(f"{r['method']} {ENDPOINT_ID.sub('{id}', r['path'])}" for r in sent)
            print(
                f"{name:48} {len(sent):8d} {session.pacer.waited_s - waited:12.1f} {ms:9.0f}  "
                + ", ".join(f"{k}×{v}" for k, v in kinds.items())
            )


if __name__ == "__main__":
    main()
