"""VWAP and bands, relative volume, delta and the volume confirmation, hand-computed on
tiny bar sets."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from chalicelib.domain import Bar, MarketTrade
from chalicelib.rules.volume import (
    bar_delta_bvc,
    bar_delta_from_trades,
    bar_delta_tick,
    minute_of_session,
    regular_session,
    relative_volume,
    session_delta,
    session_vwap,
    volume_confirmation,
)
from tests.rules.sessions import session, session_open

DAY = date(2025, 1, 14)  # a Tuesday, EST: the open is 14:30 UTC
SUMMER = date(2025, 7, 15)  # EDT: the open is 13:30 UTC


def flat(day: date, minute: int, price: float, volume: float) -> Bar:
    """A bar whose high, low and close (so its typical price) are all `price`."""
    return Bar(
        time=session_open(day) + timedelta(minutes=minute),
        open=price,
        high=price,
        low=price,
        close=price,
        volume=volume,
    )


def test_vwap_and_bands_are_the_volume_weighted_mean_and_deviation():
    # typical 10 × 100 shares, 12 × 300: VWAP (1000 + 3600) / 400 = 11.5;
    # variance (100·1.5² + 300·0.5²) / 400 = 0.75.
    bands = session_vwap([flat(DAY, 0, 10.0, 100), flat(DAY, 1, 12.0, 300)])
    assert bands is not None
    assert bands.vwap == pytest.approx(11.5)
    assert bands.sigma == pytest.approx(math.sqrt(0.75))
    assert bands.upper_1 == pytest.approx(11.5 + math.sqrt(0.75))
    assert bands.lower_2 == pytest.approx(11.5 - 2 * math.sqrt(0.75))


def test_vwap_uses_the_typical_price_of_each_bar():
    bar = Bar(time=session_open(DAY), open=9, high=12, low=9, close=9, volume=10)
    bands = session_vwap([bar])
    assert bands is not None
    assert bands.vwap == pytest.approx(10.0)
    assert bands.sigma == 0.0
    assert session_vwap([]) is None


def test_minute_of_session_counts_from_the_new_york_open_in_winter_and_summer():
    assert minute_of_session(session_open(DAY)) == 0
    assert session_open(DAY).hour == 14
    assert session_open(SUMMER).hour == 13
    assert minute_of_session(session_open(SUMMER) + timedelta(minutes=30)) == 30
    assert minute_of_session(session_open(DAY) - timedelta(minutes=1)) is None  # pre-market


def test_regular_session_drops_extended_hours_bars():
    pre = flat(DAY, -5, 10.0, 1)
    inside = flat(DAY, 0, 10.0, 1)
    after = flat(DAY, 390, 10.0, 1)  # 16:00 ET
    assert regular_session([pre, inside, after]) == [inside]


def test_relative_volume_compares_cumulative_volume_by_the_same_minute():
    today = [flat(DAY, m, 10, v) for m, v in enumerate((100, 200, 300))]  # 600 by minute 2
    busy = [flat(date(2025, 1, 10), m, 10, 200) for m in range(10)]  # 600 by minute 2
    quiet = [flat(date(2025, 1, 13), m, 10, 100) for m in range(10)]  # 300 by minute 2
    assert relative_volume(today, [busy, quiet]) == pytest.approx(600 / 450)
    assert relative_volume(today, [busy, quiet], through_minute=0) == pytest.approx(100 / 150)
    assert relative_volume(today, []) is None
    assert relative_volume([], [busy]) is None


def test_relative_volume_lines_up_minutes_across_daylight_saving():
    winter = [flat(DAY, m, 10, 100) for m in range(3)]
    summer = [flat(SUMMER, m, 10, 50) for m in range(3)]
    assert relative_volume(summer, [winter]) == pytest.approx(0.5)


def test_tick_rule_delta_gives_each_bar_its_close_side():
    # open 10; closes 11 (+), 11 (zero tick: stays +), 10.5 (−), 12 (+)
    bars = session(DAY, [11, 11, 10.5, 12], [100, 200, 300, 400], first_open=10)
    assert list(bar_delta_tick(bars)) == [100, 200, -300, 400]
    assert session_delta(bars, method="tick") == 400


def test_bulk_volume_classification_splits_by_the_normal_cdf_of_the_change():
    # changes +1 (close − open) and −1: sample σ = √2, z = ±1/√2,
    # 2Φ(1/√2) − 1 = erf(1/2). Delta = V · erf(±1/2).
    bars = session(DAY, [11, 10], [100, 300], first_open=10)
    expected = [100 * math.erf(0.5), -300 * math.erf(0.5)]
    assert list(bar_delta_bvc(bars)) == pytest.approx(expected)
    assert session_delta(bars) == pytest.approx(-200 * math.erf(0.5))


def test_bulk_volume_classification_of_a_flat_tape_is_zero():
    bars = session(DAY, [10, 10, 10], 500, first_open=10)
    assert list(bar_delta_bvc(bars)) == [0, 0, 0]


def test_trades_give_a_per_bar_delta_by_the_tick_rule():
    bars = session(DAY, [10.1, 10.0], 100, first_open=10)
    t0 = bars[0].time
    trades = [
        MarketTrade(time=t0 + timedelta(seconds=5), price=10.0, size=5),  # first: unknown
        MarketTrade(time=t0 + timedelta(seconds=10), price=10.1, size=10),  # uptick: buy
        MarketTrade(time=t0 + timedelta(seconds=20), price=10.1, size=3),  # zero tick: buy
        MarketTrade(time=t0 + timedelta(seconds=60), price=10.0, size=7),  # next bar: sell
        MarketTrade(time=t0 + timedelta(seconds=120), price=11.0, size=99),  # after the bars
    ]
    assert list(bar_delta_from_trades(bars, list(reversed(trades)))) == [13, -7]
    assert session_delta(bars, trades) == 6


def test_unknown_delta_method_is_refused():
    with pytest.raises(ValueError, match="bvc"):
        session_delta(session(DAY, [1, 2], 1), method="magic")


def history_at(minute: int, volumes: list[float]) -> list[list[Bar]]:
    days = [date(2025, 1, 6), date(2025, 1, 7), date(2025, 1, 8)]
    return [[flat(d, minute, 10, v)] for d, v in zip(days, volumes, strict=False)]


def test_volume_confirms_a_breakout_at_k_times_the_usual_for_its_minute():
    history = history_at(15, [1000, 3000])  # usual 2,000 at 09:45
    verdict = volume_confirmation([flat(DAY, 15, 10, 3000)], history, 1.5, window=0)
    assert verdict.allowed
    assert verdict.check == "volume_confirmation"
    assert "1.50×" in verdict.reason
    assert "09:45" in verdict.reason


def test_volume_below_k_times_the_usual_does_not_confirm():
    history = history_at(15, [1000, 3000])
    verdict = volume_confirmation([flat(DAY, 15, 10, 2999)], history, 1.5, window=0)
    assert not verdict.allowed
    assert "does not confirm" in verdict.reason
    assert "need ≥ 1.5×" in verdict.reason


def test_volume_confirmation_averages_neighbouring_minutes():
    history = [[flat(date(2025, 1, 6), m, 10, v) for m, v in ((14, 500), (15, 1500), (16, 1000))]]
    assert volume_confirmation([flat(DAY, 15, 10, 1500)], history, 1.5, window=1).allowed
    assert not volume_confirmation([flat(DAY, 15, 10, 1499)], history, 1.5, window=1).allowed


def test_volume_confirmation_without_history_allows_and_says_it_did_not_check():
    verdict = volume_confirmation([flat(DAY, 15, 10, 1)], [], 1.5)
    assert verdict.allowed
    assert verdict.reason.startswith("volume not checked")
    assert volume_confirmation([], [], 1.5).allowed
