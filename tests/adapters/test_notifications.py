"""Notifications: message formatting, SNS on moto's server read back through a subscribed SQS
queue, and a fan-out that survives a failing channel."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.adapters.sns import SnsNotifier, sns_subject
from chalicelib.domain import Order, OrderStatus, OrderType, Side
from chalicelib.services import notify
from chalicelib.services.notify import FanOutNotifier, Notice

T0 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def order(**kwargs) -> Order:
    base = {
        "broker_order_id": "b-1",
        "client_order_id": "ft-alert-1",
        "symbol": "AAPL",
        "side": Side.BUY,
        "qty": 10,
        "order_type": OrderType.LIMIT,
        "status": OrderStatus.ACCEPTED,
        "limit_price": 190.0,
        "submitted_at": T0,
    }
    return Order(**(base | kwargs))


def bracket() -> Order:
    legs = (
        order(client_order_id="tp", side=Side.SELL, limit_price=200.0),
        order(
            client_order_id="sl",
            side=Side.SELL,
            order_type=OrderType.STOP,
            limit_price=None,
            stop_price=185.0,
        ),
    )
    return order(legs=legs)


class Recording:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def notify(self, subject: str, message: str) -> None:
        self.sent.append((subject, message))


class Broken:
    def notify(self, subject: str, message: str) -> None:
        raise ConnectionError("sns is down")


@pytest.fixture
def tap(aws):
    """An SQS queue subscribed to the notification topic, as a phone or inbox would be."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="notification-test-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("sns").subscribe(
        TopicArn=os.environ["FLOWTRADER_TOPIC_ARN"], Protocol="sqs", Endpoint=arn
    )

    def read() -> list[dict]:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(m["Body"]) for m in got.get("Messages", [])]

    return read


def test_placed_bracket_reads_like_a_trader_wrote_it():
    notice = notify.order_placed(bracket(), alert_id="a-1")

    assert notice.text == "Placed BUY 10 AAPL LMT 190.00 TP 200.00 SL 185.00 (accepted)"
    assert notice.subject == "flowtrader: placed buy AAPL"
    assert "alert a-1" in notice.detail
    assert "client order id ft-alert-1" in notice.detail


def test_filled_names_the_price():
    filled = order(status=OrderStatus.FILLED, filled_qty=10, filled_avg_price=190.04)

    notice = notify.order_update(filled)

    assert notice.kind == "filled"
    assert notice.text == "Filled BUY 10 AAPL @ 190.04"


def test_sms_text_is_one_line_of_at_most_160_characters():
    reason = "insufficient buying power " * 20
    notice = notify.order_rejected("AAPL", reason, alert_id="a-1")

    assert len(notice.text) == 160
    assert notice.text.endswith("…")
    assert "\n" not in notice.text
    assert reason.strip() in notice.detail  # the email keeps the whole reason


def test_error_notice_is_marked_as_an_error():
    notice = notify.order_error("broker unavailable: HTTP 503", alert_id="a-9", symbol="TSLA")

    assert notice.subject == "flowtrader: ERROR TSLA a-9"
    assert notice.text == "ERROR TSLA broker unavailable: HTTP 503"


def test_sns_subject_is_ascii_single_line_and_short():
    assert sns_subject("flowtrader: filled\nbuy AAPL — 190 €") == "flowtrader: filled buy AAPL 190"
    assert len(sns_subject("x" * 300)) == 100
    assert sns_subject("   ") == "flowtrader"


def test_sns_notification_reaches_a_subscriber(aws, tap):
    notice = notify.order_placed(bracket(), alert_id="a-1")
    notifier = SnsNotifier(boto3.client("sns"), os.environ["FLOWTRADER_TOPIC_ARN"])

    notifier.notify(notice.subject, notice.message)

    [envelope] = tap()
    assert envelope["Subject"] == "flowtrader: placed buy AAPL"
    assert envelope["Message"] == notice.message  # SQS gets the full (email) text
    assert envelope["Message"].splitlines()[0] == notice.text


def test_container_notifier_publishes_to_the_topic(aws, tap):
    notify.send(bootstrap.container().notifier, Notice("error", "flowtrader: ERROR", "boom"))

    [envelope] = tap()
    assert (envelope["Subject"], envelope["Message"]) == ("flowtrader: ERROR", "boom")


def test_a_failing_channel_never_raises_and_never_stops_the_others(caplog):
    recording = Recording()
    fan_out = FanOutNotifier([Broken(), recording])

    with caplog.at_level(logging.WARNING):
        fan_out.notify("flowtrader: filled buy AAPL", "Filled BUY 10 AAPL @ 190.04")

    assert recording.sent == [("flowtrader: filled buy AAPL", "Filled BUY 10 AAPL @ 190.04")]
    assert "Broken failed" in caplog.text


def test_sns_to_a_missing_topic_is_logged_not_raised(aws, caplog):
    missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic"
    fan_out = FanOutNotifier([SnsNotifier(boto3.client("sns"), missing)])

    with caplog.at_level(logging.WARNING):
        fan_out.notify("flowtrader: ERROR", "boom")

    assert "SnsNotifier failed" in caplog.text


def test_send_reports_failure_without_raising():
    assert notify.send(Broken(), Notice("error", "s", "t")) is False
    assert notify.send(None, Notice("error", "s", "t")) is False
    assert notify.send(Recording(), Notice("error", "s", "t")) is True
