"""What a trader does from the dashboard in a hurry, journaled and announced: the kill
switch here, flattening in `flatten`.

Actions are journaled under `actions-<YYYY-MM-DD>` (the UTC day; `GET /api/actions`),
beside the alerts' own journals, so an audit of the day finds who stopped trading and when.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol

from chalicelib.ports import Notifier, RiskState, TradeRecords
from chalicelib.services.notify import Notice, send, sms_text

log = logging.getLogger(__name__)


def actions_key(now: datetime) -> str:
    return f"actions-{now.date().isoformat()}"


def journal_action(records: TradeRecords, event: str, data: dict[str, Any], now: datetime) -> None:
    """Journal one action; a failed write is logged, the action stands (it already ran)."""
    try:
        records.append_journal(actions_key(now), event, data, now)
    except Exception:
        log.warning("journal write failed for action %s", event, exc_info=True)


class ActionState(RiskState, TradeRecords, Protocol):
    """The kill switch and the journal (the state table)."""


def set_kill_switch(
    state: ActionState,
    notifier: Notifier | None,
    *,
    engaged: bool,
    reason: str,
    now: datetime,
) -> dict[str, Any]:
    """Engage (with a reason) or release the kill switch; journaled and announced."""
    reason = " ".join(reason.split())[:200] or "engaged from the dashboard"
    state.set_kill_switch(reason if engaged else None, now)
    journal_action(state, "kill_switch", {"engaged": engaged, "reason": reason}, now)
    text = f"Kill switch ON: {reason}" if engaged else "Kill switch OFF: trading allowed"
    subject = f"flowtrader: kill switch {'on' if engaged else 'off'}"
    send(notifier, Notice("kill_switch", subject, sms_text(text), text))
    return {"engaged": engaged, "reason": reason if engaged else None}
