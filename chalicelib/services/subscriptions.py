"""`POST/DELETE /api/subscriptions`: who hears the SNS topic (SMS numbers, email addresses).

The endpoint decides the protocol: an E.164 phone number (`+15551234567`, as SNS requires
for SMS: https://docs.aws.amazon.com/sns/latest/dg/sms_publish-to-phone.html) is `sms`,
an email address is `email` (SNS mails a confirmation link first). `events`, optional,
limits what the subscriber hears (services/alerting.EVENTS). Bad input is a 400 naming the
field, and nothing is subscribed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from chalicelib.ports import Subscriptions
from chalicelib.services.alerting import EVENTS

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
EMAIL = re.compile(r"^[^@\s,;<>\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
MAX_BODY = 4096


class BadSubscription(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field

    def body(self) -> dict[str, str]:
        return {"error": str(self), "field": self.field}


@dataclass(frozen=True)
class SubscriptionRequest:
    protocol: str  # sms | email
    endpoint: str
    events: list[str] | None


def parse_request(raw: bytes, *, with_events: bool = True) -> SubscriptionRequest:
    if len(raw) > MAX_BODY:
        raise BadSubscription("body too large", "body")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        example = '{"endpoint": "+15551234567"}'
        raise BadSubscription(f"body must be JSON like {example}", "body") from None
    if not isinstance(body, dict):
        raise BadSubscription("body must be a JSON object", "body")
    endpoint = body.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise BadSubscription("endpoint is required: a phone number or an email", "endpoint")
    endpoint = endpoint.strip()
    if E164.match(endpoint):
        protocol = "sms"
    elif len(endpoint) <= 254 and EMAIL.match(endpoint):
        protocol = "email"
    else:
        raise BadSubscription(
            "endpoint must be an E.164 phone number (+15551234567) or an email address",
            "endpoint",
        )
    events = body.get("events")
    if events is not None:
        if not with_events:
            raise BadSubscription("events are not used when unsubscribing", "events")
        if not isinstance(events, list) or not events:
            raise BadSubscription("events must be a non-empty list of event names", "events")
        unknown = [e for e in events if e not in EVENTS]
        if unknown:
            raise BadSubscription(
                f"unknown events {unknown}; events: {', '.join(EVENTS)}", "events"
            )
    return SubscriptionRequest(protocol, endpoint, events)


def subscribe(subs: Subscriptions, request: SubscriptionRequest) -> dict[str, Any]:
    arn = subs.subscribe(request.protocol, request.endpoint, request.events)
    return {
        "protocol": request.protocol,
        "endpoint": request.endpoint,
        "events": request.events or "all",
        "subscription_arn": arn,
        "pending_confirmation": request.protocol == "email",  # SNS mails a link to confirm
    }


def unsubscribe(subs: Subscriptions, request: SubscriptionRequest) -> dict[str, Any]:
    removed = subs.unsubscribe(request.protocol, request.endpoint)
    return {"protocol": request.protocol, "endpoint": request.endpoint, "removed": removed}
