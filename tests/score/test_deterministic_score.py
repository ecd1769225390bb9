"""The deterministic formula (rules/score.py): every input moves the score the documented way."""

from __future__ import annotations

import pytest

from chalicelib.domain import DayType, Side
from chalicelib.rules.score import (
    FEATURE_NAMES,
    SetupFeatures,
    deterministic_score,
    score_features,
    setup_features,
)
from tests.score.conftest import alert, day, flow, snapshot


def test_a_long_with_everything_behind_it_scores_the_documented_sum():
    # trend +3 ATR → +15; +1.5 ATR over VWAP → +7.5; rvol 1.8 → +8; confirmed +5;
    # trend-up day at 0.8 → +12; flow agrees +10  → 50 + 57.5
    score = deterministic_score(alert("buy"), snapshot(), day(), flow())
    assert score.source == "deterministic"
    assert score.value == pytest.approx(100.0)  # 107.5 clipped
    assert score.agrees is True
    assert score.risk_flags == ()


def test_points_per_input_match_the_docstring():
    f = SetupFeatures(
        side=1,
        trend_atr=1.5,
        vwap_atr=1.0,
        relative_volume=1.5,
        volume_confirmed=False,
        day_alignment=-0.4,
        flow_agrees=False,
        day_type=DayType.TREND_DOWN,
    )
    # 7.5 + 5 + 5 − 5 − 6 − 10 = −3.5
    assert score_features(f).value == pytest.approx(46.5)


def test_the_same_setup_scored_for_a_short_is_mirrored():
    long = deterministic_score(alert("buy"), snapshot(), None, None)
    short = deterministic_score(alert("short"), snapshot(), None, None)
    # trend and VWAP flip sign, relative volume and volume confirmation do not
    assert long.value - 50 - 8 - 5 == pytest.approx(-(short.value - 50 - 8 - 5))
    assert short.agrees is False
    assert any("against the session trend" in f for f in short.risk_flags)


def test_a_no_trade_day_and_disagreeing_flow_pull_the_score_down():
    base = deterministic_score(alert("buy"), snapshot(), None, None).value
    worse = deterministic_score(alert("buy"), snapshot(), day(DayType.NO_TRADE), flow(False))
    assert worse.value == pytest.approx(base - 15 - 10)
    assert "no-trade day" in worse.risk_flags


def test_missing_inputs_add_nothing_and_say_so():
    score = deterministic_score(alert("buy"), None, None, None)
    assert score.value == 50.0
    assert score.agrees is None
    assert any("not scored" in r for r in score.reasons)
    assert any("not classified" in r for r in score.reasons)


def test_no_atr_leaves_trend_and_vwap_unscored_but_volume_counts():
    features = setup_features(Side.BUY, snapshot(atr=0.0), None, None)
    assert features.trend_atr is None
    assert features.vwap_atr is None
    assert features.relative_volume == pytest.approx(1.8)


def test_a_close_is_not_judged():
    score = deterministic_score(alert("sell", market_position="flat"), snapshot(), day(), flow())
    assert score.value == 50.0
    assert score.reasons == ("closes a position",)


def test_the_score_stays_within_0_and_100():
    low = deterministic_score(
        alert("buy"),
        snapshot(start=110, last=100, vwap=105, rvol=0.0, confirmed=False),
        day(DayType.NO_TRADE),
        flow(False),
    )
    assert low.value == 0.0


def test_the_feature_vector_has_a_neutral_default_for_every_missing_input():
    assert len(SetupFeatures(side=1).vector()) == len(FEATURE_NAMES)
    assert SetupFeatures(side=1).vector() == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
