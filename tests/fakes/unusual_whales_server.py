"""A local Unusual Whales API for tests: threaded HTTP on 127.0.0.1 answering the four
operations flowtrader uses in the spec's shapes (`tests/fixtures/unusual_whales/`).

What it does like UW (spec `uw-api-spec.yaml`; UW's client unusual-whales-official-mcp
`src/client.ts`):
- `Authorization: Bearer <token>` required (401 otherwise);
- query parameters checked against the spec's (`query_parameters.json`): integers and
  booleans must parse, `limit` within its minimum/maximum, else 422 with the spec's
  `{"msg", "path", "query", "url"}` error shape;
- GET /api/option-trades/flow-alerts filters `ticker_symbol` (comma-separated), `is_sweep`
  (`has_sweep`), `is_call`/`is_put` (`type`), `is_ask_side`/`is_bid_side` (more ask-side
  than bid-side premium, or the reverse), `min_premium` (`total_premium`), `newer_than`
  (unix seconds or milliseconds, or ISO) and `limit`; newest first;
- GET /api/darkpool/{ticker}, /api/stock/{ticker}/net-prem-ticks, /api/market/market-tide;
- every answer is `{"data": [...]}` with decimals as strings, and carries the token's usage
  in `x-uw-daily-req-count`, `x-uw-token-req-limit`, `x-uw-minute-req-counter`,
  `x-uw-req-per-minute-remaining`, `x-uw-req-per-minute-reset`;
- 429 with `Retry-After` (seconds) when the plan's per-minute limit is passed
  (`per_minute_limit`), or when a fault says so; 500 as plain text.

Fault injection (`inject`): the next `times` requests to a path answer with a status, the
given headers and body (a 429 storm, a 5xx, garbage), optionally after a delay.
`requests` records every request (path, query, authorization present) for assertions.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "unusual_whales"
FLOW_ALERTS = "/api/option-trades/flow-alerts"
MARKET_TIDE = "/api/market/market-tide"


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


QUERY_PARAMETERS: dict[str, list[dict[str, Any]]] = load_fixture("query_parameters.json")


@dataclass
class Fault:
    path: str
    status: int = 500
    body: bytes | str = b"Something went wrong"
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    delay_s: float = 0.0
    content_type: str = "text/plain"


def _uw_time(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def _newer_than(raw: str) -> datetime:
    if raw.isdigit():
        number = int(raw)
        return datetime.fromtimestamp(number / 1000 if number > 10**11 else number, UTC)
    moment = datetime.fromisoformat(raw)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class FakeUnusualWhales:
    def __init__(self, token: str = "uw-test-token", *, per_minute_limit: int = 0) -> None:  # noqa: S107
        self.token = token
        self.per_minute_limit = per_minute_limit  # 0: the server never rate limits by itself
        self.alerts: list[dict[str, Any]] = copy.deepcopy(load_fixture("flow_alerts.json")["data"])
        self.darkpool: dict[str, list[dict[str, Any]]] = {}
        for row in load_fixture("darkpool.json")["data"]:
            self.darkpool.setdefault(row["ticker"], []).append(copy.deepcopy(row))
        self.ticks: dict[str, list[dict[str, Any]]] = {
            "AAPL": copy.deepcopy(load_fixture("net_prem_ticks.json")["data"])
        }
        self.tide: list[dict[str, Any]] = copy.deepcopy(load_fixture("market_tide.json")["data"])
        self.requests: list[dict[str, Any]] = []
        self.daily_count = 0
        self._minute: tuple[int, int] = (0, 0)  # (unix minute, requests in it)
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeUnusualWhales:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    # --- test controls ------------------------------------------------------------------

    def inject(self, path: str, **kwargs: Any) -> None:
        with self._lock:
            self._faults.append(Fault(path, **kwargs))

    def calls(self, path_prefix: str = "") -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"].startswith(path_prefix)]

    # --- serving ------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._handle(Request(environ))(environ, start_response)

    def _usage(self, counter: int) -> dict[str, str]:
        limit = self.per_minute_limit or 120
        return {
            "x-uw-daily-req-count": str(self.daily_count),
            "x-uw-token-req-limit": "20000",
            "x-uw-minute-req-counter": str(counter),
            "x-uw-req-per-minute-remaining": str(max(0, limit - counter)),
            "x-uw-req-per-minute-reset": str(60 - int(time.time()) % 60),
        }

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self._faults:
            if path.startswith(fault.path) and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    def _handle(self, request: Request) -> Response:
        path = request.path
        auth = request.headers.get("Authorization", "")
        with self._lock:
            self.requests.append(
                {
                    "path": path,
                    "query": dict(request.args),
                    "authorized": auth == f"Bearer {self.token}",
                }
            )
            self.daily_count += 1
            minute = int(time.time() // 60)
            count = self._minute[1] + 1 if self._minute[0] == minute else 1
            self._minute = (minute, count)
            fault = self._take_fault(path)
            usage = self._usage(count)
        if fault is not None:
            if fault.delay_s:
                time.sleep(fault.delay_s)
            return Response(
                fault.body,
                status=fault.status,
                headers={**usage, **fault.headers},
                content_type=fault.content_type,
            )
        if auth != f"Bearer {self.token}":
            return self._json(401, {"msg": "Unauthorized: missing or invalid API token"}, usage)
        if self.per_minute_limit and count > self.per_minute_limit:
            headers = {**usage, "Retry-After": str(60 - int(time.time()) % 60)}
            return self._json(429, {"msg": "Too many requests"}, headers)
        try:
            rows = self._route(path, request.args)
        except _Invalid as exc:
            error = {"msg": str(exc), "path": path, "query": request.query_string.decode()}
            return self._json(422, {**error, "url": request.url}, usage)
        if rows is None:
            return self._json(404, {"msg": f"Not found: {path}"}, usage)
        return self._json(200, {"data": rows}, usage)

    @staticmethod
    def _json(status: int, body: Any, headers: dict[str, str]) -> Response:
        return Response(
            json.dumps(body), status=status, headers=headers, mimetype="application/json"
        )

    def _route(self, path: str, args: Any) -> list[dict[str, Any]] | None:
        parts = path.strip("/").split("/")
        if path == FLOW_ALERTS:
            _check_query(args, QUERY_PARAMETERS[FLOW_ALERTS])
            return self._flow_alerts(args)
        if path == MARKET_TIDE:
            _check_query(args, QUERY_PARAMETERS[MARKET_TIDE])
            return copy.deepcopy(self.tide)
        if len(parts) == 3 and parts[:2] == ["api", "darkpool"]:
            _check_query(args, QUERY_PARAMETERS["/api/darkpool/{ticker}"])
            rows = copy.deepcopy(self.darkpool.get(parts[2], []))
            if "newer_than" in args:
                since = _newer_than(args["newer_than"])
                rows = [r for r in rows if _uw_time(r["executed_at"]) >= since]
            rows.sort(key=lambda r: _uw_time(r["executed_at"]), reverse=True)
            return rows[: int(args.get("limit", 500))]
        if len(parts) == 4 and parts[:2] == ["api", "stock"] and parts[3] == "net-prem-ticks":
            _check_query(args, QUERY_PARAMETERS["/api/stock/{ticker}/net-prem-ticks"])
            return copy.deepcopy(self.ticks.get(parts[2], []))
        return None

    def _flow_alerts(self, args: Any) -> list[dict[str, Any]]:
        rows = copy.deepcopy(self.alerts)
        if not all(isinstance(r, dict) for r in rows):
            return rows  # a test's garbage rows go out as they are
        if "ticker_symbol" in args:
            wanted = set(args["ticker_symbol"].split(","))
            rows = [r for r in rows if r.get("ticker") in wanted]
        if args.get("is_sweep") == "true":
            rows = [r for r in rows if r.get("has_sweep")]
        if args.get("is_call") == "true":
            rows = [r for r in rows if r.get("type") == "call"]
        if args.get("is_put") == "true":
            rows = [r for r in rows if r.get("type") == "put"]

        def premium(row: dict[str, Any], key: str) -> float:
            try:
                return float(row.get(key) or 0)
            except ValueError:
                return 0.0

        if args.get("is_ask_side") == "true":
            rows = [
                r
                for r in rows
                if premium(r, "total_ask_side_prem") > premium(r, "total_bid_side_prem")
            ]
        if args.get("is_bid_side") == "true":
            rows = [
                r
                for r in rows
                if premium(r, "total_bid_side_prem") > premium(r, "total_ask_side_prem")
            ]
        if "min_premium" in args:
            rows = [r for r in rows if premium(r, "total_premium") >= int(args["min_premium"])]
        if "newer_than" in args:
            since = _newer_than(args["newer_than"])
            rows = [r for r in rows if (_safe_time(r) or since) >= since]
        rows.sort(key=lambda r: str(r.get("created_at")), reverse=True)
        return rows[: int(args.get("limit", 100))]


def _safe_time(row: dict[str, Any]) -> datetime | None:
    try:
        return _uw_time(str(row.get("created_at")))
    except ValueError:
        return None  # a malformed row goes out as is: the client must cope


class _Invalid(ValueError):
    pass


def _check_query(args: Any, parameters: list[dict[str, Any]]) -> None:
    """Refuse what the spec's query parameters refuse (422), as UW does."""
    for param in parameters:
        name, schema = param["name"], param["schema"]
        if name not in args:
            continue
        value = args[name]
        kind = schema.get("type")
        if kind == "boolean" and value not in ("true", "false"):
            raise _Invalid(f"Invalid query input(s): {name}={value} (valid example: {name}=true)")
        if kind == "integer":
            if not value.lstrip("-").isdigit():
                raise _Invalid(f"Invalid query input(s): {name}={value} (valid example: {name}=10)")
            number = int(value)
            if "minimum" in schema and number < schema["minimum"]:
                raise _Invalid(
                    f"Invalid query input(s): {name}={value} (minimum {schema['minimum']})"
                )
            if "maximum" in schema and number > schema["maximum"]:
                raise _Invalid(
                    f"Invalid query input(s): {name}={value} (maximum {schema['maximum']})"
                )
