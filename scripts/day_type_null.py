"""The null model: the day-type classifier on a driftless random walk, where nothing known
at 10:00 says anything about the rest of the day beyond the morning itself
(docs/day-type.md).

.venv/bin/python scripts/day_type_null.py [--sessions 250] [--seed 1] [--at 10:00]

Prints how often each day type is called on the random walk, the scores against the
hindsight label, and the random walk's 10th/50th/90th percentiles of the features the votes
read. The first 30 minutes are part of the day the label describes, so even here calling a
trend in the morning's direction beats the majority baseline (the momentum baseline): that
much balanced accuracy is mechanical, and the synthetic and real figures are to be read
against it.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backtest.daytype import evaluate, format_evaluation, random_walk_source, sessions_of
from chalicelib.services.classify_day import parse_new_york_time

FEATURES = (
    "opening_range_norm",
    "prior_range_atr",
    "net_move_norm",
    "prior_body",
    "vwap_distance_sigma",
    "relative_volume",
)


def percentiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=10)
    return q[0], statistics.median(values), q[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--at", default="10:00")
    args = parser.parse_args()
    source = random_walk_source(args.sessions, args.seed)
    ev = evaluate(sessions_of(source.bars), "NULL", parse_new_york_time(args.at))
    print(format_evaluation(ev, source.name))
    calls = Counter(r["predicted"] for r in ev.rows)
    print("  called: " + ", ".join(f"{k} {v / ev.n:.2f}" for k, v in sorted(calls.items())))
    for name in FEATURES:
        values = [float(r[name]) for r in ev.rows if name in r and not math.isnan(r[name])]
        if values:
            p10, p50, p90 = percentiles(values)
            print(f"  {name:22s} p10 {p10:7.3f}  p50 {p50:7.3f}  p90 {p90:7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
