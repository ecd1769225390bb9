"""Show what the SNS topic publishes: locally there is no phone or inbox, so a queue is
subscribed to the topic and every message is printed to the console."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import boto3

from devstack.aws import REGION


class NotificationTap(threading.Thread):
    def __init__(self, topic_arn: str, show: Callable[[str, str], None]) -> None:
        super().__init__(name="notification-tap", daemon=True)
        self._sqs = boto3.client("sqs", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        self._url = self._sqs.create_queue(QueueName="flowtrader-local-notification-tap")[
            "QueueUrl"
        ]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
        self._show = show
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                got = self._sqs.receive_message(
                    QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                )
            except Exception:  # the stack is shutting down
                self._stopping.wait(1.0)
                continue
            for message in got.get("Messages", []):
                envelope = json.loads(message["Body"])
                self._show(envelope.get("Subject") or "", envelope.get("Message") or "")
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
