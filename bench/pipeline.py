"""Latency by stage: where an alert's time goes, from the webhook to the recorded order.

Starts `python -m devstack` (as `make run` does, paper broker, limits off), posts N alerts
at R/s (opens and closes alternating over ten symbols, so every one is decided, gated and
placed), then reads each alert's `latency_ms` record (the one `GET /api/alerts/{id}`
shows) and prints p50/p99 per stage: ingress (webhook → queue), queue (queue → worker),
context (market data, day type, flow, score: the sources configured), lease (waiting for
the account), catch_up (fills since the last sync), decide, gate, broker, record, worker
(the worker's whole part), total (webhook → outcome) and placed (the worker's time until the
broker had the order). Target (issue 11): p99 alert → order
under 250 ms locally without GPT.

    .venv/bin/python bench/pipeline.py [--alerts 500 --rate 2]   # --rate 5, 10: the ceiling
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import Alerts, _free_port, alert, post, start_stack

STAGES = (
    "ingress",
    "queue",
    "context",
    "lease",
    "catch_up",
    "decide",
    "gate",
    "broker",
    "record",
    "worker",
    "total",
    "placed",
)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else float("nan")


def latencies(port: int, ids: list[str]) -> list[dict[str, float]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    for alert_id in ids:
        conn.request("GET", f"/api/alerts/{alert_id}", headers={"Authorization": "Bearer bench"})
        response = conn.getresponse()
        body = json.loads(response.read())
        record = (body.get("details") or {}).get("latency_ms")
        if response.status == 200 and record:
            out.append(record)
    conn.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=500)
    parser.add_argument("--rate", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flowtrader-bench-") as data_dir:
        port = _free_port()
        proc, endpoint = start_stack(port, data_dir)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            ids: list[str] = []
            start = time.monotonic()
            for i in range(args.alerts):
                ids.append(post(conn, alert("pipeline", i)))
                time.sleep(max(0.0, start + (i + 1) / args.rate - time.monotonic()))
            conn.close()
            Alerts(endpoint).wait_all(set(ids), timeout_s=max(120.0, args.alerts / args.rate))
            records = latencies(port, ids)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    print(f"pipeline: {len(records)} of {args.alerts} alerts at {args.rate:g}/s, ms per stage")
    print(f"  {'stage':<8} {'p50':>8} {'p99':>8} {'max':>8}")
    for stage in STAGES:
        values = [r[stage] for r in records if stage in r]
        if values:
            p50, p99 = _pct(values, 0.5), _pct(values, 0.99)
            print(f"  {stage:<8} {p50:8.1f} {p99:8.1f} {max(values):8.1f}")
    # alert → order: the webhook's and the queue's part, then the worker's until the broker
    # had the order (`placed`; alerts that placed nothing have none)
    to_order = [
        r.get("ingress", 0) + r.get("queue", 0) + r["placed"] for r in records if "placed" in r
    ]
    if to_order:
        print(
            f"  alert → order p50 {_pct(to_order, 0.5):.1f} ms   p99 {_pct(to_order, 0.99):.1f} ms"
            "   (target p99 < 250 ms without GPT)"
        )


if __name__ == "__main__":
    main()
