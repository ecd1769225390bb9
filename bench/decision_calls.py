"""What one decision costs in AWS calls: the worker's handler on N alerts, every botocore
call counted by stage and operation, with its wall time.

Starts the embedded AWS in its own process with a data directory (as `make run` does, so
writes pay the write-ahead log), builds the worker's container from the environment
(paper broker, limits off, data source tradingview) and hands it alerts one at a time in
the SQS Lambda's event shape. Prints calls and milliseconds per decision by stage
(the `latency_ms` stages), then the operations behind them.

    .venv/bin/python bench/decision_calls.py [--alerts 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from throughput import SYMBOLS, alert  # noqa: E402

_stage = threading.local()
calls: Counter[tuple[str, str]] = Counter()
spent: defaultdict[tuple[str, str], float] = defaultdict(float)
trace: list[str] = []  # the last decision's calls, in order


def _count_calls() -> None:
    """Wrap botocore's one entry point for every API call: count and time it by stage."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def counted(self: Any, operation: str, params: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            return original(self, operation, params)
        finally:
            key = (getattr(_stage, "name", "outside"), operation)
            calls[key] += 1
            spent[key] += (time.perf_counter() - started) * 1000
            trace.append(f"{key[0]:<10} {operation:<20} {_what(params)}")

    BaseClient._make_api_call = counted  # type: ignore[method-assign]


def _what(params: dict[str, Any]) -> str:
    """The item or partition a call touches, short."""
    key = params.get("Key") or params.get("Item") or params.get("ExpressionAttributeValues") or {}
    if "TransactItems" in params:
        return " + ".join(_what(next(iter(t.values()))) for t in params["TransactItems"])
    if "RequestItems" in params:
        asked = params["RequestItems"].values()
        count = sum(len(v) if isinstance(v, list) else len(v.get("Keys", [])) for v in asked)
        return f"{count} items"
    values = [str(next(iter(v.values()))) for v in key.values() if isinstance(v, dict)][:2]
    return " ".join(values)[:70]


def _label_stages() -> None:
    """Name the current stage from the worker's own `Stages.timed` blocks."""
    from contextlib import contextmanager

    from chalicelib.services import attempt

    original = attempt.Stages.timed

    @contextmanager
    def timed(self: Any, stage: str) -> Any:
        outer = getattr(_stage, "name", "outside")
        _stage.name = stage
        try:
            with original(self, stage):
                yield
        finally:
            _stage.name = outer

    attempt.Stages.timed = timed  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100)
    args = parser.parse_args()
    for key in [k for k in os.environ if k.startswith(("AWS_", "FLOWTRADER_"))]:
        del os.environ[key]
    from devstack.aws import start_embedded_aws

    with tempfile.TemporaryDirectory(prefix="flowtrader-calls-") as data_dir:
        aws = start_embedded_aws(own_process=True, data_dir=Path(data_dir))
        try:
            os.environ.update(aws.env())
            os.environ.update(
                FLOWTRADER_WEBHOOK_PASSPHRASE="bench",  # noqa: S106 - a throwaway stack
                FLOWTRADER_API_TOKEN="bench",  # noqa: S106
                FLOWTRADER_MAX_TRADES_PER_HOUR="0",
                FLOWTRADER_MAX_DAILY_LOSS_USD="0",
                FLOWTRADER_MAX_OPEN_POSITIONS="0",
                FLOWTRADER_DATA_SOURCE="tradingview",
                FLOWTRADER_DESKTOP_ALERTS="false",
                FLOWTRADER_SPOKEN_ALERTS="false",
            )
            run(args.alerts)
        finally:
            aws.stop()


def run(n: int) -> None:
    from chalicelib import bootstrap
    from chalicelib.services.queue_worker import handle_batch

    _label_stages()
    c = bootstrap.container()
    from chalice.test import Client

    from app import app

    ids = []
    with Client(app) as http:
        for i in range(n + len(SYMBOLS)):  # the first round warms every symbol's path
            response = http.http.post(
                "/webhook", body=alert("calls", i), headers={"Content-Type": "application/json"}
            )
            ids.append(json.loads(response.body)["alert_id"])
    # The bench hands the worker the alerts itself: empty the queue the webhook filled.
    c.boto_session.client("sqs").purge_queue(QueueUrl=os.environ["FLOWTRADER_QUEUE_URL"])
    _count_calls()
    started = time.perf_counter()
    for i, alert_id in enumerate(ids):
        if i == len(SYMBOLS):
            calls.clear()
            spent.clear()
            started = time.perf_counter()
        body = json.dumps({"alert_id": alert_id})
        trace.clear()
        handle_batch({"Records": [_record(body, i)]}, c)
    wall = (time.perf_counter() - started) * 1000
    report(n, wall)
    print("  the last decision's calls:")
    for line in trace:
        print("   ", line)
    sweep(c)


def sweep(c: Any) -> None:
    """One full sweep of the portfolio sync (as under the lease) and one quiet look."""
    from chalicelib.domain import utc_now
    from chalicelib.services import sync_portfolio as sync

    for label, run_pass in (
        ("full sweep", lambda: sync.sync_portfolio(c.broker, c.state_store, utc_now())),
        ("quiet look", lambda: sync._quiet_pass(c.broker, c.state_store, utc_now())),
    ):
        calls.clear()
        spent.clear()
        started = time.perf_counter()
        _stage.name = label
        run_pass()
        _stage.name = "outside"
        took = (time.perf_counter() - started) * 1000
        ops = ", ".join(f"{op} {count}" for (_, op), count in sorted(calls.items()))
        print(f"  {label}: {took:.0f} ms, {sum(calls.values())} calls ({ops})")


def _record(body: str, i: int) -> dict[str, Any]:
    return {
        "messageId": f"m{i}",
        "receiptHandle": f"r{i}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(int(time.time() * 1000)),
        },
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:flowtrader-alerts",
        "awsRegion": "us-east-1",
    }


def report(n: int, wall_ms: float) -> None:
    print(f"decision_calls: {n} alerts, {wall_ms / n:.1f} ms per decision (worker handler)")
    by_stage: defaultdict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for (stage, _op), count in calls.items():
        by_stage[stage][0] += count
        by_stage[stage][1] += spent[(stage, _op)]
    print(f"  {'stage':<10} {'calls':>7} {'ms':>8}   (per decision)")
    for stage, (count, ms) in sorted(by_stage.items(), key=lambda kv: -kv[1][1]):
        print(f"  {stage:<10} {count / n:7.1f} {ms / n:8.1f}")
    print(f"  {'stage':<10} {'operation':<22} {'calls':>7} {'ms':>8}")
    for (stage, op), count in sorted(calls.items(), key=lambda kv: -spent[kv[0]]):
        print(f"  {stage:<10} {op:<22} {count / n:7.2f} {spent[(stage, op)] / n:8.2f}")


if __name__ == "__main__":
    main()
