"""Worker throughput against the local stack: does the queue drain as fast as alerts arrive?

Starts `python -m devstack` (as `make run` does; a fresh stack and data directory for each
figure) with the cooldown and loss limits off, so every alert is decided, gated and placed by
the paper broker (opens and closes alternate over ten symbols). Two figures (issue 9, part 3):

- sustained: N alerts posted at R/s; the time from the last 202 until every alert is
  decided (target: the queue keeps up, so a few seconds), and each alert's wait from its
  202 to its decision (p50/p99/max);
- burst: M alerts posted at once on parallel keep-alive connections; the time from the
  first post until every one is decided (target < 15 s).

    .venv/bin/python bench/throughput.py [--alerts 600 --rate 10 --burst 100]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WAITING = {"stored", "queued", "received"}
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "META", "GOOG", "TSLA", "AMD", "NFLX", "INTC")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stack(port: int, data_dir: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOWTRADER_"))}
    env.update(
        PORT=str(port),
        FLOWTRADER_DATA_DIR=data_dir,
        FLOWTRADER_WEBHOOK_PASSPHRASE="bench",  # noqa: S106 - a throwaway local stack
        FLOWTRADER_API_TOKEN="bench",  # noqa: S106
        FLOWTRADER_MAX_TRADES_PER_HOUR="0",
        FLOWTRADER_MAX_DAILY_LOSS_USD="0",
        FLOWTRADER_MAX_OPEN_POSITIONS="0",
    )
    env.setdefault("FLOWTRADER_DATA_SOURCE", "tradingview")  # the wall clock, not the replay
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    endpoint = ""
    for line in proc.stdout:
        if line.strip().startswith("embedded AWS:"):
            endpoint = line.split(":", 1)[1].strip()
        if "Ctrl-C stops everything" in line:
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, endpoint
    raise RuntimeError("the local stack did not start")


def alert(label: str, i: int) -> bytes:
    symbol = SYMBOLS[i % len(SYMBOLS)]
    return json.dumps(
        {
            "passphrase": "bench",
            "ticker": f"NASDAQ:{symbol}",
            "action": "buy" if (i // len(SYMBOLS)) % 2 == 0 else "sell",
            "price": 100 + (i % 50) / 10,
            "order_id": f"{label}-{i}",
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    ).encode()


def post(conn: http.client.HTTPConnection, body: bytes) -> str:
    conn.request("POST", "/webhook", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    answer = json.loads(response.read())
    if response.status != 202:
        raise RuntimeError(f"webhook answered {response.status}: {answer}")
    return answer["alert_id"]


class Alerts:
    """Reads the alerts table straight from the embedded AWS (as the dashboard would)."""

    def __init__(self, endpoint: str) -> None:
        import boto3

        def client(service: str):
            return boto3.client(
                service,
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",  # noqa: S106 - moto's dummy credentials
            )

        self._ddb = client("dynamodb")
        self._sqs = client("sqs")
        self._queue_url = self._sqs.get_queue_url(QueueName="flowtrader-local-alerts")["QueueUrl"]

    def decided(self, ids: set[str]) -> dict[str, float]:
        """alert id → seconds from its receipt to its decision, for the decided ones."""
        out: dict[str, float] = {}
        kwargs = {
            "TableName": "flowtrader-local-alerts",
            "ProjectionExpression": "alert_id, #s, received_at, updated_at",
            "ExpressionAttributeNames": {"#s": "status"},
        }
        while True:
            page = self._ddb.scan(**kwargs)
            for item in page["Items"]:
                alert_id = item.get("alert_id", {}).get("S")
                status = item.get("status", {}).get("S")
                if alert_id in ids and status and status not in WAITING:
                    received = datetime.fromisoformat(item["received_at"]["S"])
                    updated = datetime.fromisoformat(item["updated_at"]["S"])
                    out[alert_id] = (updated - received).total_seconds()
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def wait_all(self, ids: set[str], timeout_s: float) -> tuple[dict[str, float], float]:
        """Wait until every alert is decided; returns their waits and when the last was.

        Polls the queue's depth (cheap) and scans the table only once the queue is empty,
        so the bench itself does not slow the embedded AWS it measures."""
        start = time.monotonic()
        while True:
            attrs = self._sqs.get_queue_attributes(
                QueueUrl=self._queue_url, AttributeNames=["All"]
            )["Attributes"]
            empty_at = time.monotonic()
            in_queue = sum(
                int(attrs[name])
                for name in (
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                )
            )
            if in_queue == 0:
                done = self.decided(ids)
                if len(done) == len(ids):
                    return done, empty_at
            if time.monotonic() - start > timeout_s:
                return self.decided(ids), time.monotonic()
            time.sleep(0.1)


def sustained(port: int, alerts: Alerts, n: int, rate: float) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ids: set[str] = set()
    start = time.monotonic()
    for i in range(n):
        ids.add(post(conn, alert("sustained", i)))
        time.sleep(max(0.0, start + (i + 1) / rate - time.monotonic()))
    last_post = time.monotonic()
    conn.close()
    done, finished = alerts.wait_all(ids, timeout_s=max(120.0, n / rate))
    waits = sorted(done.values())
    print(f"sustained: {n} alerts at {rate:g}/s over {last_post - start:.1f} s")
    if len(done) < n:
        print(f"  {n - len(done)} still undecided {finished - last_post:.0f} s after the last one")
    else:
        print(f"  all decided {finished - last_post:.1f} s after the last 202")
    if waits:
        p99 = waits[int(0.99 * (len(waits) - 1))]
        print(
            f"  wait from 202 to decision: p50 {statistics.median(waits):.2f} s   "
            f"p99 {p99:.2f} s   max {waits[-1]:.2f} s"
        )


def burst(port: int, alerts: Alerts, n: int, connections: int) -> None:
    local = threading.local()

    def one(i: int) -> str:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        return post(local.conn, alert("burst", i))

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=connections) as pool:
        ids = set(pool.map(one, range(n)))
    posted = time.monotonic()
    done, finished = alerts.wait_all(ids, timeout_s=120.0)
    print(
        f"burst: {n} alerts on {connections} parallel connections, "
        f"all 202 in {posted - start:.1f} s"
    )
    state = "all decided" if len(done) == n else f"{len(done)} of {n} decided"
    print(f"  {state} {finished - start:.1f} s after the first post   (target < 15 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=600)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--burst-connections", type=int, default=10)
    args = parser.parse_args()

    phases = []
    if args.alerts:
        phases.append(lambda port, alerts: sustained(port, alerts, args.alerts, args.rate))
    if args.burst:
        phases.append(lambda port, alerts: burst(port, alerts, args.burst, args.burst_connections))
    for phase in phases:  # each on a fresh stack, so one's backlog never delays the other
        with tempfile.TemporaryDirectory(prefix="flowtrader-bench-") as data_dir:
            port = _free_port()
            proc, endpoint = start_stack(port, data_dir)
            try:
                phase(port, Alerts(endpoint))
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=60)


if __name__ == "__main__":
    main()
