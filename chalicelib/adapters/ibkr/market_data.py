"""IBKR as a `MarketData` source: snapshots for the last price and the quote, history for bars.

- `GET /iserver/marketdata/snapshot?conids=…&fields=31,84,86,88,85`: field 31 is the last
  price ("May contain one of the following prefixes: C - Previous day's closing price. H -
  Trading has halted", spec `mdFields`), 84/86 bid/ask, 88/85 bid/ask size. The endpoint
  warms up: "A pre-flight request must be made prior to ever receiving data. For some
  fields, it may take more than a few moments" (spec, "Live Market Data Snapshot") — the
  first call for a conid answers the conid without fields, so it is asked again, up to
  `snapshot_attempts` times `snapshot_wait_s` apart; no fields after that → None.
- `GET /iserver/marketdata/history?conid=…&bar=…&period=…&startTime=…`: bars end at
  `startTime` (direction −1, the default) and reach `period` back; rows `{t, o, h, l, c, v}`
  with `t` in epoch ms and `v` in units of `volumeFactor` (100 for US stocks in the spec's
  example). Windows longer than one request holds are walked back chunk by chunk; regular
  trading hours only (`outsideRth` default false).
- Over IBKR's pacing a call answers 429 ("Pacing Limitations": 10 requests a second, and
  "the IP … in a penalty box for 10 minutes"): that is `MarketDataRateLimited`, which
  `backtest fetch` waits out and retries (a live context slot just stays empty).
- No tape: `trades` returns [] (the Client Portal REST API streams ticks only over its
  websocket).

Timeframes are Alpaca's spelling ("1Min", "5Min", "15Min", "1Hour", "1Day"), mapped to
IBKR's `bar` ("1min", "5min", "15min", "1h", "1d").
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.ibkr.contracts import ConidResolver, UnknownSymbol
from chalicelib.adapters.ibkr.session import IbkrError, IbkrSession
from chalicelib.domain import Bar, MarketTrade, Quote
from chalicelib.ports import MarketData, MarketDataRateLimited, MarketDataUnavailable

if TYPE_CHECKING:
    from chalicelib.settings import Settings

log = logging.getLogger(__name__)

LAST, BID, ASK, BID_SIZE, ASK_SIZE = "31", "84", "86", "88", "85"
SNAPSHOT_FIELDS = ",".join((LAST, BID, ASK, BID_SIZE, ASK_SIZE))
MAX_CHUNKS = 60  # history requests per `bars` call at most
_TIMEFRAME = re.compile(r"^(\d+)(Min|T|Hour|H|Day|D|Week|W|Month|M)$")
_UNITS = {
    "Min": ("min", 1),
    "T": ("min", 1),
    "Hour": ("h", 60),
    "H": ("h", 60),
    "Day": ("d", 390),
    "D": ("d", 390),
    "Week": ("w", 1950),
    "W": ("w", 1950),
    "Month": ("m", 8190),
    "M": ("m", 8190),
}


def ibkr_bar(timeframe: str) -> tuple[str, int]:
    """(IBKR `bar`, regular-session minutes per bar) for an Alpaca-style timeframe."""
    match = _TIMEFRAME.match(timeframe.strip())
    if not match:
        raise MarketDataUnavailable(f"timeframe {timeframe!r} is not one IBKR serves")
    count, unit = int(match.group(1)), match.group(2)
    name, minutes = _UNITS[unit]
    return f"{count}{name}", count * minutes


def chunk_days(bar_minutes: int) -> int:
    """Days of regular session per history request, under IBKR's 1,000 points a request."""
    return max(1, min(30 if bar_minutes < 390 else 365, (1000 * bar_minutes) // 390))


def _number(value: Any) -> float | None:
    """A snapshot field as a number: prefixes C (previous close) and H (halted) dropped,
    thousands separators and K/M suffixes read."""
    if value in (None, ""):
        return None
    text = str(value).strip().lstrip("CH").replace(",", "")
    scale = 1.0
    if text[-1:] in ("K", "M"):
        scale = 1_000.0 if text[-1] == "K" else 1_000_000.0
        text = text[:-1]
    try:
        return float(text) * scale
    except ValueError:
        return None


class IbkrMarketData:
    """Bars, last price and quote from IBKR for one login (shares the broker's session)."""

    name = "ibkr"

    def __init__(
        self,
        session: IbkrSession,
        *,
        contracts: ConidResolver | None = None,
        snapshot_attempts: int = 4,
        snapshot_wait_s: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._session = session
        self._contracts = contracts or ConidResolver(session)
        self._snapshot_attempts = max(1, snapshot_attempts)
        self._snapshot_wait_s = snapshot_wait_s
        self._sleep = sleep

    def bars(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> list[Bar]:
        bar, minutes = ibkr_bar(timeframe)
        conid = self._conid(symbol)
        days = chunk_days(minutes)
        found: dict[datetime, Bar] = {}
        until = end.astimezone(UTC)
        for _ in range(MAX_CHUNKS):
            params = {
                "conid": str(conid),
                "bar": bar,
                "period": f"{days}d",
                "startTime": until.strftime("%Y%m%d-%H:%M:%S"),
                "outsideRth": "false",
            }
            data = self._get("iserver/marketdata/history", params) or {}
            factor = float(data.get("volumeFactor") or 1)
            for row in data.get("data") or []:
                at = datetime.fromtimestamp(int(row["t"]) / 1000, UTC)
                if start <= at < end:
                    found[at] = Bar(
                        time=at,
                        open=float(row["o"]),
                        high=float(row["h"]),
                        low=float(row["l"]),
                        close=float(row["c"]),
                        volume=float(row.get("v") or 0) * factor,
                    )
            until -= timedelta(days=days)
            if until <= start:
                break
        return [found[t] for t in sorted(found)]

    def latest_price(self, symbol: str) -> float | None:
        row = self._snapshot(symbol, LAST)
        return _number(row.get(LAST)) if row else None

    def latest_quote(self, symbol: str) -> Quote | None:
        row = self._snapshot(symbol, BID, ASK)
        if not row:
            return None
        bid, ask = _number(row.get(BID)), _number(row.get(ASK))
        if bid is None or ask is None:
            return None
        updated = row.get("_updated")
        at = datetime.fromtimestamp(int(updated) / 1000, UTC) if updated else datetime.now(UTC)
        return Quote(
            symbol=symbol.upper(),
            time=at,
            bid=bid,
            ask=ask,
            bid_size=_number(row.get(BID_SIZE)) or 0.0,
            ask_size=_number(row.get(ASK_SIZE)) or 0.0,
        )

    def trades(self, symbol: str, start: datetime, end: datetime) -> list[MarketTrade]:
        """IBKR's REST API has no tape (ticks stream over its websocket only)."""
        return []

    # --- internals ----------------------------------------------------------------------

    def _snapshot(self, symbol: str, *wanted: str) -> dict[str, Any] | None:
        """The snapshot row once any of `wanted` is in it (the warm-up asked again)."""
        conid = self._conid(symbol)
        params = {"conids": str(conid), "fields": SNAPSHOT_FIELDS}
        for attempt in range(self._snapshot_attempts):
            rows = self._get("iserver/marketdata/snapshot", params) or []
            row = next((r for r in rows if str(r.get("conid")) == str(conid)), None)
            if row and any(row.get(f) not in (None, "") for f in wanted):
                return row
            if attempt < self._snapshot_attempts - 1:
                self._sleep(self._snapshot_wait_s)
        log.info("ibkr: no snapshot fields for %s after %d tries", symbol, self._snapshot_attempts)
        return None

    def _conid(self, symbol: str) -> int:
        try:
            return self._contracts.conid(symbol)
        except UnknownSymbol as exc:
            raise MarketDataUnavailable(str(exc)) from exc
        except IbkrError as exc:
            raise MarketDataUnavailable(f"IBKR unavailable ({exc})") from exc

    def _get(self, path: str, params: dict[str, str]) -> Any:
        try:
            return self._session.call("GET", path, params=params)
        except IbkrError as exc:
            if exc.status == 429:  # over IBKR's pacing: the caller may wait and try again
                raise MarketDataRateLimited(f"IBKR rate limit (429): {exc.message}") from exc
            raise MarketDataUnavailable(f"IBKR market data unavailable ({exc})") from exc


def ibkr_market_data(
    settings: Settings,
    read_secret: Callable[[str], dict[str, Any]] | None = None,
    **kwargs: Any,
) -> MarketData:
    """The `ibkr` market data source (the container's data-source switch calls it)."""
    from chalicelib.adapters.ibkr.session import session_for

    try:
        session = session_for(settings, read_secret)
    except IbkrError as exc:
        raise MarketDataUnavailable(exc.message) from exc
    contracts = ConidResolver(session, ttl_s=settings.ibkr_conid_ttl_s)
    return IbkrMarketData(session, contracts=contracts, **kwargs)
