"""A local Alpaca Market Data API v2 (stocks) for tests: threaded HTTP on 127.0.0.1, answering
in the shapes of the vendor's OpenAPI document (copied parameters and examples in
`tests/fixtures/alpaca/market_data/`), serving real AMZN one-minute bars.

What it does like Alpaca (https://docs.alpaca.markets/reference/stockbars and the spec's
`/v2/stocks/...` paths):
- `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY` checked (401 otherwise).
- Multi-symbol endpoints as alpaca-py calls them (`/v2/stocks/bars?symbols=`, `/bars/latest`,
  `/trades`, `/trades/latest`, `/quotes/latest`) and the per-symbol forms
  (`/v2/stocks/{symbol}/bars` …), each with the spec's query parameters checked: required
  ones present, integers in range (`limit` 1…10000), enums (`feed`, `sort`), RFC-3339 or
  YYYY-MM-DD times, `timeframe` as the spec spells it (`[1-59]Min|T`, `[1-23]Hour|H`,
  `1Day|D`, `1Week|W`, `[1,2,3,4,6,12]Month|M`). A bad parameter is 400 with a message.
- `start` and `end` are both inclusive (the spec: "The inclusive end of the interval").
- Paging: at most `limit` items per response (default 1000, across symbols, sorted by symbol
  then time) and a `next_page_token` to continue; `null` on the last page.
- `feed=sip` without a SIP subscription (`sip_entitled=False`) is 403, as for a free plan
  (https://docs.alpaca.markets/docs/about-market-data-api#subscription-plans).
- `rate_limit(n)`: the next n requests answer 429 with the `X-RateLimit-*` headers the spec
  documents.

Bars come from `bars[symbol]` (spec-shaped dicts `t o h l c v n vw`), loaded from the CSV
fixture; minutes aggregate into longer timeframes. Trades and quotes default to the spec's
own examples (AAPL); tests put their own in `trades`, `latest_trades`, `latest_quotes`.
`requests` records every request (path and query) for assertions.
"""

from __future__ import annotations

import base64
import csv
import json
import re
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "alpaca" / "market_data"
AMZN_CSV = FIXTURES / "AMZN_1min_2025-01-13.csv"
_TIMEFRAME = re.compile(r"(\d+)(Min|T|Hour|H|Day|D|Week|W|Month|M)")
_NEW_YORK = ZoneInfo("America/New_York")


def load_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def bars_from_csv(path: Path = AMZN_CSV) -> list[dict[str, Any]]:
    """Alpaca's CSV shape (timestamp, open, high, low, close, volume, trade_count, vwap) as
    the API's JSON bars."""
    with path.open(newline="") as f:
        return [
            {
                "t": _rfc3339(datetime.fromisoformat(row["timestamp"])),
                "o": float(row["open"]),
                "h": float(row["high"]),
                "l": float(row["low"]),
                "c": float(row["close"]),
                "v": int(float(row["volume"])),
                "n": int(float(row["trade_count"])),
                "vw": float(row["vwap"]),
            }
            for row in csv.DictReader(f)
        ]


def _parse_time(value: str) -> datetime | None:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _timeframe(value: str) -> tuple[int, str] | None:
    match = _TIMEFRAME.fullmatch(value)
    if not match:
        return None
    n, unit = int(match.group(1)), match.group(2)
    unit = {"T": "Min", "H": "Hour", "D": "Day", "W": "Week", "M": "Month"}.get(unit, unit)
    limits = {"Min": range(1, 60), "Hour": range(1, 24), "Day": (1,), "Week": (1,)}
    allowed = limits.get(unit, (1, 2, 3, 4, 6, 12))
    return (n, unit) if n in allowed else None


def _aggregate(bars: list[dict[str, Any]], n: int, unit: str) -> list[dict[str, Any]]:
    if (n, unit) == (1, "Min"):
        return bars
    groups: dict[Any, list[dict[str, Any]]] = {}
    for bar in bars:
        moment = datetime.fromisoformat(bar["t"].replace("Z", "+00:00"))
        if unit in ("Min", "Hour"):
            size = n * (60 if unit == "Min" else 3600)
            epoch = int(moment.timestamp()) // size * size
            key: Any = _rfc3339(datetime.fromtimestamp(epoch, UTC))
        else:  # a day (week, month) is New York's calendar day, stamped at its midnight
            local = moment.astimezone(_NEW_YORK).date()
            key = _rfc3339(datetime.combine(local, datetime.min.time(), _NEW_YORK))
        groups.setdefault(key, []).append(bar)
    out = []
    for key, group in groups.items():
        volume = sum(b["v"] for b in group)
        out.append(
            {
                "t": key,
                "o": group[0]["o"],
                "h": max(b["h"] for b in group),
                "l": min(b["l"] for b in group),
                "c": group[-1]["c"],
                "v": volume,
                "n": sum(b["n"] for b in group),
                "vw": sum(b["vw"] * b["v"] for b in group) / volume if volume else group[-1]["c"],
            }
        )
    return out


class FakeAlpacaData:
    """The server; use as a context manager. `url` goes to
    StockHistoricalDataClient(url_override=...)."""

    def __init__(self, key_id: str = "test-key", secret_key: str = "test-secret") -> None:  # noqa: S107
        self.key_id = key_id
        self.secret_key = secret_key
        self.bars: dict[str, list[dict[str, Any]]] = {"AMZN": bars_from_csv()}
        self.trades: dict[str, list[dict[str, Any]]] = dict(load_json("trades.json")["trades"])
        self.latest_trades: dict[str, dict[str, Any]] = dict(
            load_json("latest_trades.json")["trades"]
        )
        self.latest_quotes: dict[str, dict[str, Any]] = dict(
            load_json("latest_quotes.json")["quotes"]
        )
        self.sip_entitled = True
        self.max_page = 10_000  # "The API may return less [than limit]": tests page with less
        self.requests: list[dict[str, Any]] = []
        self._rate_limited = 0
        self._parameters: dict[str, list[dict[str, Any]]] = load_json("parameters.json")
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeAlpacaData:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    def rate_limit(self, times: int = 1) -> None:
        """The next `times` requests answer 429."""
        with self._lock:
            self._rate_limited += times

    # --- HTTP ---------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._handle(Request(environ))(environ, start_response)

    def _handle(self, request: Request) -> Response:
        with self._lock:
            self.requests.append({"path": request.path, "query": dict(request.args)})
            limited = self._rate_limited > 0
            if limited:
                self._rate_limited -= 1
        if (
            request.headers.get("APCA-API-KEY-ID") != self.key_id
            or request.headers.get("APCA-API-SECRET-KEY") != self.secret_key
        ):
            return _json({"message": "unauthorized."}, 401)
        if limited:
            reset = int(time.time()) + 1
            return _json(
                {"message": "too many requests."},
                429,
                {
                    "X-RateLimit-Limit": "200",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(reset),
                },
            )
        if request.method != "GET":
            return _json({"message": "method not allowed"}, 405)
        route = self._route_of(request.path)
        if route is None:
            return _json({"message": "not found"}, 404)
        spec_path, kind, symbol = route
        args = dict(request.args)
        if symbol is not None:
            args["symbols"] = symbol
        problem = self._violation(request.args, self._parameters[spec_path], symbol)
        if problem:
            return _json({"message": problem}, 400)
        if args.get("feed") == "sip" and not self.sip_entitled:
            return _json({"message": "subscription does not permit querying recent SIP data"}, 403)
        symbols = [s for s in args["symbols"].split(",") if s]
        if kind.endswith("/latest"):
            return self._latest(kind, symbols, single=symbol is not None)
        return self._series(kind, symbols, args, single=symbol is not None)

    @staticmethod
    def _route_of(path: str) -> tuple[str, str, str | None] | None:
        match = re.fullmatch(r"/v2/stocks/(bars|trades|quotes)(/latest)?", path)
        if match:
            kind = match.group(1) + (match.group(2) or "")
            return f"/v2/stocks/{kind}", kind, None
        match = re.fullmatch(r"/v2/stocks/([A-Za-z0-9.]+)/(bars|trades|quotes)(/latest)?", path)
        if match:
            kind = match.group(2) + (match.group(3) or "")
            return f"/v2/stocks/{{symbol}}/{kind}", kind, match.group(1)
        return None

    @staticmethod
    def _violation(args: Any, parameters: list[dict[str, Any]], symbol: str | None) -> str | None:
        for param in parameters:
            name, schema = param["name"], param.get("schema", {})
            if param["in"] != "query":
                continue
            if name not in args:
                if param.get("required"):
                    return f"{name} is required"
                continue
            value = args.get(name)
            if schema.get("type") == "integer":
                if not value.isdigit():
                    return f"invalid {name}: must be an integer"
                number = int(value)
                if not schema.get("minimum", number) <= number <= schema.get("maximum", number):
                    return f"invalid {name}: out of range"
            if "enum" in schema and value not in schema["enum"]:
                return f"invalid {name}: {value!r}"
            if schema.get("format") == "date-time" and _parse_time(value) is None:
                return f"invalid {name}: not RFC-3339 or YYYY-MM-DD"
            if name == "timeframe" and _timeframe(value) is None:
                return f"invalid timeframe: {value!r}"
        return None

    def _latest(self, kind: str, symbols: list[str], *, single: bool) -> Response:
        key = {"bars/latest": "bars", "trades/latest": "trades", "quotes/latest": "quotes"}[kind]
        found: dict[str, Any] = {}
        for s in symbols:
            if kind == "bars/latest":
                if self.bars.get(s):
                    found[s] = self.bars[s][-1]
            elif kind == "trades/latest":
                if s in self.latest_trades:
                    found[s] = self.latest_trades[s]
            elif s in self.latest_quotes:
                found[s] = self.latest_quotes[s]
        if single:  # /v2/stocks/{symbol}/trades/latest: {"symbol": ..., "trade": {...}}
            singular = key[:-1]
            return _json({"symbol": symbols[0], singular: found.get(symbols[0])})
        return _json({key: found})

    def _series(
        self, kind: str, symbols: list[str], args: dict[str, Any], *, single: bool
    ) -> Response:
        start = _parse_time(args["start"]) if "start" in args else None
        end = _parse_time(args["end"]) if "end" in args else None
        limit = int(args.get("limit", 1000))
        items: list[tuple[str, dict[str, Any]]] = []
        for s in sorted(symbols):
            series = self.bars.get(s, []) if kind == "bars" else self.trades.get(s, [])
            if kind == "bars":
                tf = _timeframe(args["timeframe"])
                assert tf is not None
                series = _aggregate(series, *tf)
            for item in series:
                moment = _parse_time(item["t"])
                assert moment is not None
                if (start is None or moment >= start) and (end is None or moment <= end):
                    items.append((s, item))
        if args.get("sort") == "desc":
            items.reverse()
        offset = 0
        if args.get("page_token"):
            try:
                offset = int(base64.b64decode(args["page_token"]).decode().rsplit("|", 1)[1])
            except (ValueError, IndexError):
                return _json({"message": "invalid page_token"}, 400)
        size = min(limit, self.max_page)
        page = items[offset : offset + size]
        more = offset + size < len(items)
        token = (
            base64.b64encode(f"{page[-1][0]}|{offset + size}".encode()).decode()
            if more and page
            else None
        )
        if single:
            return _json(
                {"symbol": symbols[0], kind: [item for _, item in page], "next_page_token": token}
            )
        grouped: dict[str, list[dict[str, Any]]] = {}
        for s, item in page:
            grouped.setdefault(s, []).append(item)
        return _json({kind: grouped, "next_page_token": token})


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, mimetype="application/json", headers=headers or {}
    )
