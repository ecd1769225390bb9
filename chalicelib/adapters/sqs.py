"""The alert queue on Amazon SQS: the message body is just the alert id."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.ports import QueueUnavailable


class SqsAlertQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def enqueue(self, alert_id: str) -> None:
        try:
            self._sqs.send_message(
                QueueUrl=self._url, MessageBody=json.dumps({"alert_id": alert_id})
            )
        except (BotoCoreError, ClientError) as exc:
            raise QueueUnavailable(str(exc)) from exc

    def depth(self) -> int:
        """Messages on the queue: waiting, in flight and delayed (SQS's approximate counts)."""
        try:
            attrs = self._sqs.get_queue_attributes(
                QueueUrl=self._url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
        except (BotoCoreError, ClientError) as exc:
            raise QueueUnavailable(str(exc)) from exc
        return sum(int(value) for value in attrs.values())
