"""Calibrate the day-type vote thresholds on the declared training set, synthetic seeds
1–10, and on nothing else (docs/day-type.md). The held-out figures come from other seeds
and the real AMZN weeks, scored once, afterwards, by `python -m backtest daytype`.

.venv/bin/python scripts/day_type_calibrate.py [--seeds 1-10] [--sessions 250] [--at 10:00]
    [--features FILE.csv]   # cache the features (computed once; delete to recompute)

Each session's features are computed once by the live rules (`classify_day`); the search
then reruns only the decision (`decide`) on them, so what is scored is exactly what runs
live. The objective is balanced accuracy against the hindsight label, pooled over the
training seeds. The search is coordinate descent over a small grid per threshold, from
the literature's starting values, until a full round changes nothing (ties keep the
current value). It prints the chosen thresholds, the score per training seed, and what
switching each vote off costs: a vote whose removal costs nothing is switched off.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, fields, replace
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backtest.daytype import evaluate, score, sessions_of, synthetic_source, write_rows
from chalicelib.rules import market_calendar
from chalicelib.rules.day_type import DEFAULT_THRESHOLDS, DayTypeThresholds, decide
from chalicelib.services.classify_day import parse_new_york_time

OFF = math.inf
USELESS = 0.005  # a vote worth less than half a point of balanced accuracy is dropped
# The grid each threshold is searched over (OFF: the vote is not read).
GRID: dict[str, list[float]] = {
    "quiet_rvol": [0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 1.0, OFF],
    "quiet_range": [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, OFF],
    "quiet_prior_range": [0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 1.0, OFF],
    "quiet_votes": [1, 2, 3],
    "momentum_move": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, OFF],
    "momentum_efficiency": [1.0, 1.5, 2.0, 2.5, OFF],
    "prior_body": [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, OFF],
    "vwap_side_sigma": [0.5, 1.0, 1.5, 2.0, OFF],
    "trend_votes": [1, 2, 3],
    "trend_rvol": [0.0, 0.6, 0.7, 0.75, 0.8, 0.9, 1.0, 1.2],
    "wide_range": [1.5, 2.0, 2.5, 3.0, OFF],
}
# The votes whose worth the ablation reports, and the value that switches each off.
OFF_VALUE = {"trend_rvol": 0.0}  # the others: OFF
VOTES = [
    "quiet_rvol",
    "quiet_range",
    "quiet_prior_range",
    "momentum_move",
    "momentum_efficiency",
    "prior_body",
    "vwap_side_sigma",
    "wide_range",
    "trend_rvol",
]
# Where the search starts: the literature's and practitioners' values (docs/day-type.md).
START = replace(
    DEFAULT_THRESHOLDS,
    quiet_rvol=0.5,  # Aziz/Bellafiore: half the usual volume is a dead tape
    quiet_range=0.5,
    quiet_prior_range=OFF,
    quiet_votes=2,
    momentum_move=0.5,
    momentum_efficiency=2.0,  # the random-walk null's one-in-ten (scripts/day_type_null.py)
    prior_body=0.5,  # the hindsight label's body
    vwap_side_sigma=2.0,  # TradingView's second band
    trend_votes=2,
    trend_rvol=1.5,  # "in play" (Aziz), O'Neil's breakout volume
    wide_range=OFF,
)


def seed_rows(job: tuple[int, int, str]) -> list[dict[str, Any]]:
    """One seed's sessions: the live features, the hindsight label, the generator regime."""
    seed, sessions, at_text = job
    source = synthetic_source(sessions, seed)
    ev = evaluate(
        sessions_of(source.bars), "SYN", parse_new_york_time(at_text), regimes=source.regimes
    )
    return [{**row, "seed": seed} for row in ev.rows]


def load_rows(seeds: list[int], sessions: int, at: str, cache: Path | None) -> list[dict[str, Any]]:
    """The training rows, from the cache when it exists (else computed on two workers)."""
    if cache is not None and cache.exists():
        with cache.open() as handle:
            rows: list[dict[str, Any]] = list(csv.DictReader(handle))
        print(f"features from {cache} ({len(rows)} sessions)")
    else:
        with ProcessPoolExecutor(max_workers=2) as pool:
            batches = list(pool.map(seed_rows, [(s, sessions, at) for s in seeds]))
        rows = [row for batch in batches for row in batch]
        if cache is not None:
            write_rows(rows, cache)
    return [r for r in rows if int(r["seed"]) in seeds]


def features_of(row: dict[str, Any]) -> dict[str, float]:
    skip = {"date", "predicted", "confidence", "hindsight", "regime", "seed", "source"}
    return {k: float(v) for k, v in row.items() if k not in skip and v not in ("", None)}


class Problem:
    """The training sessions, ready for `decide`."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.features = [features_of(r) for r in rows]
        self.early = [_early_close(date.fromisoformat(str(r["date"]))) for r in rows]

    def predict(self, t: DayTypeThresholds) -> list[dict[str, Any]]:
        return [
            {
                "hindsight": r["hindsight"],
                "predicted": decide(f, t, early_close=e)[0].value,
                "seed": int(r["seed"]),
            }
            for r, f, e in zip(self.rows, self.features, self.early, strict=True)
        ]

    def balanced_accuracy(self, t: DayTypeThresholds) -> float:
        return score(self.predict(t)).balanced_accuracy


def _early_close(day: date) -> bool:
    return day in market_calendar.early_closes(day.year)


def coordinate_descent(
    problem: Problem, start: DayTypeThresholds, frozen: frozenset[str] = frozenset()
) -> DayTypeThresholds:
    """Each threshold (but the `frozen`) in turn set to its best grid value (ties keep the
    current one), until a round changes nothing."""
    best, best_score = start, problem.balanced_accuracy(start)
    print(f"start: balanced accuracy {best_score:.3f}")
    for round_ in range(1, 9):
        changed = False
        for name, grid in GRID.items():
            if name in frozen:
                continue
            for value in grid:
                trial = replace(best, **{name: value})
                trial_score = problem.balanced_accuracy(trial)
                if trial_score > best_score + 1e-9:
                    best, best_score, changed = trial, trial_score, True
        print(f"round {round_}: balanced accuracy {best_score:.3f}")
        if not changed:
            break
    return best


def ablate(problem: Problem, t: DayTypeThresholds) -> DayTypeThresholds:
    """What switching each vote off costs; the ones whose removal costs under `USELESS`
    are switched off (a rule that does not earn its place is one more thing to go wrong)."""
    full = problem.balanced_accuracy(t)
    for name in VOTES:
        off = OFF_VALUE.get(name, OFF)
        if getattr(t, name) == off:
            print(f"  {name:20s} off (the search switched it off)")
            continue
        without = problem.balanced_accuracy(replace(t, **{name: off}))
        print(
            f"  {name:20s} {getattr(t, name):>6g}: without it {without:.3f} ({without - full:+.3f})"
        )
        if without > full - USELESS:
            t = replace(t, **{name: off})
            full = problem.balanced_accuracy(t)
            print(f"  {'':20s} → switched off (useless here)")
    return t


def report(problem: Problem, t: DayTypeThresholds) -> None:
    rows = problem.predict(t)
    ev = score(rows)
    print(
        f"training set: {ev.n} sessions, accuracy {ev.accuracy:.3f}, balanced accuracy "
        f"{ev.balanced_accuracy:.3f} (majority baseline {ev.baseline_accuracy:.3f} / "
        f"{ev.baseline_balanced_accuracy:.3f}, always {ev.baseline_label})"
    )
    for seed in sorted({r["seed"] for r in rows}):
        one = score([r for r in rows if r["seed"] == seed])
        print(f"  seed {seed:>2}: balanced accuracy {one.balanced_accuracy:.3f} ({one.n} sessions)")
    chosen = {f.name: getattr(t, f.name) for f in fields(t) if f.name in GRID}
    defaults = {k: v for k, v in asdict(DEFAULT_THRESHOLDS).items() if k in GRID}
    print("chosen thresholds:")
    for name, value in chosen.items():
        mark = "" if defaults[name] == value else f"   (DayTypeThresholds has {defaults[name]:g})"
        print(f"  {name} = {'math.inf' if math.isinf(value) else f'{value:g}'}{mark}")


def _seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="1-10", help="training seeds (1-10 or 1,2,3)")
    parser.add_argument("--sessions", type=int, default=250, help="synthetic sessions per seed")
    parser.add_argument("--at", default="10:00", help="New York time to classify at")
    parser.add_argument("--features", type=Path, help="cache of the training features (CSV)")
    args = parser.parse_args()
    problem = Problem(load_rows(_seeds(args.seeds), args.sessions, args.at, args.features))
    print("1. search from the literature's values")
    chosen = coordinate_descent(problem, START)
    print("2. what each vote is worth (balanced accuracy with it switched off):")
    chosen = ablate(problem, chosen)
    off = frozenset(n for n in VOTES if getattr(chosen, n) == OFF_VALUE.get(n, OFF))
    print(f"3. search again with {', '.join(sorted(off)) or 'nothing'} off")
    chosen = coordinate_descent(problem, chosen, frozen=off)
    report(problem, chosen)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
