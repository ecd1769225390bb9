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
