"""`make run`: flowtrader on this machine with embedded AWS, the paper broker and no keys.

Starts moto's server, provisions it from infra/template.yaml, serves the Chalice app on
http://127.0.0.1:$PORT (default 8000), consumes the alert queue with the same handler the
SQS Lambda runs, re-queues stranded alerts, and prints every notification. Ctrl-C stops it.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
import threading
from typing import Any


def _say(line: str = "") -> None:
    print(line, flush=True)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from devstack.aws import start_embedded_aws

    port = int(os.environ.get("PORT", "8000"))
    host = os.environ.get("HOST", "127.0.0.1")
    generated = {}
    for name in ("FLOWTRADER_WEBHOOK_PASSPHRASE", "FLOWTRADER_API_TOKEN"):
        if not os.environ.get(name):
            os.environ[name] = generated[name] = secrets.token_urlsafe(18)
    os.environ.setdefault("FLOWTRADER_STAGE", "local")

    aws = start_embedded_aws(port=int(os.environ.get("FLOWTRADER_MOTO_PORT", "0")))
    os.environ.update(aws.env())

    from chalice.config import Config
    from chalice.local import create_local_server

    import app as app_module
    from chalicelib import bootstrap
    from chalicelib.domain import utc_now
    from chalicelib.services.ingest_alert import requeue_pending
    from devstack.notifications import NotificationTap
    from devstack.worker import Every, QueueWorker

    bootstrap.reset()
    c = bootstrap.container()

    def show_notification(subject: str, message: str) -> None:
        _say(f"[notification] {subject}: {message}")

    threads: list[Any] = [
        QueueWorker(c.settings.queue_url, app_module.process_alerts),
        Every(15.0, lambda: requeue_pending(c.alert_store, c.alert_queue, utc_now()), "sweeper"),
        NotificationTap(c.settings.topic_arn, show_notification),
    ]
    server = create_local_server(app_module.app, Config(chalice_stage="local"), host, port)
    for thread in threads:
        thread.start()

    stopping = threading.Event()

    def stop(signum: int, _frame: Any) -> None:
        stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    url = f"http://{host}:{port}"
    passphrase = os.environ["FLOWTRADER_WEBHOOK_PASSPHRASE"]
    _say("flowtrader local stack is up (embedded AWS, paper broker, no keys needed)")
    _say(f"  webhook URL : {url}/webhook")
    _say(f"  health      : {url}/api/health")
    _say(f"  embedded AWS: {aws.endpoint_url}")
    _say(
        f"  passphrase  : {passphrase}"
        + (
            "  (generated; set FLOWTRADER_WEBHOOK_PASSPHRASE to choose)"
            if generated.get("FLOWTRADER_WEBHOOK_PASSPHRASE")
            else ""
        )
    )
    _say(
        f"  API token   : {os.environ['FLOWTRADER_API_TOKEN']}"
        + (
            "  (generated; set FLOWTRADER_API_TOKEN to choose)"
            if generated.get("FLOWTRADER_API_TOKEN")
            else ""
        )
    )
    _say("Try it:")
    _say(
        f"  curl -s -X POST {url}/webhook -H 'Content-Type: application/json' -d "
        f'\'{{"passphrase":"{passphrase}","ticker":"NASDAQ:AAPL","action":"buy",'
        f'"price":190.12,"stop_loss":187.5,"take_profit":195,"time":"2026-11-26T15:30:00Z"}}\''
    )
    _say("Ctrl-C stops everything.")
    try:
        server.server.serve_forever(poll_interval=0.2)
    finally:
        for thread in threads:
            thread.stop()
        for thread in threads:
            thread.join(timeout=5)
        server.server.server_close()
        aws.stop()
        _say("flowtrader local stack stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
