"""The snapshot the decision sees, built from bars (and trades) with the volume rules."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from chalicelib.domain import MarketTrade
from chalicelib.rules.market_snapshot import bar_atr, build_snapshot
from chalicelib.rules.volume import session_vwap
from tests.rules.sessions import prior_sessions, session, session_open, zigzag

DAY = date(2025, 1, 14)
NOW = session_open(DAY) + timedelta(minutes=20)


def test_snapshot_carries_vwap_bands_rvol_delta_atr_and_the_volume_verdict():
    prior = prior_sessions(DAY)
    today = session(DAY, zigzag(100, 0.5, 20), 1000.0, first_open=100) + session(
        DAY, [101, 102], 5000.0, first_open=100.5, start_minute=20
    )
    snap = build_snapshot("SPY", "files", NOW, today, prior, k=1.5)
    used = today[:21]  # the bar at 09:50 started by `now`; 09:51 did not
    assert snap.bars == tuple(used)
    bands = session_vwap(used)
    assert bands is not None
    assert snap.vwap == pytest.approx(bands.vwap)
    assert snap.vwap_upper == pytest.approx(bands.vwap + bands.sigma)
    assert snap.vwap_lower_2 == pytest.approx(bands.vwap - 2 * bands.sigma)
    assert snap.relative_volume == pytest.approx((20 * 1000 + 5000) / (21 * 1000))
    assert snap.last_price == 101
    assert snap.delta_method == "bvc"
    assert snap.delta is not None
    assert snap.atr == pytest.approx(bar_atr(prior[-1] + used))
    # the verdict is on the last bar finished by 09:50: 09:49 at the usual 1,000 shares
    assert snap.volume_confirmation is not None
    assert not snap.volume_confirmation.allowed
    assert "1.00×" in snap.volume_confirmation.reason
    a_minute_later = build_snapshot("SPY", "files", NOW + timedelta(minutes=1), today, prior)
    assert a_minute_later.volume_confirmation is not None
    assert a_minute_later.volume_confirmation.allowed  # 09:50 finished: 5,000 shares
    assert "5.00×" in a_minute_later.volume_confirmation.reason


def test_snapshot_delta_comes_from_trades_when_given():
    today = session(DAY, [100.1, 100.0], 100.0, first_open=100)
    t0 = today[0].time
    trades = [
        MarketTrade(time=t0, price=100.0, size=1),
        MarketTrade(time=t0 + timedelta(seconds=1), price=100.1, size=40),
        MarketTrade(time=t0 + timedelta(seconds=61), price=100.0, size=15),
    ]
    snap = build_snapshot("SPY", "alpaca", NOW, today, (), trades, last_price=99.5)
    assert snap.delta == 25
    assert snap.delta_method == "trades"
    assert snap.last_price == 99.5
    assert snap.relative_volume is None
    assert snap.atr is None


def test_snapshot_of_no_bars_is_empty_but_valid():
    snap = build_snapshot("SPY", "files", NOW, [], prior_sessions(DAY))
    assert snap.bars == ()
    assert snap.vwap is None
    assert snap.delta is None
    assert snap.volume_confirmation is None
    assert snap.last_price is None
