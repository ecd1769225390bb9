"""Each day type from a constructed session; the features and votes behind it; the
thresholds in force are the documented ones; the hindsight label."""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from chalicelib.domain import DayType
from chalicelib.rules.day_type import (
    DEFAULT_THRESHOLDS,
    DayTypeThresholds,
    DayTypeUnavailable,
    adx,
    classify_day,
    daily_atr,
    daily_ohlc,
    decide,
    efficiency_ratio,
    hindsight_label,
    vwap_crosses,
)
from tests.rules.sessions import prior_sessions, session, session_open, zigzag

DAY = date(2025, 1, 14)
AT = session_open(DAY) + timedelta(minutes=30)  # 10:00 New York
PRIOR = prior_sessions(DAY)


def rising(n: int = 30, step: float = 0.1, pullback_every: int = 5) -> list[float]:
    """Up `step` a bar, with a half-step pullback every `pullback_every` bars."""
    closes, price = [], 100.0
    for i in range(1, n + 1):
        price += -step / 2 if i % pullback_every == 0 else step
        closes.append(round(price, 4))
    return closes


def test_a_steady_rise_on_heavy_volume_after_a_trend_day_is_a_trend_up_day():
    today = session(DAY, rising(40), 2000.0, first_open=100.0)
    result = classify_day("SPY", today, PRIOR, at=AT)
    assert result.day_type is DayType.TREND_UP
    assert result.confidence == 1.0
    assert result.day == DAY
    assert result.classified_at == AT
    assert result.symbol == "SPY"
    f = result.features
    assert f["bars"] == 30  # only the bars finished by 10:00
    assert f["vwap_crosses"] == 0
    assert f["efficiency"] > 0.5
    assert f["relative_volume"] == pytest.approx(2.0)
    assert f["adx"] > 50
    assert f["net_move_norm"] > 1  # 2.1 up against an ATR of ≈ 1.5 scaled to 30 minutes
    assert f["prior_body"] > 0.7  # yesterday closed near its high
    assert result.reason == (
        "direction +3 of 3 (momentum up, yesterday up, vwap_side up); trend up"
    )


def test_a_steady_fall_is_a_trend_down_day_even_after_an_up_day():
    falling = [200 - c for c in rising(30)]
    today = session(DAY, falling, 2000.0, first_open=100.0)
    result = classify_day("SPY", today, PRIOR, at=AT)
    assert result.day_type is DayType.TREND_DOWN
    assert result.features["net_move"] < 0
    assert result.features["vwap_distance_sigma"] < -1
    assert result.reason.startswith(
        "direction -1 of 3 (momentum down, yesterday up, vwap_side down)"
    )


def swings(n: int = 30, amplitude: float = 0.4) -> list[float]:
    """Up and down around 100 in six-bar swings, back at 100 every sixth bar."""
    return [round(100 + amplitude * math.sin(2 * math.pi * i / 6), 4) for i in range(1, n + 1)]


FLAT_PRIOR = prior_sessions(DAY, drift=0.0)  # days that went nowhere (body ≈ half the range)


def test_swings_back_to_the_open_after_a_flat_day_are_a_choppy_day():
    today = session(DAY, swings(), 1000.0, first_open=100.0)
    result = classify_day("SPY", today, FLAT_PRIOR, at=AT)
    assert result.day_type is DayType.CHOPPY
    assert result.features["vwap_crosses"] >= 6
    assert abs(result.features["prior_body"]) < 0.7
    assert result.confidence == 1.0  # no direction vote at all
    assert result.reason == "direction +0 of 3 (none)"


def test_a_rise_on_thin_volume_is_not_a_trend():
    today = session(DAY, rising(30), 300.0, first_open=100.0)
    result = classify_day("SPY", today, PRIOR, at=AT)
    assert result.day_type is DayType.CHOPPY
    assert result.reason.endswith("relative volume 0.30 too thin")


QUIET_YESTERDAY = PRIOR[:-1] + prior_sessions(DAY, count=1, drift=0.0, amplitude=0.02)


def test_a_narrow_opening_after_a_narrow_day_is_a_no_trade_day():
    today = session(DAY, zigzag(100.0, 0.02, 30), 1000.0, first_open=100.0, wick=0.01)
    result = classify_day("SPY", today, QUIET_YESTERDAY, at=AT)
    assert result.day_type is DayType.NO_TRADE
    assert result.features["prior_range_atr"] < 0.75
    assert result.features["opening_range_norm"] < 0.7
    assert result.confidence == 1.0
    assert result.reason == "quiet market: 2/2 quiet signals (opening_range, yesterday_range)"


def test_one_quiet_signal_is_not_a_no_trade_day():
    today = session(DAY, zigzag(100.0, 0.02, 30), 300.0, first_open=100.0, wick=0.01)
    result = classify_day("SPY", today, PRIOR, at=AT)  # a narrow opening after a wide day
    assert result.features["opening_range_norm"] < 0.7
    assert result.day_type is DayType.CHOPPY


def test_an_early_close_is_a_no_trade_day():
    black_friday = date(2025, 11, 28)  # the day after Thanksgiving closes at 13:00
    today = session(black_friday, rising(30), 2000.0, first_open=100.0)
    result = classify_day("SPY", today, prior_sessions(black_friday))
    assert result.day_type is DayType.NO_TRADE
    assert "early close" in result.reason


def test_gap_and_atr_features_come_from_the_prior_sessions():
    today = session(DAY, rising(30), 1000.0, first_open=102.0)
    f = classify_day("SPY", today, PRIOR, at=AT).features
    last_close = PRIOR[-1][-1].close
    atr = daily_atr(PRIOR)
    assert atr is not None
    assert f["gap"] == pytest.approx(102.0 - last_close)
    assert f["gap_atr"] == pytest.approx((102.0 - last_close) / atr)
    assert f["daily_atr"] == pytest.approx(atr)
    assert f["opening_range_atr"] == pytest.approx(f["opening_range"] / atr)


def test_without_prior_sessions_it_classifies_on_what_the_day_shows():
    today = session(DAY, rising(30), 1000.0, first_open=100.0)
    result = classify_day("SPY", today, (), at=AT)
    assert result.day_type is DayType.TREND_UP
    assert "relative_volume" not in result.features
    assert "gap" not in result.features


def test_too_few_bars_cannot_be_classified():
    today = session(DAY, [100, 101, 102], 1000.0)
    with pytest.raises(DayTypeUnavailable, match="3 regular-session bar"):
        classify_day("SPY", today, PRIOR, at=AT)


def test_bars_after_the_classification_time_are_not_used():
    early = session(DAY, rising(30), 2000.0, first_open=100.0)
    later = session(DAY, [80.0] * 30, 9000.0, first_open=early[-1].close, start_minute=30)
    assert classify_day("SPY", early + later, PRIOR, at=AT) == classify_day(
        "SPY", early, PRIOR, at=AT
    )


def test_thresholds_are_a_frozen_dataclass():
    with pytest.raises(AttributeError):
        DayTypeThresholds().quiet_range = 10  # type: ignore[misc]


DOCS = Path(__file__).resolve().parents[2] / "docs" / "day-type.md"


def documented_thresholds() -> dict[str, str]:
    """The `| `name` | value | ... |` rows of docs/day-type.md's "Thresholds in force"."""
    section = DOCS.read_text().split("## Thresholds in force")[1].split("\n## ")[0]
    rows = re.findall(r"^\| `(\w+)` \| `?([\w.]+)`? \|", section, re.MULTILINE)
    return dict(rows)


def test_the_thresholds_in_force_are_the_documented_ones():
    documented = documented_thresholds()
    fields = {f.name for f in dataclasses.fields(DayTypeThresholds)}
    assert set(documented) == fields
    for name, text in documented.items():
        value = getattr(DEFAULT_THRESHOLDS, name)
        if isinstance(value, bool):
            assert text == str(value).lower(), name
        elif text == "off":
            assert math.isinf(value), name
        else:
            assert value == pytest.approx(float(text)), name


def test_a_vote_switched_off_is_not_read():
    f = {"efficiency": 0.9, "efficiency_noise": 0.18, "net_move": 1.0, "net_move_norm": 3.0}
    on = DayTypeThresholds(momentum_move=math.inf, momentum_efficiency=2.0)
    kind, _, reason = decide(f, on)
    assert kind is DayType.TREND_UP
    assert reason.startswith("direction +1 of 1 (efficiency up)")
    off = DayTypeThresholds(momentum_move=math.inf, momentum_efficiency=math.inf)
    assert decide(f, off)[0] is DayType.CHOPPY  # nothing can be read: no trend


def test_disagreeing_direction_votes_cancel_out():
    f = {
        "efficiency": 0.5,
        "efficiency_noise": 0.18,
        "net_move": 1.0,
        "net_move_norm": 2.0,  # up since the open
        "prior_body": -0.9,  # after a day that closed on its low
        "vwap_distance_sigma": 0.1,  # at VWAP
        "relative_volume": 1.2,
    }
    kind, confidence, reason = decide(f)
    assert kind is DayType.CHOPPY
    assert reason == "direction +0 of 3 (momentum up, yesterday down)"
    assert confidence == 1.0


def test_yesterday_features_come_from_the_last_prior_session():
    f = classify_day(
        "SPY", session(DAY, rising(30), 1000.0, first_open=100.0), PRIOR, at=AT
    ).features
    open_, high, low, close = daily_ohlc(PRIOR[-1]) or (0.0, 0.0, 0.0, 0.0)
    assert f["prior_body"] == pytest.approx((close - open_) / (high - low))
    atr_before = daily_atr(PRIOR[:-1])
    assert atr_before is not None
    assert f["prior_range_atr"] == pytest.approx((high - low) / atr_before)


def test_efficiency_crosses_and_adx_on_hand_made_series():
    straight = session(DAY, [101, 102, 103, 104], 1, first_open=100)
    assert efficiency_ratio(straight) == 1.0
    back = session(DAY, [101, 100], 1, first_open=100)
    assert efficiency_ratio(back) == 0.0
    assert vwap_crosses(session(DAY, [100, 102, 98, 102], 1, first_open=100)) >= 2
    assert adx(straight) is None  # under 2 × 14 bars
    up = session(DAY, [100 + i for i in range(1, 40)], 1, first_open=100)
    assert adx(up) == pytest.approx(100.0)
    choppy = session(DAY, swings(40), 1, first_open=100)
    assert adx(choppy) < 20


def test_hindsight_labels_the_whole_session():
    atr = 2.0
    up = session(DAY, [100 + 0.1 * i for i in range(1, 31)], 1, first_open=100, wick=0.0)
    assert hindsight_label(up, atr=atr) is DayType.TREND_UP
    down = session(DAY, [100 - 0.1 * i for i in range(1, 31)], 1, first_open=100, wick=0.0)
    assert hindsight_label(down, atr=atr) is DayType.TREND_DOWN
    round_trip = session(DAY, [101, 102, 103, 102, 101, 100.2], 1, first_open=100, wick=0.0)
    assert hindsight_label(round_trip, atr=atr) is DayType.CHOPPY
    dead = session(DAY, zigzag(100, 0.2, 30), 1, first_open=100, wick=0.0)
    assert hindsight_label(dead, atr=atr) is DayType.NO_TRADE
    # a rise of 1.0 is a trend without an ATR to call it small; under half a 3.0 ATR it is
    # nothing to trade, and under 0.8 of a 1.5 ATR too small to be a trend day
    assert hindsight_label(up[:10], atr=None) is DayType.TREND_UP
    assert hindsight_label(up[:10], atr=3.0) is DayType.NO_TRADE
    assert hindsight_label(up[:10], atr=1.5) is DayType.CHOPPY
