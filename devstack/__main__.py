"""`make run`: flowtrader on this machine with embedded AWS, the paper broker and no keys.

Three processes, as in AWS: moto's server (provisioned from infra/template.yaml), the
Chalice app on http://127.0.0.1:$PORT (default 8000; the api Lambda), and the worker that
consumes the alert queue with the same handler as the SQS Lambda, re-queues stranded alerts
and prints every notification. Ctrl-C (or SIGTERM) stops all three.

State is kept under FLOWTRADER_DATA_DIR (default `.flowtrader/`; devstack.moto_server says
how): a restart, even after kill -9, finds every alert, order, position, journal entry and
cooldown slot, and re-queues the alerts that were not decided. FLOWTRADER_FRESH=1 starts
empty (the kept state is deleted). The worker is supervised: when it dies it is restarted
with backoff, and the console says so.
FLOWTRADER_LOCAL_WORKER=0 leaves the worker out (alerts stay queued; bench/ingress.py uses it).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _say(line: str = "") -> None:
    print(line, flush=True)


def _start_worker(env: dict[str, str], module: str = "devstack.worker") -> subprocess.Popen[bytes]:
    worker = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        start_new_session=True,  # stopped by us, in order, not by the terminal's Ctrl-C
    )
    assert worker.stderr is not None
    for raw in worker.stderr:
        if b" ready" in raw and raw.startswith(b"{"):
            break
        sys.stderr.buffer.write(raw)
    else:
        raise RuntimeError(f"{module} exited with {worker.wait()}")

    def relay() -> None:
        assert worker.stderr is not None
        for raw in worker.stderr:
            sys.stderr.buffer.write(raw)
            sys.stderr.flush()

    threading.Thread(target=relay, daemon=True).start()
    return worker


class WorkerSupervisor(threading.Thread):
    """Keeps one process of the stack running — the worker (`devstack.worker`, the queue
    consumers) or the schedules (`devstack.schedules`): one that exits while the stack runs
    is restarted after 1 s, then 2, 4 … up to 30 s while it keeps dying (back to 1 s once it
    has run for a minute). Before a restart the account lease is voided if the dead process
    held it (no one else can release it before its TTL)."""

    def __init__(
        self, env: dict[str, str], module: str = "devstack.worker", label: str = "worker"
    ) -> None:
        super().__init__(name=f"{label}-supervisor", daemon=True)
        self._env = env
        self._module = module
        self._label = label
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.restarts = 0
        self.worker = _start_worker(env, module)
        self._up_since = time.monotonic()

    def run(self) -> None:
        from devstack.aws import void_account_lease

        delay = 1.0
        code = self.worker.wait()
        while not self._stopping.is_set():
            if time.monotonic() - self._up_since > 60:
                delay = 1.0
            how = f"signal {-code}" if code < 0 else f"code {code}"
            _say(f"[supervisor] the {self._label} exited ({how}); restarting it in {delay:g} s")
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, 30.0)
            try:
                void_account_lease(self._env, pid=self.worker.pid)
                with self._lock:
                    if self._stopping.is_set():
                        return
                    self.worker = _start_worker(self._env, self._module)
            except Exception as exc:  # e.g. it died again while starting: back off, retry
                _say(f"[supervisor] the {self._label} did not start: {exc}")
                code = 1
                continue
            self._up_since = time.monotonic()
            self.restarts += 1
            _say(f"[supervisor] {self._label} restarted (pid {self.worker.pid})")
            code = self.worker.wait()

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
        worker = self.worker
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()


def data_dir() -> Path:
    """Where the local stack keeps its state; emptied first when FLOWTRADER_FRESH=1."""
    path = Path(os.environ.get("FLOWTRADER_DATA_DIR") or ".flowtrader").resolve()
    if os.environ.get("FLOWTRADER_FRESH", "") not in ("", "0") and (path / "aws").exists():
        shutil.rmtree(path / "aws")
    path.mkdir(parents=True, exist_ok=True)
    return path


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from devstack.aws import (
        aws_client,
        requeue_undecided,
        start_embedded_aws,
        void_account_lease,
    )
    from devstack.worker import HEARTBEAT_KEY

    port = int(os.environ.get("PORT", "8000"))
    host = os.environ.get("HOST", "127.0.0.1")
    generated = set()
    for name in ("FLOWTRADER_WEBHOOK_PASSPHRASE", "FLOWTRADER_API_TOKEN"):
        if not os.environ.get(name):
            os.environ[name] = secrets.token_urlsafe(18)
            generated.add(name)
    os.environ.setdefault("FLOWTRADER_STAGE", "local")

    state_dir = data_dir()
    # --- price poll and replay (issue 11): the market clock, before any process starts ---
    from devstack.replay import ReplaySaver
    from devstack.replay import configure as configure_replay

    replay = configure_replay(os.environ, state_dir)
    saver = ReplaySaver(replay, state_dir) if replay is not None else None
    aws = start_embedded_aws(
        port=int(os.environ.get("FLOWTRADER_MOTO_PORT", "0")),
        own_process=True,
        data_dir=state_dir,
    )
    os.environ.update(aws.env())
    # issue 13: locally the daily reports are plain files under ./reports/ (README, Reports).
    os.environ.pop("FLOWTRADER_REPORTS_BUCKET", None)
    os.environ.setdefault("FLOWTRADER_REPORTS_DIR", str(Path("reports").resolve()))
    supervisors: list[WorkerSupervisor] = []
    if saver is not None:
        saver.start()
    try:
        restored = aws.restored or {}
        # Nothing of an earlier run is alive: its lease and heartbeat are void.
        void_account_lease(dict(os.environ))
        aws_client("dynamodb", aws.endpoint_url).delete_item(
            TableName=os.environ["FLOWTRADER_STATE_TABLE"], Key=HEARTBEAT_KEY
        )
        requeued = requeue_undecided(dict(os.environ))
        _say(
            f"state in {state_dir}: {restored.get('items', 0)} items restored "
            f"in {restored.get('seconds', 0)} s; {requeued} undecided alert(s) queued again"
        )
        if os.environ.get("FLOWTRADER_LOCAL_WORKER", "1") != "0":
            supervisors = [
                WorkerSupervisor(dict(os.environ)),
                WorkerSupervisor(dict(os.environ), "devstack.schedules", "schedules"),
            ]
            for supervisor in supervisors:
                supervisor.start()
        else:
            _say("worker disabled (FLOWTRADER_LOCAL_WORKER=0): alerts stay queued")

        import app as app_module
        from devstack.http import local_server

        server = local_server(app_module.app, host, port)

        def stop(_signum: int, _frame: Any) -> None:
            threading.Thread(target=server.server.shutdown, daemon=True).start()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        _banner(f"http://{host}:{port}", aws.endpoint_url, generated, replay)
        server.server.serve_forever(poll_interval=0.2)
        server.server.server_close()
    finally:
        for supervisor in supervisors:  # the consumers first: a decision finishes its alert
            supervisor.stop()
        if saver is not None:
            saver.stop()
        aws.stop()
    _say("flowtrader local stack stopped")
    return 0


def _banner(url: str, aws_url: str, generated: set[str], replay: Any = None) -> None:
    passphrase = os.environ["FLOWTRADER_WEBHOOK_PASSPHRASE"]
    token = os.environ["FLOWTRADER_API_TOKEN"]

    def note(name: str) -> str:
        return f"  (generated; set {name} to choose)" if name in generated else ""

    _say("flowtrader local stack is up (embedded AWS, paper broker, no keys needed)")
    _say(f"  webhook URL : {url}/webhook")
    _say(f"  health      : {url}/api/health")
    _say(f"  dashboard   : {url}/dashboard  (log in with the API token)")
    _say(f"  embedded AWS: {aws_url}")
    _say(f"  passphrase  : {passphrase}{note('FLOWTRADER_WEBHOOK_PASSPHRASE')}")
    _say(f"  API token   : {token}{note('FLOWTRADER_API_TOKEN')}")
    if replay is not None:
        _replay_banner(url, passphrase, replay)
        return
    _say("Try it:")
    _say(
        f"  curl -s -X POST {url}/webhook -H 'Content-Type: application/json' -d "
        f'\'{{"passphrase":"{passphrase}","ticker":"NASDAQ:AAPL","action":"buy",'
        f'"price":190.12,"stop_loss":187.5,"take_profit":195,'
        f'"time":"\'$(date -u +%FT00:00:00Z)\'","interval":"1D"}}\''
    )  # today's daily bar: fresh all day for the alert-age check, like the README's example
    _say("Ctrl-C stops everything.")


def _replay_banner(url: str, passphrase: str, replay: Any) -> None:
    """The replay's line, and a curl that buys its symbol at the replayed price with a stop
    and a target the market will reach on its own (the price poll fills them)."""
    from chalicelib import bootstrap

    _say(f"  {replay.describe()}")
    _say(f"  bars        : {url}/api/bars?symbol={replay.symbol}  (the token as a Bearer)")
    price = bootstrap.container().market_data("replay").latest_price(replay.symbol) or 100.0
    _say("Try it (no `time`: the replay's clock is not yours):")
    _say(
        f"  curl -s -X POST {url}/webhook -H 'Content-Type: application/json' -d "
        f'\'{{"passphrase":"{passphrase}","ticker":"NASDAQ:{replay.symbol}","action":"buy",'
        f'"price":{price:.2f},"stop_loss":{price * 0.995:.2f},"take_profit":{price * 1.01:.2f}}}\''
    )
    _say("Ctrl-C stops everything.")


if __name__ == "__main__":
    sys.exit(main())
