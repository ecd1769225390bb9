"""Loading bars: CSV or Parquet, any column case, checked before anything runs.

Accepted shapes: a timestamp column (`timestamp`, `time`, `datetime`, `date`, `date/time`,
or an unnamed first column as backtesting.py writes it) and open, high, low, close, volume
in any case. A `symbol`/`ticker` column selects rows with `--symbol`. Timestamps without a
zone are exchange-local (`[data] tz`); bars are labelled by their open time.

Bad data raises `DataError` naming the first offending row (1-based, header excluded):
missing columns, unparseable or missing timestamps, NaNs, unsorted or duplicate
timestamps, high < low, non-positive prices, negative volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from chalicelib.rules.strategies import BarArrays

TIME_COLUMNS = ("timestamp", "time", "datetime", "date", "date/time", "date_time", "", "index")
PRICE_COLUMNS = ("open", "high", "low", "close")
SYMBOL_COLUMNS = ("symbol", "ticker")


class DataError(ValueError):
    """The bar file cannot be backtested; the message names the file and the first bad row."""


@dataclass(frozen=True)
class Bars:
    """Validated bars: arrays for the engine plus the local timestamps for reports."""

    symbol: str
    time: pd.DatetimeIndex  # exchange-local, tz-aware
    arrays: BarArrays
    session_last: np.ndarray  # bool: the bar is its session's last
    daily: bool  # one bar per session (timestamps at midnight)

    def __len__(self) -> int:
        return len(self.time)

    @property
    def time_ns_utc(self) -> np.ndarray:
        return self.time.asi8


def _read(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
            if isinstance(frame.index, pd.DatetimeIndex) or frame.index.name:
                frame = frame.reset_index()
            return frame
        return _read_csv_arrow(path)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except Exception as exc:
        # pyarrow refuses ragged rows; the python parser says which line is wrong
        try:
            return pd.read_csv(path)
        except Exception as inner:
            raise DataError(f"{path}: cannot read as CSV/Parquet: {inner}") from exc


def _read_csv_arrow(path: Path) -> pd.DataFrame:
    """pyarrow's multithreaded reader; blocks are freed as pandas takes them over."""
    from pyarrow import csv as pa_csv

    table = pa_csv.read_csv(path)
    return table.to_pandas(split_blocks=True, self_destruct=True)


def _epoch(values: pd.Series) -> pd.Series:
    """Epoch numbers as UTC times; the unit (s, ms, µs, ns) is read from their size."""
    magnitude = float(np.nanmedian(np.abs(values.to_numpy(dtype=np.float64))))
    unit = (
        "s"
        if magnitude < 1e11
        else "ms"
        if magnitude < 1e14
        else "us"
        if magnitude < 1e17
        else "ns"
    )
    return pd.to_datetime(values, unit=unit, utc=True, errors="coerce")


def _find(columns: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in columns:
            return columns[name]
    return None


def _bad_row(path: Path, frame_index: int, what: str) -> DataError:
    return DataError(f"{path}: row {frame_index + 1} (line {frame_index + 2}): {what}")


def load_bars(path: Path | str, *, symbol: str = "", tz: str = "America/New_York") -> Bars:
    """Read and check `path`; raises DataError on the first bad row."""
    path = Path(path)
    frame = _read(path)
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if "" not in columns:
        unnamed = [c for c in frame.columns if str(c).lower().startswith("unnamed: 0")]
        if unnamed:
            columns[""] = unnamed[0]
    time_col = _find(columns, TIME_COLUMNS)
    missing = [c for c in (*PRICE_COLUMNS, "volume") if c not in columns]
    if time_col is None:
        missing.insert(0, "timestamp")
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)} "
            f"(have: {', '.join(str(c) for c in frame.columns)})"
        )

    sym_col = _find(columns, SYMBOL_COLUMNS)
    if sym_col is not None:
        symbols = frame[sym_col].astype(str).str.upper()
        present = sorted(symbols.unique())
        if symbol:
            symbol = symbol.upper()
            frame = frame[symbols == symbol].reset_index(drop=True)
            if frame.empty:
                raise DataError(f"{path}: no rows for symbol {symbol} (have: {', '.join(present)})")
        elif len(present) == 1:
            symbol = present[0]
        else:
            raise DataError(f"{path}: several symbols ({', '.join(present)}); pass --symbol")
    if not symbol:
        symbol = path.stem.upper()
    if frame.empty:
        raise DataError(f"{path}: no rows")

    raw_time = frame[time_col]
    try:
        if pd.api.types.is_numeric_dtype(raw_time) and not pd.api.types.is_bool_dtype(raw_time):
            times = _epoch(raw_time)
        else:
            times = pd.to_datetime(raw_time, errors="coerce")
    except (ValueError, TypeError, OverflowError):
        try:
            times = pd.to_datetime(raw_time.astype(str), errors="coerce", utc=True)
        except (ValueError, TypeError, OverflowError) as exc:
            raise DataError(f"{path}: cannot read the timestamps: {exc}") from exc
    bad_time = np.array(times.isna().to_numpy(), dtype=bool)
    index = pd.DatetimeIndex(times).as_unit("ns")
    if index.tz is None:
        index = index.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        bad_time |= index.isna() & ~bad_time
    else:
        index = index.tz_convert(tz)

    arrays: dict[str, np.ndarray] = {}
    bad: list[tuple[np.ndarray, str]] = [(bad_time, "missing or unreadable timestamp")]
    for name in (*PRICE_COLUMNS, "volume"):
        values = pd.to_numeric(frame[columns[name]], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        arrays[name] = values
        bad.append((~np.isfinite(values), f"{name} is missing or not a number"))
    for name in PRICE_COLUMNS:
        with np.errstate(invalid="ignore"):
            bad.append((arrays[name] <= 0, f"{name} is not positive"))
    with np.errstate(invalid="ignore"):
        bad.append((arrays["high"] < arrays["low"], "high is below low"))
        bad.append((arrays["volume"] < 0, "volume is negative"))
    ns = index.asi8
    order = np.zeros(ns.size, dtype=bool)
    dup = np.zeros(ns.size, dtype=bool)
    valid = ~bad_time
    if ns.size > 1:
        both = valid[1:] & valid[:-1]
        order[1:] = both & (ns[1:] < ns[:-1])
        dup[1:] = both & (ns[1:] == ns[:-1])
    bad.append((order, "timestamp is earlier than the row before (data must be sorted)"))
    bad.append((dup, "duplicate timestamp (same as the row before)"))

    first_bad, reason = None, ""
    for mask, what in bad:
        hits = np.flatnonzero(mask)
        if hits.size and (first_bad is None or hits[0] < first_bad):
            first_bad, reason = int(hits[0]), what
    if first_bad is not None:
        shown = {c: frame.iloc[first_bad][columns[c]] for c in ("open", "high", "low", "close")}
        detail = ", ".join(f"{k}={v}" for k, v in shown.items())
        stamp = raw_time.iloc[first_bad]
        raise _bad_row(path, first_bad, f"{reason} (time={stamp}, {detail})")

    local_days = (index.tz_localize(None).asi8 // 86_400_000_000_000).astype(np.int64)
    session_last = np.ones(ns.size, dtype=bool)
    session_last[:-1] = local_days[1:] != local_days[:-1]
    midnight = (index.tz_localize(None).asi8 % 86_400_000_000_000) == 0
    daily = bool(midnight.all())
    bars = BarArrays(
        open=arrays["open"],
        high=arrays["high"],
        low=arrays["low"],
        close=arrays["close"],
        volume=arrays["volume"],
        session_id=local_days,
    )
    return Bars(symbol=symbol, time=index, arrays=bars, session_last=session_last, daily=daily)


def bars_from_frame(
    frame: pd.DataFrame, *, symbol: str = "TEST", tz: str = "America/New_York"
) -> Bars:
    """Bars from an in-memory OHLCV frame (backtesting.py style is fine): for tests and bench."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{symbol}.parquet"
        out = frame.copy()
        out.index.name = out.index.name or "timestamp"
        out.to_parquet(path)
        return load_bars(path, symbol=symbol, tz=tz)


def bars_from_arrays(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray | None = None,
    *,
    time: pd.DatetimeIndex | None = None,
    symbol: str = "TEST",
    tz: str = "America/New_York",
) -> Bars:
    """Bars from arrays already known to be good (tests, generators): no checks.

    Without `time`, one-minute bars from 2024-01-02 09:30 exchange time.
    """
    n = len(close)
    if time is None:
        time = pd.date_range("2024-01-02 09:30", periods=n, freq="1min", tz=tz)
    time = pd.DatetimeIndex(time).as_unit("ns")
    if time.tz is None:
        time = time.tz_localize(tz)
    local = time.tz_localize(None).asi8
    days = local // 86_400_000_000_000
    session_last = np.ones(n, dtype=bool)
    session_last[:-1] = days[1:] != days[:-1]
    arrays = BarArrays(
        open=np.asarray(open_, dtype=np.float64),
        high=np.asarray(high, dtype=np.float64),
        low=np.asarray(low, dtype=np.float64),
        close=np.asarray(close, dtype=np.float64),
        volume=np.full(n, 1_000.0) if volume is None else np.asarray(volume, dtype=np.float64),
        session_id=days.astype(np.int64),
    )
    daily = bool(((local % 86_400_000_000_000) == 0).all())
    return Bars(symbol=symbol, time=time, arrays=arrays, session_last=session_last, daily=daily)
