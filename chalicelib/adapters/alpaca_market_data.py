"""Alpaca's Market Data API v2 (stocks) as a `MarketData` source, through alpaca-py's
`StockHistoricalDataClient`.

- `feed`: `iex` (free plans: the IEX exchange alone) or `sip` (every US exchange; needs a
  paid subscription, else Alpaca answers 403) — FLOWTRADER_ALPACA_DATA_FEED.
- Bars are paged by alpaca-py (`next_page_token`, up to 10,000 per page). Alpaca's `end` is
  inclusive; the port's is exclusive, so a bar starting at `end` is dropped here.
- Errors (HTTP errors, timeouts, refused connections, an unknown symbol) are
  `MarketDataUnavailable` with a plain reason; the keys never appear in it.
- alpaca-py's own 429 retry (3 × 3 s sleeps, hidden) is switched off: the caller decides
  (the decision goes on without market data; `backtest fetch` waits and retries).

alpaca-py imports pandas, so it is imported only when a client is built.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.domain import Bar, MarketTrade, Quote
from chalicelib.ports import MarketDataRateLimited, MarketDataUnavailable
from chalicelib.rules.timeframes import timeframe_seconds

if TYPE_CHECKING:
    from chalicelib.settings import Settings

log = logging.getLogger(__name__)

FEEDS = ("iex", "sip")


# Alpaca answered 429: too many requests this minute (200 on the free plan).
RateLimited = MarketDataRateLimited


def _reason(exc: Exception) -> MarketDataUnavailable:
    """A trader's reading of what the client raised."""
    from alpaca.common.exceptions import APIError

    if isinstance(exc, APIError):
        status = exc.status_code
        try:
            body = json.loads(str(exc))
            message = str(body.get("message", "")) if isinstance(body, dict) else str(body)
        except ValueError:
            message = str(exc)[:200]
        if status == 429:
            return RateLimited(f"Alpaca market data: rate limited (HTTP 429: {message})")
        if status in (401, 403):
            return MarketDataUnavailable(
                f"Alpaca market data refused the request (HTTP {status}: {message}); check the "
                "keys and that the plan includes the feed (sip needs a subscription)"
            )
        return MarketDataUnavailable(f"Alpaca market data: HTTP {status}: {message}")
    import requests

    if isinstance(exc, requests.RequestException):
        return MarketDataUnavailable(f"Alpaca market data unreachable ({type(exc).__name__})")
    if isinstance(exc, ValueError):  # alpaca-py's request validation (pydantic) or parsing
        return MarketDataUnavailable(f"Alpaca market data: bad request or answer: {exc}")
    raise exc


def _timeframe(timeframe: str) -> Any:
    """alpaca-py's TimeFrame for "5Min", "1Hour", "1Day" …; ValueError for others."""
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

    timeframe_seconds(timeframe)  # ValueError naming the accepted spellings
    amount = int("".join(ch for ch in timeframe if ch.isdigit()))
    unit = timeframe[len(str(amount)) :]
    return TimeFrame(amount, TimeFrameUnit(unit))


def _bar(raw: Any) -> Bar:
    return Bar(
        time=raw.timestamp,
        open=raw.open,
        high=raw.high,
        low=raw.low,
        close=raw.close,
        volume=raw.volume,
        trade_count=int(raw.trade_count) if raw.trade_count is not None else None,
        vwap=raw.vwap,
    )


class AlpacaMarketData:
    """Bars, latest trade/quote and trades for US stocks from Alpaca (a `MarketData`)."""

    name = "alpaca"

    def __init__(self, client: Any, *, feed: str = "iex") -> None:
        if feed not in FEEDS:
            raise ValueError(f"alpaca data feed {feed!r}: use iex or sip")
        self._client = client
        self._feed = feed

    @classmethod
    def connect(
        cls,
        api_key: str,
        secret_key: str,
        *,
        feed: str = "iex",
        base_url: str = "",
        timeout_s: float = 5.0,
    ) -> AlpacaMarketData:
        if not (api_key and secret_key):
            raise MarketDataUnavailable(
                "Alpaca keys are not configured: set FLOWTRADER_ALPACA_API_KEY and "
                "FLOWTRADER_ALPACA_SECRET_KEY, or FLOWTRADER_SECRETS_ARN"
            )
        from alpaca.data.historical import StockHistoricalDataClient

        from chalicelib.adapters.alpaca import _harden

        client = StockHistoricalDataClient(
            api_key=api_key, secret_key=secret_key, url_override=base_url or None
        )
        return cls(_harden(client, timeout_s), feed=feed)

    @classmethod
    def from_settings(
        cls, settings: Settings, read_secret: Callable[[str], dict[str, Any]] | None = None
    ) -> AlpacaMarketData:
        """The trading keys (env, else the secret) serve market data too."""
        from chalicelib.adapters.alpaca import keys_from_secret
        from chalicelib.ports import BrokerUnavailable

        key = settings.alpaca_api_key.get_secret_value()
        secret = settings.alpaca_secret_key.get_secret_value()
        if not (key and secret) and settings.secrets_arn:
            try:
                key, secret = keys_from_secret(settings.secrets_arn, read_secret)
            except BrokerUnavailable as exc:
                raise MarketDataUnavailable(str(exc)) from exc
        return cls.connect(
            key,
            secret,
            feed=settings.alpaca_data_feed,
            base_url=settings.alpaca_data_url,
            timeout_s=settings.alpaca_timeout_s,
        )

    def _feed_enum(self) -> Any:
        from alpaca.data.enums import DataFeed

        return DataFeed(self._feed)

    def _call(self, what: Callable[[], Any]) -> Any:
        try:
            return what()
        except MarketDataUnavailable:
            raise
        except Exception as exc:
            raise _reason(exc) from exc

    # --- MarketData port ----------------------------------------------------------------

    def bars(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> list[Bar]:
        from alpaca.data.requests import StockBarsRequest

        try:
            frame = _timeframe(timeframe)
        except ValueError as exc:
            raise MarketDataUnavailable(str(exc)) from exc
        # Alpaca's end is inclusive; ask up to a microsecond before the port's exclusive end.
        request = StockBarsRequest(
            symbol_or_symbols=symbol,
            timeframe=frame,
            start=start,
            end=end - timedelta(microseconds=1),
            feed=self._feed_enum(),
        )
        barset = self._call(lambda: self._client.get_stock_bars(request))
        return [_bar(b) for b in barset.data.get(symbol, []) if start <= b.timestamp < end]

    def latest_price(self, symbol: str) -> float | None:
        """The last trade's price on the feed."""
        from alpaca.data.requests import StockLatestTradeRequest

        request = StockLatestTradeRequest(symbol_or_symbols=symbol, feed=self._feed_enum())
        trades = self._call(lambda: self._client.get_stock_latest_trade(request))
        trade = trades.get(symbol)
        return float(trade.price) if trade is not None else None

    def latest_bar(self, symbol: str) -> Bar | None:
        """The latest minute bar (it may still be forming)."""
        from alpaca.data.requests import StockLatestBarRequest

        request = StockLatestBarRequest(symbol_or_symbols=symbol, feed=self._feed_enum())
        bars = self._call(lambda: self._client.get_stock_latest_bar(request))
        bar = bars.get(symbol)
        return _bar(bar) if bar is not None else None

    def latest_quote(self, symbol: str) -> Quote | None:
        from alpaca.data.requests import StockLatestQuoteRequest

        request = StockLatestQuoteRequest(symbol_or_symbols=symbol, feed=self._feed_enum())
        quotes = self._call(lambda: self._client.get_stock_latest_quote(request))
        quote = quotes.get(symbol)
        if quote is None:
            return None
        return Quote(
            symbol=symbol,
            time=quote.timestamp,
            bid=float(quote.bid_price),
            ask=float(quote.ask_price),
            bid_size=float(quote.bid_size),
            ask_size=float(quote.ask_size),
        )

    def trades(self, symbol: str, start: datetime, end: datetime) -> list[MarketTrade]:
        from alpaca.data.requests import StockTradesRequest

        request = StockTradesRequest(
            symbol_or_symbols=symbol,
            start=start,
            end=end - timedelta(microseconds=1),
            feed=self._feed_enum(),
        )
        tradeset = self._call(lambda: self._client.get_stock_trades(request))
        return [
            MarketTrade(time=t.timestamp, price=float(t.price), size=float(t.size))
            for t in tradeset.data.get(symbol, [])
            if start <= t.timestamp < end
        ]
