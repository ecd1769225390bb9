"""The dashboard's live setups and trade journal: recent alerts with what became of them.

Each row is the stored alert (`AlertStore.get`'s shape) reduced to what a trader scans: the
decision, every gate check's verdict, the score when a scorer gave one, and the latency
from receipt to the recorded outcome. Reads the alerts table's `recent` index, never the
broker.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from chalicelib.ports import RecentAlerts

MAX_ALERTS = 200
LOOKBACK_DAYS = 7  # without `date`, the newest alerts of the last week


class BadFilter(ValueError):
    """A filter that cannot be applied; the message names it."""


def _latency_ms(record: dict[str, Any]) -> int | None:
    if "updated_at" not in record:
        return None
    received = datetime.fromisoformat(record["received_at"])
    decided = datetime.fromisoformat(record["updated_at"])
    return max(0, round((decided - received).total_seconds() * 1000))


def _symbol(ticker: str) -> str:
    """`NASDAQ:AAPL` → `AAPL`, as `Alert.symbol` splits it."""
    return ticker.rpartition(":")[2].strip().upper()


def alert_row(record: dict[str, Any]) -> dict[str, Any]:
    alert = record.get("alert", {})
    details = record.get("details") or {}
    verdicts = [
        {"leg": leg, **verdict}
        for leg, checks in (details.get("verdicts") or {}).items()
        for verdict in checks
    ]
    decision = details.get("decision") or {}
    return {
        "alert_id": record["alert_id"],
        "received_at": record["received_at"],
        "updated_at": record.get("updated_at"),
        "symbol": _symbol(alert.get("ticker", "")),
        "action": alert.get("action"),
        "price": alert.get("price"),
        "strategy": alert.get("strategy"),
        "status": record["status"],
        "reason": record.get("reason", ""),
        "decision": decision.get("kind"),
        "decision_reason": decision.get("reason"),
        "score": details.get("score"),
        "verdicts": verdicts,
        "orders": details.get("orders", []),
        "latency_ms": _latency_ms(record),
    }


def parse_filters(params: dict[str, str]) -> dict[str, Any]:
    """`limit` (1..200, default 50), `symbol`, `status`, `date` (YYYY-MM-DD, UTC day)."""
    raw = params.get("limit", "50")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and 0 < int(raw) <= MAX_ALERTS):
        raise BadFilter(f"limit must be a whole number (1 to {MAX_ALERTS})")
    symbol = params.get("symbol", "").strip().upper()
    if symbol and not (len(symbol) <= 16 and symbol.replace(".", "").isalnum()):
        raise BadFilter("symbol must be a ticker like AAPL")
    status = params.get("status", "").strip().lower()
    if status and not (len(status) <= 20 and status.replace("_", "").isalpha()):
        raise BadFilter("status must be a word like filled or rejected")
    day = None
    if params.get("date"):
        try:
            day = date.fromisoformat(params["date"])
        except ValueError:
            raise BadFilter("date must be a date like 2026-03-02") from None
    return {"limit": int(raw), "symbol": symbol, "status": status, "day": day}


def recent_alerts(
    store: RecentAlerts,
    today: date,
    *,
    limit: int = 50,
    symbol: str = "",
    status: str = "",
    day: date | None = None,
) -> dict[str, Any]:
    """The newest alerts matching the filters: the given UTC day, else back from today
    through the last week."""
    days = [day] if day else [today - timedelta(days=n) for n in range(LOOKBACK_DAYS)]
    filtered = bool(symbol or status)
    rows: list[dict[str, Any]] = []
    for one in days:
        # A filter is applied here, after the read: read the day whole (bounded) then.
        for record in store.recent(one, MAX_ALERTS if filtered else limit - len(rows)):
            row = alert_row(record)
            if symbol and row["symbol"] != symbol:
                continue
            if status and row["status"] != status:
                continue
            rows.append(row)
            if len(rows) >= limit:
                return {"alerts": rows, "count": len(rows)}
    return {"alerts": rows, "count": len(rows)}
