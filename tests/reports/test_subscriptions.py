"""`POST/DELETE /api/subscriptions`: phone numbers and emails on the SNS topic (moto's
server), validated, token-protected, with an optional event filter that SNS applies."""

from __future__ import annotations

import json
import os

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.services import notify
from tests.conftest import API_TOKEN

AUTH = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}


def subscribers() -> list[dict]:
    sns = boto3.client("sns")
    return sns.list_subscriptions_by_topic(TopicArn=os.environ["FLOWTRADER_TOPIC_ARN"])[
        "Subscriptions"
    ]


def post(client, body, headers=AUTH):
    return client.http.post("/api/subscriptions", headers=headers, body=json.dumps(body))


def delete(client, body, headers=AUTH):
    return client.http.delete("/api/subscriptions", headers=headers, body=json.dumps(body))


def test_a_phone_number_subscribes_by_sms_and_unsubscribes(client):
    got = post(client, {"endpoint": "+15551234567"})

    assert got.status_code == 201
    body = json.loads(got.body)
    assert (body["protocol"], body["endpoint"], body["events"]) == ("sms", "+15551234567", "all")
    assert [(s["Protocol"], s["Endpoint"]) for s in subscribers()] == [("sms", "+15551234567")]

    gone = delete(client, {"endpoint": "+15551234567"})
    assert gone.status_code == 200
    assert json.loads(gone.body)["removed"] == 1
    assert subscribers() == []
    assert delete(client, {"endpoint": "+15551234567"}).status_code == 404


def test_an_email_subscribes_and_waits_for_its_confirmation(client):
    got = post(client, {"endpoint": "trader@example.com"})

    assert got.status_code == 201
    assert json.loads(got.body)["pending_confirmation"] is True
    assert [s["Protocol"] for s in subscribers()] == ["email"]


def test_a_subscription_with_events_hears_only_those(client):
    """The event list becomes an SNS filter policy on the `event` message attribute."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="stop-outs-only")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    got = post(client, {"endpoint": "+15557654321", "events": ["stopped_out", "failed"]})
    [sub] = [s for s in subscribers() if s["Protocol"] == "sms"]
    policy = boto3.client("sns").get_subscription_attributes(
        SubscriptionArn=sub["SubscriptionArn"]
    )["Attributes"]["FilterPolicy"]
    assert got.status_code == 201
    assert json.loads(policy) == {"event": ["failed", "stopped_out"]}

    # The same policy on a queue subscriber shows what SNS delivers under it.
    boto3.client("sns").subscribe(
        TopicArn=os.environ["FLOWTRADER_TOPIC_ARN"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"FilterPolicy": policy},
    )
    sns = bootstrap.container().notifier.channels["sns"]
    notify.deliver(sns, "flowtrader: rejected AAPL", "Rejected AAPL: cooldown", "rejected")
    notify.deliver(sns, "flowtrader: stop", "Stop-loss hit AAPL: −$31.20", "stopped_out")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert [json.loads(m["Body"])["Subject"] for m in got.get("Messages", [])] == [
        "flowtrader: stop"
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"endpoint": "5551234567"}, "endpoint"),  # no country code: not E.164
        ({"endpoint": "+1 555 123 4567"}, "endpoint"),
        ({"endpoint": "trader@"}, "endpoint"),
        ({"endpoint": "a@b.com, c@d.com"}, "endpoint"),
        ({}, "endpoint"),
        ({"endpoint": 15551234567}, "endpoint"),
        ({"endpoint": "+15551234567", "events": ["lunch"]}, "events"),
        ({"endpoint": "+15551234567", "events": "stopped_out"}, "events"),
        (["+15551234567"], "body"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_subscribes_nothing(client, body, field):
    got = post(client, body)

    assert got.status_code == 400
    assert json.loads(got.body)["field"] == field
    assert subscribers() == []


def test_subscriptions_need_the_token(client):
    assert post(client, {"endpoint": "+15551234567"}, headers={}).status_code == 401
    wrong = {**AUTH, "Authorization": "Bearer nope"}
    assert delete(client, {"endpoint": "+15551234567"}, headers=wrong).status_code == 401
    assert subscribers() == []
