"""`make run` end to end: the local stack as a subprocess, an alert over HTTP, a clean stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.ingress.helpers import todays_bar

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow
def test_local_stack_turns_an_alert_into_a_paper_bracket_and_a_notification(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOWTRADER_"))}
    env.update(
        PORT=str(port),
        FLOWTRADER_WEBHOOK_PASSPHRASE="smoke-pass",
        FLOWTRADER_API_TOKEN="smoke-token",
        FLOWTRADER_DATA_DIR=str(tmp_path),  # a fresh stack, whatever earlier runs kept
        FLOWTRADER_DATA_SOURCE="tradingview",  # the wall clock, not make run's replay
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        banner = "".join(lines)
        assert f"http://127.0.0.1:{port}/webhook" in banner, banner
        assert "smoke-pass" in banner

        base = f"http://127.0.0.1:{port}"
        alert = {
            "passphrase": "smoke-pass",
            "ticker": "NASDAQ:AAPL",
            "action": "buy",
            "price": 190.12,
            "stop_loss": 187.5,
            "take_profit": 195,
            "time": todays_bar(),
            "interval": "1D",
        }
        status, body = _request(f"{base}/webhook", alert)
        assert (status, body["status"]) == (202, "accepted")
        assert _request(f"{base}/webhook", alert)[0] == 200

        record: dict = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            record = _request(f"{base}/api/alerts/{body['alert_id']}", token="smoke-token")[1]
            if record.get("status") in ("accepted", "filled", "rejected", "failed"):
                break
            time.sleep(0.2)
        assert record.get("status") in ("accepted", "filled"), record
        assert record["reason"]

        positions = _request(f"{base}/api/positions", token="smoke-token")[1]["positions"]
        assert [(p["symbol"], p["qty"]) for p in positions] == [("AAPL", 1.0)]
        orders = _request(f"{base}/api/orders", token="smoke-token")[1]["orders"]
        legs = {
            (leg["order_type"], leg["limit_price"] or leg["stop_price"])
            for leg in orders[0]["legs"]
        }
        assert legs == {("limit", 195.0), ("stop", 187.5)}  # the paper bracket
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, "".join(lines) + out
    assert "local stack stopped" in out
    assert "[notification] flowtrader: filled buy AAPL" in out  # what SNS published
