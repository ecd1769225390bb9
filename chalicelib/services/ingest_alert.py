"""Ingest one TradingView webhook: authenticate, validate, store once, queue.

The order of the steps is the money-safety argument: nothing is stored until the request
has passed every check, and once it is stored the answer is never a 5xx (TradingView
would resend it). Parsing is bounded (body size, nesting depth, number length) and cheap, and
the passphrase is checked before anything else looks at the alert; bad input always gets a
4xx naming the field. A stale alert (`max_alert_age_s`) is answered 422 and not stored: the
check is a clock comparison, cheap and deterministic, so the sender learns at once, and an
alert that could never be traded leaves no state behind.

The alert stays `pending` until the worker takes it, so an enqueue that fails after the store
is repaired by the sweeper (`requeue_pending`). The happy path is two AWS calls: the store
transaction and the enqueue.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from chalicelib.domain import Alert, placeholder_message, unfilled_placeholder
from chalicelib.ports import AlertQueue, AlertStore, QueueUnavailable, StorageUnavailable
from chalicelib.rules.alert_age import check_alert_age
from chalicelib.rules.instruments import untradeable_reason
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


# A JSON number longer than this is refused unconverted: Python's int() is quadratic in the
# digits (and refuses over 4,300), and no price, size or count needs more.
MAX_NUMBER_CHARS = 32
# Alerts are flat; unknown fields may nest this deep (arrays and objects).
MAX_NESTING = 16
_MAX_FIELD_ERRORS = 20
_UNQUOTED_PLACEHOLDER = re.compile(r'"([^"\\]{1,64})"\s*:\s*(\{\{[^{}]{0,80}\}\})')


class _BadNumber:
    """A JSON number the parser would not convert, kept as a marker so that the field can be
    named in a 422, after the passphrase is checked."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _bounded(convert: Any) -> Any:
    def parse(text: str) -> Any:
        if len(text) > MAX_NUMBER_CHARS:
            return _BadNumber(
                f"is a number of {len(text)} characters; at most {MAX_NUMBER_CHARS} are accepted"
            )
        value = convert(text)
        if isinstance(value, float) and not math.isfinite(value):
            return _BadNumber(f"is {text}, out of the range of a number")
        return value

    return parse


_DECODER = json.JSONDecoder(
    parse_int=_bounded(int),
    parse_float=_bounded(float),
    parse_constant=lambda name: _BadNumber(f"is {name}, not a finite number"),
)


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
        payload = _DECODER.decode(text)
    except json.JSONDecodeError:
        unquoted = _UNQUOTED_PLACEHOLDER.search(text)
        if unquoted:
            raise WebhookRejected(
                400,
                f"body is not valid JSON: {unquoted.group(1)} is the unfilled placeholder "
                f"{unquoted.group(2)}; TradingView sends a variable it cannot fill as typed",
            ) from None
        raise WebhookRejected(
            400, "body is not valid JSON; check the alert message for unfilled placeholders"
        ) from None
    except RecursionError:
        raise WebhookRejected(
            400, f"body is nested too deeply (at most {MAX_NESTING} levels are accepted)"
        ) from None
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "body must be a JSON object")
    return payload


def payload_problems(payload: dict[str, Any]) -> list[dict[str, str]]:
    """Field-level problems the schema cannot see: numbers refused while parsing, nesting
    deeper than MAX_NESTING and unfilled `{{placeholders}}`, in any field, nested included."""
    problems = []
    stack: list[tuple[str, Any, int]] = [
        (key, value, 1) for key, value in payload.items() if key != "passphrase"
    ]
    while stack:
        field, value, depth = stack.pop()
        message = None
        if isinstance(value, _BadNumber):
            message = f"{field} {value.problem}"
        elif (placeholder := unfilled_placeholder(value)) is not None:
            message = f"{field} {placeholder_message(placeholder)}"
        elif isinstance(value, dict | list) and depth > MAX_NESTING:
            field = field.split(".", 1)[0]  # the field the sender wrote, not 16 levels of it
            message = f"{field} is nested deeper than {MAX_NESTING} levels"
        elif isinstance(value, dict):
            stack.extend((f"{field}.{k}", v, depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{field}.{i}", v, depth + 1) for i, v in enumerate(value))
        if message:
            problems.append({"field": field, "message": message})
    problems.sort(key=lambda p: p["field"])
    return problems[:_MAX_FIELD_ERRORS]


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
    problems = payload_problems(payload)
    if problems:
        raise WebhookRejected(422, "the alert does not match the schema", problems)
    fields = {k: v for k, v in payload.items() if k != "passphrase"}
    try:
        return Alert.model_validate(fields)
    except ValidationError as exc:
        raise WebhookRejected(
            422, "the alert does not match the schema", _field_errors(exc)
        ) from None


def check_tradeable(alert: Alert) -> None:
    reason = untradeable_reason(alert.ticker)
    if reason:
        raise WebhookRejected(
            422, "the instrument is not tradeable", [{"field": "ticker", "message": reason}]
        )


def check_fresh(alert: Alert, settings: Settings, now: datetime) -> None:
    verdict = check_alert_age(
        alert,
        now,
        max_age=timedelta(seconds=settings.max_alert_age_s),
        clock_skew=timedelta(seconds=settings.alert_clock_skew_s),
    )
    if not verdict.allowed:
        field = "timenow" if alert.timenow is not None else "time"
        raise WebhookRejected(
            422,
            "the alert is not current; nothing was stored",
            [{"field": field, "message": verdict.reason}],
        )


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
    check_tradeable(alert)
    check_fresh(alert, settings, now)
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
    store: AlertStore,
    queue: AlertQueue,
    now: datetime,
    grace: timedelta = timedelta(seconds=30),
    *,
    waiting: int | None = None,
    settle: timedelta = timedelta(seconds=10),
    lost_after: timedelta = timedelta(minutes=5),
) -> list[str]:
    """Queue the pending alerts (stored, no worker has taken them) that nobody would take
    otherwise — never the ones simply waiting their turn in a backlog:

    - `stored`: the enqueue failed (ingest said so). Always queued once, after `grace`.
    - `queued` whose message is gone: the API died between the store and the enqueue, or the
      enqueue and the downgrade both failed. An alert's message cannot be told apart from
      another's without taking it, so the queue is counted instead: `waiting` is its depth
      (waiting + in flight + delayed), read just *before* this sweep. Every pending alert
      stored over `settle` ago (the API's timeout: its enqueue has finished or never will)
      should hold one message; when the queue holds fewer, at least that many are missing,
      and that many of the oldest `queued` ones past `grace` are queued again — the queue
      is consumed about oldest first, so a lost one becomes the oldest pending alert once
      the backlog ahead of it is taken. Reading the depth first only errs towards fewer
      re-queues (a message taken meanwhile still counts), and a wrong guess costs one
      duplicate message, which the worker's claim makes harmless.
    - Without `waiting` (a caller that cannot read the queue), a `queued` alert counts as
      lost after `lost_after`: longer than a healthy backlog waits (the queue-age alarm
      fires at 5 minutes).

    Each alert is swept once (it leaves the pending set). Returns the ids queued.
    """
    from chalicelib.domain import AlertStatus

    candidates = store.pending(older_than=now - grace)
    if not candidates:
        return []
    status = {alert_id: (store.get(alert_id) or {}).get("status") for alert_id in candidates}
    never_queued = [a for a in candidates if status[a] == AlertStatus.STORED.value]
    queued = [a for a in candidates if status[a] == AlertStatus.QUEUED.value]
    if waiting is None:
        long_lost = set(store.pending(older_than=now - lost_after))
        lost = [a for a in queued if a in long_lost]
    else:
        should_hold = len(store.pending(older_than=now - settle)) - len(never_queued)
        lost = queued[: max(0, should_hold - waiting)]
    requeued = []
    for alert_id in [*never_queued, *lost]:
        if _enqueue(queue, alert_id, attempts=1):
            store.mark_queued(alert_id)
            requeued.append(alert_id)
    return requeued
