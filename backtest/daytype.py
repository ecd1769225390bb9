"""The day type in the backtest: each session classified at a New York time by the live
rules (`chalicelib/rules/day_type.py`), validated against the after-the-close label, and
the same day-type and volume checks the live gate runs, applied to entries.

`python -m backtest daytype --data FILE [--symbol SYM] [--at 10:00] --out DIR` writes
`DIR/daytype.csv` (one row per session: date, predicted, confidence, hindsight, features)
and prints the confusion matrix, accuracy and balanced accuracy against the hindsight
label, next to the majority-class baseline. A session needs at least one session before it
in the same file (for the ATR the hindsight label and the classifier measure against).
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np

from backtest.data import Bars
from chalicelib.domain import Bar, DayClassification, DayType, MarketSnapshot
from chalicelib.rules.day_type import (
    DayTypeUnavailable,
    classify_day,
    daily_atr,
    hindsight_label,
)
from chalicelib.rules.volume import minutes_of_session, volume_confirmation
from chalicelib.services.classify_day import LOOKBACK_SESSIONS, scheduled_time

LABELS = (DayType.TREND_UP, DayType.TREND_DOWN, DayType.CHOPPY, DayType.NO_TRADE)


@dataclass(frozen=True)
class Session:
    """One regular session's bars, and where they sit in the loaded arrays."""

    day: date
    bars: list[Bar]
    index: np.ndarray  # positions in the `Bars` arrays
    minutes: list[int]  # minute of the session of each bar


def sessions_of(bars: Bars) -> list[Session]:
    """The regular-session bars of `bars`, split by New York trading date (extended hours
    and closed days dropped), oldest first."""
    a = bars.arrays
    ns = bars.time_ns_utc
    all_bars = [
        Bar.model_construct(
            time=datetime.fromtimestamp(int(ns[i]) / 1e9, UTC),
            open=float(a.open[i]),
            high=float(a.high[i]),
            low=float(a.low[i]),
            close=float(a.close[i]),
            volume=float(a.volume[i]),
        )
        for i in range(len(bars))
    ]
    minutes = minutes_of_session(all_bars)
    by_day: dict[date, list[int]] = {}
    for i, minute in enumerate(minutes):
        if minute is not None:
            by_day.setdefault(all_bars[i].time.date(), []).append(i)
    return [
        Session(
            day=day,
            bars=[all_bars[i] for i in idx],
            index=np.array(idx, dtype=np.int64),
            minutes=[int(minutes[i] or 0) for i in idx],
        )
        for day, idx in sorted(by_day.items())
    ]


@dataclass
class Source:
    """Bars to classify, named; synthetic sources carry their generator regime by day."""

    name: str
    bars: Bars
    regimes: dict[date, str] | None = None


SYNTHETIC_SYMBOL = "SYN"


def synthetic_source(sessions: int, seed: int) -> Source:
    """`sessions` seeded synthetic sessions (backtest/synthetic.py) with their regimes."""
    import pandas as pd

    from backtest.data import bars_from_arrays
    from backtest.synthetic import BARS_PER_DAY, intraday_bars

    frame = intraday_bars(sessions * BARS_PER_DAY, seed=seed)
    stamps = frame["timestamp"]
    bars = bars_from_arrays(
        frame["open"].to_numpy(),
        frame["high"].to_numpy(),
        frame["low"].to_numpy(),
        frame["close"].to_numpy(),
        frame["volume"].to_numpy(),
        time=pd.DatetimeIndex(stamps),
        symbol=SYNTHETIC_SYMBOL,
    )
    regimes = dict(zip(stamps.dt.date, frame["regime"], strict=True))
    return Source(f"synthetic (seed {seed})", bars, regimes)


def random_walk_source(sessions: int, seed: int, step: float = 0.0004) -> Source:
    """`sessions` weekday sessions of a driftless random walk (log returns N(0, `step`) a
    minute, no overnight gap, half-normal wicks 0.6× that, a constant 1,000 shares a
    minute): the null, where nothing at 10:00 says anything about the rest of the day."""
    import pandas as pd

    from backtest.data import bars_from_arrays
    from backtest.synthetic import BARS_PER_DAY

    rng = np.random.default_rng(seed)
    n = sessions * BARS_PER_DAY
    close = 100 * np.exp(np.cumsum(rng.standard_normal(n) * step))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.standard_normal((2, n))) * step * 0.6 * close
    days = pd.bdate_range("2020-01-02", periods=sessions)
    minutes = pd.to_timedelta(np.arange(BARS_PER_DAY), unit="min") + pd.Timedelta(
        hours=9, minutes=30
    )
    stamps = pd.DatetimeIndex((days.values[:, None] + minutes.values[None, :]).ravel())
    bars = bars_from_arrays(
        open_,
        np.maximum(open_, close) + wick[0],
        np.minimum(open_, close) - wick[1],
        close,
        np.full(n, 1000.0),
        time=stamps.tz_localize("America/New_York"),
        symbol="NULL",
    )
    return Source(f"random walk (seed {seed})", bars)


def classify_sessions(
    sessions: Sequence[Session],
    symbol: str,
    at: time,
    lookback: int = LOOKBACK_SESSIONS,
) -> list[DayClassification | None]:
    """Each session's classification at `at` New York time from its own bars and the
    `lookback` sessions before it (None where there are too few bars)."""
    out: list[DayClassification | None] = []
    for i, s in enumerate(sessions):
        prior = [p.bars for p in sessions[max(0, i - lookback) : i]]
        try:
            out.append(classify_day(symbol, s.bars, prior, at=scheduled_time(s.day, at)))
        except DayTypeUnavailable:
            out.append(None)
    return out


@dataclass
class Evaluation:
    """Predicted vs hindsight over the evaluated sessions, and the majority baseline."""

    rows: list[dict[str, Any]]
    confusion: dict[tuple[str, str], int]  # (hindsight, predicted) → sessions
    labels: tuple[str, ...]  # the classes that occur (hindsight or predicted), in order
    accuracy: float
    balanced_accuracy: float
    baseline_label: str
    baseline_accuracy: float
    baseline_balanced_accuracy: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.rows)


def evaluate(
    sessions: Sequence[Session],
    symbol: str,
    at: time,
    *,
    regimes: dict[date, str] | None = None,
    lookback: int = LOOKBACK_SESSIONS,
) -> Evaluation:
    """Classify every session that has a session before it and compare with hindsight."""
    rows: list[dict[str, Any]] = []
    for i, c in enumerate(classify_sessions(sessions, symbol, at, lookback)):
        if i == 0 or c is None:
            continue
        prior = [p.bars for p in sessions[max(0, i - lookback) : i]]
        truth = hindsight_label(sessions[i].bars, atr=daily_atr(prior))
        row: dict[str, Any] = {
            "date": sessions[i].day.isoformat(),
            "predicted": c.day_type.value,
            "confidence": c.confidence,
            "hindsight": truth.value,
        }
        if regimes is not None:
            row["regime"] = regimes.get(sessions[i].day, "")
        row.update(c.features)
        rows.append(row)
    ev = score(rows)
    ev.extra["momentum_balanced_accuracy"] = momentum_baseline(rows)
    return ev


def momentum_baseline(rows: list[dict[str, Any]]) -> float:
    """Balanced accuracy of always calling a trend in the direction of the move so far: the
    morning is part of the day, so this beats the majority baseline even on a random walk,
    and a classifier should beat it too."""
    calls = [
        {
            "hindsight": r["hindsight"],
            "predicted": "trend_up" if r["net_move"] > 0 else "trend_down",
        }
        for r in rows
    ]
    return score(calls).balanced_accuracy


def score(rows: list[dict[str, Any]]) -> Evaluation:
    """Accuracy and balanced accuracy (the mean recall over the hindsight classes that
    occur) of `rows`' predictions, and of always predicting the commonest hindsight class."""
    truth = [r["hindsight"] for r in rows]
    pred = [r["predicted"] for r in rows]
    confusion = Counter(zip(truth, pred, strict=True))
    present = [lab.value for lab in LABELS if lab.value in set(truth) | set(pred)]
    classes = [lab.value for lab in LABELS if lab.value in set(truth)]
    n = len(rows)
    correct = sum(confusion[(c, c)] for c in classes)
    recalls = [confusion[(c, c)] / truth.count(c) for c in classes]
    counts = Counter(truth)
    majority = max(classes, key=lambda c: (counts[c], -classes.index(c))) if classes else ""
    return Evaluation(
        rows=rows,
        confusion=dict(confusion),
        labels=tuple(present),
        accuracy=correct / n if n else math.nan,
        balanced_accuracy=sum(recalls) / len(recalls) if recalls else math.nan,
        baseline_label=majority,
        baseline_accuracy=counts[majority] / n if n else math.nan,
        baseline_balanced_accuracy=1.0 / len(classes) if classes else math.nan,
    )


def format_evaluation(ev: Evaluation, title: str) -> str:
    """The confusion matrix (rows: hindsight, columns: predicted) and the scores."""
    width = max([len(label) for label in ev.labels] + [9])
    head = "hindsight \\ predicted".ljust(22) + "".join(lab.rjust(width + 2) for lab in ev.labels)
    lines = [f"{title}: {ev.n} sessions", head]
    for t in ev.labels:
        cells = "".join(str(ev.confusion.get((t, p), 0)).rjust(width + 2) for p in ev.labels)
        lines.append(t.ljust(22) + cells)
    lines += [
        f"  accuracy            {ev.accuracy:6.3f}   balanced accuracy {ev.balanced_accuracy:6.3f}",
        f"  majority baseline   {ev.baseline_accuracy:6.3f}   balanced accuracy "
        f"{ev.baseline_balanced_accuracy:6.3f}   (always {ev.baseline_label})",
    ]
    verdict = "beats" if ev.balanced_accuracy > ev.baseline_balanced_accuracy else "does NOT beat"
    lines.append(f"  the classifier {verdict} the baseline on balanced accuracy")
    if (momentum := ev.extra.get("momentum_balanced_accuracy")) is not None:
        lines.append(
            f"  momentum baseline   balanced accuracy {momentum:6.3f}   "
            "(a trend in the direction of the move so far)"
        )
    return "\n".join(lines)


def write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    """daytype.csv: the fixed columns first, then every feature any row has."""
    fixed = ["date", "predicted", "confidence", "hindsight"]
    if any("regime" in r for r in rows):
        fixed.append("regime")
    features = sorted({k for r in rows for k in r} - set(fixed))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fixed + features, restval="")
        writer.writeheader()
        writer.writerows(rows)


class DayTypeFilter:
    """What the live context would hold at each entry: the day's classification once it
    was made (at `at` New York time; none before), and the breakout-volume verdict of the
    signal bar against the prior sessions at the same minute. Computed from the bars of
    the traded symbol itself (live classifies the reference symbol)."""

    def __init__(
        self,
        bars: Bars,
        at: time,
        *,
        volume_k: float = 1.5,
        lookback: int = LOOKBACK_SESSIONS,
        window: int = 2,
    ) -> None:
        self.symbol = bars.symbol
        self.sessions = sessions_of(bars)
        self.classes = classify_sessions(self.sessions, bars.symbol, at, lookback)
        self.k = volume_k
        self.lookback = lookback
        self.window = window
        self.session_of = np.full(len(bars), -1, dtype=np.int64)
        self.position_in = np.full(len(bars), -1, dtype=np.int64)
        for s_i, s in enumerate(self.sessions):
            self.session_of[s.index] = s_i
            self.position_in[s.index] = np.arange(len(s.index))
        # per session: minute → that minute's bars (for the volume rule's history)
        self._by_minute: list[dict[int, list[Bar]]] = []
        for s in self.sessions:
            table: dict[int, list[Bar]] = {}
            for bar, minute in zip(s.bars, s.minutes, strict=True):
                table.setdefault(minute, []).append(bar)
            self._by_minute.append(table)

    def day(self, bar: int, moment: datetime) -> DayClassification | None:
        """The classification of `bar`'s session if it was made by `moment`."""
        s_i = int(self.session_of[bar])
        if s_i < 0:
            return None
        c = self.classes[s_i]
        if c is None or c.classified_at is None or c.classified_at > moment:
            return None
        return c

    def market(self, bar: int, moment: datetime) -> MarketSnapshot | None:
        """A snapshot carrying the signal bar's volume verdict (the rule's only input)."""
        s_i = int(self.session_of[bar])
        if s_i < 0:
            return None
        session = self.sessions[s_i]
        this = session.bars[int(self.position_in[bar])]
        minute = session.minutes[int(self.position_in[bar])]
        near = range(minute - self.window, minute + self.window + 1)
        history = [
            [b for m in near for b in self._by_minute[p].get(m, ())]
            for p in range(max(0, s_i - self.lookback), s_i)
        ]
        verdict = volume_confirmation([this], history, self.k, window=self.window)
        return MarketSnapshot(
            symbol=self.symbol,
            source="files",
            as_of=moment,
            volume_confirmation=verdict,
        )
