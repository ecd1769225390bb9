"""The SQS batch: each record is one alert id; failures are reported per record.

aws-lambda-powertools' batch utility turns a raising record handler into an entry of
`batchItemFailures`, so one bad record never redelivers the whole batch.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)

from chalicelib.domain import utc_now
from chalicelib.services.process_alert import process_alert

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from chalicelib.bootstrap import Container


def handle_batch(event: dict[str, Any], container: Container) -> dict[str, Any]:
    processor = BatchProcessor(event_type=EventType.SQS)

    def handle_record(record: SQSRecord) -> str:
        alert_id = json.loads(record.body)["alert_id"]
        return process_alert(alert_id, store=container.alert_store, now=utc_now()).status

    return process_partial_response(
        event=event, record_handler=handle_record, processor=processor, context=None
    )
