"""The ports services talk to; adapters in `chalicelib/adapters/` implement them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from chalicelib.domain import Alert


class StorageUnavailable(Exception):
    """The store could not be reached; nothing was written."""


class QueueUnavailable(Exception):
    """The queue could not be reached; nothing was sent."""


class StoredAlert(Protocol):
    alert_id: str


class AlertStore(Protocol):
    """Alerts and their outcomes, stored once per idempotency key."""

    def store_once(
        self,
        alert_id: str,
        dedupe_key: str,
        alert: Alert,
        received_at: datetime,
        dedupe_until: datetime,
        source_ip: str | None,
    ) -> str | None:
        """Store the alert unless its key was seen; return the first alert's id when it was."""
        ...

    def get(self, alert_id: str) -> dict[str, Any] | None: ...

    def mark_queued(self, alert_id: str) -> None: ...

    def pending(self, older_than: datetime) -> list[str]:
        """Ids of alerts stored but never queued (the enqueue failed after the store)."""
        ...

    def record_outcome(
        self,
        alert_id: str,
        status: str,
        reason: str,
        details: dict[str, Any] | None = None,
        only_if_status_in: tuple[str, ...] | None = None,
    ) -> bool:
        """Record where the alert ended; False when `only_if_status_in` did not hold."""
        ...


class AlertQueue(Protocol):
    def enqueue(self, alert_id: str) -> None: ...
