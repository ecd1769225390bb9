"""Webhook latency against the local stack, and the cold import time of app.py.

Starts `python -m devstack` (as `make run` does) on a free port and posts distinct alerts
over a keep-alive connection: N back to back with the worker paused and the queue drained
(the ingress alone),
then M paced at a trader's rate while the worker processes each one (moto, the stand-in
for AWS, is pure Python and shared by both, so this is the pessimistic figure); then a burst
of 100 distinct alerts on 100 parallel connections (a strategy on many symbols at one bar
close), each answer timed from its connect. Then runs `python -X importtime -c "import app"`
and prints the cumulative import time of `app`. Targets: p99 < 50 ms locally, cold import
< 300 ms (issue 2); every burst alert 202 within 1 s locally (issue 9).

    .venv/bin/python bench/ingress.py [--alerts 1000]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stack(port: int, worker: bool) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOWTRADER_"))}
    env["FLOWTRADER_LOCAL_WORKER"] = "1" if worker else "0"
    data_dir = tempfile.mkdtemp(prefix="flowtrader-bench-")  # a fresh stack each time
    env["FLOWTRADER_DATA_DIR"] = data_dir
    env.update(PORT=str(port), FLOWTRADER_WEBHOOK_PASSPHRASE="bench", FLOWTRADER_API_TOKEN="bench")  # noqa: S106
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
    proc.data_dir = data_dir  # type: ignore[attr-defined]
    for line in proc.stdout:
        if line.strip().startswith("embedded AWS:"):
            proc.aws_endpoint = line.split(":", 1)[1].strip()  # type: ignore[attr-defined]
        if "Ctrl-C stops everything" in line:
            # Keep draining its log so a full pipe never stalls the server.
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc
    raise RuntimeError("the local stack did not start")


def alert(i: int, label: str) -> str:
    """A distinct, fresh alert: today's daily bar (fresh all day), its own order id."""
    bar = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return json.dumps(
        {
            "passphrase": "bench",
            "ticker": "NASDAQ:AAPL",
            "action": "buy" if i % 2 else "sell",
            "price": 190 + i / 100,
            "time": bar.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "interval": "1D",
            "order_id": f"{label}-{i}",
        }
    )


def webhook_latencies(port: int, n: int, label: str, rate_per_s: float = 0.0) -> list[float]:
    """Post n distinct alerts over one keep-alive connection; back to back unless paced."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies = []
    for i in range(n):
        body = alert(i, label)
        start = time.perf_counter()
        conn.request("POST", "/webhook", body, {"Content-Type": "text/plain"})
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - start
        latencies.append(elapsed * 1000)
        if response.status != 202:
            raise RuntimeError(f"alert {i} got {response.status}")
        if rate_per_s:
            time.sleep(max(0.0, 1 / rate_per_s - elapsed))
    conn.close()
    return latencies


def drain(endpoint: str, stop: threading.Event) -> None:
    """Delete queued alerts as they arrive. moto's SendMessage costs O(queued messages) (it
    re-checks every message's visibility), so a queue nobody consumes would measure moto,
    not the ingress; real SQS is O(1)."""
    import boto3

    sqs = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - moto's dummy credentials
    )
    url = sqs.get_queue_url(QueueName="flowtrader-local-alerts")["QueueUrl"]
    while not stop.is_set():
        try:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        except Exception:  # the stack is stopping
            return
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
            for i, m in enumerate(got.get("Messages", []))
        ]
        if entries:
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)


def measure(n: int, worker: bool, rate_per_s: float) -> list[float]:
    port = _free_port()
    proc = start_stack(port, worker)
    stop = threading.Event()
    if not worker:
        threading.Thread(target=drain, args=(proc.aws_endpoint, stop), daemon=True).start()
    try:
        webhook_latencies(port, 20, "warmup")  # warm the connection and the first imports
        return sorted(webhook_latencies(port, n, "bench", rate_per_s))
    finally:
        stop.set()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        shutil.rmtree(proc.data_dir, ignore_errors=True)  # type: ignore[attr-defined]


def burst_latencies(port: int, n: int, label: str) -> list[float]:
    """n distinct alerts, each on its own connection, all at once; ms from connect to answer."""
    start = threading.Barrier(n)

    def one(i: int) -> float:
        body = alert(i, label)
        start.wait()
        began = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", "/webhook", body, {"Content-Type": "text/plain"})
        response = conn.getresponse()
        response.read()
        conn.close()
        if response.status != 202:
            raise RuntimeError(f"burst alert {i} got {response.status}")
        return (time.perf_counter() - began) * 1000

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        return sorted(pool.map(one, range(n)))


def measure_burst(n: int, worker: bool) -> list[float]:
    port = _free_port()
    proc = start_stack(port, worker)
    stop = threading.Event()
    if not worker:
        threading.Thread(target=drain, args=(proc.aws_endpoint, stop), daemon=True).start()
    try:
        webhook_latencies(port, 20, "warmup")
        return burst_latencies(port, n, "burst")
    finally:
        stop.set()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        shutil.rmtree(proc.data_dir, ignore_errors=True)  # type: ignore[attr-defined]


def show(title: str, lat: list[float]) -> None:
    p50 = statistics.median(lat)
    p99 = lat[int(0.99 * (len(lat) - 1))]
    print(title)
    print(f"  p50 {p50:.1f} ms   p99 {p99:.1f} ms   max {lat[-1]:.1f} ms   (target p99 < 50 ms)")


def cold_import_ms() -> float:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import app"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| app$", line)
        if match:
            return int(match.group(1)) / 1000
    raise RuntimeError("no import line for app")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--paced-alerts", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0, help="alerts/s with the worker on")
    parser.add_argument("--burst", type=int, default=100, help="parallel connections")
    args = parser.parse_args()

    show(
        f"webhook latency, {args.alerts} alerts back to back (ingress only: worker paused, "
        "queue drained):",
        measure(args.alerts, worker=False, rate_per_s=0),
    )
    show(
        f"webhook latency, {args.paced_alerts} alerts at {args.rate:g}/s while the worker "
        "decides, gates and places each one:",
        measure(args.paced_alerts, worker=True, rate_per_s=args.rate),
    )
    for worker in (False, True):
        lat = measure_burst(args.burst, worker=worker)
        print(
            f"burst: {args.burst} distinct alerts on {args.burst} parallel connections"
            + (" while the worker decides" if worker else " (worker paused, queue drained)")
            + ", all 202:"
        )
        print(
            f"  p50 {statistics.median(lat):.0f} ms   slowest {lat[-1]:.0f} ms"
            "   (target: each within 1 s)"
        )
    imports = sorted(cold_import_ms() for _ in range(5))
    print(
        f"cold import of app.py (-X importtime, median of 5): {imports[2]:.0f} ms"
        "   (target < 300 ms)"
    )


if __name__ == "__main__":
    main()
