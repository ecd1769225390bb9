"""Each day type from a constructed session; the features behind it; the hindsight label."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from chalicelib.domain import DayType
from chalicelib.rules.day_type import (
    DayTypeThresholds,
    DayTypeUnavailable,
    adx,
    classify_day,
    daily_atr,
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


def test_a_steady_rise_on_heavy_volume_is_a_trend_up_day():
    today = session(DAY, rising(40), 2000.0, first_open=100.0)
    result = classify_day("SPY", today, PRIOR, at=AT)
    assert result.day_type is DayType.TREND_UP
    assert result.confidence >= 0.8
    assert result.day == DAY
    assert result.classified_at == AT
    assert result.symbol == "SPY"
    f = result.features
    assert f["bars"] == 30  # only the bars finished by 10:00
    assert f["vwap_crosses"] == 0
    assert f["efficiency"] > 0.5
    assert f["relative_volume"] == pytest.approx(2.0)
    assert f["adx"] > 50
    assert 1 < f["vwap_distance_sigma"] < 2  # a straight rise ends ≈ 1.7σ above its VWAP
    assert result.reason.startswith("4/5 trend signals (efficiency, vwap_one_side, adx, ")


def test_a_steady_fall_is_a_trend_down_day():
    falling = [200 - c for c in rising(30)]
    today = session(DAY, falling, 2000.0, first_open=100.0)
    result = classify_day("SPY", today, PRIOR, at=AT)
    assert result.day_type is DayType.TREND_DOWN
    assert result.features["net_move"] < 0
    assert result.features["vwap_distance_sigma"] < -1


def swings(n: int = 30, amplitude: float = 0.4) -> list[float]:
    """Up and down around 100 in swings of a few bars."""
    return [round(100 + amplitude * math.sin(0.9 * i), 4) for i in range(1, n + 1)]


def test_swings_around_the_open_are_a_choppy_day():
    today = session(DAY, swings(), 1000.0, first_open=100.0)
    result = classify_day("SPY", today, PRIOR, at=AT)
    assert result.day_type is DayType.CHOPPY
    assert result.features["vwap_crosses"] >= 6
    assert result.features["efficiency"] < 0.1
    assert result.confidence >= 0.6


def test_a_thin_narrow_market_is_a_no_trade_day():
    today = session(DAY, zigzag(100.0, 0.02, 30), 300.0, first_open=100.0, wick=0.01)
    result = classify_day("SPY", today, PRIOR, at=AT)
    assert result.day_type is DayType.NO_TRADE
    assert result.features["relative_volume"] == pytest.approx(0.3)
    assert result.features["opening_range_vs_avg"] <= 0.5
    assert result.reason.startswith("dead market")


def test_thin_volume_alone_is_not_a_no_trade_day():
    today = session(DAY, swings(), 300.0, first_open=100.0)
    assert classify_day("SPY", today, PRIOR, at=AT).day_type is DayType.CHOPPY


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
        DayTypeThresholds().adx_trend = 10  # type: ignore[misc]


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
