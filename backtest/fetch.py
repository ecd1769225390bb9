"""`python -m backtest fetch`: download history for the backtest through the live stack's
own market-data adapters (alpaca, ibkr), into a CSV or Parquet file in Alpaca's CSV shape
(`timestamp` UTC, `open, high, low, close, volume, trade_count, vwap`) that
`backtest run --data` reads.

- Paged: the range is asked for in chunks of `chunk` (5 days by default; the adapter pages
  within a chunk, e.g. alpaca-py by `next_page_token`), and the file is written after every
  chunk (atomically: a temporary file, then a rename).
- Rate-limited: a 429 (`MarketDataRateLimited`) waits and retries (tenacity, exponential
  from 1 s up to 60 s, 8 tries); Alpaca's free plan allows 200 requests a minute.
- Resumable: when the file exists, the fetch starts after its last bar, so an interrupted
  download is run again with the same command and only the rest is fetched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from chalicelib.domain import Bar
from chalicelib.ports import MarketData, MarketDataRateLimited
from chalicelib.rules.timeframes import timeframe_seconds

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume", "trade_count", "vwap")
CHUNK = timedelta(days=5)
RETRY_ATTEMPTS = 8


class FetchError(ValueError):
    """Bad arguments or an unreadable existing file; nothing was fetched."""


@dataclass(frozen=True)
class FetchReport:
    symbol: str
    out: Path
    start: datetime  # where this run started (after the file's last bar when resuming)
    end: datetime
    fetched: int  # bars added by this run
    total: int  # bars in the file now
    requests: int  # chunks asked for
    resumed: bool


def parse_time(text: str, *, end: bool = False) -> datetime:
    """ISO 8601 (UTC when no zone) or YYYY-MM-DD; a date as `end` includes that day."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FetchError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _read(out: Path) -> pd.DataFrame:
    try:
        if out.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(out)
        else:
            frame = pd.read_csv(out)
    except Exception as exc:
        raise FetchError(f"{out}: cannot read the existing file to resume: {exc}") from exc
    if "timestamp" not in frame.columns:
        raise FetchError(f"{out}: has no timestamp column; not a file this command wrote")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def _frame(bars: list[Bar]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime([b.time for b in bars], utc=True),
            "open": [b.open for b in bars],
            "high": [b.high for b in bars],
            "low": [b.low for b in bars],
            "close": [b.close for b in bars],
            "volume": [b.volume for b in bars],
            "trade_count": [b.trade_count for b in bars],
            "vwap": [b.vwap for b in bars],
        },
        columns=list(COLUMNS),
    )


def _write(frame: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    if out.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False)
    tmp.replace(out)


def fetch(
    market: MarketData,
    symbol: str,
    timeframe: str,
    start: datetime,
    end: datetime,
    out: Path,
    *,
    chunk: timedelta = CHUNK,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = RETRY_ATTEMPTS,
) -> FetchReport:
    """Download [start, end) into `out`, appending after what it already holds."""
    try:
        step = timedelta(seconds=timeframe_seconds(timeframe))
    except ValueError as exc:
        raise FetchError(str(exc)) from exc
    if end <= start:
        raise FetchError(f"--end {end.isoformat()} is not after --start {start.isoformat()}")
    frame = _read(out) if out.exists() else _frame([])
    resumed = not frame.empty
    if resumed:
        last = frame["timestamp"].max().to_pydatetime()
        start = max(start, last + step)
    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=1, min=1, max=60),
        retry=retry_if_exception_type(MarketDataRateLimited),
        sleep=sleep,
        reraise=True,
    )
    fetched = requests = 0
    cursor = start
    while cursor < end:
        upto = min(cursor + chunk, end)
        bars = retrying(market.bars, symbol, timeframe, cursor, upto)
        requests += 1
        if bars:
            frame = (
                pd.concat([frame, _frame(bars)], ignore_index=True) if len(frame) else _frame(bars)
            )
            frame = frame.drop_duplicates("timestamp", keep="last").sort_values("timestamp")
            _write(frame.reset_index(drop=True), out)
            fetched += len(bars)
        cursor = upto
    return FetchReport(symbol, out, start, end, fetched, len(frame), requests, resumed)
