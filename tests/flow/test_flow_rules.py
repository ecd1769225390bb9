"""The flow summary (rules/flow.py), with numbers worked out by hand in the comments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import DarkPoolPrint, FlowPrint, NetPremTick, Side
from chalicelib.rules.flow import agreement, darkpool_window_average, summarize_flow

NOW = datetime(2026, 3, 2, 15, 0, 30, tzinfo=UTC)  # window of 30 min: from 14:30:30


def at(hh: int, mm: int, ss: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 3, day, hh, mm, ss, tzinfo=UTC)


def fp(when, option_type, premium, ask, bid, *, sweep=False, symbol="AAPL", chain=None):
    return FlowPrint(
        symbol=symbol,
        option_symbol=chain or f"{symbol}260320{option_type[0].upper()}{int(premium):08d}",
        option_type=option_type,
        created_at=when,
        premium_usd=premium,
        ask_side_premium_usd=ask,
        bid_side_premium_usd=bid,
        is_sweep=sweep,
    )


def dp(when, premium, *, canceled=False, symbol="AAPL"):
    return DarkPoolPrint(
        symbol=symbol,
        executed_at=when,
        price=10.0,
        size=int(premium / 10),
        premium_usd=premium,
        canceled=canceled,
    )


def tick(when, net_call, net_put):
    return NetPremTick(time=when, net_call_premium=net_call, net_put_premium=net_put)


PRINTS = [
    fp(at(14, 50), "call", 100_000, 80_000, 20_000, sweep=True),
    fp(at(14, 55), "put", 50_000, 10_000, 40_000),
    fp(at(14, 40), "put", 30_000, 30_000, 0, sweep=True),
    fp(at(14, 0), "call", 1_000_000, 1_000_000, 0, sweep=True),  # before the window
    fp(at(14, 59), "call", 500_000, 500_000, 0, symbol="MSFT"),  # another ticker
]
DARKPOOL = [
    dp(at(14, 45), 15_000),
    dp(at(14, 58), 30_000),
    dp(at(14, 50), 999_999, canceled=True),
    dp(at(13, 30, 30), 30_000),  # earlier today: the average's basis
    dp(at(14, 0, 30), 30_000),
    dp(at(19, 0, day=27), 5_000_000),  # Friday's session: not today's average
]
TICKS = [tick(at(14, 59), 5_000, -3_000), tick(at(14, 58), -1_000, 2_000), tick(at(14, 0), 9e9, 0)]


def summary(side=Side.BUY, prints=PRINTS, darkpool=DARKPOOL, ticks=TICKS, **kwargs):
    options = {"symbol": "AAPL", "side": side, "now": NOW, "window_minutes": 30}
    options["darkpool_avg"] = darkpool_window_average(darkpool, now=NOW, window_minutes=30)
    options.update(kwargs)
    return summarize_flow(prints, darkpool, ticks, **options)


def test_premiums_split_by_type_and_by_what_they_bet_on():
    s = summary()
    assert s.call_premium == 100_000  # the one AAPL call inside the window
    assert s.put_premium == 80_000  # 50k + 30k
    assert s.bullish_premium == 120_000  # call at the ask 80k + puts at the bid 40k + 0
    assert s.bearish_premium == 60_000  # call at the bid 20k + puts at the ask 10k + 30k
    assert s.sweep_count == 2
    assert s.print_count == 3
    assert s.largest_premium == 100_000
    assert [p.premium_usd for p in s.largest_prints] == [100_000, 50_000, 30_000]


def test_direction_is_the_premium_imbalance_and_agrees_with_a_long():
    s = summary(Side.BUY)
    # (120k − 60k) / 180k = 0.3333 ≥ 0.2
    assert s.details["imbalance"] == pytest.approx(0.3333)
    assert s.details["direction_from"] == "flow_alerts"
    assert (s.direction, s.agrees, s.side) == ("bullish", True, Side.BUY)
    assert summary(Side.SELL).agrees is False
    assert summary(None).agrees is None


def test_darkpool_notional_against_the_days_own_average():
    s = summary()
    # In the window: 15k + 30k (the canceled print does not count).
    assert s.darkpool_notional == 45_000
    # Before it today: 30k + 30k from 13:30:30 to the window start 14:30:30 = 2 windows.
    assert s.darkpool_avg_notional == 30_000
    assert s.darkpool_ratio == 1.5
    assert s.details["darkpool_prints"] == 2


def test_net_premium_ticks_in_the_window_are_summed():
    # (5000 − (−3000)) + (−1000 − 2000) = 8000 − 3000
    assert summary().net_tick_premium == 5_000


def test_without_flow_alerts_the_ticks_decide():
    s = summary(prints=[], ticks=[tick(at(14, 59), 6_000, -2_000)])
    # net 8000 over gross 6000 + 2000: imbalance 1.0
    assert (s.direction, s.details["direction_from"], s.agrees) == (
        "bullish",
        "net_prem_ticks",
        True,
    )


def test_balanced_flow_is_neutral_and_says_nothing():
    prints = [fp(at(14, 50), "call", 100, 55, 45)]  # (55 − 45) / 100 = 0.1 < 0.2
    s = summary(prints=prints, ticks=[])
    assert (s.direction, s.agrees) == ("neutral", None)


def test_the_threshold_itself_counts():
    prints = [fp(at(14, 50), "call", 100, 60, 40)]  # exactly 0.2
    assert summary(prints=prints).direction == "bullish"
    prints = [fp(at(14, 50), "put", 100, 60, 40)]  # puts bought at the ask: −0.2
    s = summary(Side.BUY, prints=prints)
    assert (s.direction, s.agrees) == ("bearish", False)
    assert summary(Side.SELL, prints=prints).agrees is True


def test_no_flow_at_all_is_an_empty_neutral_summary():
    s = summary(prints=[], darkpool=[], ticks=[])
    assert (s.direction, s.agrees, s.print_count) == ("neutral", None, 0)
    assert (s.darkpool_notional, s.darkpool_avg_notional, s.darkpool_ratio) == (0, None, None)
    assert s.net_tick_premium is None


def test_a_wider_imbalance_setting_needs_more():
    assert summary(min_imbalance=0.4).direction == "neutral"  # 0.333 < 0.4


@pytest.mark.parametrize(
    ("direction", "side", "agrees"),
    [
        ("bullish", Side.BUY, True),
        ("bullish", Side.SELL, False),
        ("bearish", Side.SELL, True),
        ("bearish", Side.BUY, False),
        ("neutral", Side.BUY, None),
        ("bullish", None, None),
    ],
)
def test_agreement(direction, side, agrees):
    assert agreement(direction, side) is agrees


def test_prints_just_inside_and_outside_the_window():
    edge = NOW - timedelta(minutes=30)
    prints = [fp(edge, "call", 10, 10, 0), fp(edge - timedelta(seconds=1), "call", 20, 20, 0)]
    assert summary(prints=prints).call_premium == 10
