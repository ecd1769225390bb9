"""moto's server for the local stack: flowtrader's fidelity patch, a keep-alive HTTP front,
and DynamoDB state that survives restarts (kill -9 included) under a data directory.

Durability (`--data-dir DIR`; nothing is kept without it): every mutating DynamoDB request
(PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems) is appended to a
write-ahead log and fsynced *before* moto applies it, and log order is apply order (one
lock around append + apply), so whatever a client was answered — and whatever any other
client could have read — is on disk first. Replaying the log in order against the same
starting state reproduces every item: conditions and values travel in the request (the
app passes its clock in, ids are made client-side), and a request moto refused is refused
again. At start (`POST /_flowtrader/restore`, after the stack's tables are provisioned
from infra/template.yaml) the newest snapshot is loaded, its log replayed, a new snapshot
written and a new, empty log begun: the log never grows beyond one run. Queues, topics and
buckets are re-provisioned by the template; the local stack re-queues undecided alerts
from the restored alerts table (devstack.aws.requeue_undecided).

Files: `DIR/aws/snapshot-<n>.json` (all items, written to a temporary file, fsynced and
renamed) and `DIR/aws/wal-<n>.jsonl` (the requests since that snapshot, one JSON line
each; a torn last line — a request that was never applied — is ignored). `DIR/aws/lock`
is held (flock) while a server uses the directory, so two stacks cannot share it.

The server exits by itself when the local stack that started it is gone (even after a
SIGKILL), so no orphaned server keeps a port.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import io
import json
import logging
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from devstack import moto_fidelity

log = logging.getLogger("flowtrader.devstack.moto")

MUTATING_DYNAMODB = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
KEPT_HEADERS = ("Host", "Content-Type", "X-Amz-Target", "X-Amz-Date", "Authorization")
RESTORE_PATH = "/_flowtrader/restore"


def exit_with_parent() -> None:
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _without_signature(authorization: str) -> str:
    return re.sub(r",\s*Signature=[0-9a-f]+", "", authorization)


def _wsgi_body(body: bytes) -> dict[str, Any]:
    """The WSGI keys every request moto is handed carries: its body and the server's ways
    (a live request and a replayed one alike)."""
    return {
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


class DurableDynamoDB:
    """WSGI middleware in front of moto: the write-ahead log, snapshots and their restore."""

    def __init__(self, app: Any, data_dir: Path | None) -> None:
        self._app = app
        self._dir = data_dir / "aws" if data_dir else None
        self._lock = threading.Lock()
        self._wal: int | None = None  # file descriptor once logging is on
        self._lock_file: Any = None
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self._dir / "lock", "a+")  # noqa: SIM115 - held for life
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SystemExit(
                    f"{data_dir} is in use by another local stack; stop it or set "
                    "FLOWTRADER_DATA_DIR to another directory"
                ) from None

    # --- serving ---------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] == RESTORE_PATH and environ["REQUEST_METHOD"] == "POST":
            body = json.dumps(self.restore()).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if self._wal is None or not target.startswith("DynamoDB_"):
            return self._app(environ, start_response)
        if target.rpartition(".")[2] not in MUTATING_DYNAMODB:
            return self._app(environ, start_response)
        body = environ["wsgi.input"].read()
        environ["wsgi.input"] = io.BytesIO(body)
        record = {
            "headers": {
                name: environ[key]
                for name in KEPT_HEADERS
                if (key := "HTTP_" + name.upper().replace("-", "_")) in environ
                or (key := name.upper().replace("-", "_")) in environ
            },
            "path": environ.get("PATH_INFO") or "/",
            "body": body.decode("utf-8"),
        }
        if "Authorization" in record["headers"]:
            record["headers"]["Authorization"] = _without_signature(
                record["headers"]["Authorization"]
            )
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            os.write(self._wal, line)
            os.fsync(self._wal)
            return [b"".join(self._app(environ, start_response))]

    # --- restore ---------------------------------------------------------------------

    def _generation(self) -> int:
        assert self._dir is not None
        found = [int(p.stem.split("-")[1]) for p in self._dir.glob("snapshot-*.json")]
        return max(found, default=0)

    def restore(self) -> dict[str, Any]:
        """Load the newest snapshot, replay its log, then start a new generation."""
        if self._dir is None:
            return {"durable": False}
        with self._lock:
            if self._wal is not None:
                return {"durable": True, "error": "already restored"}
            started = time.monotonic()
            gen = self._generation()
            items = self._load_snapshot(self._dir / f"snapshot-{gen}.json")
            replayed = self._replay(self._dir / f"wal-{gen}.jsonl")
            kept = self._write_snapshot(gen + 1)
            self._wal = os.open(
                self._dir / f"wal-{gen + 1}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
            )
            for old in [*self._dir.glob("snapshot-*.json"), *self._dir.glob("wal-*.jsonl")]:
                if int(old.stem.split("-")[1]) <= gen:
                    old.unlink()
            return {
                "durable": True,
                "snapshot_items": items,
                "replayed_requests": replayed,
                "items": kept,
                "seconds": round(time.monotonic() - started, 3),
            }

    @staticmethod
    def _backends() -> list[Any]:
        from moto.dynamodb.models import dynamodb_backends

        return [backend for regions in dynamodb_backends.values() for backend in regions.values()]

    def _load_snapshot(self, path: Path) -> int:
        from moto.dynamodb.models import dynamodb_backends

        if not path.exists():
            return 0
        loaded = 0
        for entry in json.loads(path.read_text())["tables"]:
            backend = dynamodb_backends[entry["account"]][entry["region"]]
            if entry["table"] not in backend.tables:
                log.warning("snapshot table %s is not provisioned; skipped", entry["table"])
                continue
            for attrs in entry["items"]:
                backend.put_item(entry["table"], attrs)
                loaded += 1
        return loaded

    def _replay(self, path: Path) -> int:
        if not path.exists():
            return 0
        replayed = 0
        with path.open("rb") as wal:
            for raw in wal:
                try:
                    record = json.loads(raw)
                except ValueError:  # a torn last line: that request was never applied
                    log.warning("ignored a torn write-ahead log line")
                    break
                body = record["body"].encode()
                environ = {
                    "REQUEST_METHOD": "POST",
                    "PATH_INFO": record["path"],
                    "QUERY_STRING": "",
                    "SERVER_NAME": "127.0.0.1",
                    "SERVER_PORT": "0",
                    "SERVER_PROTOCOL": "HTTP/1.1",
                    **_wsgi_body(body),
                }
                for name, value in record["headers"].items():
                    key = name.upper().replace("-", "_")
                    environ[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
                b"".join(self._app(environ, lambda *_args, **_kw: None))
                replayed += 1
        return replayed

    def _write_snapshot(self, gen: int) -> int:
        assert self._dir is not None
        tables, count = [], 0
        for backend in self._backends():
            for name, table in backend.tables.items():
                items = [item.to_json()["Attributes"] for item in table.all_items()]
                count += len(items)
                tables.append(
                    {
                        "account": backend.account_id,
                        "region": backend.region_name,
                        "table": name,
                        "items": items,
                    }
                )
        tmp = self._dir / f"snapshot-{gen}.json.tmp"
        with tmp.open("w") as out:
            json.dump({"tables": tables}, out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        tmp.rename(self._dir / f"snapshot-{gen}.json")
        directory = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return count


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive and each answer in one write. werkzeug's development server
    closes every connection and writes headers and body apart, so each AWS call paid a new
    connection, a new thread and, with Nagle, a wait on the client's delayed ACK."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    app: Any = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        body = self._read_body()
        path, _, query = self.path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "RAW_URI": self.path,
            "REQUEST_URI": self.path,
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            **_wsgi_body(body),
        }
        if "Content-Type" in self.headers:
            environ["CONTENT_TYPE"] = self.headers["Content-Type"]
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            answer["status"], answer["headers"] = status, headers
            return lambda data: answer.setdefault("written", []).append(data)

        result = self.app(environ, start_response)
        try:
            payload = b"".join([*answer.get("written", []), *result])
        finally:
            if hasattr(result, "close"):
                result.close()
        lines = [f"HTTP/1.1 {answer['status']}"]
        for name, value in answer["headers"]:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(payload) if self.command != 'HEAD' else 0}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + (payload if self.command != "HEAD" else b""))

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def _cache_module_list() -> None:
    """moto lists its package directory on every request to route it (about 1 ms each)."""
    from moto import backends

    backends.list_of_moto_modules = functools.cache(  # type: ignore[assignment]
        lambda original=backends.list_of_moto_modules: tuple(original())
    )


def build_app(data_dir: Path | None) -> DurableDynamoDB:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto_fidelity.apply()
    _cache_module_list()
    return DurableDynamoDB(DomainDispatcherApplication(create_backend_app), data_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    KeepAliveHandler.app = build_app(args.data_dir)
    server = _Server((args.host, args.port), KeepAliveHandler)
    server.serve_forever(poll_interval=0.5)


if __name__ == "__main__":
    exit_with_parent()
    main()
