"""Bar timeframes in Alpaca's spelling ("1Min", "5Min", "1Hour", "1Day"), TradingView's
`{{interval}}` mapped onto them, and aggregation of short bars into longer ones.

Pure: the market-data adapters (tradingview, files, replay) and the price poll share it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta

from chalicelib.domain import Bar
from chalicelib.rules.market_calendar import eastern_utc_offset, trading_date

_ALPACA = re.compile(r"(\d{1,3})(Min|Hour|Day|Week|Month)")
_UNIT_S = {"Min": 60, "Hour": 3600, "Day": 86_400, "Week": 7 * 86_400, "Month": 31 * 86_400}


def timeframe_seconds(timeframe: str) -> int:
    """Length of one bar (a month counts 31 days); ValueError for an unknown spelling."""
    match = _ALPACA.fullmatch(timeframe)
    if not match or int(match.group(1)) < 1:
        raise ValueError(
            f"timeframe {timeframe!r} is not one of 1Min … 59Min, 1Hour … 23Hour, 1Day, "
            "1Week, 1Month (Alpaca's spelling)"
        )
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def from_tradingview_interval(interval: str) -> str:
    """TradingView's `{{interval}}` ("1", "5", "60", "240", "D", "1D", "W", "M") in Alpaca's
    spelling; anything else (seconds, ranges, ticks) is kept as sent.

    TradingView writes minute charts as the number of minutes and day/week/month charts
    as D/W/M with an optional count (support article 43000531021, "{{interval}}").
    """
    text = interval.strip().upper()
    if text.isdigit() and int(text) > 0:
        minutes = int(text)
        return f"{minutes // 60}Hour" if minutes % 60 == 0 else f"{minutes}Min"
    match = re.fullmatch(r"(\d*)([DWM])", text)
    if match:
        count = match.group(1) or "1"
        return f"{count}{ {'D': 'Day', 'W': 'Week', 'M': 'Month'}[match.group(2)] }"
    return interval.strip()


def bar_end(bar: Bar, seconds: int) -> datetime:
    """When a bar stamped with its start closes."""
    return bar.time + timedelta(seconds=seconds)


def aggregate(bars: Sequence[Bar], timeframe: str) -> list[Bar]:
    """`bars` (oldest first, shorter than `timeframe`) combined into `timeframe` bars.

    Intraday buckets are aligned to the epoch (so hours start on the hour, as Alpaca's);
    a day is the New York trading date, stamped at its midnight there (as Alpaca's). Volume
    adds up; the VWAP is the volume-weighted mean of the parts' (their closes where absent).
    """
    seconds = timeframe_seconds(timeframe)
    out: list[Bar] = []
    group: list[Bar] = []
    key: object = None
    for bar in bars:
        k: object = (
            trading_date(bar.time) if seconds >= 86_400 else int(bar.time.timestamp()) // seconds
        )
        if group and k != key:
            out.append(_combine(group, seconds))
            group = []
        key = k
        group.append(bar)
    if group:
        out.append(_combine(group, seconds))
    return out


def _combine(group: list[Bar], seconds: int) -> Bar:
    first = group[0]
    start = first.time
    if seconds < 86_400:
        epoch = int(first.time.timestamp())
        start = first.time - timedelta(seconds=epoch % seconds)
    else:
        midnight = datetime.combine(trading_date(first.time), time(), UTC)
        start = midnight - eastern_utc_offset(first.time)
    volume = sum(b.volume for b in group)
    vwap = (
        sum((b.vwap if b.vwap is not None else b.close) * b.volume for b in group) / volume
        if volume > 0
        else None
    )
    counts = [b.trade_count for b in group]
    return Bar(
        time=start,
        open=first.open,
        high=max(b.high for b in group),
        low=min(b.low for b in group),
        close=group[-1].close,
        volume=volume,
        trade_count=sum(c for c in counts if c is not None) if any(counts) else None,
        vwap=vwap,
    )
