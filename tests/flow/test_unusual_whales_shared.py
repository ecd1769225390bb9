"""What separate Lambdas share through the state table (moto's server over HTTP): the
per-minute request budget, a block the vendor asked for (429 Retry-After, or
`x-uw-req-per-minute-remaining: 0`), and answers cached for a few seconds. Each adapter
below has its own boto3 client and its own HTTP session, as two Lambdas would."""

from __future__ import annotations

import os
from typing import Any

import boto3
import pytest

from chalicelib.adapters.dynamodb_rate_limit import DynamoRateLimit
from chalicelib.adapters.dynamodb_response_cache import DynamoResponseCache
from chalicelib.adapters.unusual_whales import NAME, UnusualWhales
from chalicelib.ports import FlowUnavailable
from tests.fakes.unusual_whales_server import FLOW_ALERTS
from tests.flow.conftest import make_client


def lambda_client(uw, clock, *, cache: bool = False, **kwargs: Any) -> UnusualWhales:
    """An adapter as a fresh Lambda builds it: own DynamoDB client, own HTTP session."""
    ddb = boto3.session.Session().client("dynamodb")
    table = os.environ["FLOWTRADER_STATE_TABLE"]
    return make_client(
        uw,
        clock,
        rate_limit=DynamoRateLimit(ddb, table, NAME),
        cache=DynamoResponseCache(ddb, table, NAME) if cache else None,
        **kwargs,
    )


@pytest.fixture
def limiter(aws) -> DynamoRateLimit:
    return DynamoRateLimit(
        boto3.session.Session().client("dynamodb"), os.environ["FLOWTRADER_STATE_TABLE"], NAME
    )


def test_two_instances_share_one_per_minute_budget(aws, uw, clock, limiter):
    a = lambda_client(uw, clock, requests_per_minute=3, timeout_s=2.0)
    b = lambda_client(uw, clock, requests_per_minute=3, timeout_s=2.0)

    a.flow_alerts()
    b.flow_alerts()
    a.flow_alerts()
    with pytest.raises(FlowUnavailable, match="client-side rate limit of 3 requests a minute"):
        b.flow_alerts()  # the next minute starts after this call's 2 s budget

    assert len(uw.calls(FLOW_ALERTS)) == 3
    assert limiter.used(clock()) == 3


def test_a_call_waits_for_the_next_minute_when_its_budget_allows(aws, uw, clock):
    a = lambda_client(uw, clock, requests_per_minute=1, timeout_s=40.0)
    b = lambda_client(uw, clock, requests_per_minute=1, timeout_s=40.0)
    a.flow_alerts()  # at :30 of the minute

    b.flow_alerts()

    assert clock.sleeps == [30.0]  # to the top of the next minute, then one request
    assert len(uw.calls(FLOW_ALERTS)) == 2


def test_a_retry_after_seen_by_one_instance_holds_back_the_other(aws, uw, clock):
    uw.inject(FLOW_ALERTS, status=429, body="{}", headers={"Retry-After": "30"}, times=1)
    a = lambda_client(uw, clock, timeout_s=2.0)
    b = lambda_client(uw, clock, timeout_s=2.0)

    with pytest.raises(FlowUnavailable, match="429"):
        a.flow_alerts()
    with pytest.raises(FlowUnavailable, match=r"rate limited for 30\.0 s more"):
        b.flow_alerts()
    assert len(uw.calls(FLOW_ALERTS)) == 1  # b never sent its request

    clock.now += 31
    assert len(b.flow_alerts()) == 1


def test_a_429_storm_across_two_instances_sends_no_request_into_the_block(aws, uw, clock):
    # Every 429 says "come back in 5 s"; both Lambdas wait it out in their 20 s budget.
    uw.inject(FLOW_ALERTS, status=429, body="{}", headers={"Retry-After": "5"}, times=2)
    a = lambda_client(uw, clock, timeout_s=20.0, attempts=4)
    b = lambda_client(uw, clock, timeout_s=20.0, attempts=4)

    assert len(a.flow_alerts()) == 1
    assert len(b.flow_alerts()) == 1

    assert len(uw.calls(FLOW_ALERTS)) == 4  # 2 refused, then one each


def test_remaining_zero_blocks_every_instance_until_the_minute_resets(aws, uw, clock):
    headers = {"x-uw-req-per-minute-remaining": "0", "x-uw-req-per-minute-reset": "15"}
    uw.inject(
        FLOW_ALERTS,
        status=200,
        body='{"data": []}',
        headers=headers,
        content_type="application/json",
    )
    a = lambda_client(uw, clock, timeout_s=20.0)
    b = lambda_client(uw, clock, timeout_s=20.0)

    assert a.flow_alerts() == []
    assert len(b.flow_alerts()) == 1

    assert clock.sleeps == [15.0]


def test_an_answer_is_shared_between_instances_for_the_cache_ttl(aws, uw, clock):
    a = lambda_client(uw, clock, cache=True, cache_ttl_s=20.0)
    b = lambda_client(uw, clock, cache=True, cache_ttl_s=20.0)

    first = a.flow_alerts(("MSFT",))
    again = b.flow_alerts(("MSFT",))
    other = b.flow_alerts(("AAPL",))  # another question is another call

    assert first == again
    assert len(first) == 1
    assert other == []
    assert len(uw.calls(FLOW_ALERTS)) == 2
    clock.now += 21
    b.flow_alerts(("MSFT",))
    assert len(uw.calls(FLOW_ALERTS)) == 3


def test_garbage_is_never_cached(aws, uw, clock):
    uw.inject(FLOW_ALERTS, status=200, body="not json", content_type="application/json")
    a = lambda_client(uw, clock, cache=True)
    b = lambda_client(uw, clock, cache=True)

    with pytest.raises(FlowUnavailable, match="not JSON"):
        a.flow_alerts()
    assert len(b.flow_alerts()) == 1
    assert len(uw.calls(FLOW_ALERTS)) == 2


def test_a_state_table_that_is_gone_leaves_the_vendor_call_alone(uw, clock, caplog):
    # No moto: the limiter and cache fail; the call still goes out (the vendor's own 429s
    # still apply) and the failure is logged.
    ddb = boto3.session.Session(region_name="us-east-1").client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=__import__("botocore.config").config.Config(
            retries={"max_attempts": 1}, connect_timeout=0.2
        ),
    )
    client = make_client(
        uw,
        clock,
        rate_limit=DynamoRateLimit(ddb, "gone", NAME),
        cache=DynamoResponseCache(ddb, "gone", NAME),
    )

    assert len(client.flow_alerts()) == 1
    assert "shared rate limit unavailable" in caplog.text
    assert "response cache unavailable" in caplog.text
