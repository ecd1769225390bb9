"""`make run`: flowtrader on this machine with embedded AWS, the paper broker and no keys.

Three processes, as in AWS: moto's server (provisioned from infra/template.yaml), the
Chalice app on http://127.0.0.1:$PORT (default 8000; the api Lambda), and the worker that
consumes the alert queue with the same handler as the SQS Lambda, re-queues stranded alerts
and prints every notification. Ctrl-C (or SIGTERM) stops all three.
FLOWTRADER_LOCAL_WORKER=0 leaves the worker out (alerts stay queued; bench/ingress.py uses it).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _say(line: str = "") -> None:
    print(line, flush=True)


def _start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    worker = subprocess.Popen(
        [sys.executable, "-m", "devstack.worker"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        start_new_session=True,  # stopped by us, in order, not by the terminal's Ctrl-C
    )
    assert worker.stderr is not None
    for raw in worker.stderr:
        if b"worker ready" in raw:
            break
        sys.stderr.buffer.write(raw)
    else:
        raise RuntimeError(f"the worker exited with {worker.wait()}")

    def relay() -> None:
        assert worker.stderr is not None
        for raw in worker.stderr:
            sys.stderr.buffer.write(raw)
            sys.stderr.flush()

    threading.Thread(target=relay, daemon=True).start()
    return worker


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from devstack.aws import start_embedded_aws

    port = int(os.environ.get("PORT", "8000"))
    host = os.environ.get("HOST", "127.0.0.1")
    generated = set()
    for name in ("FLOWTRADER_WEBHOOK_PASSPHRASE", "FLOWTRADER_API_TOKEN"):
        if not os.environ.get(name):
            os.environ[name] = secrets.token_urlsafe(18)
            generated.add(name)
    os.environ.setdefault("FLOWTRADER_STAGE", "local")

    aws = start_embedded_aws(
        port=int(os.environ.get("FLOWTRADER_MOTO_PORT", "0")), own_process=True
    )
    os.environ.update(aws.env())
    worker = None
    try:
        if os.environ.get("FLOWTRADER_LOCAL_WORKER", "1") != "0":
            worker = _start_worker(dict(os.environ))
        else:
            _say("worker disabled (FLOWTRADER_LOCAL_WORKER=0): alerts stay queued")

        import app as app_module
        from devstack.http import local_server

        server = local_server(app_module.app, host, port)

        def stop(_signum: int, _frame: Any) -> None:
            threading.Thread(target=server.server.shutdown, daemon=True).start()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        _banner(f"http://{host}:{port}", aws.endpoint_url, generated)
        server.server.serve_forever(poll_interval=0.2)
        server.server.server_close()
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
        aws.stop()
    _say("flowtrader local stack stopped")
    return 0


def _banner(url: str, aws_url: str, generated: set[str]) -> None:
    passphrase = os.environ["FLOWTRADER_WEBHOOK_PASSPHRASE"]
    token = os.environ["FLOWTRADER_API_TOKEN"]

    def note(name: str) -> str:
        return f"  (generated; set {name} to choose)" if name in generated else ""

    _say("flowtrader local stack is up (embedded AWS, paper broker, no keys needed)")
    _say(f"  webhook URL : {url}/webhook")
    _say(f"  health      : {url}/api/health")
    _say(f"  embedded AWS: {aws_url}")
    _say(f"  passphrase  : {passphrase}{note('FLOWTRADER_WEBHOOK_PASSPHRASE')}")
    _say(f"  API token   : {token}{note('FLOWTRADER_API_TOKEN')}")
    _say("Try it:")
    _say(
        f"  curl -s -X POST {url}/webhook -H 'Content-Type: application/json' -d "
        f'\'{{"passphrase":"{passphrase}","ticker":"NASDAQ:AAPL","action":"buy",'
        f'"price":190.12,"stop_loss":187.5,"take_profit":195,"time":"2026-11-26T15:30:00Z"}}\''
    )
    _say("Ctrl-C stops everything.")


if __name__ == "__main__":
    sys.exit(main())
