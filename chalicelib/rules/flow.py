"""Options and dark-pool flow around an alert, summarised: pure, shared with the backtest.

Premium is bullish when it bets on a rise — calls bought at the ask, puts sold at the bid —
and bearish the other way (Unusual Whales' own convention: its net call premium is
"(call premium ask side) − (call premium bid side)", spec `Market General Net Call
Premium`). Each flow alert carries its ask-side and bid-side premium, so a print that is
partly both counts on both sides.

The direction is the imbalance `(bullish − bearish) / (bullish + bearish)` of the flow
alerts in the window: bullish at `+min_imbalance` or more, bearish at `−min_imbalance` or
less, else neutral (0.2: a 60/40 split). Without any flow alert in the window, the
per-minute net-premium ticks decide the same way, with `(net call − net put)` over
`(|net call| + |net put|)`. A buy (long) agrees with bullish flow, a sell (short) with
bearish flow; neutral flow, or no entry side, neither agrees nor disagrees (`None`).

Dark-pool prints have no side; their notional in the window is compared with the day's
own average per window (`darkpool_window_average`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from chalicelib.domain import DarkPoolPrint, FlowPrint, FlowSummary, NetPremTick, Side
from chalicelib.rules.market_calendar import trading_date

DEFAULT_MIN_IMBALANCE = 0.2
LARGEST_PRINTS = 3


def _inside(moment: datetime, now: datetime, window_minutes: int) -> bool:
    return now - timedelta(minutes=window_minutes) <= moment <= now


def direction_of(imbalance: float, min_imbalance: float) -> str:
    if imbalance >= min_imbalance:
        return "bullish"
    if imbalance <= -min_imbalance:
        return "bearish"
    return "neutral"


def agreement(direction: str, side: Side | None) -> bool | None:
    """Whether flow in `direction` supports an entry on `side` (None: it says nothing)."""
    if side is None or direction == "neutral":
        return None
    return (direction == "bullish") == (side is Side.BUY)


def darkpool_window_average(
    prints: Sequence[DarkPoolPrint], *, now: datetime, window_minutes: int
) -> float | None:
    """The day's usual dark-pool notional per `window_minutes`: the notional printed on the
    same trading day before the current window, over the whole windows from the first such
    print to the window's start (at least one). None when nothing printed before."""
    start = now - timedelta(minutes=window_minutes)
    day = trading_date(now)
    earlier = [
        p
        for p in prints
        if not p.canceled and p.executed_at < start and trading_date(p.executed_at) == day
    ]
    if not earlier:
        return None
    first = min(p.executed_at for p in earlier)
    windows = max(1.0, (start - first) / timedelta(minutes=window_minutes))
    return sum(p.premium_usd for p in earlier) / windows


def summarize_flow(
    prints: Sequence[FlowPrint],
    darkpool: Sequence[DarkPoolPrint],
    ticks: Sequence[NetPremTick],
    *,
    symbol: str,
    side: Side | None,
    now: datetime,
    window_minutes: int,
    darkpool_avg: float | None,
    min_imbalance: float = DEFAULT_MIN_IMBALANCE,
    largest: int = LARGEST_PRINTS,
    source: str = "",
) -> FlowSummary:
    """The flow of `symbol` over (now − window_minutes, now], judged against `side`.

    Inputs outside the window (or for another symbol) are ignored, so callers may pass the
    vendor's whole answer."""
    own = symbol.upper()
    window = [
        p for p in prints if p.symbol.upper() == own and _inside(p.created_at, now, window_minutes)
    ]
    pool = [
        d
        for d in darkpool
        if not d.canceled
        and d.symbol.upper() == own
        and _inside(d.executed_at, now, window_minutes)
    ]
    minutes = [t for t in ticks if _inside(t.time, now, window_minutes)]

    bullish = sum(p.bullish_premium_usd for p in window)
    bearish = sum(p.bearish_premium_usd for p in window)
    net_tick = sum(t.net_call_premium - t.net_put_premium for t in minutes) if minutes else None
    if bullish + bearish > 0:
        imbalance, basis = (bullish - bearish) / (bullish + bearish), "flow_alerts"
    elif minutes:
        gross = sum(abs(t.net_call_premium) + abs(t.net_put_premium) for t in minutes)
        imbalance = (net_tick or 0.0) / gross if gross else 0.0
        basis = "net_prem_ticks"
    else:
        imbalance, basis = 0.0, "none"
    direction = direction_of(imbalance, min_imbalance)

    darkpool_notional = sum(d.premium_usd for d in pool)
    ratio = darkpool_notional / darkpool_avg if darkpool_avg else None
    biggest = sorted(window, key=lambda p: p.premium_usd, reverse=True)[: max(0, largest)]
    return FlowSummary(
        symbol=own,
        window_minutes=window_minutes,
        call_premium=sum(p.premium_usd for p in window if p.option_type == "call"),
        put_premium=sum(p.premium_usd for p in window if p.option_type == "put"),
        bullish_premium=bullish,
        bearish_premium=bearish,
        sweep_count=sum(1 for p in window if p.is_sweep),
        largest_premium=max((p.premium_usd for p in window), default=0.0),
        darkpool_notional=darkpool_notional,
        darkpool_avg_notional=darkpool_avg,
        direction=direction,
        agrees=agreement(direction, side),
        details={
            "imbalance": round(imbalance, 4),
            "min_imbalance": min_imbalance,
            "direction_from": basis,
            "darkpool_prints": len(pool),
            "ticks": len(minutes),
        },
        side=side,
        as_of=now,
        source=source,
        print_count=len(window),
        largest_prints=tuple(biggest),
        darkpool_ratio=ratio,
        net_tick_premium=net_tick,
    )
