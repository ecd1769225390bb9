"""The daily report: after the close, the day's trades.csv and daily_pnl.csv (the backtest's
columns, `rules/report_rows`), the cumulative files, a summary to the trader, and optionally
the spreadsheet journal.

Files in the report sink (S3 `reports/…` or `./reports/`):
- `daily/<YYYY-MM-DD>/trades.csv`, `daily/<YYYY-MM-DD>/daily_pnl.csv`: that day alone;
- `trades.csv`, `daily_pnl.csv`: every reported day, oldest first.
A re-run for a day replaces that day's rows (never duplicates them), so running the report
twice, or late, is safe. The day's net P/L is the sum of the closed trades `/api/pnl` shows
for it (`TradeRecords.trades(day, day)`), so the two always agree.

When: `report_due(now)` is the New York trading day whose close has passed, at 16:15–17:15
local time. The Lambda schedule fires at 20:30 and 21:30 UTC; exactly one of the two lands
in that hour whether New York is on EDT (UTC−4) or EST (UTC−5).
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from chalicelib.domain import ClosedTrade
from chalicelib.ports import Notifier, ReportSink, TradeRecords
from chalicelib.rules.market_calendar import is_trading_day, to_eastern, trading_date
from chalicelib.rules.report_rows import (
    DAILY_COLUMNS,
    TRADE_COLUMNS,
    csv_text,
    daily_row,
    format_value,
    rows_to_columns,
    trade_columns,
)
from chalicelib.services.notify import APP, Notice, send, sms_text

log = logging.getLogger(__name__)

CSV = "text/csv; charset=utf-8"
DUE_FROM = time(16, 15)
DUE_UNTIL = time(17, 15)


def report_due(now: datetime) -> date | None:
    """The trading day to report at `now`, or None outside 16:15–17:15 New York time."""
    local = to_eastern(now)
    day = trading_date(now)
    if not is_trading_day(day) or not (DUE_FROM <= local.time() < DUE_UNTIL):
        return None
    return day


def read_rows(raw: bytes | None) -> list[dict[str, str]]:
    """A stored CSV's rows as text (empty when the file was never written)."""
    if not raw:
        return []
    return list(csv.DictReader(io.StringIO(raw.decode())))


def _text_rows(columns: dict[str, list[Any]], names: tuple[str, ...]) -> list[dict[str, str]]:
    n = len(columns[names[0]]) if names else 0
    return [{c: format_value(columns[c][i]) for c in names} for i in range(n)]


@dataclass(frozen=True)
class DayReport:
    day: date
    trades: list[ClosedTrade]
    trade_rows: list[dict[str, str]]  # the day's trades.csv rows, as text
    daily: dict[str, str]  # the day's daily_pnl.csv row, as text
    all_trades: list[dict[str, str]]  # cumulative trades.csv with this day merged in
    all_daily: list[dict[str, str]]  # cumulative daily_pnl.csv with this day merged in

    @property
    def net_pnl(self) -> float:
        return sum(t.pnl_usd for t in self.trades)


def build_day(records: TradeRecords, sink: ReportSink, day: date) -> DayReport:
    """The day's rows from the state table, merged into the cumulative files (not written)."""
    trades = records.trades(day, day)
    snapshot = records.account_snapshot()
    equity = None
    if snapshot is not None and trading_date(snapshot[1]) == day:
        equity = snapshot[0].equity
    iso = day.isoformat()
    history = [r for r in read_rows(sink.get("daily_pnl.csv")) if r.get("date") != iso]
    before = [r for r in history if r["date"] < iso]
    cum_before = sum(float(r["net_pnl"] or 0) for r in before)
    row = daily_row(day, trades, cum_before, equity)
    daily = {c: format_value(row[c]) for c in DAILY_COLUMNS}
    all_daily = sorted([*history, daily], key=lambda r: r["date"])
    running = 0.0
    for r in all_daily:  # days after a re-reported one carry its new total
        running += float(r["net_pnl"] or 0)
        r["cum_net_pnl"] = format_value(running)
    trade_rows = _text_rows(trade_columns(trades), TRADE_COLUMNS)
    kept = [r for r in read_rows(sink.get("trades.csv")) if r["exit_time"][:10] != iso]
    all_trades = sorted([*kept, *trade_rows], key=lambda r: r["exit_time"])
    return DayReport(day, trades, trade_rows, daily, all_trades, all_daily)


def trades_csv(rows: list[dict[str, str]]) -> str:
    return csv_text(TRADE_COLUMNS, rows_to_columns(rows, TRADE_COLUMNS))


def daily_csv(rows: list[dict[str, str]]) -> str:
    return csv_text(DAILY_COLUMNS, rows_to_columns(rows, DAILY_COLUMNS))


def _usd(amount: float) -> str:
    sign = "−" if amount < 0 else "+"
    return f"{sign}${abs(amount):,.2f}"


def summary_notice(report: DayReport) -> Notice:
    """`Day 2026-03-02: +$120.40 realized, 4 trades (3 won, 1 lost)` and the per-trade lines."""
    trades = report.trades
    won = sum(1 for t in trades if t.pnl_usd > 0)
    lost = sum(1 for t in trades if t.pnl_usd < 0)
    text = (
        f"Day {report.day.isoformat()}: {_usd(report.net_pnl)} realized, {len(trades)} trades"
        f" ({won} won, {lost} lost)"
    )
    lines = [
        f"{t.symbol} {t.side.value} {t.qty:g} {t.exit_reason.value}: {_usd(t.pnl_usd)}"
        for t in trades
    ]
    cumulative = report.daily.get("cum_net_pnl") or "0"
    equity = report.daily.get("equity")
    lines.append(f"cumulative net P/L: {_usd(float(cumulative))}")
    if equity:
        lines.append(f"equity at the report: ${float(equity):,.2f}")
    return Notice(
        "daily_summary",
        sms_text(f"{APP}: {text}", 100),
        sms_text(text),
        "\n".join(lines),
    )


def daily_report(
    records: TradeRecords,
    sink: ReportSink,
    day: date,
    *,
    notifier: Notifier | None = None,
    journal: Any = None,
) -> dict[str, Any]:
    """Write the day's and the cumulative files, tell the trader, append the journal."""
    report = build_day(records, sink, day)
    iso = day.isoformat()
    sink.put(f"daily/{iso}/trades.csv", trades_csv(report.trade_rows).encode(), CSV)
    sink.put(f"daily/{iso}/daily_pnl.csv", daily_csv([report.daily]).encode(), CSV)
    sink.put("trades.csv", trades_csv(report.all_trades).encode(), CSV)
    sink.put("daily_pnl.csv", daily_csv(report.all_daily).encode(), CSV)
    appended: dict[str, int] | None = None
    if journal is not None:
        try:
            appended = journal.append_day(report)
        except Exception:  # the files are written; the spreadsheet can catch up next run
            log.warning("spreadsheet journal export failed for %s", iso, exc_info=True)
    notified = send(notifier, summary_notice(report))
    return {
        "day": iso,
        "trades": len(report.trades),
        "net_pnl": round(report.net_pnl, 2),
        "notified": notified,
        "journal": appended,
    }
