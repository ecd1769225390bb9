"""Webhook latency against the local stack, and the cold import time of app.py.

Starts `python -m devstack` (as `make run` does) on a free port, posts N distinct alerts
one after another over a keep-alive connection, and prints p50/p99/max latency. Then runs
`python -X importtime -c "import app"` and prints the cumulative import time of `app`.
Targets (issue 2): p99 < 50 ms locally, cold import < 300 ms.

    .venv/bin/python bench/ingress.py [--alerts 1000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stack(port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOWTRADER_"))}
    env.update(PORT=str(port), FLOWTRADER_WEBHOOK_PASSPHRASE="bench", FLOWTRADER_API_TOKEN="bench")  # noqa: S106
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Ctrl-C stops everything" in line:
            # Keep draining its log so a full pipe never stalls the server.
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc
    raise RuntimeError("the local stack did not start")


def webhook_latencies(port: int, n: int, label: str) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies = []
    for i in range(n):
        body = json.dumps(
            {
                "passphrase": "bench",
                "ticker": "NASDAQ:AAPL",
                "action": "buy" if i % 2 else "sell",
                "price": 190 + i / 100,
                "time": f"2026-11-26T15:{i // 60 % 60:02d}:{i % 60:02d}Z",
                "order_id": f"{label}-{i}",
            }
        )
        start = time.perf_counter()
        conn.request("POST", "/webhook", body, {"Content-Type": "text/plain"})
        response = conn.getresponse()
        response.read()
        latencies.append((time.perf_counter() - start) * 1000)
        if response.status != 202:
            raise RuntimeError(f"alert {i} got {response.status}")
    conn.close()
    return latencies


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
    args = parser.parse_args()

    port = _free_port()
    proc = start_stack(port)
    try:
        webhook_latencies(port, 20, "warmup")  # warm the connection and the first imports
        lat = sorted(webhook_latencies(port, args.alerts, "bench"))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    p50 = statistics.median(lat)
    p99 = lat[int(0.99 * (len(lat) - 1))]
    imports = sorted(cold_import_ms() for _ in range(5))
    print(f"webhook latency over {len(lat)} alerts (local stack, sequential, keep-alive):")
    print(f"  p50 {p50:.1f} ms   p99 {p99:.1f} ms   max {lat[-1]:.1f} ms   (target p99 < 50 ms)")
    print(
        f"cold import of app.py (-X importtime, median of 5): {imports[2]:.0f} ms"
        "   (target < 300 ms)"
    )


if __name__ == "__main__":
    main()
