"""A local TradeStation API v3 (SIM) for tests: threaded HTTP on 127.0.0.1, stateful, answering
in the spec's shapes (`tests/fixtures/tradestation/`, recorded from the spec's examples), with
the OAuth token endpoint and fault injection.

What it does like TradeStation (api.tradestation.com/docs; the OpenAPI document in
tests/fixtures/tradestation/request.schemas.json for the request bodies):
- `POST /oauth/token` (form-encoded, `grant_type=refresh_token`, client id/secret, refresh
  token) answers the documented example's fields; access tokens last `expires_in` = 1200 s.
  With `rotate=True` (a key "configured to expiring and rotating Refresh Tokens") every grant
  returns a new `refresh_token` and the old one stops working. A refused grant is Auth0's 403
  `invalid_grant` (TradeStation's sign-in is Auth0: signin.tradestation.com).
- Every `/v3` call needs `Authorization: Bearer <access token>`; `expire_tokens()` makes the
  current ones answer 401 (as an invalidated token does).
- `POST /v3/orderexecution/orders` and `/ordergroups` are validated against the spec's
  `OrderRequest` / `GroupOrderRequest` schemas (numbers must be strings), plus the rules the
  docs state: prices per `OrderType`, `TradeAction` one of the documented equity actions,
  `OrderConfirmID` unique (a repeat is refused: "used to prevent duplicates"), BRK groups only
  closing orders of one symbol and side ("restricted to closing transactions"). Stricter than
  the docs say (assumed): a SELL/BUYTOCOVER needs the position it closes, a BUY/SELLSHORT may
  not meet an opposite position.
- SIM fills market orders at once ("only simulated executions occur with instant fills") at
  `prices[symbol]`; an OSO entry's children show `OSO` until the entry fills, then `ACK`;
  a BRK/OCO member that fills cancels its siblings (`fill`).
- `GET /v3/brokerage/accounts/{id}/orders` (today's and open orders, newest first),
  `/orders/{ids}`, `/positions`, `/balances`, `/bodbalances`; `DELETE` and `PUT`
  `/v3/orderexecution/orders/{id}`. Cancels can settle late (`cancel_latency`: that many
  reads show `UCN` "Cancel Sent" first).
- `add_order` puts an order in the account as given (e.g. an option order).

`requests` records every call (method, path, query, JSON body, form) for assertions.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tradestation"
OPEN = frozenset({"ACK", "OPN", "DON", "PLA", "FPR", "OSO", "UCN", "RPD", "RSN"})
ACTIONS = {"BUY": "Buy", "SELL": "Sell", "SELLSHORT": "SellShort", "BUYTOCOVER": "BuyToCover"}
CLOSING = frozenset({"SELL", "BUYTOCOVER"})


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class Fault:
    method: str
    path: str
    status: int = 503
    after: bool = False
    delay_s: float = 0.0
    times: int = 1


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _error(status: int, error: str, message: str) -> Response:
    return _json({"Error": error, "Message": message}, status)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


class FakeTradeStation:
    """The server; use as a context manager. `url` is the v3 base URL, `token_url` the
    sign-in token endpoint."""

    def __init__(
        self,
        *,
        account_id: str = "SIM1234567M",
        client_id: str = "test-client-id",
        client_secret: str = "test-client-secret",  # noqa: S107
        refresh_token: str = "rt-initial",  # noqa: S107
        rotate: bool = False,
    ) -> None:
        self.account_id = account_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_tokens = {refresh_token}
        self.rotate = rotate
        self.access_tokens: set[str] = set()
        self.grants = 0
        self.orders: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, float] = {}
        self.positions: dict[str, Decimal] = {}
        self.cash = Decimal("100000")
        self.bod_equity = Decimal("100000")
        self.requests: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.cancel_latency = 0
        self.answer_reversed = False  # the spec does not say in which order OrderIDs come back
        self._pending_cancels: dict[str, int] = {}
        self._confirm_ids: set[str] = set()
        self._ids = itertools.count(286179900)
        self._tokens = itertools.count(1)
        schemas = load_fixture("request.schemas.json")
        self._order_schema = schemas["OrderRequest"]
        self._group_schema = schemas["GroupOrderRequest"]
        self._replace_schema = schemas["OrderReplaceRequest"]
        self._lock = threading.RLock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        root = f"http://127.0.0.1:{self._server.server_port}"
        self.url = f"{root}/v3"
        self.token_url = f"{root}/oauth/token"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeTradeStation:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    # --- test controls ------------------------------------------------------------------

    def inject(self, method: str, path: str, **kwargs: Any) -> None:
        self.faults.append(Fault(method, path, **kwargs))

    def expire_tokens(self) -> None:
        with self._lock:
            self.access_tokens.clear()

    def posts(self, path: str = "") -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST" and r["path"].endswith(path)]

    def add_order(self, order: dict[str, Any]) -> None:
        with self._lock:
            self.orders[str(order["OrderID"])] = copy.deepcopy(order)

    def fill(self, order_id: str, price: float) -> None:
        """The market fills a working order at `price`: an entry's OSO children start
        working, a BRK/OCO member's siblings are canceled, the position follows."""
        with self._lock:
            order = self.orders[order_id]
            if order["Status"] not in OPEN or order["Status"] == "OSO":
                raise ValueError(f"order {order_id} is {order['Status']}")
            self._fill_at(order, Decimal(str(price)))

    # --- HTTP ---------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._handle(Request(environ))(environ, start_response)

    def _handle(self, request: Request) -> Response:
        body = request.get_json(silent=True) if request.mimetype == "application/json" else None
        with self._lock:
            self.requests.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "query": dict(request.args),
                    "json": body,
                    "form": dict(request.form) if request.method == "POST" else {},
                }
            )
        if request.path == "/oauth/token" and request.method == "POST":
            fault = self._take_fault("POST", "/oauth/token")
            if fault is not None:
                return self._fail(fault)
            return self._token(request.form)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self.access_tokens:
            return _error(401, "Unauthorized", "Invalid or expired access token.")
        fault = self._take_fault(request.method, request.path)
        if fault is not None and not fault.after:
            return self._fail(fault)
        with self._lock:
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
        if fault.delay_s:
            time.sleep(fault.delay_s)
        names = {401: "Unauthorized", 429: "TooManyRequests", 500: "InternalServerError"}
        names[503] = "ServiceUnavailable"
        if fault.status in names:
            return _error(fault.status, names[fault.status], "The service is unavailable.")
        return Response("gateway timeout", status=fault.status, mimetype="text/plain")

    def _token(self, form: Any) -> Response:
        ok = (
            form.get("grant_type") == "refresh_token"
            and form.get("client_id") == self.client_id
            and form.get("client_secret") == self.client_secret
            and form.get("refresh_token") in self.refresh_tokens
        )
        if not ok:
            return _json(
                {
                    "error": "invalid_grant",
                    "error_description": "Unknown or invalid refresh token.",
                },
                403,
            )
        with self._lock:
            self.grants += 1
            access = f"at-{next(self._tokens)}"
            self.access_tokens.add(access)
            answer = load_fixture("token_response.json") | {"access_token": access}
            if self.rotate:
                fresh = f"rt-{next(self._tokens)}"
                self.refresh_tokens = {fresh}
                answer["refresh_token"] = fresh
        return _json(answer)

    def _route(self, request: Request, body: Any) -> Response:
        path, method = request.path, request.method
        account = f"/v3/brokerage/accounts/{self.account_id}"
        if path == "/v3/orderexecution/orders" and method == "POST":
            return self._post(body, group=False)
        if path == "/v3/orderexecution/ordergroups" and method == "POST":
            return self._post(body, group=True)
        if path.startswith("/v3/orderexecution/orders/"):
            order_id = path.removeprefix("/v3/orderexecution/orders/")
            if order_id not in self.orders:
                return _error(404, "NotFound", "Order not found.")
            if method == "DELETE":
                return self._cancel(self.orders[order_id])
            if method == "PUT":
                return self._replace(self.orders[order_id], body)
        if path.startswith("/v3/brokerage/accounts/") and not path.startswith(account):
            return _error(403, "Forbidden", "Account is not accessible with this token.")
        if path == f"{account}/orders" and method == "GET":
            return _json(self._list(request.args))
        if path.startswith(f"{account}/orders/") and method == "GET":
            ids = path.removeprefix(f"{account}/orders/").split(",")
            found = []
            for order_id in ids:
                order = self.orders.get(order_id)
                if order is not None:
                    self._settle_cancel(order)
                    found.append(order)
            errors = [
                {
                    "AccountID": self.account_id,
                    "OrderID": i,
                    "Error": "NotFound",
                    "Message": "Order not found.",
                }
                for i in ids
                if i not in self.orders
            ]
            return _json({"Orders": found, "Errors": errors})
        if path == f"{account}/positions" and method == "GET":
            return _json({"Positions": self._positions(), "Errors": []})
        if path == f"{account}/balances" and method == "GET":
            return _json({"Balances": [self._balance()], "Errors": []})
        if path == f"{account}/bodbalances" and method == "GET":
            bod = copy.deepcopy(load_fixture("bodbalances.json")["BODBalances"][1])
            bod["AccountID"] = self.account_id
            bod["BalanceDetail"]["Equity"] = _num(self.bod_equity)
            return _json({"BODBalances": [bod], "Errors": []})
        return _error(404, "NotFound", "Endpoint not found.")

    # --- orders -------------------------------------------------------------------------

    def _post(self, body: Any, *, group: bool) -> Response:
        schema = self._group_schema if group else self._order_schema
        try:
            jsonschema.validate(body, schema)
        except jsonschema.ValidationError as exc:
            return _error(400, "BadRequest", f"Invalid request: {exc.message}")
        requests_ = body["Orders"] if group else [body]
        children = [o for oso in body.get("OSOs") or [] for o in oso["Orders"]] if not group else []
        for request in (*requests_, *children):
            problem = self._violation(request)
            if problem:
                return _error(400, "BadRequest", problem)
        if group:
            problem = self._group_violation(body)
            if problem:
                return _error(400, "BadRequest", problem)
        else:
            problem = self._position_violation(body)
            if problem:
                return _error(400, "BadRequest", problem)
        ids = [r.get("OrderConfirmID") for r in (*requests_, *children) if r.get("OrderConfirmID")]
        if any(i in self._confirm_ids for i in ids):
            return _error(400, "BadRequest", "Duplicate OrderConfirmID: order already submitted.")
        self._confirm_ids.update(ids)
        placed = []
        if group:
            members = [self._new(r) for r in requests_]
            self._link_group(members, body["Type"])
            placed = members
        else:
            parent = self._new(body)
            placed.append(parent)
            for oso in body.get("OSOs") or []:
                kids = [self._new(r, status="OSO") for r in oso["Orders"]]
                self._link_group(kids, str(oso["Type"]).upper())
                for kid in kids:
                    kid["ConditionalOrders"].insert(
                        0, {"Relationship": "OSP", "OrderID": parent["OrderID"]}
                    )
                    parent["ConditionalOrders"].append(
                        {"Relationship": "OSO", "OrderID": kid["OrderID"]}
                    )
                placed += kids
            self._maybe_fill(parent)
        if self.answer_reversed:
            placed.reverse()
        return _json(
            {
                "Orders": [
                    {"Message": f"Sent order: {_describe(o)}", "OrderID": o["OrderID"]}
                    for o in placed
                ]
            }
        )

    def _violation(self, request: dict[str, Any]) -> str | None:
        if request["AccountID"] != self.account_id:
            return f"Account {request['AccountID']} is not accessible with this token."
        action = str(request["TradeAction"]).upper()
        if action not in ACTIONS:
            return f"Invalid TradeAction {request['TradeAction']!r} for an equity order."
        kind = request["OrderType"]
        trailing = (request.get("AdvancedOptions") or {}).get("TrailingStop")
        if kind in ("Limit", "StopLimit") and not request.get("LimitPrice"):
            return f"LimitPrice is required for {kind} orders."
        if kind in ("StopMarket", "StopLimit") and not (request.get("StopPrice") or trailing):
            return f"StopPrice is required for {kind} orders."
        if trailing and bool(trailing.get("Amount")) == bool(trailing.get("Percent")):
            return "TrailingStop needs exactly one of Amount and Percent."
        try:
            qty = Decimal(request["Quantity"])
            prices = [Decimal(request[k]) for k in ("LimitPrice", "StopPrice") if request.get(k)]
        except ArithmeticError:
            return "Quantity and prices must be decimal strings."
        if qty <= 0 or any(p <= 0 for p in prices):
            return "Quantity and prices must be positive."
        return None

    def _group_violation(self, body: dict[str, Any]) -> str | None:
        kind = str(body["Type"]).upper()
        if kind not in ("BRK", "OCO", "NORMAL"):
            return f"Invalid group type {body['Type']!r}."
        if kind == "BRK":
            orders = body["Orders"]
            actions = {str(o["TradeAction"]).upper() for o in orders}
            if len({o["Symbol"] for o in orders}) != 1 or len(actions) != 1:
                return "Bracket orders must be for one symbol, on one side of the market."
            if not actions <= CLOSING:
                return "Bracket orders are restricted to closing transactions."
            return self._position_violation(orders[0])
        return None

    def _position_violation(self, request: dict[str, Any]) -> str | None:
        held = self.positions.get(request["Symbol"], Decimal(0))
        action = str(request["TradeAction"]).upper()
        qty = Decimal(request["Quantity"])
        if action == "SELL" and held < qty:
            return f"Cannot sell {qty} {request['Symbol']}: long position is {max(held, 0)}."
        if action == "BUYTOCOVER" and -held < qty:
            return f"Cannot cover {qty} {request['Symbol']}: short position is {max(-held, 0)}."
        if action == "BUY" and held < 0:
            return f"Use BUYTOCOVER to buy {request['Symbol']} while short."
        if action == "SELLSHORT" and held > 0:
            return f"Use SELL to sell {request['Symbol']} while long."
        return None

    def _new(self, request: dict[str, Any], status: str = "ACK") -> dict[str, Any]:
        action = str(request["TradeAction"]).upper()
        order: dict[str, Any] = {
            "AccountID": self.account_id,
            "CommissionFee": "0",
            "Currency": "USD",
            "Duration": request["TimeInForce"]["Duration"],
            "Legs": [
                {
                    "AssetType": "STOCK",
                    "BuyOrSell": ACTIONS[action],
                    "ExecQuantity": "0",
                    "OpenOrClose": "Close" if action in CLOSING else "Open",
                    "QuantityOrdered": _num(Decimal(request["Quantity"])),
                    "QuantityRemaining": _num(Decimal(request["Quantity"])),
                    "Symbol": request["Symbol"],
                }
            ],
            "OrderID": str(next(self._ids)),
            "OpenedDateTime": _now(),
            "OrderType": request["OrderType"],
            "Routing": request.get("Route", "Intelligent"),
            "Status": status,
            "StatusDescription": "OSO Order" if status == "OSO" else "Received",
            "ConditionalOrders": [],
            "UnbundledRouteFee": "0",
        }
        for key in ("LimitPrice", "StopPrice"):
            if request.get(key):
                order[key] = _num(Decimal(request[key]))
        trailing = (request.get("AdvancedOptions") or {}).get("TrailingStop")
        if trailing:
            order["TrailingStop"] = dict(trailing)
            order["AdvancedOptions"] = "TRL=" + (
                f"{trailing['Percent']}%" if trailing.get("Percent") else trailing["Amount"]
            )
        self.orders[order["OrderID"]] = order
        return order

    def _link_group(self, members: list[dict[str, Any]], kind: str) -> None:
        if kind not in ("BRK", "OCO") or len(members) < 2:
            return
        name = f"{kind} {members[0]['OrderID']}"
        for member in members:
            member["GroupName"] = name
            member["ConditionalOrders"] += [
                {"Relationship": kind, "OrderID": other["OrderID"]}
                for other in members
                if other is not member
            ]

    def _maybe_fill(self, order: dict[str, Any]) -> None:
        price = self.prices.get(order["Legs"][0]["Symbol"])
        if order["OrderType"] == "Market" and price is not None:
            self._fill_at(order, Decimal(str(price)))

    def _fill_at(self, order: dict[str, Any], price: Decimal) -> None:
        leg = order["Legs"][0]
        qty = Decimal(leg["QuantityRemaining"])
        leg.update({"ExecQuantity": leg["QuantityOrdered"], "QuantityRemaining": "0"})
        leg["ExecutionPrice"] = _num(price)
        order.update(
            {
                "Status": "FLL",
                "StatusDescription": "Filled",
                "FilledPrice": _num(price),
                "ClosedDateTime": _now(),
            }
        )
        signed = qty if leg["BuyOrSell"] in ("Buy", "BuyToCover") else -qty
        symbol = leg["Symbol"]
        self.positions[symbol] = self.positions.get(symbol, Decimal(0)) + signed
        self.cash -= signed * price
        for link in order.get("ConditionalOrders") or []:
            other = self.orders.get(link["OrderID"])
            if other is None:
                continue
            if link["Relationship"] == "OSO" and other["Status"] == "OSO":
                other.update({"Status": "ACK", "StatusDescription": "Received"})
            elif link["Relationship"] in ("BRK", "OCO") and other["Status"] in OPEN:
                self._finish_cancel(other, "Canceled by its group")

    def _cancel(self, order: dict[str, Any]) -> Response:
        if order["Status"] not in OPEN or order["Status"] == "UCN":
            return _error(400, "BadRequest", f"Order cannot be canceled: it is {order['Status']}.")
        if self.cancel_latency:
            self._pending_cancels[order["OrderID"]] = self.cancel_latency
            order.update({"Status": "UCN", "StatusDescription": "Cancel Sent"})
        else:
            self._finish_cancel(order)
        return _json(load_fixture("cancel_response.json") | {"OrderID": order["OrderID"]})

    def _finish_cancel(self, order: dict[str, Any], why: str = "Canceled") -> None:
        order.update({"Status": "CAN", "StatusDescription": why, "ClosedDateTime": _now()})
        for link in order.get("ConditionalOrders") or []:  # an entry's children go with it
            child = self.orders.get(link["OrderID"])
            if link["Relationship"] == "OSO" and child is not None and child["Status"] in OPEN:
                self._finish_cancel(child)

    def _settle_cancel(self, order: dict[str, Any]) -> None:
        left = self._pending_cancels.get(order["OrderID"])
        if left is None:
            return
        if left > 1:
            self._pending_cancels[order["OrderID"]] = left - 1
            return
        del self._pending_cancels[order["OrderID"]]
        self._finish_cancel(order)

    def _replace(self, order: dict[str, Any], body: Any) -> Response:
        try:
            jsonschema.validate(body, self._replace_schema)
        except jsonschema.ValidationError as exc:
            return _error(400, "BadRequest", f"Invalid request: {exc.message}")
        if not body:
            return _error(400, "BadRequest", "At least one property must be updated.")
        if order["Status"] not in OPEN:
            return _error(400, "BadRequest", "You cannot update an order that has been filled.")
        if body.get("Quantity"):
            qty = _num(Decimal(body["Quantity"]))
            order["Legs"][0].update({"QuantityOrdered": qty, "QuantityRemaining": qty})
        for key in ("LimitPrice", "StopPrice"):
            if body.get(key):
                order[key] = _num(Decimal(body[key]))
        return _json(load_fixture("replace_response.json") | {"OrderID": order["OrderID"]})

    def _list(self, args: Any) -> dict[str, Any]:
        orders = sorted(self.orders.values(), key=lambda o: int(o["OrderID"]), reverse=True)
        for order in orders:
            self._settle_cancel(order)
        size = int(args.get("pageSize", 600))
        start = int(args.get("nextToken", "0") or 0)
        page = orders[start : start + size]
        answer: dict[str, Any] = {"Orders": page, "Errors": []}
        if start + size < len(orders):
            answer["NextToken"] = str(start + size)
        return answer

    def _positions(self) -> list[dict[str, Any]]:
        template = load_fixture("positions.json")["Positions"][0]
        out = []
        for symbol, qty in self.positions.items():
            if qty == 0:
                continue
            price = Decimal(str(self.prices.get(symbol, 0)))
            out.append(
                {
                    **template,
                    "AccountID": self.account_id,
                    "Symbol": symbol,
                    "Quantity": _num(qty),
                    "LongShort": "Long" if qty > 0 else "Short",
                    "AveragePrice": _num(price),
                    "Last": _num(price),
                    "Bid": _num(price),
                    "Ask": _num(price),
                    "MarketValue": _num(qty * price),
                    "TotalCost": _num(qty * price),
                    "TodaysProfitLoss": "0",
                    "UnrealizedProfitLoss": "0",
                    "UnrealizedProfitLossPercent": "0",
                    "UnrealizedProfitLossQty": "0",
                }
            )
        return out

    def _balance(self) -> dict[str, Any]:
        raw = copy.deepcopy(load_fixture("balances.json")["Balances"][1])  # the Margin example
        value = sum(
            (q * Decimal(str(self.prices.get(s, 0))) for s, q in self.positions.items()),
            Decimal(0),
        )
        equity = self.cash + value
        raw.update(
            {
                "AccountID": self.account_id,
                "CashBalance": _num(self.cash),
                "BuyingPower": _num(self.cash),
                "Equity": _num(equity),
                "MarketValue": _num(value),
                "TodaysProfitLoss": _num(equity - self.bod_equity),
            }
        )
        return raw


def _describe(order: dict[str, Any]) -> str:
    leg = order["Legs"][0]
    price = order.get("LimitPrice") or order.get("StopPrice")
    at = f"{price} {order['OrderType']}" if price else order["OrderType"]
    return f"{leg['BuyOrSell']} {leg['QuantityOrdered']} {leg['Symbol']} @ {at}"
