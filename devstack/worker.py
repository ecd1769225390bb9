"""The local stand-in for the SQS event source mapping and the worker Lambda: consumers that
long-poll the queue and hand each batch, in the Lambda event shape, to the same handler the
SQS Lambda runs; the sweeper; the notification tap; and a heartbeat `/api/health` reads.

As many consumers as the Lambda's `maximum_concurrency`, each taking `batch_size` messages
(both read from app.py's SQS event source, so the two stay in line). A consumer holds its
messages invisible for `VISIBILITY_S` and extends that while the handler runs, so a worker
killed mid-batch has its messages back within seconds, not after the queue's 6 minutes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3

from chalicelib.services.health import HEARTBEAT_KEY
from devstack.aws import REGION

log = logging.getLogger("flowtrader.devstack.worker")

VISIBILITY_S = 20  # how long a taken message stays invisible without an extension
HEARTBEAT_EVERY_S = 2.0
SYNC_EVERY_S = 10.0  # the sync_portfolio schedule's local cadence (every minute in AWS)
DAY_TYPE_EVERY_S = 30.0  # classify_day's local tick (every minute of the session in AWS)
FLOW_SCAN_EVERY_S = 300.0  # scan_flow's cadence, as in AWS (only with an Unusual Whales token)


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


_GATHERING = threading.Lock()  # one consumer gathers a batch at a time (with a window)


class QueueWorker(threading.Thread):
    """Consumes the alert queue until `stop()`; honours `batchItemFailures` like Lambda does:
    failed records stay on the queue (and reach the DLQ after the redrive count)."""

    def __init__(
        self,
        queue_url: str,
        handler: Callable[[dict[str, Any], Any], dict[str, Any]],
        batch_size: int = 10,
        wait_seconds: int = 1,
        visibility_s: int | None = None,
        name: str = "queue-worker",
        window_s: float = 0.0,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._sqs = boto3.client("sqs", region_name=REGION)
        self._url = queue_url
        self._handler = handler
        self._batch_size = batch_size
        self._wait = wait_seconds
        self._visibility = visibility_s
        self._window = window_s  # Lambda's MaximumBatchingWindowInSeconds: gather this long
        self._stopping = threading.Event()
        self._arn = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.batches = 0
        self.taken = 0

    def stop(self) -> None:
        self._stopping.set()

    def _keep_invisible(self, messages: list[dict[str, Any]], done: threading.Event) -> None:
        """Extend the messages' visibility while the handler still has them."""
        assert self._visibility is not None
        while not done.wait(self._visibility / 3):
            try:
                self._sqs.change_message_visibility_batch(
                    QueueUrl=self._url,
                    Entries=[
                        {
                            "Id": str(i),
                            "ReceiptHandle": m["ReceiptHandle"],
                            "VisibilityTimeout": self._visibility,
                        }
                        for i, m in enumerate(messages)
                    ],
                )
            except Exception:  # the handler's deletes decide; a missed extension only redelivers
                log.warning("could not extend the visibility of a batch", exc_info=True)

    def poll_once(self) -> int:
        receive: dict[str, Any] = {
            "QueueUrl": self._url,
            "MaxNumberOfMessages": self._batch_size,
            "WaitTimeSeconds": self._wait,
            "AttributeNames": ["All"],
        }
        if self._visibility is not None:
            receive["VisibilityTimeout"] = self._visibility
        messages = self._receive(receive)
        if not messages:
            return 0
        self.taken += len(messages)
        event = {"Records": [_lambda_record(m, self._arn) for m in messages]}
        handled = threading.Event()
        if self._visibility is not None:
            threading.Thread(
                target=self._keep_invisible, args=(messages, handled), daemon=True
            ).start()
        try:
            result = self._handler(event, None) or {}
        except Exception:
            log.exception("the worker handler raised; the whole batch will be redelivered")
            return len(messages)
        finally:
            handled.set()
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

    def _receive(self, receive: dict[str, Any]) -> list[dict[str, Any]]:
        """One batch. With a batching window the first message opens it and the consumer
        keeps receiving until the batch is full or the window has passed, one consumer at a
        time (as Lambda's poller gathers a batch), so what arrives together is one batch."""
        if not self._window:
            return list(self._sqs.receive_message(**receive).get("Messages", []))
        with _GATHERING:
            messages = list(self._sqs.receive_message(**receive).get("Messages", []))
            gather_until = time.monotonic() + self._window
            while messages and len(messages) < self._batch_size:
                left = gather_until - time.monotonic()
                if left <= 0:
                    break
                more = {**receive, "MaxNumberOfMessages": self._batch_size - len(messages)}
                more["WaitTimeSeconds"] = max(0, min(self._wait, int(left)))
                messages += self._sqs.receive_message(**more).get("Messages", [])
                if more["WaitTimeSeconds"] == 0:
                    time.sleep(min(0.05, max(0.0, left)))
            return messages

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


class Heartbeat:
    """The worker's liveness in the state table, where `/api/health` reads it (a Lambda
    writes none: health then reports the queue's figures only)."""

    def __init__(self, state_table: str, consumers: list[QueueWorker]) -> None:
        self._ddb = boto3.client("dynamodb", region_name=REGION)
        self._table = state_table
        self._consumers = consumers
        self._started = time.time()

    def beat(self) -> None:
        now = time.time()
        alive = sum(1 for c in self._consumers if c.is_alive())
        self._ddb.put_item(
            TableName=self._table,
            Item={
                **HEARTBEAT_KEY,
                "at_ms": {"N": str(int(now * 1000))},
                "every_s": {"N": str(HEARTBEAT_EVERY_S)},
                "pid": {"N": str(os.getpid())},
                "started_ms": {"N": str(int(self._started * 1000))},
                "consumers": {"N": str(len(self._consumers))},
                "consumers_alive": {"N": str(alive)},
                "taken": {"N": str(sum(c.taken for c in self._consumers))},
            },
        )

    def clear(self) -> None:
        self._ddb.delete_item(TableName=self._table, Key=HEARTBEAT_KEY)


def _sqs_source(app: Any, handler_name: str) -> Any:
    """The app's SQS event source for `handler_name` (None: it has none)."""
    for source in getattr(app, "event_sources", []):
        if getattr(source, "name", None) == handler_name and hasattr(source, "batch_size"):
            return source
    return None


def batching_window_s(app: Any, handler_name: str = "process_alerts") -> float:
    """The app's SQS event source's `maximum_batching_window_in_seconds` (0: none)."""
    source = _sqs_source(app, handler_name)
    return float(getattr(source, "maximum_batching_window_in_seconds", 0) or 0)


def lambda_concurrency(app: Any, handler_name: str = "process_alerts") -> tuple[int, int]:
    """(maximum_concurrency, batch_size) of the app's SQS event source for `handler_name`."""
    source = _sqs_source(app, handler_name)
    if source is None:
        return 1, 10
    return int(source.maximum_concurrency or 1), int(source.batch_size or 1)


def flow_scan_job(c: Any) -> Callable[[], Any]:
    """The app's scan_flow schedule (flow, issue 12), at any hour like the local sync."""

    def scan() -> None:
        from chalicelib import bootstrap

        result = bootstrap.run_flow_scan(c, force=True)
        if result.get("new") or result.get("errors"):
            log.info("flow scan: %s", json.dumps(result, default=str))

    return scan


def main(role: str = "consumers") -> int:
    """A process of the local stack, configured from the environment the stack hands it.

    `consumers` (`python -m devstack.worker`): the queue consumers, the heartbeat and the
    notification tap — the SQS Lambda. `schedules` (`python -m devstack.schedules`): every
    scheduled job — the sweeper, the portfolio sync, the price poll, day type, flow scan,
    notes, reports, the IBKR keep-alive — each a Lambda of its own in AWS. Two processes, as
    in AWS, so a schedule's work never holds the interpreter a decision needs."""
    import signal
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    import app as app_module
    from chalicelib import bootstrap

    c = bootstrap.container()
    heartbeat: Heartbeat | None = None
    if role == "consumers":
        concurrency, batch_size = lambda_concurrency(app_module.app)
        consumers = consumer_threads(c, app_module, concurrency, batch_size)
        heartbeat = Heartbeat(c.settings.state_table, consumers)
        threads: list[Any] = [
            *consumers,
            Every(HEARTBEAT_EVERY_S, heartbeat.beat, "heartbeat"),
            notification_tap(c),
        ]
        ready: dict[str, Any] = {"consumers": concurrency, "batch_size": batch_size}
    else:
        threads = schedule_threads(c, app_module)
        ready = {"schedules": [t.name for t in threads]}
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    for thread in threads:
        thread.start()
    if heartbeat is not None:
        heartbeat.beat()
    print(json.dumps({f"{role} ready": ready}), file=sys.stderr, flush=True)
    parent = os.getppid()
    while not stopping.wait(1.0):
        if os.getppid() != parent:  # the stack was killed without stopping us
            break
    for thread in threads:
        thread.stop()
    for thread in threads:
        thread.join(timeout=5)
    if heartbeat is not None:
        try:
            heartbeat.clear()  # stopped on purpose: no stale heartbeat for health to report
        except Exception:
            log.warning("could not clear the worker heartbeat", exc_info=True)
    return 0


def consumer_threads(
    c: Any, app_module: Any, concurrency: int, batch_size: int
) -> list[QueueWorker]:
    window = batching_window_s(app_module.app)  # FLOWTRADER_RANK_WINDOW_S, as SQS would
    return [
        QueueWorker(
            c.settings.queue_url,
            app_module.process_alerts,
            batch_size=batch_size,
            visibility_s=VISIBILITY_S,
            name=f"queue-worker-{i + 1}",
            window_s=window,
        )
        for i in range(concurrency)
    ]


def notification_tap(c: Any) -> Any:
    from devstack.notifications import NotificationTap

    def show_notification(subject: str, message: str) -> None:
        print(f"[notification] {subject}: {message}", flush=True)

    return NotificationTap(c.settings.topic_arn, show_notification)


def schedule_threads(c: Any, app_module: Any) -> list[Every]:
    """The app's schedules at their local cadences."""
    from chalicelib import bootstrap
    from chalicelib.domain import utc_now
    from chalicelib.services.ingest_alert import requeue_pending
    from chalicelib.services.sync_portfolio import scheduled_sync
    from devstack.reports_and_alerts import local_jobs as local_report_jobs

    def sweep() -> None:
        depth = c.alert_queue.depth()  # first: see requeue_pending
        requeued = requeue_pending(c.alert_store, c.alert_queue, utc_now(), waiting=depth)
        if requeued:
            log.info("sweeper queued %d alert(s) nobody would take: %s", len(requeued), requeued)

    def sync_portfolio() -> None:
        # The app's schedule, every SYNC_EVERY_S instead of every minute, at any hour: the
        # local stack trades whenever it runs (market hours are off for it by default).
        result = scheduled_sync(c.broker, c.state_store, utc_now(), notifier=c.notifier, force=True)
        if result.get("trades") or result.get("drift"):
            log.info("portfolio sync: %s", json.dumps(result, default=str))

    def price_poll() -> None:
        # The app's price_poll schedule, every price_poll_s, at any hour (paper broker only).
        from chalicelib.services.price_poll import scheduled_poll

        result = scheduled_poll(
            c.broker,
            lambda: c.market_data(c.current_data_source()),
            c.state_store,
            utc_now(),
            marks=c.poll_marks,
            notifier=c.notifier,
            clock=utc_now,
            force=True,
        )
        if result.get("filled") or result.get("canceled"):
            log.info("price poll: %s", json.dumps(result, default=str))

    return [
        Every(15.0, sweep, "sweeper"),
        Every(SYNC_EVERY_S, sync_portfolio, "portfolio-sync"),
        # --- price poll and replay (issue 11): its local schedules go below ---
        Every(c.settings.price_poll_s, price_poll, "price-poll"),
        #
        # --- day type (issue 11): its local schedules go below ---
        Every(DAY_TYPE_EVERY_S, lambda: app_module.classify_day.func(None), "day-type"),
        #
        # --- flow (issue 12): its local schedules go below ---
        *(
            [Every(FLOW_SCAN_EVERY_S, flow_scan_job(c), "flow-scan")]
            if c.settings.unusual_whales_api_key.get_secret_value()
            else []
        ),
        #
        # --- score, notes (issue 12): its local schedules go below ---
        Every(3600.0, lambda: app_module.premarket_note.func(None), "premarket-note"),
        #
        # --- reports and alert channels (issue 13): its local schedules go below ---
        *local_report_jobs(c),
        #
        # --- ibkr (issue 14): its local schedules go below ---
        *(
            [Every(60.0, lambda: bootstrap.ibkr_keep_alive(c), "ibkr-tickle")]
            if bootstrap.uses_ibkr(c.settings)
            else []
        ),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
