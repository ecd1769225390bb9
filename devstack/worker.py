"""The local stand-in for the SQS event source mapping: long-poll the queue and hand each
batch, in the Lambda event shape, to the same handler the SQS Lambda runs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import boto3

from devstack.aws import REGION

log = logging.getLogger("flowtrader.devstack.worker")


def _lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


class QueueWorker(threading.Thread):
    """Consumes the alert queue until `stop()`; honours `batchItemFailures` like Lambda does:
    failed records stay on the queue (and reach the DLQ after the redrive count)."""

    def __init__(
        self,
        queue_url: str,
        handler: Callable[[dict[str, Any], Any], dict[str, Any]],
        batch_size: int = 10,
        wait_seconds: int = 1,
    ) -> None:
        super().__init__(name="queue-worker", daemon=True)
        self._sqs = boto3.client("sqs", region_name=REGION)
        self._url = queue_url
        self._handler = handler
        self._batch_size = batch_size
        self._wait = wait_seconds
        self._stopping = threading.Event()
        self._arn = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.batches = 0

    def stop(self) -> None:
        self._stopping.set()

    def poll_once(self) -> int:
        got = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=self._wait,
            AttributeNames=["All"],
        )
        messages = got.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [_lambda_record(m, self._arn) for m in messages]}
        try:
            result = self._handler(event, None) or {}
        except Exception:
            log.exception("the worker handler raised; the whole batch will be redelivered")
            return len(messages)
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        self.batches += 1
        return len(messages)

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("queue poll failed; retrying")
                self._stopping.wait(1.0)


class Every(threading.Thread):
    """Run `job` every `seconds` until stopped: the local stand-in for a schedule."""

    def __init__(self, seconds: float, job: Callable[[], Any], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._seconds = seconds
        self._job = job
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.wait(self._seconds):
            try:
                self._job()
            except Exception:
                log.exception("scheduled job %s failed", self.name)


def main() -> int:
    """The worker process of the local stack: the queue consumer, the sweeper and the
    notification tap, configured from the environment the stack hands it."""
    import os
    import signal
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    import app as app_module
    from chalicelib import bootstrap
    from chalicelib.domain import utc_now
    from chalicelib.services.ingest_alert import requeue_pending
    from devstack.notifications import NotificationTap

    c = bootstrap.container()

    def show_notification(subject: str, message: str) -> None:
        print(f"[notification] {subject}: {message}", flush=True)

    threads: list[QueueWorker | Every | NotificationTap] = [
        QueueWorker(c.settings.queue_url, app_module.process_alerts),
        Every(15.0, lambda: requeue_pending(c.alert_store, c.alert_queue, utc_now()), "sweeper"),
        NotificationTap(c.settings.topic_arn, show_notification),
    ]
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    for thread in threads:
        thread.start()
    print("worker ready", file=sys.stderr, flush=True)
    parent = os.getppid()
    while not stopping.wait(1.0):
        if os.getppid() != parent:  # the stack was killed without stopping us
            break
    for thread in threads:
        thread.stop()
    for thread in threads:
        thread.join(timeout=5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
