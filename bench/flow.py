"""What flow costs a decision: `flow_summary_for` latency through the real adapter, the
shared rate limit and the response cache (moto's server for the state table, the local
Unusual Whales fake for the vendor, both on 127.0.0.1, so the figures are flowtrader's own
overhead, not the vendor's network).

- miss: every lookup makes its three vendor calls (cache off);
- hit: concurrent alerts on one ticker within the cache TTL (the first call warms it).

    .venv/bin/python bench/flow.py [--lookups 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (
        f"p50 {statistics.median(ordered):6.1f} ms   p99 {p99:6.1f} ms   max {ordered[-1]:6.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=50)
    args = parser.parse_args()

    import boto3

    from chalicelib.adapters.dynamodb_rate_limit import DynamoRateLimit
    from chalicelib.adapters.dynamodb_response_cache import DynamoResponseCache
    from chalicelib.adapters.unusual_whales import NAME, UnusualWhales
    from chalicelib.domain import Side
    from chalicelib.services.flow import flow_summary_for
    from devstack.aws import start_embedded_aws
    from tests.fakes.unusual_whales_server import FakeUnusualWhales
    from tests.flow.conftest import alert_row, darkpool_row

    aws = start_embedded_aws(port=0, stage="bench")
    try:
        env = aws.env()
        os.environ.update(env)
        session = boto3.session.Session(region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"))
        ddb = session.client("dynamodb", endpoint_url=aws.endpoint_url)
        table = env["FLOWTRADER_STATE_TABLE"]
        now = datetime.now(UTC)
        with FakeUnusualWhales("bench-token", per_minute_limit=1_000_000) as uw:
            uw.alerts = [
                alert_row(
                    ticker="AAPL",
                    option_chain=f"AAPL260320C{i:08d}",
                    created_at=now - timedelta(minutes=i % 30),
                )
                for i in range(200)
            ]
            uw.darkpool["AAPL"] = [
                darkpool_row(ticker="AAPL", executed_at=now - timedelta(minutes=i % 300))
                for i in range(500)
            ]
            for label, ttl in (("miss", 0.0), ("hit", 60.0)):
                source = UnusualWhales(
                    "bench-token",
                    base_url=uw.url,
                    timeout_s=10.0,
                    requests_per_minute=1_000_000,  # counted, never reached
                    rate_limit=DynamoRateLimit(ddb, table, NAME),
                    cache=DynamoResponseCache(ddb, table, NAME),
                    cache_ttl_s=ttl,
                )
                flow_summary_for("AAPL", Side.BUY, source, now, window_minutes=30)  # warm
                took = []
                for _ in range(args.lookups):
                    t0 = time.perf_counter()
                    flow_summary_for("AAPL", Side.BUY, source, now, window_minutes=30)
                    took.append(1000 * (time.perf_counter() - t0))
                print(
                    f"flow_summary_for, cache {label:4}: {_percentiles(took)}"
                    f"   ({args.lookups} lookups, 200 alerts + 500 dark-pool prints)"
                )
    finally:
        aws.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
