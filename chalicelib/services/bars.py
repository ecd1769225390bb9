"""The bars view behind `GET /api/bars`: the current source's recent bars for one symbol,
for the dashboard's chart."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from chalicelib.ports import MarketData
from chalicelib.rules.timeframes import timeframe_seconds

MAX_LIMIT = 1_000
DEFAULT_LIMIT = 390  # one regular session of minute bars
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9.\-]{0,23}")
# Enough calendar time behind `limit` bars to cross a long weekend or a holiday.
MARKET_GAP = timedelta(days=4)


class BadBarsQuery(ValueError):
    """A query parameter is wrong; `field` names it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def parse_bars_query(params: dict[str, str]) -> tuple[str, str, int]:
    """(symbol, timeframe, limit) from `?symbol=&timeframe=&limit=`."""
    raw = (params.get("symbol") or "").strip().upper()
    symbol = raw.rsplit(":", 1)[-1]  # NASDAQ:AMZN as TradingView writes it is AMZN
    if not symbol.isascii() or not _SYMBOL.fullmatch(symbol):
        raise BadBarsQuery("symbol is required, e.g. AMZN or NASDAQ:AMZN", "symbol")
    timeframe = params.get("timeframe") or "1Min"
    try:
        timeframe_seconds(timeframe)
    except ValueError as exc:
        raise BadBarsQuery(str(exc), "timeframe") from exc
    limit = params.get("limit") or str(DEFAULT_LIMIT)
    if not (limit.isascii() and limit.isdigit() and 1 <= int(limit[:6]) <= MAX_LIMIT):
        raise BadBarsQuery(f"limit must be a whole number from 1 to {MAX_LIMIT}", "limit")
    return symbol, timeframe, int(limit)


def recent_bars(
    market: MarketData, symbol: str, timeframe: str, limit: int, now: datetime
) -> dict[str, Any]:
    """The last `limit` bars before `now`, oldest first; raises MarketDataUnavailable."""
    span = timedelta(seconds=timeframe_seconds(timeframe)) * limit * 2 + MARKET_GAP
    bars = market.bars(symbol, timeframe, now - span, now)[-limit:]
    return {
        "symbol": symbol,
        "source": market.name,
        "timeframe": timeframe,
        "bars": [
            {
                "time": b.time.isoformat().replace("+00:00", "Z"),
                "open": b.open,
                "high": b.high,
                "low": b.low,
                "close": b.close,
                "volume": b.volume,
            }
            for b in bars
        ],
    }
