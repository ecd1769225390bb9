"""Replaying alerts: TradingView webhook payloads (JSON lines) or its exported trade list.

Each JSON line is parsed by `chalicelib.domain.Alert`, the webhook's own model (a
`passphrase` key is dropped first). An alert is acted on at the close of the last bar whose
open time is at or before the alert's `time` (so with `next_open` it fills at the following
bar's open); alerts outside the data are skipped; when two alerts land on one bar the later
line wins. What an alert asks for follows the live decision table in
`chalicelib.rules.orders` (`alert_signal` below); entries are then sized and protected by
`decide_orders` itself when the simulator reaches them (see `backtest.engine`).

TradingView's "List of trades" CSV export is accepted too: its Entry long / Exit long /
Entry short / Exit short rows become the same signals (times in `[data] tz`).
Partial exits (same side, smaller quantity) are not modelled: they are ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from backtest.data import Bars
from chalicelib.domain import Action, Alert, MarketPosition
from chalicelib.rules.strategies import Signal


class AlertFileError(ValueError):
    """The alerts file cannot be replayed; the message names the line."""


def alert_signal(alert: Alert) -> Signal:
    """The signal an alert is, per `chalicelib.rules.orders`' decision table."""
    mp = alert.market_position
    if mp is MarketPosition.LONG:
        return Signal.LONG
    if mp is MarketPosition.SHORT:
        return Signal.SHORT
    if mp is MarketPosition.FLAT:  # a target of zero: whatever is held is closed
        return Signal.FLAT
    return {
        Action.BUY: Signal.LONG,
        Action.SHORT: Signal.SHORT,
        Action.SELL: Signal.EXIT_LONG,
        Action.COVER: Signal.EXIT_SHORT,
        Action.EXIT: Signal.FLAT,
    }[alert.action]


def read_alerts(path: Path, symbol: str) -> list[Alert]:
    """Alerts for `symbol` from a JSON-lines file, in file order."""
    alerts = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                payload: dict[str, Any] = json.loads(line)
                payload.pop("passphrase", None)
                alert = Alert.model_validate(payload)
            except (json.JSONDecodeError, ValidationError, TypeError, AttributeError) as exc:
                raise AlertFileError(f"{path}: line {number}: not a valid alert: {exc}") from exc
            if alert.time is None:
                raise AlertFileError(f"{path}: line {number}: the alert has no time")
            if alert.symbol.upper() == symbol.upper():
                alerts.append(alert)
    return alerts


_TV_TYPES = {
    "entry long": Signal.LONG,
    "exit long": Signal.EXIT_LONG,
    "entry short": Signal.SHORT,
    "exit short": Signal.EXIT_SHORT,
}


def read_tradingview_trades(path: Path, symbol: str, tz: str) -> list[Alert]:
    """TradingView's exported trade list as alerts (entries carry market_position)."""
    frame = pd.read_csv(path)
    columns = {str(c).strip().lower(): c for c in frame.columns}
    time_col = next(
        (columns[c] for c in ("date/time", "date and time", "date") if c in columns), None
    )
    if "type" not in columns or time_col is None:
        raise AlertFileError(f"{path}: expected TradingView's trade list (Type, Date/Time columns)")
    price_col = next((columns[c] for c in columns if c.startswith("price")), None)
    qty_col = next((columns[c] for c in ("contracts", "quantity", "qty") if c in columns), None)
    times = pd.to_datetime(frame[time_col], errors="coerce")
    if times.dt.tz is None:
        times = times.dt.tz_localize(tz)
    alerts = []
    for row, kind in enumerate(frame[columns["type"]].astype(str).str.strip().str.lower()):
        signal = _TV_TYPES.get(kind)
        if signal is None:
            raise AlertFileError(f"{path}: row {row + 1}: unknown trade type {kind!r}")
        if pd.isna(times.iloc[row]):
            raise AlertFileError(f"{path}: row {row + 1}: unreadable date/time")
        action, position = {
            Signal.LONG: ("buy", "long"),
            Signal.EXIT_LONG: ("sell", "flat"),
            Signal.SHORT: ("sell", "short"),
            Signal.EXIT_SHORT: ("cover", "flat"),
        }[signal]
        payload: dict[str, Any] = {
            "ticker": symbol,
            "action": action,
            "market_position": position,
            "time": times.iloc[row].to_pydatetime(),
        }
        if price_col is not None and pd.notna(frame[price_col].iloc[row]):
            payload["price"] = float(frame[price_col].iloc[row])
        if qty_col is not None and signal in (Signal.LONG, Signal.SHORT):
            payload["quantity"] = float(frame[qty_col].iloc[row])
        alerts.append(Alert.model_validate(payload))
    return alerts


def alert_signals(path: Path, bars: Bars, tz: str = "America/New_York") -> tuple[np.ndarray, dict]:
    """(signal codes per bar, the alert behind each signal bar)."""
    if not Path(path).exists():
        raise AlertFileError(f"alerts file {path} not found")
    if Path(path).suffix.lower() == ".csv":
        alerts = read_tradingview_trades(path, bars.symbol, tz)
    else:
        alerts = read_alerts(path, bars.symbol)
    n = len(bars)
    codes = np.zeros(n, dtype=np.int8)
    by_bar: dict[int, Alert] = {}
    if not alerts:
        return codes, by_bar
    ns = bars.time_ns_utc
    when = np.array([int(pd.Timestamp(a.time).value) for a in alerts], dtype=np.int64)
    idx = np.searchsorted(ns, when, side="right") - 1
    bar_ns = int(np.median(np.diff(ns[: min(n, 1000)]))) if n > 1 else 0
    for alert, bar, t in zip(alerts, idx, when, strict=True):
        if bar < 0 or t >= ns[-1] + bar_ns:
            continue  # before the first bar or after the last one
        codes[bar] = alert_signal(alert)
        by_bar[int(bar)] = alert
    return codes, by_bar
