"""End to end: the local stack (`python -m devstack`, as `make run`) replays the shipped AMZN
sample as the market clock; a position opened through the webhook with a stop is stopped
out by the price poll, with no further alert."""

from __future__ import annotations

import csv
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.devstack.stack import PASSPHRASE, Stack

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "backtest" / "data" / "AMZN_1min_2025-01-13.csv"
SPEED = 240  # four market minutes per second


def sample_bars() -> list[tuple[datetime, float, float]]:
    with SAMPLE.open(newline="") as f:
        return [
            (datetime.fromisoformat(r["timestamp"]), float(r["low"]), float(r["close"]))
            for r in csv.DictReader(f)
        ]


def a_stop_the_market_reaches(after: datetime, price: float) -> tuple[float, datetime]:
    """A stop 5 cents under `price` and the first bar starting at or after `after` + 1 min
    that crosses it (read from the sample the replay plays)."""
    stop = round(price - 0.05, 2)
    for t, low, _ in sample_bars():
        if t >= after + timedelta(minutes=1) and low < stop:
            return stop, t
    raise AssertionError(f"the sample never trades below {stop} after {after}")


def wait_for(what, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.5)
    return what()


@pytest.fixture
def stack(tmp_path):
    running = Stack(
        tmp_path,
        FLOWTRADER_DATA_SOURCE="replay",
        FLOWTRADER_REPLAY_SPEED=str(SPEED),
        FLOWTRADER_PRICE_POLL_S="1",
    )
    yield running
    running.stop()


def test_a_stop_fires_with_no_alert_in_the_replay(stack):
    assert "market replay: AMZN bars of AMZN_1min_2025-01-13.csv" in stack.console
    # The replay starts before the open (the stack's start-up allowance): wait for a bar.
    bars = wait_for(
        lambda: stack.request("/api/bars?symbol=AMZN&limit=1", auth=True)[1].get("bars"), 60
    )
    assert bars, stack.request("/api/bars?symbol=AMZN&limit=1", auth=True)
    (last,) = bars
    assert stack.request("/api/bars?symbol=AMZN&limit=1", auth=True)[1]["source"] == "replay"
    price = last["close"]
    stop, crossing = a_stop_the_market_reaches(datetime.fromisoformat(last["time"]), price)

    status, accepted = stack.request(
        "/webhook",
        {
            "passphrase": PASSPHRASE,
            "ticker": "NASDAQ:AMZN",
            "action": "buy",
            "price": price,
            "quantity": 5,
            "stop_loss": stop,
            "take_profit": round(price + 50, 2),
        },
    )
    assert status == 202, accepted
    alert_id = accepted["alert_id"]
    assert stack.wait_decided([alert_id], timeout_s=30)[alert_id] == "filled"

    # No more alerts: the replay reaches the dip and the poll fills the stop.
    def stopped_out():
        events = stack.request(f"/api/alerts/{alert_id}/journal", auth=True)[1]["events"]
        return [e["data"] for e in events if e["event"] == "trade"]

    wall_s = (crossing - datetime.fromisoformat(last["time"])).total_seconds() / SPEED
    trades = wait_for(stopped_out, timeout_s=wall_s + 30)
    assert trades, "no stop fill by the poll:\n" + "".join(
        line for line in stack.lines if '" 200 -' not in line and '" 202 -' not in line
    )
    (trade,) = trades
    assert trade["exit_reason"] == "stop_loss"
    assert trade["exit_price"] <= stop
    # The first bar that started after the order was placed and went below the stop.
    orders = stack.request("/api/orders", auth=True)[1]["orders"]
    (entry,) = [o for o in orders if o["alert_id"] == alert_id]
    placed = datetime.fromisoformat(entry["submitted_at"])
    _, first_cross = a_stop_the_market_reaches(placed - timedelta(minutes=1), price)
    exit_time = datetime.fromisoformat(trade["exit_time"])
    # The market may already be below the stop when the order lands (the replay runs on while
    # the alert is decided): then the next poll's price fills it, up to a poll later.
    poll = timedelta(seconds=(1 + 2) * SPEED)  # the poll's cadence plus a pass, market time
    assert placed < exit_time <= max(first_cross + timedelta(minutes=1), placed) + poll, (
        placed,
        first_cross,
    )
    # The trade is booked by the sync; its positions snapshot lands a moment later.
    assert wait_for(
        lambda: stack.request("/api/positions", auth=True)[1]["count"] == 0, timeout_s=15
    )
    assert wait_for(lambda: "Stop-loss hit AMZN" in stack.console, timeout_s=15)
    assert "price poll:" in stack.console
