"""trades.csv and daily_pnl.csv: their columns and their one writer, shared by the backtest
(`backtest/report.py`) and the live daily report (`services/daily_report.py`), so a live day
and a backtested day read the same in a spreadsheet.

Columns (money in USD, times New York local with their UTC offset):
- trades.csv: symbol, side (long/short), qty, entry_time, entry_price, exit_time,
  exit_price, exit_reason (stop_loss, take_profit, trailing_stop, signal, …), gross_pnl,
  commission, slippage_cost, net_pnl, return_pct (net over entry notional, 2.0 = 2 %),
  bars_held. Live rows: one per closing fill (`ClosedTrade`); the broker's fill price
  already holds the slippage and Alpaca charges no commission, so both are 0 and gross =
  net; entry_time and bars_held are empty (a live position's entry is its average over
  fills, not one bar).
- daily_pnl.csv: date, trades, gross_pnl, commission, net_pnl, cum_net_pnl, equity (the
  day-end equity; live: the broker's at the report, empty when unknown).

Numbers are written to 6 decimals without trailing zeros (no …000000000057 noise), NaN and
None as empty cells; text is quoted only when it has to be (a comma, a quote, a newline).
Pure: no I/O, numpy for speed on a backtest's hundred thousand trades.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timezone
from typing import Any

import numpy as np

from chalicelib.domain import ClosedTrade
from chalicelib.rules.market_calendar import eastern_utc_offset

TRADE_COLUMNS = (
    "symbol",
    "side",
    "qty",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "exit_reason",
    "gross_pnl",
    "commission",
    "slippage_cost",
    "net_pnl",
    "return_pct",
    "bars_held",
)
DAILY_COLUMNS = ("date", "trades", "gross_pnl", "commission", "net_pnl", "cum_net_pnl", "equity")
DECIMALS = 6


def _float_text(x: float, spec: str) -> str:
    if x != x:  # NaN
        return ""
    text = format(x, spec)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


_EXACT = 2.0**53  # beyond this a float's scaled value is no longer an exact int64


def _floats(values: np.ndarray, decimals: int) -> list[str]:
    """Vectorised `_float_text`: scaled to integers, whole and fractional parts as text."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return []
    scale = 10**decimals
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.round(x * scale)
        simple = np.isfinite(x) & (np.abs(scaled) < _EXACT)
    ints = np.where(simple, scaled, 0).astype(np.int64)
    whole = (np.abs(ints) // scale).astype(str)
    frac = np.char.rstrip(np.char.zfill((np.abs(ints) % scale).astype(str), decimals), "0")
    text = np.where(frac == "", whole, np.char.add(np.char.add(whole, "."), frac))
    text = np.where(ints < 0, np.char.add("-", text), text)
    out: list[str] = text.tolist()
    if not simple.all():
        spec = f".{decimals}f"
        for i in np.flatnonzero(~simple).tolist():
            out[i] = _float_text(float(x[i]), spec)
    return out


def format_value(value: Any, decimals: int = DECIMALS) -> str:
    """One cell: floats as in `format_column`, None as empty, text as it is."""
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        return _floats(np.array([value]), decimals)[0]
    return str(value)


def format_column(values: Sequence[Any] | np.ndarray, decimals: int = DECIMALS) -> list[str]:
    """A column's cells as text: floats to `decimals` places without trailing zeros."""
    arr = np.asarray(values)
    items = arr.tolist()
    if arr.dtype.kind == "f":
        return _floats(arr, decimals)
    if arr.dtype.kind in "iubU":
        return [str(x) for x in items]
    return [v if type(v) is str else format_value(v, decimals) for v in items]


_SPECIAL = (",", '"', "\n", "\r")


def _quoted(cells: list[str]) -> list[str]:
    """Quote the cells that need it (RFC 4180: a comma, a quote or a line break)."""
    joined = "\x00".join(cells)
    if not any(ch in joined for ch in _SPECIAL):
        return cells
    return [
        '"' + cell.replace('"', '""') + '"' if any(ch in cell for ch in _SPECIAL) else cell
        for cell in cells
    ]


def csv_text(
    columns: Sequence[str], data: Mapping[str, Sequence[Any] | np.ndarray], decimals: int = DECIMALS
) -> str:
    """The CSV file for column-oriented `data` (every column as long as the first), header
    first, `\n` line ends. Joined by hand, not with the csv module: five times faster on a
    backtest's trade list, and only text can need quotes."""
    cells = []
    for c in columns:
        values = data[c]
        column = format_column(values, decimals)
        if np.asarray(values).dtype.kind not in "fiub":
            column = _quoted(column)
        cells.append(column)
    lengths = {len(col) for col in cells}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths: {sorted(lengths)}")
    body = "\n".join(map(",".join, zip(*cells, strict=True)))
    return ",".join(columns) + "\n" + (body + "\n" if body else "")


def local_stamp(trade_time: datetime) -> str:
    """ISO-8601 New York time with its offset, to the second (the backtest's stamps)."""
    offset = eastern_utc_offset(trade_time)
    local = (trade_time.astimezone(UTC) + offset).replace(tzinfo=timezone(offset))
    return local.isoformat(timespec="seconds")


def trade_columns(trades: Sequence[ClosedTrade]) -> dict[str, list[Any]]:
    """Closed live trades as trades.csv columns (module docstring: what live rows hold)."""
    return {
        "symbol": [t.symbol for t in trades],
        "side": [t.side.value for t in trades],
        "qty": [float(t.qty) for t in trades],
        "entry_time": ["" for _ in trades],
        "entry_price": [float(t.entry_price) for t in trades],
        "exit_time": [local_stamp(t.exit_time) for t in trades],
        "exit_price": [float(t.exit_price) for t in trades],
        "exit_reason": [t.exit_reason.value for t in trades],
        "gross_pnl": [float(t.pnl_usd) for t in trades],
        "commission": [0.0 for _ in trades],
        "slippage_cost": [0.0 for _ in trades],
        "net_pnl": [float(t.pnl_usd) for t in trades],
        "return_pct": [float(t.pnl_pct) for t in trades],
        "bars_held": ["" for _ in trades],
    }


def daily_row(
    day: date, trades: Sequence[ClosedTrade], cum_before: float, equity: float | None
) -> dict[str, Any]:
    """One daily_pnl.csv row for trading day `day`; `cum_before` is the net P/L of the
    days before it."""
    net = sum(float(t.pnl_usd) for t in trades)
    return {
        "date": day.isoformat(),
        "trades": len(trades),
        "gross_pnl": net,
        "commission": 0.0,
        "net_pnl": net,
        "cum_net_pnl": cum_before + net,
        "equity": equity,
    }


def rows_to_columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, list]:
    return {c: [r.get(c) for r in rows] for c in columns}
