"""Ingest one TradingView webhook: authenticate, validate, store once, queue.

The order of the steps is the money-safety argument: nothing is stored until the request
has passed every check, and once it is stored the answer is never a 5xx (TradingView
would resend it). The alert stays `pending` until the worker takes it, so an enqueue that
fails after the store is repaired by the sweeper (`requeue_pending`). The happy path is
two AWS calls: the store transaction and the enqueue.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from chalicelib.domain import Alert
from chalicelib.ports import AlertQueue, AlertStore, QueueUnavailable, StorageUnavailable
from chalicelib.settings import Settings

log = logging.getLogger(__name__)

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_alert_id(now: datetime) -> str:
    """A ULID: 26 characters, sortable by arrival time, unique without coordination."""
    value = (int(now.timestamp() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


class WebhookRejected(Exception):
    """The request is refused; nothing was stored. `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "rejected", "error": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


@dataclass(frozen=True)
class Ingested:
    status: str  # "accepted" or "duplicate"
    alert_id: str
    queued: bool = True
    warnings: list[str] = field(default_factory=list)


def check_source_ip(settings: Settings, source_ip: str | None) -> None:
    networks = settings.allowed_networks
    if not networks:
        return
    try:
        address = ipaddress.ip_address(source_ip or "")
    except ValueError:
        raise WebhookRejected(403, "source address not allowed") from None
    if not any(address in net for net in networks):
        raise WebhookRejected(403, "source address not allowed")


def parse_body(raw: bytes, max_bytes: int) -> dict[str, Any]:
    if len(raw) > max_bytes:
        raise WebhookRejected(413, f"body is larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WebhookRejected(400, "body is not UTF-8 text") from None
    if not text.strip():
        raise WebhookRejected(400, "body is empty; send the alert as a JSON object")
    try:
        payload = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise WebhookRejected(
            400, "body is not valid JSON; check the alert message for unfilled placeholders"
        ) from None
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "body must be a JSON object")
    return payload


def check_passphrase(settings: Settings, payload: dict[str, Any]) -> None:
    expected = settings.webhook_passphrase.get_secret_value()
    if not expected:
        raise WebhookRejected(503, "the webhook passphrase is not configured on the server")
    given = payload.get("passphrase")
    if not isinstance(given, str) or not hmac.compare_digest(
        given.encode("utf-8"), expected.encode("utf-8")
    ):
        raise WebhookRejected(401, "wrong or missing passphrase")


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    errors = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "alert"
        errors.append({"field": where, "message": err["msg"].removeprefix("Value error, ")})
    return errors


def validate_alert(payload: dict[str, Any]) -> Alert:
    fields = {k: v for k, v in payload.items() if k != "passphrase"}
    try:
        return Alert.model_validate(fields)
    except ValidationError as exc:
        raise WebhookRejected(
            422, "the alert does not match the schema", _field_errors(exc)
        ) from None


def dedupe_key(alert: Alert, payload: dict[str, Any], settings: Settings, now: datetime):
    """The alert's idempotency key and until when it holds.

    An explicit `alert_id` wins; otherwise a bar-stamped alert is identified by ticker,
    action, bar time, order id and strategy; an alert without a time only repeats an
    identical payload within `duplicate_window_s`.
    """
    keep = now + timedelta(days=settings.dedupe_ttl_days)
    if alert.alert_id:
        return "id:" + alert.alert_id, keep
    if alert.time is not None:
        parts = [
            alert.ticker,
            alert.action.value,
            alert.time.isoformat(),
            alert.order_id or "",
            alert.strategy or "",
        ]
        return "bar:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest(), keep
    body = {k: v for k, v in payload.items() if k != "passphrase"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return "body:" + digest, now + timedelta(seconds=settings.duplicate_window_s)


def _enqueue(queue: AlertQueue, alert_id: str, attempts: int = 3) -> bool:
    for attempt in range(attempts):
        try:
            queue.enqueue(alert_id)
            return True
        except QueueUnavailable:
            log.warning("enqueue failed (attempt %d) for alert %s", attempt + 1, alert_id)
            time.sleep(0.05 * (attempt + 1))
    return False


def ingest_alert(
    raw_body: bytes,
    source_ip: str | None,
    *,
    settings: Settings,
    store: AlertStore,
    queue: AlertQueue,
    now: datetime,
) -> Ingested:
    check_source_ip(settings, source_ip)
    payload = parse_body(raw_body, settings.max_body_bytes)
    check_passphrase(settings, payload)
    alert = validate_alert(payload)
    key, keep_until = dedupe_key(alert, payload, settings, now)
    alert_id = new_alert_id(now)
    try:
        first = store.store_once(alert_id, key, alert, now, keep_until, source_ip)
    except StorageUnavailable as exc:
        log.error("alert store unavailable: %s", exc)
        raise WebhookRejected(503, "alert storage is unavailable; nothing was stored") from None
    if first is not None:
        return Ingested("duplicate", first)
    # Stored (as queued): from here on the answer is 202 whatever happens.
    if _enqueue(queue, alert_id):
        return Ingested("accepted", alert_id)
    try:
        store.mark_unqueued(alert_id)
    except StorageUnavailable:  # it is still pending: the sweeper queues it all the same
        log.warning("could not mark alert %s unqueued", alert_id, exc_info=True)
    return Ingested(
        "accepted", alert_id, queued=False, warnings=["queued later: the queue is unavailable"]
    )


def requeue_pending(
    store: AlertStore, queue: AlertQueue, now: datetime, grace: timedelta = timedelta(seconds=30)
) -> list[str]:
    """Queue alerts no worker has taken `grace` after they were stored: their enqueue failed,
    or the message was lost. Each is swept once (it leaves the pending set); the worker's
    claim makes a second message for an alert harmless."""
    requeued = []
    for alert_id in store.pending(older_than=now - grace):
        if _enqueue(queue, alert_id, attempts=1):
            store.mark_queued(alert_id)
            requeued.append(alert_id)
    return requeued
