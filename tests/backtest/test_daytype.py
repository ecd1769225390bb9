"""The day type in the backtest: the validation command on the shipped AMZN bars, its
scores, and the engine's day-type gate and volume confirmation on entries."""

from __future__ import annotations

import csv
import math
from datetime import date, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtest.__main__ import main
from backtest.data import Bars, bars_from_arrays, load_bars
from backtest.daytype import classify_sessions, evaluate, score, sessions_of, synthetic_source
from backtest.engine import run_backtest
from chalicelib.domain import Bar, DayType
from chalicelib.rules.day_type import classify_day
from tests.backtest.conftest import L, config
from tests.rules.sessions import prior_sessions, session, zigzag

DATA = Path(__file__).resolve().parents[2] / "backtest" / "data"
AMZN_2025 = DATA / "AMZN_1min_2025-01-13_alpaca.csv"  # real Alpaca bars, shipped
AMZN_2021 = DATA / "AMZN_1min_2021-01-04_alpaca.csv"


def test_daytype_command_writes_one_row_per_session_and_prints_the_scores(tmp_path, capsys):
    out = tmp_path / "dt"
    assert main(["daytype", "--data", str(AMZN_2025), "--symbol", "AMZN", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "hindsight \\ predicted" in printed
    assert "majority baseline" in printed
    assert "balanced accuracy" in printed
    with (out / "daytype.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    # 2025-01-13 … 17: five sessions, the first has no prior session to measure against
    assert [r["date"] for r in rows] == [
        "2025-01-14",
        "2025-01-15",
        "2025-01-16",
        "2025-01-17",
    ]
    assert list(rows[0])[:4] == ["date", "predicted", "confidence", "hindsight"]
    assert {"efficiency", "vwap_crosses", "opening_range_atr", "relative_volume"} <= set(rows[0])
    assert all(r["predicted"] in {t.value for t in DayType} for r in rows)


def test_daytype_rows_are_the_live_rules_answer_at_ten(tmp_path):
    bars = load_bars(AMZN_2021)
    sessions = sessions_of(bars)
    assert [s.day for s in sessions] == [date(2021, 1, d) for d in (4, 5, 6, 7, 8)]
    assert all(len(s.bars) <= 390 for s in sessions)  # extended hours dropped
    classes = classify_sessions(sessions, "AMZN", time(10, 0))
    direct = classify_day(
        "AMZN",
        sessions[3].bars,
        [s.bars for s in sessions[:3]],
        at=sessions[3].bars[0].time + timedelta(minutes=30),
    )
    assert classes[3] == direct
    assert classes[3] is not None
    assert classes[3].features["bars"] == 30


def test_daytype_command_refuses_a_bad_time(tmp_path, capsys):
    assert main(["daytype", "--data", str(AMZN_2025), "--at", "ten", "--out", str(tmp_path)]) == 2
    assert "HH:MM" in capsys.readouterr().out


def test_scores_are_accuracy_balanced_accuracy_and_the_majority_baseline():
    rows = [
        {"hindsight": "choppy", "predicted": "choppy"},
        {"hindsight": "choppy", "predicted": "choppy"},
        {"hindsight": "choppy", "predicted": "trend_up"},
        {"hindsight": "trend_up", "predicted": "trend_up"},
        {"hindsight": "no_trade", "predicted": "choppy"},
    ]
    ev = score(rows)
    assert ev.accuracy == pytest.approx(3 / 5)
    # recalls: choppy 2/3, trend_up 1/1, no_trade 0/1
    assert ev.balanced_accuracy == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert ev.baseline_label == "choppy"
    assert ev.baseline_accuracy == pytest.approx(3 / 5)
    assert ev.baseline_balanced_accuracy == pytest.approx(1 / 3)
    assert ev.confusion[("choppy", "trend_up")] == 1
    assert math.isnan(score([]).accuracy)


def test_synthetic_sessions_carry_their_regime(tmp_path, capsys):
    out = tmp_path / "syn"
    assert main(["daytype", "--synthetic", "6", "--seed", "3", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "daytype.csv")
    assert len(frame) == 5
    assert set(frame["regime"]) <= {"trend_up", "trend_down", "range", "volatile", "breakout"}
    assert "generator regime" in capsys.readouterr().out


FRESH_SEED = 24  # never used in calibration (seeds 1–10) nor in the README's figures


def test_the_classifier_beats_the_majority_baseline_on_a_fresh_synthetic_seed():
    source = synthetic_source(120, FRESH_SEED)
    ev = evaluate(sessions_of(source.bars), "SYN", time(10, 0), regimes=source.regimes)
    assert ev.n > 100
    assert ev.baseline_balanced_accuracy == pytest.approx(0.25)  # all four classes occur
    assert ev.balanced_accuracy > ev.baseline_balanced_accuracy + 0.05


# --- the engine's day-type gate ------------------------------------------------------------

DAY = date(2025, 1, 14)


def to_bars(bar_list: list[Bar]) -> Bars:
    times = pd.DatetimeIndex([b.time for b in bar_list]).tz_convert("America/New_York")
    return bars_from_arrays(
        np.array([b.open for b in bar_list]),
        np.array([b.high for b in bar_list]),
        np.array([b.low for b in bar_list]),
        np.array([b.close for b in bar_list]),
        np.array([b.volume for b in bar_list]),
        time=times,
        symbol="SPY",
    )


def with_today(today: list[Bar], *, drift: float = 1.0, quiet_yesterday: bool = False):
    """Five ordinary sessions (each drifting `drift`; the last a narrow one when
    `quiet_yesterday`), then `today`; the bars and the index of today's first bar."""
    days = prior_sessions(DAY, count=5, n=60, drift=drift)
    if quiet_yesterday:
        days[-1:] = prior_sessions(DAY, count=1, n=60, drift=0.0, amplitude=0.02)
    prior = [b for s in days for b in s]
    return to_bars(prior + today), len(prior)


def swings(n: int) -> list[float]:
    """Six-bar swings around 100, back at 100 every sixth bar (and at 10:00)."""
    return [round(100 + 0.4 * math.sin(2 * math.pi * i / 6), 4) for i in range(1, n + 1)]


def run(bars: Bars, signal_at: int, *overrides: str):
    signals = np.zeros(len(bars), dtype=np.int8)
    signals[signal_at] = L
    return run_backtest(
        bars, config("risk.market_hours_only=false", *overrides), progress=False, signals=signals
    )


def test_the_gate_denies_entries_after_the_classification_on_a_no_trade_day():
    dead = session(DAY, zigzag(100.0, 0.02, 60), 300.0, first_open=100.0, wick=0.01)
    bars, first = with_today(dead, quiet_yesterday=True)
    after_ten = first + 40
    assert len(run(bars, after_ten).trades) == 1
    gated = run(bars, after_ten, "daytype.gate=true")
    assert len(gated.trades) == 0
    assert gated.denials["no_trade_day"] == 1
    before_ten = run(bars, first + 10, "daytype.gate=true")  # not classified yet: allowed
    assert len(before_ten.trades) == 1


def test_the_gate_scales_entries_on_a_choppy_day():
    choppy = session(DAY, swings(60), 1000.0, first_open=100.0)
    bars, first = with_today(choppy, drift=0.0)
    full = run(bars, first + 40)
    half = run(bars, first + 40, "daytype.gate=true", "daytype.choppy_size_scale=0.5")
    assert full.trades.iloc[0]["qty"] == 100
    assert half.trades.iloc[0]["qty"] == 50


def test_volume_confirmation_denies_a_breakout_on_thin_volume():
    volumes = [1000.0] * 60
    volumes[40] = 900.0  # the signal bar: 0.9× the usual 1,000 at 10:10
    today = session(DAY, swings(60), volumes, first_open=100.0)
    bars, first = with_today(today)
    denied = run(bars, first + 40, "daytype.volume_confirm=true")
    assert len(denied.trades) == 0
    assert denied.denials["volume_confirmation"] == 1
    volumes[40] = 1600.0
    bars, first = with_today(session(DAY, swings(60), volumes, first_open=100.0))
    assert len(run(bars, first + 40, "daytype.volume_confirm=true").trades) == 1
