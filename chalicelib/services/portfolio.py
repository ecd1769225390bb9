"""What the read API shows of the trading record: orders, positions and an alert's journal.

Reads only the state table (written by process_alert and, later, sync_portfolio), never the
broker, so the dashboard costs no broker calls and works while the broker is down.
"""

from __future__ import annotations

from typing import Any

from chalicelib.ports import TradeRecords

MAX_ORDERS = 500


def recent_orders(records: TradeRecords, limit: int = 100) -> dict[str, Any]:
    """The newest orders (by alert), each with its alert_id; `limit` is clamped to 1..500."""
    limit = min(max(limit, 1), MAX_ORDERS)
    orders = records.orders(limit=limit)
    return {"orders": orders, "count": len(orders)}


def open_positions(records: TradeRecords) -> dict[str, Any]:
    """The last positions snapshot; `notional_usd` at the mark (else the entry price)."""
    positions = [
        {**p.model_dump(mode="json"), "notional_usd": round(p.notional_usd, 2)}
        for p in records.positions()
    ]
    return {
        "positions": positions,
        "count": len(positions),
        "gross_exposure_usd": round(sum(p["notional_usd"] for p in positions), 2),
    }


def alert_journal(records: TradeRecords, alert_id: str) -> dict[str, Any]:
    return {"alert_id": alert_id, "events": records.journal(alert_id)}
