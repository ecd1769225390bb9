"""The context's market slot: one symbol's snapshot from the data source in force.

One `bars` call fetches the prior sessions' and today's one-minute bars; the pure
`rules.market_snapshot.build_snapshot` turns them into VWAP and bands, relative volume,
delta and the breakout-volume verdict. The ATR is taken on the alert's own chart
timeframe (`{{interval}}`: the minute bars aggregated, or the source's daily bars for a
daily chart), because that is the ATR the backtest's ATR stops use over the same bars — so
`FLOWTRADER_STOP_ATR_MULTIPLE` means the same live. With the `tradingview` source the
alert's own OHLCV bar is stored first, so a TradingView-only user's history grows with
every alert.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from chalicelib.domain import Alert, Bar, MarketSnapshot
from chalicelib.ports import MarketData
from chalicelib.rules import market_calendar
from chalicelib.rules.market_snapshot import ATR_PERIOD, VOLUME_CONFIRM_K, bar_atr, build_snapshot
from chalicelib.rules.timeframes import aggregate, from_tradingview_interval, timeframe_seconds
from chalicelib.services.classify_day import prior_trading_days, scheduled_time, split_sessions

log = logging.getLogger(__name__)

LOOKBACK_SESSIONS = 5  # the usual volume by time of day, and ATR bars for up to 1-hour charts
DAILY_LOOKBACK = timedelta(days=ATR_PERIOD * 2 + 10)  # ATR(14) of daily bars across holidays


def market_snapshot(
    alert: Alert,
    market: MarketData,
    now: datetime,
    *,
    lookback_sessions: int = LOOKBACK_SESSIONS,
    volume_k: float = VOLUME_CONFIRM_K,
) -> MarketSnapshot | None:
    """The alert's market at `now` (None when the source has no bars for the symbol)."""
    record = getattr(market, "record", None)
    if record is not None:  # TradingView bars: the alert carries one
        record(alert, now)
    day = market_calendar.trading_date(now)
    first = prior_trading_days(day, lookback_sessions)[0]
    bars = market.bars(alert.symbol, "1Min", scheduled_time(first, time(4, 0)), now)
    if not bars:
        return None
    sessions = split_sessions(bars)
    today = sessions.pop(day, [])
    prior = [sessions[d] for d in sorted(sessions)]
    snapshot = build_snapshot(
        alert.symbol, market.name, now, today, prior, last_price=None, k=volume_k
    )
    atr = _chart_atr(alert, market, now, prior, today)
    if atr is not None:
        snapshot = snapshot.model_copy(update={"atr": atr})
    return snapshot


def _chart_atr(
    alert: Alert, market: MarketData, now: datetime, prior: list[list[Bar]], today: list[Bar]
) -> float | None:
    """ATR(14) on the alert's chart timeframe; None keeps the snapshot's one-minute ATR."""
    if not alert.interval:
        return None
    timeframe = from_tradingview_interval(alert.interval)
    try:
        seconds = timeframe_seconds(timeframe)
    except ValueError:  # seconds/ticks/range charts: no bar timeframe to aggregate to
        return None
    if seconds <= 60:
        return None
    if seconds >= 86_400:
        daily = market.bars(alert.symbol, timeframe, now - DAILY_LOOKBACK, now)
        return bar_atr([b for b in daily if b.time < now])
    minute_bars = [b for session in (*prior, today) for b in session]
    chart = aggregate(minute_bars, timeframe)
    closed = [b for b in chart if b.time + timedelta(seconds=seconds) <= now]
    return bar_atr(closed)
