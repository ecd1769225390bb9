"""The sweeper queues only what nobody would take: an alert whose enqueue failed, or whose
message is gone — never the alerts simply waiting their turn in a backlog, which before fed
the backlog with a second message each (issue 9, part 3). Against moto's SQS and DynamoDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3

from chalicelib import bootstrap
from chalicelib.domain import Alert
from chalicelib.services.ingest_alert import new_alert_id, requeue_pending

T0 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def _store(n: int, *, enqueue: bool, start: datetime = T0, unqueued: bool = False) -> list[str]:
    c = bootstrap.container()
    ids = []
    for i in range(n):
        at = start + timedelta(milliseconds=10 * i)
        alert_id = new_alert_id(at)
        alert = Alert.model_validate({"ticker": "NASDAQ:AAPL", "action": "buy"})
        c.alert_store.store_once(alert_id, f"k-{alert_id}", alert, at, at + timedelta(days=1), None)
        if enqueue:
            c.alert_queue.enqueue(alert_id)
        if unqueued:
            c.alert_store.mark_unqueued(alert_id)
        ids.append(alert_id)
    return ids


def _depth() -> int:
    return bootstrap.container().alert_queue.depth()


def _sweep(now: datetime, with_depth: bool = True) -> list[str]:
    c = bootstrap.container()
    depth = _depth() if with_depth else None
    return requeue_pending(c.alert_store, c.alert_queue, now, waiting=depth)


def _take_all() -> list[str]:
    """A worker taking every message: claims the alert (it leaves the pending set)."""
    import json

    c = bootstrap.container()
    sqs = boto3.client("sqs")
    taken = []
    while True:
        got = sqs.receive_message(QueueUrl=c.settings.queue_url, MaxNumberOfMessages=10)
        if not got.get("Messages"):
            return taken
        for m in got["Messages"]:
            alert_id = json.loads(m["Body"])["alert_id"]
            c.alert_store.record_outcome(alert_id, "received", "taken")
            sqs.delete_message(QueueUrl=c.settings.queue_url, ReceiptHandle=m["ReceiptHandle"])
            taken.append(alert_id)


def test_a_healthy_backlog_is_not_requeued(aws):
    _store(30, enqueue=True)
    assert _sweep(T0 + timedelta(minutes=2)) == []
    assert _depth() == 30  # no second message for any of them


def test_an_alert_whose_enqueue_failed_is_queued_once_even_behind_a_backlog(aws):
    _store(30, enqueue=True)
    (failed,) = _store(1, enqueue=False, unqueued=True, start=T0 + timedelta(seconds=1))
    assert _sweep(T0 + timedelta(seconds=45)) == [failed]
    assert _depth() == 31
    assert bootstrap.container().alert_store.get(failed)["status"] == "queued"
    assert _sweep(T0 + timedelta(minutes=10)) == []  # swept once


def test_an_alert_whose_message_was_lost_is_queued_once_nobody_can_take_it(aws):
    backlog = _store(10, enqueue=True)
    (lost,) = _store(1, enqueue=False, start=T0 + timedelta(seconds=1))  # API died in between
    later = _store(10, enqueue=True, start=T0 + timedelta(seconds=2))
    # Eleven pending, ten messages: one is missing; the oldest queued alert is queued again
    # (the queue is consumed about oldest first, so the lost one becomes the oldest).
    assert _sweep(T0 + timedelta(seconds=45)) == [backlog[0]]
    assert _sweep(T0 + timedelta(seconds=60)) == []  # the count adds up again
    taken = _take_all()
    assert set(taken) == set(backlog) | set(later)
    assert _sweep(T0 + timedelta(seconds=75)) == [lost]  # nobody could take it: queued
    assert _take_all() == [lost]
    assert _sweep(T0 + timedelta(minutes=10)) == []


def test_without_the_queue_depth_only_alerts_waiting_past_lost_after_are_requeued(aws):
    old = _store(3, enqueue=True)
    _store(3, enqueue=True, start=T0 + timedelta(minutes=4))
    assert _sweep(T0 + timedelta(minutes=4, seconds=40), with_depth=False) == []
    assert _sweep(T0 + timedelta(minutes=5, seconds=30), with_depth=False) == old


def test_alerts_younger_than_the_grace_are_left_alone(aws):
    _store(3, enqueue=False, unqueued=True)
    assert _sweep(T0 + timedelta(seconds=20)) == []
    assert len(_sweep(T0 + timedelta(seconds=31))) == 3
