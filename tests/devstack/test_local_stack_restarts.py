"""The local stack (`python -m devstack`, as `make run`) survives its own crashes: a worker
killed with SIGKILL is restarted with backoff and the console says so; a SIGKILL of every
process mid-burst loses nothing that was answered, and the alerts still queued get decided
after the restart (issue 9, parts 4 and 5)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.devstack.stack import Stack, alert

pytestmark = pytest.mark.slow

FILLED = {"accepted", "filled"}


def _symbols(n: int) -> list[str]:
    return [f"Q{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(n)]


def _wait_worker_pid(stack: Stack, not_pid: int | None, timeout_s: float = 30) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, body = stack.request("/api/health")
        worker = next((c for c in body["components"] if c["component"] == "worker"), None)
        if status == 200 and worker and worker["ready"] and worker["pid"] != not_pid:
            return worker["pid"]
        time.sleep(0.3)
    raise AssertionError(f"no live worker in /api/health:\n{stack.console}")


def test_a_killed_worker_is_restarted_with_backoff_and_the_console_says_so(tmp_path: Path):
    stack = Stack(tmp_path)
    try:
        first = _wait_worker_pid(stack, None)
        assert first == stack.pid_of("devstack.worker")
        os.kill(first, signal.SIGKILL)
        stack.wait_for_line("the worker exited (signal 9); restarting it in 1 s", 20)
        stack.wait_for_line("[supervisor] worker restarted", 60)
        second = _wait_worker_pid(stack, first)

        os.kill(second, signal.SIGKILL)  # dies again soon: the next wait is longer
        stack.wait_for_line("the worker exited (signal 9); restarting it in 2 s", 20)
        _wait_worker_pid(stack, second, timeout_s=60)

        status, body = stack.request("/webhook", alert("AAPL"))
        assert status == 202
        assert stack.wait_decided([body["alert_id"]], 60)[body["alert_id"]] in FILLED
    finally:
        assert stack.stop() == 0, stack.console


def test_sigkill_of_every_process_mid_burst_keeps_every_alert_order_and_cooldown_slot(
    tmp_path: Path,
):
    limits = {"FLOWTRADER_MAX_TRADES_PER_HOUR": "3", "FLOWTRADER_MAX_OPEN_POSITIONS": "0"}
    stack = Stack(tmp_path, **limits)
    accepted: list[str] = []
    stop_posting = threading.Event()

    def post_burst() -> None:
        for symbol in _symbols(40):
            if stop_posting.is_set():
                return
            try:
                status, body = stack.request("/webhook", alert(symbol))
            except OSError:  # the stack was killed under us
                return
            if status == 202:
                accepted.append(body["alert_id"])
            time.sleep(0.02)  # faster than the worker decides (~10/s), so a backlog builds

    poster = threading.Thread(target=post_burst, daemon=True)
    poster.start()
    try:
        # Kill once the cooldown is full (3 fills), a 4th alert was refused by it, and at
        # least 8 alerts were answered (so some are still waiting: the burst is mid-way).
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            decided = [
                a
                for a, s in stack.statuses(accepted[:8]).items()
                if s not in ("stored", "queued", "received")
            ]
            if len(decided) >= 4 and len(accepted) >= 8:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the first alerts were not decided:\n{stack.console}")
        orders_before = {
            o["client_order_id"] for o in stack.request("/api/orders", auth=True)[1]["orders"]
        }
        journal_before = {
            a: stack.request(f"/api/alerts/{a}/journal", auth=True)[1] for a in decided
        }
        stack.kill_all()
    finally:
        stop_posting.set()
        if stack.proc.poll() is None:
            stack.kill_all()
    poster.join(timeout=15)
    answered = list(accepted)
    assert len(answered) >= 8

    again = Stack(tmp_path, **limits)
    try:
        requeued = again.wait_for_line("undecided alert(s) queued again", 5)
        assert int(requeued.split("; ")[1].split()[0]) > 0, requeued  # the burst was mid-way
        statuses = again.wait_decided(answered, timeout_s=180)  # every 202 is there, decided
        filled = [a for a, s in statuses.items() if s in FILLED]
        assert len(filled) == 3  # the cooldown slots survived: no 4th open after the restart
        for alert_id in set(answered) - set(filled):
            record = again.request(f"/api/alerts/{alert_id}", auth=True)[1]
            assert record["status"] == "rejected"
            assert "cooldown" in record["reason"]
        orders_after = {
            o["client_order_id"] for o in again.request("/api/orders", auth=True)[1]["orders"]
        }
        assert orders_before <= orders_after
        assert {o.split("-")[1] for o in orders_after} == set(filled)
        positions = again.request("/api/positions", auth=True)[1]["positions"]
        assert len(positions) == 3
        for alert_id, journal in journal_before.items():
            after = again.request(f"/api/alerts/{alert_id}/journal", auth=True)[1]
            assert journal["events"]
            assert all(entry in after["events"] for entry in journal["events"])
    finally:
        assert again.stop() == 0, again.console

    fresh = Stack(tmp_path, FLOWTRADER_FRESH="1")
    try:
        assert fresh.request(f"/api/alerts/{answered[0]}", auth=True)[0] == 404
        assert fresh.request("/api/positions", auth=True)[1]["positions"] == []
    finally:
        assert fresh.stop() == 0, fresh.console
