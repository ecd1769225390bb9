"""Issue 9's table (parts 1, 2 and 6), row by row, over HTTP against `make run`'s stack
(`python -m devstack` as a subprocess: moto, the API server and the worker)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.ingress.helpers import raw_http, todays_bar, tv_time

ROOT = Path(__file__).resolve().parents[2]
PASS = "rows-pass"
TOKEN = "rows-token-0123456789"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOWTRADER_"))}
    env.update(
        PORT=str(port),
        FLOWTRADER_WEBHOOK_PASSPHRASE=PASS,
        FLOWTRADER_API_TOKEN=TOKEN,
        FLOWTRADER_DATA_DIR=str(tmp_path_factory.mktemp("data")),
        FLOWTRADER_MAX_TRADES_PER_HOUR="0",
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
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if not line or "Ctrl-C stops everything" in line:
            break
    assert "Ctrl-C stops everything" in lines[-1], "".join(lines)
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
    yield f"http://127.0.0.1:{port}"
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _http(base: str, method: str, path: str, body: bytes = b"", headers: tuple = ()) -> tuple:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", *headers]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}".encode())
        lines.append(b"Content-Type: text/plain")
    request = b"\r\n".join(lines) + b"\r\n\r\n" + body
    status, head, answer = raw_http(base, request, timeout=30)
    return status, head, answer


def _alert(**fields) -> dict:
    body = {
        "passphrase": PASS,
        "ticker": "NASDAQ:AAPL",
        "action": "buy",
        "price": 190.12,
        "time": todays_bar(),
        "interval": "1D",
        **fields,
    }
    return {k: v for k, v in body.items() if v is not None}


def _raw(body: dict, **raw_fields: str) -> bytes:
    text = json.dumps(body)[:-1]
    for name, literal in raw_fields.items():
        text += f', "{name}": {literal}'
    return (text + "}").encode()


def _json(alert: dict) -> bytes:
    return json.dumps(alert).encode()


WEBHOOK_ROWS = {
    "nested 300 levels, right passphrase": (_raw(_alert(), x="[" * 300 + "]" * 300), 422),
    "5,000-digit number, wrong passphrase": (_raw(_alert(passphrase="no"), q="1" * 5000), 401),
    "5,000-digit number, right passphrase": (_raw(_alert(price=None), price="1" * 5000), 422),
    "time 0001-01-01T00:00:00+14:00": (_json(_alert(time="0001-01-01T00:00:00+14:00")), 422),
    "time 9999-12-31T23:59:59-12:00": (_json(_alert(time="9999-12-31T23:59:59-12:00")), 422),
    "price 1e308": (_raw(_alert(price=None), price="1e308"), 422),
    "price 1e-320": (_raw(_alert(price=None), price="1e-320"), 422),
    "ticker X'OR'1'='1": (_json(_alert(ticker="X'OR'1'='1")), 422),
    "ticker $(REBOOT)`ID`|X": (_json(_alert(ticker="$(REBOOT)`ID`|X")), 422),
    "ticker ../../ETC/PASSWD": (_json(_alert(ticker="../../ETC/PASSWD")), 422),
    "ticker <SCRIPT>ALERT(1)</SCRIPT>": (_json(_alert(ticker="<SCRIPT>ALERT(1)</SCRIPT>")), 422),
    "ticker AA PL": (_json(_alert(ticker="AA PL")), 422),
    "ticker ＡＡＰＬ (full width)": (_json(_alert(ticker="ＡＡＰＬ")), 422),
    "ticker {{exchange}}:{{ticker}}": (_json(_alert(ticker="{{exchange}}:{{ticker}}")), 422),
    "CME_MINI:ES1! (futures)": (_json(_alert(ticker="CME_MINI:ES1!")), 422),
    "time in 2001": (_json(_alert(time="2001-09-10T15:30:00Z")), 422),
    "time in 2999": (_json(_alert(time="2999-01-01T15:30:00Z")), 422),
}


@pytest.mark.parametrize("row", list(WEBHOOK_ROWS))
def test_webhook_row(stack, row):
    body, expected = WEBHOOK_ROWS[row]

    status, _, answer = _http(stack, "POST", "/webhook", body)

    assert status == expected, answer
    if expected == 422:
        assert json.loads(answer)["errors"], answer


def test_futures_are_refused_saying_the_broker_does_not_trade_them(stack):
    _, _, answer = _http(stack, "POST", "/webhook", _json(_alert(ticker="CME_MINI:ES1!")))

    assert "futures are not tradeable with this broker" in answer.decode()


def test_refused_rows_left_no_order_and_no_position(stack):
    for body, _ in WEBHOOK_ROWS.values():
        _http(stack, "POST", "/webhook", body)
    auth = (f"Authorization: Bearer {TOKEN}".encode(),)

    orders = json.loads(_http(stack, "GET", "/api/orders", headers=auth)[2])
    positions = json.loads(_http(stack, "GET", "/api/positions", headers=auth)[2])

    assert orders["orders"] == []
    assert positions["positions"] == []


def test_orders_limit_superscript_two_is_400(stack):
    auth = (f"Authorization: Bearer {TOKEN}".encode(),)

    status, _, _ = _http(stack, "GET", "/api/orders?limit=%C2%B2", headers=auth)

    assert status == 400


def test_content_length_abc_is_400(stack):
    status, _, _ = raw_http(stack, b"POST /webhook HTTP/1.1\r\nContent-Length: abc\r\n\r\n{}")

    assert status == 400


def test_non_ascii_authorization_header_is_400(stack):
    header = ("Authorization: Bearer " + "é" * 8).encode()

    status, _, _ = _http(stack, "GET", "/api/orders", headers=(header,))

    assert status == 400


def test_unknown_route_with_the_token_is_404_without_echoing_it(stack):
    auth = (f"Authorization: Bearer {TOKEN}".encode(),)

    status, head, answer = _http(stack, "GET", "/api/nothing-here", headers=auth)

    assert status == 404
    assert TOKEN not in head + answer.decode()


def test_fresh_alert_by_timenow_is_accepted(stack):
    fired = tv_time(datetime.now(UTC) - timedelta(seconds=5))

    status, _, answer = _http(stack, "POST", "/webhook", _json(_alert(timenow=fired)))

    assert status == 202, answer


def test_100_distinct_alerts_on_100_parallel_connections_all_get_202(stack):
    """Answer times are bench/ingress.py's to print; here every one must be a 202."""

    def one(i: int) -> int:
        return _http(stack, "POST", "/webhook", _json(_alert(order_id=f"burst-{i}")))[0]

    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = list(pool.map(one, range(100)))

    assert statuses == [202] * 100
