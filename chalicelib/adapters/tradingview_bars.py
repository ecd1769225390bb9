"""The bars TradingView alerts carry, kept in the state table: a `MarketData` source for a
user whose only market data is TradingView.

An alert whose message carries the bar's OHLCV — TradingView fills `{{open}}`, `{{high}}`,
`{{low}}`, `{{close}}`, `{{volume}}` with "the values of the bar the alert fired on",
`{{time}}` with that bar's open time in UTC and `{{interval}}` with the chart's timeframe
(https://www.tradingview.com/support/solutions/43000531021-how-to-use-a-variable-value-in-alert/)
— is recorded as one bar per symbol, timeframe and bar time. The same bar sent again (an
alert firing more than once per bar, a redelivery) overwrites its item: the latest values
of a bar win and it is never stored twice.

State table layout (alongside `dynamodb_state`'s):

| pk | sk | holds |
|---|---|---|
| ``bars#tv#<SYM>#<timeframe>`` | ``<bar open time, ISO UTC>`` | o, h, l, c, v; TTL |
| ``bars#tv#<SYM>`` | ``latest`` | the newest bar's time, close and timeframe |

Timeframes are stored in Alpaca's spelling ("1" → "1Min", "60" → "1Hour", "D" → "1Day").
"""

from __future__ import annotations

import contextlib
import math
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from chalicelib.adapters.dynamodb_table import ConditionFailed, DynamoTable
from chalicelib.domain import Alert, Bar, MarketTrade, Quote
from chalicelib.ports import MarketDataUnavailable, StorageUnavailable
from chalicelib.rules.timeframes import from_tradingview_interval

OHLC = ("open", "high", "low", "close")
INTRADAY_TTL = timedelta(days=35)
DAILY_TTL = timedelta(days=400)
FUTURE_SKEW = timedelta(minutes=1)  # a bar may not open after the alert was received


def _sk(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(value: float) -> dict[str, str]:
    return {"N": format(Decimal(repr(float(value))), "f")}


def _number(value: Any) -> float | None:
    """A JSON number, or a number TradingView's message put in quotes."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def bar_of(alert: Alert) -> tuple[str, Bar] | None:
    """(timeframe, bar) from an alert that carries a whole bar, else None."""
    extra = alert.extra_fields
    prices = [_number(extra.get(name)) for name in OHLC]
    if alert.time is None or not alert.interval or any(p is None or p <= 0 for p in prices):
        return None
    open_, high, low, close = (float(p) for p in prices if p is not None)
    if high < max(open_, close, low) or low > min(open_, close):
        return None
    return from_tradingview_interval(alert.interval), Bar(
        time=alert.time, open=open_, high=high, low=low, close=close, volume=alert.volume or 0.0
    )


class TradingViewBars:
    """Bars recorded from alerts (`record`), read back as a `MarketData` source."""

    name = "tradingview"

    def __init__(self, client: Any, table: str) -> None:
        self._db = DynamoTable(client, table, label="state table")

    def _call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return self._db.call(op, **kwargs)
        except StorageUnavailable as exc:
            raise MarketDataUnavailable(f"TradingView bars: {exc}") from exc

    def record(self, alert: Alert, now: datetime) -> bool:
        """Store the bar the alert carries; True when it is a bar not stored before.

        False, storing nothing, when the alert has no whole bar (open, high, low, close,
        time, interval) or its bar opens in the future."""
        found = bar_of(alert)
        if found is None:
            return False
        timeframe, bar = found
        if bar.time > now + FUTURE_SKEW:
            return False
        symbol = alert.symbol
        ttl = DAILY_TTL if timeframe.endswith(("Day", "Week", "Month")) else INTRADAY_TTL
        old = self._call(
            "put_item",
            Item={
                "pk": {"S": f"bars#tv#{symbol}#{timeframe}"},
                "sk": {"S": _sk(bar.time)},
                "o": _num(bar.open),
                "h": _num(bar.high),
                "l": _num(bar.low),
                "c": _num(bar.close),
                "v": _num(bar.volume),
                "recorded_at": {"S": now.isoformat()},
                "expires_at": {"N": str(int((bar.time + ttl).timestamp()))},
            },
            ReturnValues="ALL_OLD",
        )
        with contextlib.suppress(ConditionFailed):  # a newer bar is already the latest
            self._call(
                "put_item",
                Item={
                    "pk": {"S": f"bars#tv#{symbol}"},
                    "sk": {"S": "latest"},
                    "time": {"S": _sk(bar.time)},
                    "close": _num(bar.close),
                    "timeframe": {"S": timeframe},
                },
                ConditionExpression="attribute_not_exists(pk) OR #t <= :t",
                ExpressionAttributeNames={"#t": "time"},
                ExpressionAttributeValues={":t": {"S": _sk(bar.time)}},
            )
        return "Attributes" not in old

    # --- MarketData port ----------------------------------------------------------------

    def bars(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> list[Bar]:
        try:
            items = list(
                self._db.query(
                    KeyConditionExpression="pk = :pk AND sk BETWEEN :a AND :b",
                    ExpressionAttributeValues={
                        ":pk": {"S": f"bars#tv#{symbol}#{timeframe}"},
                        ":a": {"S": _sk(start)},
                        ":b": {"S": _sk(end)},
                    },
                )
            )
        except StorageUnavailable as exc:
            raise MarketDataUnavailable(f"TradingView bars: {exc}") from exc
        bars = [
            Bar(
                time=datetime.fromisoformat(item["sk"]["S"].replace("Z", "+00:00")),
                open=float(item["o"]["N"]),
                high=float(item["h"]["N"]),
                low=float(item["l"]["N"]),
                close=float(item["c"]["N"]),
                volume=float(item["v"]["N"]),
            )
            for item in items
        ]
        return [b for b in bars if start <= b.time < end]

    def latest_price(self, symbol: str) -> float | None:
        """The close of the newest bar any alert carried for `symbol`."""
        item = self._call(
            "get_item", Key={"pk": {"S": f"bars#tv#{symbol}"}, "sk": {"S": "latest"}}
        ).get("Item")
        return float(item["close"]["N"]) if item else None

    def latest_quote(self, symbol: str) -> Quote | None:
        return None  # alerts carry no bid/ask

    def trades(self, symbol: str, start: datetime, end: datetime) -> list[MarketTrade]:
        return []  # nor the tape
