"""The SQS batch: each record is one alert id; failures are reported per record.

aws-lambda-powertools' batch utility turns a raising record handler into an entry of
`batchItemFailures`, so one bad record never redelivers the whole batch. A record whose
alert failed (`AlertFailed`: broker unavailable, an error) is reported, so SQS delivers it
again; the queue's redrive policy dead-letters it after 5 receives.

A batch of several alerts is decided in rank order (services/batch_ranking.py); each
decided alert's recording runs while the next is decided, and the batch answers only once
all are written (an unwritten one is reported, so SQS delivers it again).

Retries (docs/architecture.md, "Retries"): this redelivery is the alert's retry. Within one
receive the use case places each intent at most `broker_attempts` = 2 times, looking it up
by client order id in between, and the broker adapter POSTs once per call: at most 10 POSTs
per client order id over the alert's life, and one order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)

from chalicelib.domain import AlertStatus, utc_now
from chalicelib.services.process_alert import CLAIMABLE, AlertFailed, Execution, process_alert

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from chalicelib.bootstrap import Container


def handle_batch(event: dict[str, Any], container: Container) -> PartialItemFailureResponse:
    """Decide each record's alert; a batch of several is decided in rank order, each with
    the context gathered for the whole batch at once (services/batch_ranking.py)."""
    processor = BatchProcessor(event_type=EventType.SQS)
    execution: Execution | None = None
    event, prepared = _ranked(event, container)
    recording = ThreadPoolExecutor(max_workers=2, thread_name_prefix="record")
    recorded: dict[str, Future[None]] = {}

    def handle_record(record: SQSRecord) -> str:
        nonlocal execution
        alert_id = json.loads(record.body)["alert_id"]
        if execution is None:
            try:
                execution = container.execution
            except Exception as exc:  # e.g. broker keys missing: say so on the alert
                reason = f"worker cannot start: {type(exc).__name__}: {exc}"
                container.alert_store.record_outcome(
                    alert_id,
                    AlertStatus.FAILED.value,
                    reason,
                    only_if_status_in=CLAIMABLE,
                    updated_at=utc_now(),
                )
                raise AlertFailed(reason) from exc
        attributes = record.raw_event.get("attributes") or {}
        attempt = int(attributes.get("ApproximateReceiveCount") or 1)
        sent = attributes.get("SentTimestamp")

        def record_while_the_next_is_decided(flush: Callable[[], None]) -> None:
            recorded[record.message_id] = recording.submit(flush)

        outcome = process_alert(
            alert_id,
            store=container.alert_store,
            now=utc_now(),
            execution=execution,
            attempt=attempt,
            sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
            prepared=prepared.get(alert_id),
            defer_flush=record_while_the_next_is_decided if prepared else None,
        )
        return outcome.status

    try:
        response = process_partial_response(
            event=event, record_handler=handle_record, processor=processor, context=None
        )
    finally:
        recording.shutdown(wait=True)
    return _with_unrecorded(response, recorded)


def _with_unrecorded(
    response: PartialItemFailureResponse, recorded: dict[str, Future[None]]
) -> PartialItemFailureResponse:
    """A decided alert whose outcome could not be written is a failure too: SQS delivers it
    again and the retry finds its orders at the broker and records them."""
    failures = list(response.get("batchItemFailures", []))
    failed = {f["itemIdentifier"] for f in failures}
    for message_id, future in recorded.items():
        error = future.exception()
        if error is not None and message_id not in failed:
            log.error("recording %s failed: %s", message_id, error)
            failures.append({"itemIdentifier": message_id})
    return {**response, "batchItemFailures": failures}


def _alert_id_of(record: dict[str, Any]) -> str | None:
    try:
        found = json.loads(record.get("body") or "").get("alert_id")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def _ranked(event: dict[str, Any], container: Container) -> tuple[dict[str, Any], dict[str, Any]]:
    """The event with its records in decision order, and what was prepared for each alert.
    A batch of one, or a failure to prepare, is decided as it came (never blocked)."""
    from chalicelib.services.batch_ranking import prepare_batch

    records = event.get("Records") or []
    ids = [a for a in map(_alert_id_of, records) if a is not None]
    if len(ids) < 2:
        return event, {}
    try:
        order, prepared = prepare_batch(
            ids,
            container.alert_store,
            container.execution.context,
            utc_now(),
            model=container.rank_model,
        )
    except Exception:  # ranking orders the batch; it never fails it (nor a broker's keys)
        log.warning("could not rank a batch of %d; deciding it as it came", len(ids), exc_info=True)
        return event, {}
    place = {alert_id: i for i, alert_id in enumerate(order)}
    ordered = sorted(records, key=lambda r: place.get(_alert_id_of(r) or "", len(place)))
    return {**event, "Records": ordered}, prepared
