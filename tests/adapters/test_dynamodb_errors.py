"""Every DynamoDB adapter maps AWS errors the same way (`chalicelib.adapters.dynamodb_table`):
throttling and unreachable storage are the retryable domain error (`StorageUnavailable`, the
paper broker's `BrokerUnavailable`), a condition that did not hold is what it was before.

moto cannot throttle, so a throttled answer is injected where DynamoDB's would arrive: a
`before-send` hook on a real botocore client (against moto's server) hands botocore the HTTP
response DynamoDB documents for that error, and botocore parses it as it would AWS's. The
clients here make one attempt (`total_max_attempts=1`): the boto3 default retries throttling
first (docs/architecture.md, "Retries"), which only makes the test slower.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from chalicelib.adapters.dynamodb_alerts import DynamoAlertStore
from chalicelib.adapters.dynamodb_state import DynamoStateStore
from chalicelib.adapters.dynamodb_table import ConditionFailed, DynamoTable
from chalicelib.adapters.paper_broker import PaperBroker
from chalicelib.adapters.paper_broker.store import PaperStore
from chalicelib.ports import BrokerUnavailable, StorageUnavailable

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
THROTTLING = (
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
)
ONE_ATTEMPT = Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=5)


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any):
        yield self._data


def _aws_error(code: str, **extra: Any) -> AWSResponse:
    status = 500 if code == "InternalServerError" else 400
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", **extra})
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected"}
    return AWSResponse("https://dynamodb.invalid/", status, headers, _Body(body.encode()))


def dynamodb(aws, fail: dict[str, AWSResponse] | None = None) -> Any:
    """A boto3 DynamoDB client on moto's server whose `fail` operations get that answer."""
    client = boto3.client("dynamodb", config=ONE_ATTEMPT)
    for operation, response in (fail or {}).items():
        client.meta.events.register(
            f"before-send.dynamodb.{operation}", lambda response=response, **_: response
        )
    return client


def unreachable() -> Any:
    """A client whose endpoint refuses connections: botocore raises a BotoCoreError."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", config=ONE_ATTEMPT)


def state(client: Any) -> DynamoStateStore:
    return DynamoStateStore(client, os.environ["FLOWTRADER_STATE_TABLE"])


def alerts(client: Any) -> DynamoAlertStore:
    return DynamoAlertStore(client, os.environ["FLOWTRADER_ALERTS_TABLE"])


def paper(client: Any) -> PaperBroker:
    return PaperBroker(client, os.environ["FLOWTRADER_STATE_TABLE"])


# (adapter call, the operation it makes, the error it must raise)
CALLS: dict[str, tuple[Callable[[Any], Any], str, type[Exception]]] = {
    "state read": (lambda c: state(c).kill_switch(), "GetItem", StorageUnavailable),
    "state query": (lambda c: state(c).positions(), "Query", StorageUnavailable),
    "state conditional write": (
        lambda c: state(c).claim_trade_slot(
            "a1", NOW, window=timedelta(hours=1), limit=3, symbol="AAPL"
        ),
        "PutItem",
        StorageUnavailable,
    ),
    "state transaction": (
        lambda c: state(c).add_realized_pl(NOW.date(), -5.0, key="fill-1"),
        "TransactWriteItems",
        StorageUnavailable,
    ),
    "alerts read": (lambda c: alerts(c).get("01ALERT"), "GetItem", StorageUnavailable),
    "alerts query": (lambda c: alerts(c).pending(NOW), "Query", StorageUnavailable),
    "alerts outcome": (
        lambda c: alerts(c).record_outcome("01ALERT", "failed", "x", updated_at=NOW),
        "UpdateItem",
        StorageUnavailable,
    ),
    "paper read": (lambda c: paper(c).get_positions(), "GetItem", BrokerUnavailable),
}


@pytest.mark.parametrize("code", THROTTLING)
@pytest.mark.parametrize("call", CALLS, ids=str)
def test_a_throttled_call_is_the_retryable_domain_error(aws, call, code):
    run, operation, retryable = CALLS[call]
    client = dynamodb(aws, fail={operation: _aws_error(code, message="Rate exceeded")})

    with pytest.raises(retryable, match="throttled"):
        run(client)


@pytest.mark.parametrize("call", CALLS, ids=str)
def test_unreachable_storage_is_the_retryable_domain_error(aws, call):
    run, _, retryable = CALLS[call]

    with pytest.raises(retryable, match="unreachable"):
        run(unreachable())


def test_a_transaction_canceled_for_throttling_is_not_a_booked_key(aws):
    """A canceled transaction is a lost condition unless AWS says it was throttled: P/L
    refused for throttling must be retried, not counted as already booked."""
    throttled = _aws_error(
        "TransactionCanceledException",
        message="Transaction cancelled",
        CancellationReasons=[{"Code": "None"}, {"Code": "ThrottlingError"}],
    )
    store = state(dynamodb(aws, fail={"TransactWriteItems": throttled}))

    with pytest.raises(StorageUnavailable, match="throttled"):
        store.add_realized_pl(NOW.date(), -5.0, key="fill-1")


def test_conditions_that_did_not_hold_are_answered_as_before(aws):
    client = dynamodb(aws)
    store = state(client)
    window = timedelta(hours=1)

    assert store.claim_trade_slot("a1", NOW, window=window, limit=1) is True
    assert store.claim_trade_slot("a2", NOW, window=window, limit=1) is False
    assert store.add_realized_pl(NOW.date(), -5.0, key="fill-1") is True
    assert store.add_realized_pl(NOW.date(), -5.0, key="fill-1") is False
    assert store.acquire_account_lock("w1", NOW, timedelta(seconds=60)) is True
    assert store.acquire_account_lock("w2", NOW, timedelta(seconds=60)) is False
    store.release_account_lock("w2")  # not the holder: nothing happens
    assert store.acquire_account_lock("w2", NOW, timedelta(seconds=60)) is False
    assert alerts(client).record_outcome("01MISSING", "failed", "x") is False

    table = DynamoTable(client, os.environ["FLOWTRADER_STATE_TABLE"])
    with pytest.raises(ConditionFailed) as lost:
        table.call(
            "put_item",
            Item={"pk": {"S": "lock"}, "sk": {"S": "account"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    assert lost.value.code == "ConditionalCheckFailedException"

    paper_store = PaperStore(client, os.environ["FLOWTRADER_STATE_TABLE"], starting_cash=0)
    paper_store.save_quote("AAPL", 100.0, NOW)
    paper_store.save_quote("AAPL", 99.0, NOW - timedelta(minutes=1))  # older: a lost condition
    assert str(paper_store.quote("AAPL")) == "100.0"


def test_queries_read_every_page(aws):
    client = dynamodb(aws)
    table = DynamoTable(client, os.environ["FLOWTRADER_STATE_TABLE"])
    pages: list[str] = []
    client.meta.events.register("before-call.dynamodb.Query", lambda **_: pages.append("page"))
    for i in range(7):
        table.call("put_item", Item={"pk": {"S": "paging"}, "sk": {"S": f"{i:02d}"}})

    items = list(
        table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "paging"}},
            Limit=3,
        )
    )

    assert [it["sk"]["S"] for it in items] == [f"{i:02d}" for i in range(7)]
    assert len(pages) >= 3
