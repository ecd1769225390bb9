"""Notifications to an SNS topic: one publish serves SMS, email and any other subscriber.

The message goes out with `MessageStructure="json"`, so each protocol gets its own text:
SMS subscribers the first line only (at most `sms_chars`, 160 by default: one SMS segment),
email and everything else (SQS, Lambda, the local console tap) the full message; the email
subject is `subject`, cleaned to what SNS accepts (ASCII, one line, at most 100 chars).
SMS are sent as `Transactional` (delivered with priority; they are about money). The
message attribute `event` (filled, stopped_out, rejected, …) lets a subscription take only
some events with a filter policy (`POST /api/subscriptions` with `events`).

Raises on failure (a missing topic, throttling): the caller's fan-out logs it and moves on.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

SUBJECT_CHARS = 100


def sms_text(message: str, limit: int = 160) -> str:
    """The first line of `message` (whitespace collapsed), cut to `limit` with an ellipsis."""
    lines = message.strip().splitlines()
    first = " ".join(lines[0].split()) if lines else ""
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def sns_subject(subject: str) -> str:
    """ASCII, single line, at most 100 characters, never empty (SNS's Subject rules)."""
    ascii_text = unicodedata.normalize("NFKD", subject).encode("ascii", "ignore").decode()
    clean = " ".join(ascii_text.split())
    return (clean[:SUBJECT_CHARS].rstrip()) or "flowtrader"


class SnsNotifier:
    def __init__(self, client: Any, topic_arn: str, *, sms_chars: int = 160) -> None:
        self._sns = client
        self._topic_arn = topic_arn
        self._sms_chars = sms_chars

    def notify(self, subject: str, message: str, *, event: str = "info") -> None:
        payload = {
            "default": message,
            "email": message,
            "sms": sms_text(message, self._sms_chars),
        }
        self._sns.publish(
            TopicArn=self._topic_arn,
            Subject=sns_subject(subject),
            Message=json.dumps(payload),
            MessageStructure="json",
            MessageAttributes={
                "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
                "event": {"DataType": "String", "StringValue": event},
            },
        )


class SnsSubscriptions:
    """Subscribers of the topic (`Subscriptions`): SMS numbers and email addresses.

    `events` becomes a subscription filter policy on the `event` message attribute
    (https://docs.aws.amazon.com/sns/latest/dg/sns-subscription-filter-policies.html), so a
    phone can take only stop-outs while the inbox takes everything.
    """

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._sns = client
        self._topic_arn = topic_arn

    def subscribe(self, protocol: str, endpoint: str, events: list[str] | None) -> str:
        attributes = {"FilterPolicy": json.dumps({"event": sorted(events)})} if events else {}
        got = self._sns.subscribe(
            TopicArn=self._topic_arn,
            Protocol=protocol,
            Endpoint=endpoint,
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )
        return str(got["SubscriptionArn"])

    def _matching(self, protocol: str, endpoint: str) -> list[str]:
        arns: list[str] = []
        kwargs: dict[str, Any] = {"TopicArn": self._topic_arn}
        while True:
            page = self._sns.list_subscriptions_by_topic(**kwargs)
            for sub in page.get("Subscriptions", []):
                same = sub.get("Protocol") == protocol and sub.get("Endpoint") == endpoint
                if same and str(sub.get("SubscriptionArn", "")).startswith("arn:"):
                    arns.append(sub["SubscriptionArn"])
            if not page.get("NextToken"):
                return arns
            kwargs["NextToken"] = page["NextToken"]

    def unsubscribe(self, protocol: str, endpoint: str) -> int:
        arns = self._matching(protocol, endpoint)
        for arn in arns:
            self._sns.unsubscribe(SubscriptionArn=arn)
        return len(arns)
