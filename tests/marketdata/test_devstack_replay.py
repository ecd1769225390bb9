"""`make run`'s market replay set-up (devstack/replay.py): the shipped sample at 60× by
default, its clock handed to the other processes, resumed after a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import clock
from chalicelib.adapters.replay import ReplayClock
from devstack.replay import SAMPLE, STARTUP_S, ReplaySaver, configure

OPEN = datetime(2025, 1, 13, 14, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def wall_clock_after(monkeypatch):
    monkeypatch.delenv("FLOWTRADER_FRESH", raising=False)
    yield
    clock.install(None)


def test_make_run_replays_the_shipped_sample_at_60x_by_default(tmp_path):
    env: dict[str, str] = {}

    replay = configure(env, tmp_path)

    assert replay is not None
    assert env["FLOWTRADER_DATA_SOURCE"] == "replay"
    assert env["FLOWTRADER_REPLAY_FILE"] == str(SAMPLE)
    assert (replay.symbol, replay.clock.speed, replay.resumed) == ("AMZN", 60.0, False)
    assert replay.clock.market_start == OPEN
    # the clock reaches the open when the stack is up, not a quarter of an hour into it
    assert replay.clock() <= OPEN
    assert replay.clock() >= OPEN - timedelta(seconds=STARTUP_S * 60 + 60)
    handed = clock.from_env(env)  # what the worker process builds from its environment
    assert isinstance(handed, ReplayClock)
    assert (handed.market_start, handed.speed, handed.wall_start) == (
        OPEN,
        60.0,
        pytest.approx(replay.clock.wall_start, abs=1e-3),
    )
    assert clock.current() is replay.clock
    assert "from 2025-01-13 09:30 New York, 60× real time" in replay.describe()


def test_another_source_runs_on_the_wall_clock(tmp_path):
    env = {"FLOWTRADER_DATA_SOURCE": "tradingview"}

    assert configure(env, tmp_path) is None
    assert "FLOWTRADER_CLOCK" not in env


def test_a_restart_resumes_the_replay_unless_fresh(tmp_path, monkeypatch):
    first = configure({"FLOWTRADER_REPLAY_SPEED": "120"}, tmp_path)
    assert first is not None
    first.clock.wall_start -= 60  # a minute of wall time later: two hours of market time
    played_to = first.clock()
    ReplaySaver(first, tmp_path).save()

    again = configure({"FLOWTRADER_REPLAY_SPEED": "120"}, tmp_path)
    assert again is not None
    assert again.resumed
    assert 0 <= (again.clock.market_start - played_to).total_seconds() < 5  # where it was

    monkeypatch.setenv("FLOWTRADER_FRESH", "1")
    fresh = configure({}, tmp_path)
    assert fresh is not None
    assert not fresh.resumed
    assert fresh.clock.market_start == OPEN
