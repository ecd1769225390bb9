"""Which prints are highlights (rules/flow_highlights.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.domain import DarkPoolPrint, FlowPrint
from chalicelib.rules.flow_highlights import ScanRules, find_highlights, usd

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SINCE = NOW - timedelta(minutes=10)
RULES = ScanRules(
    sweep_min_premium_usd=250_000,
    repeat_min_alerts=3,
    repeat_min_premium_usd=100_000,
    darkpool_size_multiple=10,
    darkpool_min_premium_usd=1_000_000,
    darkpool_min_prints=5,
)


def fp(minutes_ago, premium, *, chain="AAPL260320C00200000", sweep=False, ask=None, kind="call"):
    return FlowPrint(
        symbol=chain[:4].rstrip("0123456789"),
        option_symbol=chain,
        option_type=kind,
        created_at=NOW - timedelta(minutes=minutes_ago, seconds=premium % 7),
        premium_usd=premium,
        ask_side_premium_usd=premium if ask is None else ask,
        bid_side_premium_usd=0 if ask is None else premium - ask,
        is_sweep=sweep,
        trade_count=12,
    )


def dp(minutes_ago, size, price=100.0, ident=None):
    return DarkPoolPrint(
        symbol="AAPL",
        executed_at=NOW - timedelta(minutes=minutes_ago),
        price=price,
        size=size,
        premium_usd=price * size,
        tracking_id=ident,
    )


def test_a_sweep_over_the_threshold_is_a_highlight_and_one_under_is_not():
    prints = [
        fp(2, 300_000, sweep=True),
        fp(3, 200_000, sweep=True, chain="AAPL260320C00210000"),
        fp(4, 900_000, sweep=False, chain="AAPL260320C00220000"),
    ]

    (h,) = find_highlights(prints, {}, RULES, since=SINCE)

    assert (h.kind, h.symbol, h.premium_usd, h.direction) == ("sweep", "AAPL", 300_000, "bullish")
    assert h.headline == "AAPL call sweep $300.0K at the ask (AAPL260320C00200000, 12 trades)"


def test_repeated_hits_on_one_contract_sum_their_premium():
    chain = "MSFT260320P00400000"
    prints = [fp(m, 40_000, chain=chain, kind="put") for m in (1, 2, 3)]
    prints.append(fp(4, 40_000, chain="MSFT260320P00410000", kind="put"))  # another contract

    (h,) = find_highlights(prints, {}, RULES, since=SINCE)

    assert (h.kind, h.option_symbol, h.premium_usd) == ("repeated_hits", chain, 120_000)
    assert h.key == f"repeat:{chain}:2026-03-02"
    assert h.direction == "bearish"  # puts bought at the ask
    assert h.details["alerts"] == 3


def test_two_hits_or_too_little_premium_are_not_repeated_hits():
    few = [fp(m, 90_000, chain="MSFT260320P00400000") for m in (1, 2)]
    small = [fp(m, 30_000, chain="MSFT260320P00410000") for m in (1, 2, 3)]
    assert find_highlights(few + small, {}, RULES, since=SINCE) == []


def test_a_darkpool_print_large_against_the_days_average_is_a_highlight():
    day = [dp(m, 1_000) for m in (60, 50, 40, 30, 20)]
    big = dp(5, 20_000, ident="7198")  # 20k shares vs 1k average, $2M
    late_small = dp(4, 5_000)  # 5x: not enough

    found = find_highlights([], {"AAPL": [*day, big, late_small]}, RULES, since=SINCE)

    assert [h.key for h in found] == ["darkpool:AAPL:7198"]
    assert found[0].headline == (
        "AAPL dark pool 20,000 shares $2.0M at 100 (12x the day's average print)"
    )  # the others average (5×1000 + 5000) / 6 = 1,667 shares: 20,000 / 1,667 = 12x


def test_a_big_print_on_a_thin_day_or_before_the_scan_is_not_a_highlight():
    thin = [dp(30, 1_000), dp(5, 50_000)]  # fewer than darkpool_min_prints
    assert find_highlights([], {"AAPL": thin}, RULES, since=SINCE) == []
    old = [dp(m, 1_000) for m in (60, 50, 40, 30, 20)] + [dp(15, 50_000)]  # before `since`
    assert find_highlights([], {"AAPL": old}, RULES, since=SINCE) == []


def test_the_same_print_twice_is_one_highlight():
    p = fp(2, 300_000, sweep=True)
    assert len(find_highlights([p, p], {}, RULES, since=SINCE)) == 1


def test_the_vendor_side_minimum_premium_lets_every_rule_see_its_prints():
    assert RULES.alert_min_premium_usd == 100_000 / 3


def test_usd():
    assert [usd(x) for x in (950, 12_500, 1_250_000, 3e9)] == ["$950", "$12.5K", "$1.2M", "$3.0B"]
