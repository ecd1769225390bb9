"""The queue worker's use case: take one queued alert and record where it ended.

Idempotent under redelivery: an alert already past `received` is left as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from chalicelib.domain import AlertStatus
from chalicelib.ports import AlertStore

log = logging.getLogger(__name__)

CLAIMABLE = (AlertStatus.STORED.value, AlertStatus.QUEUED.value, AlertStatus.RECEIVED.value)


@dataclass(frozen=True)
class Outcome:
    alert_id: str
    status: str
    reason: str
    skipped: bool = False


def process_alert(alert_id: str, *, store: AlertStore, now: datetime) -> Outcome:
    record = store.get(alert_id)
    if record is None:
        log.warning("queued alert %s is not in the store; dropping the message", alert_id)
        return Outcome(alert_id, "missing", "not in the alert store", skipped=True)
    if record["status"] not in CLAIMABLE:
        return Outcome(alert_id, record["status"], record["reason"], skipped=True)
    reason = "received by the worker"
    store.record_outcome(
        alert_id,
        AlertStatus.RECEIVED.value,
        reason,
        only_if_status_in=CLAIMABLE,
        updated_at=now,
    )
    return Outcome(alert_id, AlertStatus.RECEIVED.value, reason)
