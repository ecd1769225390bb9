"""The positions snapshot in the DynamoDB state table writes only what changed (issue 9 part 3):
after each alert the use case hands it every position the broker holds, so rewriting them all
would make an alert's cost grow with the number of positions."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from chalicelib.adapters.dynamodb_state import DynamoStateStore
from chalicelib.domain import Position

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


@pytest.fixture
def store_and_calls(aws):
    client = boto3.client("dynamodb")
    calls: Counter[str] = Counter()
    client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.update([model.name])
    )
    return DynamoStateStore(client, os.environ["FLOWTRADER_STATE_TABLE"]), calls


def held(n: int, **changes: float) -> list[Position]:
    positions = [Position(symbol=f"S{i:03d}", qty=10, avg_entry_price=100.0) for i in range(n)]
    return [
        p.model_copy(update={"market_price": changes[p.symbol]}) if p.symbol in changes else p
        for p in positions
    ]


def writes(calls: Counter[str]) -> int:
    return calls["PutItem"] + calls["DeleteItem"] + calls["BatchWriteItem"]


def test_an_unchanged_snapshot_writes_nothing(store_and_calls):
    store, calls = store_and_calls
    store.replace_positions(held(50), NOW)
    calls.clear()

    store.replace_positions(held(50), NOW + timedelta(minutes=1))

    assert writes(calls) == 0
    assert calls["Query"] == 1
    assert len(store.positions()) == 50


def test_only_the_changed_position_is_written_and_a_closed_one_deleted(store_and_calls):
    store, calls = store_and_calls
    store.replace_positions(held(50), NOW)
    calls.clear()

    moved = [p for p in held(50, S007=104.5) if p.symbol != "S010"]
    store.replace_positions(moved, NOW + timedelta(minutes=1))

    assert (calls["PutItem"], calls["DeleteItem"]) == (1, 1)
    stored = {p.symbol: p for p in store.positions()}
    assert "S010" not in stored
    assert stored["S007"].market_price == 104.5
    assert sorted(stored) == sorted(p.symbol for p in moved)


def test_a_flat_position_in_the_input_is_removed(store_and_calls):
    store, _ = store_and_calls
    store.replace_positions(held(2), NOW)

    store.replace_positions([Position(symbol="S000", qty=0, avg_entry_price=100.0)], NOW)

    assert store.positions() == []
