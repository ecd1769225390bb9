"""Run the local stack (`python -m devstack`, as `make run` does) as a subprocess in a test:
its console collected line by line, its three processes found, its HTTP API called."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "stack-pass"
TOKEN = "stack-token"
DECIDED = {"accepted", "filled", "rejected", "failed", "ignored", "partially_filled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc; the stack's moto server and worker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Stack:
    def __init__(self, data_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        base_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOWTRADER_"))
        }
        # The wall clock unless a test asks for the market replay `make run` defaults to.
        base_env["FLOWTRADER_DATA_SOURCE"] = "tradingview"
        base_env.update(
            PORT=str(self.port),
            FLOWTRADER_DATA_DIR=str(data_dir),
            FLOWTRADER_WEBHOOK_PASSPHRASE=PASSPHRASE,
            FLOWTRADER_API_TOKEN=TOKEN,
            # Tests hear alerts through the topic; no pop-ups or speech from a test run, and
            # reports under the test's own data dir.
            FLOWTRADER_DESKTOP_ALERTS="false",
            FLOWTRADER_SPOKEN_ALERTS="false",
            FLOWTRADER_REPORTS_DIR=str(data_dir / "reports"),
        )
        base_env.update(env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack"],
            cwd=ROOT,
            env=base_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._new_line = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for_line("Ctrl-C stops everything", timeout_s=90)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._new_line:
                self.lines.append(line)
                self._new_line.notify_all()

    @property
    def console(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, text: str, timeout_s: float, after: int = 0) -> str:
        deadline = time.monotonic() + timeout_s
        with self._new_line:
            while True:
                for line in self.lines[after:]:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no {text!r} in the console:\n{self.console}")
                self._new_line.wait(min(left, 0.5))

    def pid_of(self, module: str) -> int:
        for pid in children(self.proc.pid):
            if f"-m {module}" in command_line(pid):
                return pid
        raise AssertionError(f"no {module} process under the stack")

    def request(
        self, path: str, body: dict[str, Any] | None = None, auth: bool = False
    ) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base + path, data=data, method="POST" if data is not None else "GET"
        )
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {TOKEN}")
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def statuses(self, alert_ids: list[str]) -> dict[str, str]:
        return {a: self.request(f"/api/alerts/{a}", auth=True)[1].get("status") for a in alert_ids}

    def wait_decided(self, alert_ids: list[str], timeout_s: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout_s
        pending = set(alert_ids)
        statuses: dict[str, str] = {}
        while pending and time.monotonic() < deadline:
            for alert_id, status in self.statuses(sorted(pending)).items():
                if status in DECIDED:
                    statuses[alert_id] = status
                    pending.discard(alert_id)
            if pending:
                time.sleep(0.5)
        assert not pending, f"{len(pending)} alerts undecided after {timeout_s} s"
        return statuses

    def kill_all(self) -> None:
        """SIGKILL every process of the stack at once, as a crash would."""
        pids = [self.proc.pid, *children(self.proc.pid)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids[1:]):
            time.sleep(0.1)  # the children are reaped by init once they are gone

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill_all()
        return self.proc.returncode


def alert(ticker: str, action: str = "buy", **fields: Any) -> dict[str, Any]:
    from datetime import UTC, datetime

    return {
        "passphrase": PASSPHRASE,
        "ticker": f"NASDAQ:{ticker}",
        "action": action,
        "price": 100.0,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        **fields,
    }
