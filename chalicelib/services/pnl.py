"""What the P/L view shows: realized per closed trade and per symbol, unrealized, the day.

Reads only the state table, which `sync_portfolio` keeps equal to the broker (trades booked
from its fills, the positions snapshot, the account), so the view costs no broker calls.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from chalicelib.domain import ClosedTrade
from chalicelib.ports import TradeRecords

MAX_RANGE = timedelta(days=366)


class BadRange(ValueError):
    """The requested dates cannot be shown; the message says why."""


def parse_range(params: dict[str, str], today: date) -> tuple[date, date]:
    """`?date=`, or `?from=&to=` (ISO dates, inclusive); today when none is given."""

    def day(name: str) -> date | None:
        raw = params.get(name)
        if raw is None:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise BadRange(f"{name} must be a date like 2026-03-02") from None

    single = day("date")
    start, end = day("from"), day("to")
    if single is not None:
        if start or end:
            raise BadRange("give either date or from/to, not both")
        return single, single
    start = start or end or today
    end = end or (today if start <= today else start)
    if end < start:
        raise BadRange("to is before from")
    if end - start > MAX_RANGE:
        raise BadRange("at most 366 days at a time")
    return start, end


def _trade_row(trade: ClosedTrade) -> dict[str, Any]:
    return {
        **trade.model_dump(mode="json"),
        "pnl_usd": round(trade.pnl_usd, 2),
        "pnl_pct": round(trade.pnl_pct, 3),
    }


def pnl_report(records: TradeRecords, start: date, end: date, today: date) -> dict[str, Any]:
    """Realized P/L of the trades closed in `start`..`end`; unrealized and the broker's own
    day P/L when the range includes `today`."""
    trades = records.trades(start, end)
    by_symbol: dict[str, dict[str, float]] = defaultdict(
        lambda: {"realized_usd": 0.0, "trades": 0, "unrealized_usd": 0.0}
    )
    for t in trades:
        row = by_symbol[t.symbol]
        row["realized_usd"] += t.pnl_usd
        row["trades"] += 1
    current = start <= today <= end
    unrealized = 0.0
    if current:
        for p in records.positions():
            by_symbol[p.symbol]["unrealized_usd"] += p.unrealized_pl or 0.0
            unrealized += p.unrealized_pl or 0.0
    realized = sum(t.pnl_usd for t in trades)
    report: dict[str, Any] = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "realized_usd": round(realized, 2),
        "unrealized_usd": round(unrealized, 2) if current else None,
        "wins": sum(1 for t in trades if t.pnl_usd > 0),
        "losses": sum(1 for t in trades if t.pnl_usd < 0),
        "by_symbol": {
            s: {k: round(v, 2) if k != "trades" else int(v) for k, v in row.items()}
            for s, row in sorted(by_symbol.items())
        },
        "trades": [_trade_row(t) for t in trades],
    }
    snapshot = records.account_snapshot() if current else None
    if snapshot is not None:
        account, at = snapshot
        report["broker_day_pl_usd"] = None if account.day_pl is None else round(account.day_pl, 2)
        report["equity_usd"] = round(account.equity, 2)
        report["account_as_of"] = at.isoformat()
    return report
