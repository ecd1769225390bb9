"""One DynamoDB table through a boto3 client: calls and paged queries, every AWS error mapped
the same way for every DynamoDB adapter (`dynamodb_alerts`, `dynamodb_state`,
`paper_broker.store`).

- A condition that did not hold (`ConditionalCheckFailedException`, or a transaction
  canceled by its conditions or a conflicting transaction) is `ConditionFailed`: nothing was
  written, and the adapter decides what that means (False, `Conflict`, the first claimant).
- Anything else — throttling (`ProvisionedThroughputExceededException`,
  `ThrottlingException`, `RequestLimitExceeded`, `InternalServerError`, a transaction
  canceled for throttling), any other AWS error, a connection failure or timeout
  (`BotoCoreError`) — is the adapter's *unavailable* error: `StorageUnavailable` by default,
  `BrokerUnavailable` for the paper broker. Both are retryable: the worker records the alert
  `failed` and SQS delivers it again.

Retries: none here. botocore's own retry handler has already retried throttling and 5xx
inside the call (boto3's default for DynamoDB: up to 10 attempts with exponential backoff)
before an error reaches this module; the retry after that is the queue's redelivery
(docs/architecture.md, "Retries").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.ports import StorageUnavailable

THROTTLED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
    }
)
CONDITION_FAILED = frozenset({"ConditionalCheckFailedException", "TransactionCanceledException"})
_THROTTLED_REASONS = frozenset({"ProvisionedThroughputExceeded", "ThrottlingError"})
_MULTI_TABLE = frozenset(
    {"transact_write_items", "transact_get_items", "batch_get_item", "batch_write_item"}
)  # these name the table per item, not in a TableName argument


class ConditionFailed(Exception):
    """A conditional write's condition did not hold; nothing was written. `code` is AWS's."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _throttled_transaction(exc: ClientError) -> bool:
    reasons = exc.response.get("CancellationReasons") or []
    return any(reason.get("Code") in _THROTTLED_REASONS for reason in reasons)


class DynamoTable:
    """The calls one adapter makes on its table, with AWS errors mapped (module docstring).

    `unavailable` builds the adapter's retryable error from a message.
    """

    def __init__(
        self,
        client: Any,
        name: str,
        *,
        unavailable: Callable[[str], Exception] = StorageUnavailable,
        label: str = "",
    ) -> None:
        self.client = client
        self.name = name
        self._unavailable = unavailable
        self._label = label or name

    def call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        """`client.<op>(TableName=name, **kwargs)` (no TableName for transactions and batches)."""
        if op not in _MULTI_TABLE:
            kwargs = {"TableName": self.name, **kwargs}
        try:
            result: dict[str, Any] = getattr(self.client, op)(**kwargs)
        except ClientError as exc:
            code = error_code(exc)
            if code in CONDITION_FAILED and not _throttled_transaction(exc):
                raise ConditionFailed(code) from exc
            reason = "throttled" if code in THROTTLED or _throttled_transaction(exc) else "failed"
            raise self._unavailable(f"{self._label}: {op} {reason} ({code or exc})") from exc
        except BotoCoreError as exc:
            raise self._unavailable(f"{self._label} unreachable: {exc}") from exc
        return result

    def query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item the query matches, page after page (`LastEvaluatedKey`)."""
        args = dict(kwargs)
        while True:
            page = self.call("query", **args)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
