"""A local Alpaca Trading API v2 for tests: threaded HTTP on 127.0.0.1, stateful, answering in
the documented shapes (`tests/fixtures/alpaca/`), with fault injection.

What it does like Alpaca:
- `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY` checked (401 otherwise).
- POST /v2/orders validated against the spec's request schema (numbers allowed where the
  spec says strings: alpaca-py sends numbers and the live API takes both), plus the order
  rules: prices per type, bracket needs both legs, OTO one, no trailing stop with legs,
  advanced orders day/gtc only. Duplicate `client_order_id` -> 422 40010001.
- Market orders fill at once when `prices[symbol]` is set (positions and cash follow);
  bracket/OTO legs come back nested with status `held`; once the entry fills, the
  take-profit leg is `new` and the stop-loss leg stays `held` (it works, as at Alpaca).
- OCO (`order_class: oco`, type limit, `take_profit.limit_price`, `stop_loss.stop_price`):
  the take-profit limit order with the stop-loss as its leg, both working.
- A leg or OCO order that fills (`fill`) or is canceled takes its siblings with it.
- GET /v2/orders: query parameters checked against the spec's (booleans must be `true` or
  `false`, as a spec-strict server wants; alpaca-py's own `nested=True` is refused), status
  filtered on the top-level order, `symbols`, `nested` (else legs are listed as orders of
  their own); /v2/orders:by_client_order_id, /v2/orders/{id}, DELETE /v2/orders/{id} (204,
  404, 422 not cancelable), /v2/account, /v2/positions[/{symbol}], /v2/clock.
- `add_order` puts an order in the account as Alpaca would return it (e.g. the spec's own
  multi-leg options and IPO examples), so adapters meet what they do not trade.
- Shares held by working exit orders are not available: a sell of more than the position
  less what open sell orders hold is refused with 403 40310000 "insufficient qty available
  for order" — what Alpaca answers to a market close while a bracket's legs still hold the
  shares ("Orders do not always fill immediately … verify the status of previous executions
  before placing new orders that depend on their outcome",
  https://alpaca.markets/learn/issues-placing-an-order/).
- Cancels can settle late (`cancel_latency`): DELETE answers 204 and the order shows
  `pending_cancel` — still holding its shares — for that many reads before `canceled`.

Fault injection (`inject`): the next matching request answers with an error status, before
or after the order is created, or after a delay longer than the client's timeout: exactly
the cases where a client must look the order up before it retries.
`requests` records every request (method, path, query, JSON body) for assertions.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "alpaca"
NUMERIC_STRING_FIELDS = ("qty", "notional", "limit_price", "stop_price", "trail_percent")
NUMERIC_STRING_FIELDS += ("trail_price",)
OPEN_STATUSES = ("new", "accepted", "held", "partially_filled", "pending_new")
QUERY_BOOLEANS = ("true", "false")


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _request_schema() -> dict[str, Any]:
    """The spec's POST /v2/orders schema, widened to accept JSON numbers for prices/qty."""
    schema = load_fixture("post_order_request.schema.json")
    either = {"type": ["string", "number"]}
    props = schema["properties"]
    for name in NUMERIC_STRING_FIELDS:
        props[name] = {**props[name], **either}
    for leg, names in (("take_profit", ("limit_price",)), ("stop_loss", ("stop_price",))):
        for name in names:
            props[leg]["properties"][name] = {**props[leg]["properties"][name], **either}
    props["stop_loss"]["properties"]["limit_price"] = {
        **props["stop_loss"]["properties"]["limit_price"],
        **either,
    }
    for value in props.values():  # "format": "decimal" is not a JSON-schema format
        value.pop("format", None)
    return schema


def _query_violation(args: Any, parameters: list[dict[str, Any]]) -> str | None:
    """The first query parameter the spec's `parameters` refuse, as a message."""
    for param in parameters:
        name = param["name"]
        if name not in args:
            continue
        value, schema = args.get(name), param["schema"]
        kind = schema.get("type")
        if kind == "boolean" and value not in QUERY_BOOLEANS:
            return f"query parameter {name} must be true or false, not {value!r}"
        if kind == "integer" and not value.lstrip("-").isdigit():
            return f"query parameter {name} must be an integer"
        if "enum" in schema and value not in schema["enum"]:
            return f"query parameter {name} must be one of {schema['enum']}"
    return None


@dataclass
class Fault:
    """Answer the next `method path` with `status` (after creating the order when `after`)."""

    method: str
    path: str
    status: int = 500
    after: bool = False
    delay_s: float = 0.0
    times: int = 1


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _num(value: Any) -> str | None:
    return None if value is None else str(Decimal(str(value)).normalize())


class FakeAlpaca:
    """The server; use as a context manager. `url` goes to TradingClient(url_override=...)."""

    def __init__(self, key_id: str = "test-key", secret_key: str = "test-secret") -> None:  # noqa: S107
        self.key_id = key_id
        self.secret_key = secret_key
        self.orders: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, float] = {}
        self.positions: dict[str, Decimal] = {}
        self.account = load_fixture("account.json")
        self.requests: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.rejections: list[str] = []  # names in errors.json for the next POSTs
        self.cancel_latency = 0  # reads of an order that still show it pending_cancel
        self._pending_cancels: dict[str, int] = {}
        self._errors = load_fixture("errors.json")
        self._schema = _request_schema()
        self._list_parameters = load_fixture("get_orders_parameters.json")
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeAlpaca:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    # --- test controls ------------------------------------------------------------------

    def inject(self, method: str, path: str, **kwargs: Any) -> None:
        self.faults.append(Fault(method, path, **kwargs))

    def reject_next_order(self, error_name: str) -> None:
        self.rejections.append(error_name)

    def posts(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST"]

    def add_order(self, order: dict[str, Any]) -> None:
        """Put an order in the account exactly as given (a fixture from the spec)."""
        with self._lock:
            self.orders[order["id"]] = copy.deepcopy(order)

    def fill(self, order_id: str, price: float) -> None:
        """The market fills a working order or leg at `price`: siblings are canceled (an
        entry's legs start working instead), position and cash follow."""
        with self._lock:
            order, parent = self._find(order_id)
            if order["status"] not in OPEN_STATUSES:
                raise ValueError(f"order {order_id} is {order['status']}")
            self._fill_at(order, price)
            if parent is None and order["order_class"] in ("bracket", "oto"):
                self._activate_legs(order)
            else:
                for sibling in self._siblings(order, parent):
                    if sibling["status"] in OPEN_STATUSES:
                        sibling.update({"status": "canceled", "canceled_at": _now()})

    def _find(self, order_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if order_id in self.orders:
            return self.orders[order_id], None
        for parent in self.orders.values():
            for leg in parent.get("legs") or []:
                if leg["id"] == order_id:
                    return leg, parent
        raise KeyError(order_id)

    def _siblings(
        self, order: dict[str, Any], parent: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """What a leg's (or an OCO's) fill or cancel takes with it."""
        if parent is None:
            return list(order.get("legs") or [])
        others = [leg for leg in parent.get("legs") or [] if leg["id"] != order["id"]]
        return [parent, *others] if parent["order_class"] == "oco" else others

    # --- HTTP ---------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self._handle(request)
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        body = request.get_json(silent=True) if request.data else None
        with self._lock:
            self.requests.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "query": dict(request.args),
                    "json": body,
                }
            )
        if (
            request.headers.get("APCA-API-KEY-ID") != self.key_id
            or request.headers.get("APCA-API-SECRET-KEY") != self.secret_key
        ):
            return _json({"message": "unauthorized."}, 401)
        fault = self._take_fault(request.method, request.path)
        if fault is not None and not fault.after:
            return self._fail(fault)
        response = self._route(request, body)
        if fault is not None:
            return self._fail(fault)
        return response

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == method and fault.path == path and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _fail(self, fault: Fault) -> Response:
        if fault.delay_s:  # the client has timed out by the time this answers
            time.sleep(fault.delay_s)
        return self._error_for(fault)

    def _error_for(self, fault: Fault) -> Response:
        named = {429: "rate_limited", 500: "internal"}.get(fault.status)
        if named:
            return self._error(named)
        return Response("upstream unavailable", status=fault.status, mimetype="text/plain")

    def _error(self, name: str) -> Response:
        err = self._errors[name]
        return _json(err["body"], err["status"])

    def _route(self, request: Request, body: Any) -> Response:
        path, method = request.path, request.method
        if path == "/v2/orders" and method == "POST":
            return self._post_order(body)
        if path == "/v2/orders" and method == "GET":
            problem = _query_violation(request.args, self._list_parameters)
            if problem:
                return _json({"code": 40010000, "message": problem}, 422)
            return _json(self._order_list(request.args), 200)
        if path == "/v2/orders:by_client_order_id" and method == "GET":
            cid = request.args.get("client_order_id")
            if not cid:
                return _json({"code": 40010000, "message": "client_order_id is required"}, 422)
            found = next((o for o in self._every_order() if o["client_order_id"] == cid), None)
            return _json(found, 200) if found else self._error("order_not_found")
        if path.startswith("/v2/orders/"):
            try:
                order, parent = self._find(path.removeprefix("/v2/orders/"))
            except KeyError:
                return self._error("order_not_found")
            if method == "GET":
                self._settle_cancel(order, parent)
                return _json(order, 200)
            if method == "DELETE":
                return self._cancel(order, parent)
        if path.startswith("/v2/positions/") and method == "GET":
            symbol = path.removeprefix("/v2/positions/")
            held = [p for p in self._positions() if p["symbol"] == symbol]
            if not held:
                return _json({"code": 40410000, "message": "position does not exist"}, 404)
            return _json(held[0], 200)
        if path == "/v2/account" and method == "GET":
            return _json(self.account, 200)
        if path == "/v2/positions" and method == "GET":
            return _json(self._positions(), 200)
        if path == "/v2/clock" and method == "GET":
            return _json(load_fixture("clock.json"), 200)
        return _json({"code": 40410000, "message": "endpoint not found"}, 404)

    # --- orders -------------------------------------------------------------------------

    def _post_order(self, body: Any) -> Response:
        if not isinstance(body, dict):
            return _json({"code": 40010000, "message": "request body must be JSON"}, 400)
        try:
            jsonschema.validate(body, self._schema)
        except jsonschema.ValidationError as exc:
            return _json({"code": 40010000, "message": f"invalid request: {exc.message}"}, 422)
        problem = _order_rule_violation(body)
        if problem:
            return _json({"code": 42210000, "message": problem}, 422)
        with self._lock:
            if self.rejections:
                return self._error(self.rejections.pop(0))
            cid = body.get("client_order_id") or str(uuid.uuid4())
            if any(o["client_order_id"] == cid for o in self.orders.values()):
                return self._error("duplicate_client_order_id")
            short_of = self._unavailable(body)
            if short_of:
                return _json({"code": 40310000, "message": short_of}, 403)
            order = self._new_order(body, cid)
            self.orders[order["id"]] = order
            self._maybe_fill(order)
            return _json(order, 200)

    def _new_order(self, body: dict[str, Any], cid: str) -> dict[str, Any]:
        order = copy.deepcopy(load_fixture("order_equity.json"))
        stamp = _now()
        order_class = body.get("order_class") or ""
        order.update(
            {
                "id": str(uuid.uuid4()),
                "client_order_id": cid,
                "created_at": stamp,
                "updated_at": stamp,
                "submitted_at": stamp,
                "symbol": body["symbol"],
                "side": body["side"],
                "qty": _num(body.get("qty")),
                "notional": _num(body.get("notional")),
                "type": body["type"],
                "order_type": body["type"],
                "time_in_force": body["time_in_force"],
                "limit_price": _num(body.get("limit_price")),
                "stop_price": _num(body.get("stop_price")),
                "trail_percent": _num(body.get("trail_percent")),
                "trail_price": _num(body.get("trail_price")),
                "order_class": order_class,
                "status": "accepted",
                "filled_qty": "0",
                "legs": None,
            }
        )
        if order["type"] == "trailing_stop":
            order["hwm"] = _num(self.prices.get(body["symbol"]))
        legs = []
        exit_side = "sell" if body["side"] == "buy" else "buy"
        if order_class == "oco":  # the take-profit limit order, its stop-loss as its leg
            order["limit_price"] = _num(body["take_profit"]["limit_price"])
            order["status"] = "new"
            stop = self._leg(order, body["side"], "stop", stop=body["stop_loss"]["stop_price"])
            order["legs"] = [stop]
            return order
        if body.get("take_profit"):
            legs.append(
                self._leg(order, exit_side, "limit", limit=body["take_profit"]["limit_price"])
            )
        if body.get("stop_loss"):
            sl = body["stop_loss"]
            kind = "stop_limit" if sl.get("limit_price") is not None else "stop"
            stop, limit = sl["stop_price"], sl.get("limit_price")
            legs.append(self._leg(order, exit_side, kind, stop=stop, limit=limit))
        if legs:
            order["legs"] = legs
        return order

    def _leg(
        self,
        parent: dict[str, Any],
        side: str,
        kind: str,
        limit: Any = None,
        stop: Any = None,
    ) -> dict[str, Any]:
        leg = copy.deepcopy(parent)
        leg.update(
            {
                "id": str(uuid.uuid4()),
                "client_order_id": str(uuid.uuid4()),
                "side": side,
                "type": kind,
                "order_type": kind,
                "limit_price": _num(limit),
                "stop_price": _num(stop),
                "trail_percent": None,
                "trail_price": None,
                "status": "held",
                "legs": None,
            }
        )
        return leg

    def _maybe_fill(self, order: dict[str, Any]) -> None:
        price = self.prices.get(order["symbol"])
        if order["type"] != "market" or price is None or order["qty"] is None:
            return
        self._fill_at(order, price)
        self._activate_legs(order)

    def _fill_at(self, order: dict[str, Any], price: float) -> None:
        qty = Decimal(order["qty"])
        order.update(
            {
                "status": "filled",
                "filled_qty": order["qty"],
                "filled_avg_price": _num(price),
                "filled_at": _now(),
            }
        )
        signed = qty if order["side"] == "buy" else -qty
        self.positions[order["symbol"]] = self.positions.get(order["symbol"], Decimal(0)) + signed
        cash = Decimal(self.account["cash"]) - signed * Decimal(str(price))
        self.account["cash"] = str(cash)

    def _activate_legs(self, order: dict[str, Any]) -> None:
        """An entry filled: its take-profit works (`new`), its stop-loss stays `held`."""
        for leg in order["legs"] or []:
            if leg["status"] == "held" and leg["type"] == "limit":
                leg["status"] = "new"

    def _cancel(self, order: dict[str, Any], parent: dict[str, Any] | None = None) -> Response:
        with self._lock:
            if order["status"] not in OPEN_STATUSES:
                return self._error("not_cancelable")
            if self.cancel_latency:
                self._pending_cancels[order["id"]] = self.cancel_latency
                order["status"] = "pending_cancel"
                return Response(status=204)
            self._finish_cancel(order, parent)
        return Response(status=204)

    def _finish_cancel(self, order: dict[str, Any], parent: dict[str, Any] | None) -> None:
        for target in (order, *self._siblings(order, parent)):
            if target["status"] in (*OPEN_STATUSES, "pending_cancel"):
                target.update({"status": "canceled", "canceled_at": _now()})

    def _settle_cancel(self, order: dict[str, Any], parent: dict[str, Any] | None) -> None:
        with self._lock:
            left = self._pending_cancels.get(order["id"])
            if left is None:
                return
            if left > 1:
                self._pending_cancels[order["id"]] = left - 1
                return
            del self._pending_cancels[order["id"]]
            self._finish_cancel(order, parent)

    def _unavailable(self, body: dict[str, Any]) -> str | None:
        """Alpaca's refusal when the shares an exit sells are held by other open orders."""
        held = self.positions.get(body["symbol"], Decimal(0))
        selling = body["side"] == "sell"
        if held == 0 or (held > 0) != selling or body.get("qty") is None:
            return None  # opens (or adds to) a position: buying power decides, not shares
        working = (*OPEN_STATUSES, "pending_cancel")
        reserved = Decimal(0)
        for top in self.orders.values():
            if top.get("symbol") != body["symbol"]:
                continue
            group = [top, *(top.get("legs") or [])]
            held_by = [o for o in group if o.get("side") == body["side"] and o.get("qty")]
            if any(o["status"] in working for o in held_by):
                # A bracket's or an OCO's exits share one quantity: it is held once.
                reserved += max(Decimal(o["qty"]) for o in held_by if o["status"] in working)
        available = abs(held) - reserved
        requested = Decimal(str(body["qty"]))
        if requested <= available:
            return None
        return (
            f"insufficient qty available for order (requested: {_num(requested)}, "
            f"available: {_num(max(available, Decimal(0)))})"
        )

    def _every_order(self) -> list[dict[str, Any]]:
        return [o for top in self.orders.values() for o in (top, *(top.get("legs") or []))]

    def _order_list(self, args: Any = None) -> list[dict[str, Any]]:
        """Like Alpaca: with `nested=true` the status filters top-level orders and legs ride
        along; otherwise every order, legs included, is listed (and filtered) by itself."""
        args = args or {}
        status = args.get("status", "open")
        nested = args.get("nested") == "true"
        if nested:
            orders = list(self.orders.values())
        else:
            orders = [{**o, "legs": None} for o in self._every_order()]
        if status == "open":
            orders = [o for o in orders if o["status"] in OPEN_STATUSES]
        elif status == "closed":
            orders = [o for o in orders if o["status"] not in OPEN_STATUSES]
        if args.get("symbols"):
            wanted = set(args["symbols"].split(","))
            orders = [o for o in orders if o.get("symbol") in wanted]
        orders.sort(key=lambda o: o["submitted_at"], reverse=args.get("direction") != "asc")
        return orders[: int(args.get("limit", 50))]

    def _positions(self) -> list[dict[str, Any]]:
        template = load_fixture("position.json")
        out = []
        for symbol, qty in self.positions.items():
            if qty == 0:
                continue
            price = Decimal(str(self.prices.get(symbol, 0)))
            out.append(
                {
                    **template,
                    "symbol": symbol,
                    "qty": str(qty),
                    "qty_available": str(qty),
                    "side": "long" if qty > 0 else "short",
                    "current_price": str(price),
                    "avg_entry_price": str(price),
                    "market_value": str(qty * price),
                    "cost_basis": str(qty * price),
                    "unrealized_pl": "0",
                }
            )
        return out


def _order_rule_violation(body: dict[str, Any]) -> str | None:
    """Alpaca's order rules beyond the schema; the message says what is wrong."""
    kind = body["type"]
    if "side" not in body or "symbol" not in body:
        return "symbol and side are required"
    if (body.get("qty") is None) == (body.get("notional") is None):
        return "qty or notional is required"
    oco = body.get("order_class") == "oco"
    if kind in ("limit", "stop_limit") and body.get("limit_price") is None and not oco:
        return "limit_price is required"
    if kind in ("stop", "stop_limit") and body.get("stop_price") is None:
        return "stop_price is required"
    if kind == "trailing_stop" and (body.get("trail_percent") is None) == (
        body.get("trail_price") is None
    ):
        return "trailing_stop requires one of trail_price or trail_percent"
    order_class = body.get("order_class") or "simple"
    tp, sl = body.get("take_profit"), body.get("stop_loss")
    if order_class == "simple" and (tp or sl):
        return "take_profit/stop_loss need order_class bracket, oto or oco"
    if order_class in ("bracket", "oto", "oco"):
        if kind == "trailing_stop":
            return f"{order_class} orders do not support trailing_stop"
        if body["time_in_force"] not in ("day", "gtc"):
            return f"{order_class} orders must be day or gtc"
    if order_class == "bracket":
        if not (tp and sl):
            return "bracket orders require take_profit and stop_loss"
        tp_price = Decimal(str(tp["limit_price"]))
        sl_price = Decimal(str(sl["stop_price"]))
        if (body["side"] == "buy" and tp_price <= sl_price) or (
            body["side"] == "sell" and tp_price >= sl_price
        ):
            return "take_profit.limit_price must be on the profit side of stop_loss.stop_price"
    if order_class == "oco":
        if kind != "limit":
            return "oco orders must be limit orders"
        if not (tp and sl):
            return "oco orders require take_profit and stop_loss"
        tp_price = Decimal(str(tp["limit_price"]))
        sl_price = Decimal(str(sl["stop_price"]))
        if (body["side"] == "sell" and tp_price <= sl_price) or (
            body["side"] == "buy" and tp_price >= sl_price
        ):
            return "take_profit.limit_price must be on the profit side of stop_loss.stop_price"
    if order_class == "oto" and bool(tp) == bool(sl):
        return "oto orders require exactly one of take_profit or stop_loss"
    for name in ("limit_price", "stop_price"):
        value = body.get(name)
        if value is not None and Decimal(str(value)) >= 1 and Decimal(str(value)) % Decimal("0.01"):
            return "sub-penny increment does not fulfill minimum pricing criteria"
    return None


def _json(payload: Any, status: int) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")
