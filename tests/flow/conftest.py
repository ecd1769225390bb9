"""Shared pieces of the flow tests: a fake clock the adapter sleeps on, rows in the shapes of
the spec's examples (tests/fixtures/unusual_whales/), the local UW server."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters.unusual_whales import UnusualWhales
from tests.fakes.unusual_whales_server import FakeUnusualWhales, load_fixture

TOKEN = "uw-secret-token-0123456789"
# 2026-03-02 (a Monday) 15:00:30 UTC = 10:00:30 New York, mid-minute.
NOW = datetime(2026, 3, 2, 15, 0, 30, tzinfo=UTC)


class FakeClock:
    """time.time for the adapter; `sleep` moves it on and records how long was asked for."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


def uw_time(moment: datetime) -> str:
    """UW's spelling of a time: "2023-12-12 16:35:52.168490+00:00"."""
    return moment.astimezone(UTC).isoformat(sep=" ")


def alert_row(**fields: Any) -> dict[str, Any]:
    """The spec's flow alert example with `fields` replaced (created_at: a datetime)."""
    row = copy.deepcopy(load_fixture("flow_alerts.json")["data"][0])
    if isinstance(fields.get("created_at"), datetime):
        fields["created_at"] = uw_time(fields["created_at"])
    row.update(fields)
    return row


def darkpool_row(**fields: Any) -> dict[str, Any]:
    row = copy.deepcopy(load_fixture("darkpool.json")["data"][0])
    if isinstance(fields.get("executed_at"), datetime):
        fields["executed_at"] = uw_time(fields["executed_at"])
    row.update(fields)
    return row


def tick_row(**fields: Any) -> dict[str, Any]:
    row = copy.deepcopy(load_fixture("net_prem_ticks.json")["data"][0])
    if isinstance(fields.get("tape_time"), datetime):
        fields["tape_time"] = uw_time(fields["tape_time"])
    row.update(fields)
    return row


@pytest.fixture
def uw() -> Iterator[FakeUnusualWhales]:
    with FakeUnusualWhales(TOKEN) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW.timestamp())


def make_client(server: FakeUnusualWhales, clock: FakeClock, **kwargs: Any) -> UnusualWhales:
    options: dict[str, Any] = {"base_url": server.url, "timeout_s": 5.0, "clock": clock}
    options["sleep"] = clock.sleep
    options.update(kwargs)
    return UnusualWhales(options.pop("token", TOKEN), **options)
