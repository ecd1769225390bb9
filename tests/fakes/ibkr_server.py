"""A local IBKR Client Portal Web API for tests: threaded HTTP on 127.0.0.1 under `/v1/api/`,
stateful, answering in the spec's documented shapes (IBKR Web API spec 2.29.0,
https://api.ibkr.com/gw/api/v3/api-docs; examples in `tests/fixtures/ibkr/examples.json`).

OAuth 1.0a as IBKR does it, and as ibind (`ibind/oauth/oauth1a.py`) computes the client
side, so a wrong key, token or prime fails here as it would there:
- `POST /oauth/live_session_token`: the Authorization header is parsed, the consumer key
  and access token checked, the RSA-SHA256 signature verified with the *signature* public
  key over `prepend + METHOD&url&params` (prepend = the access token secret, decrypted with
  the *encryption* key, in hex), the timestamp fresh and the nonce unused. The server picks
  its DH secret b, answers `diffie_hellman_response` = g^b mod p, and the LST it keeps is
  HMAC-SHA1(K, secret) with K = challenge^b mod p — the same token the client derives from
  g^a and B. `live_session_token_signature` = HMAC-SHA1(LST, consumer key), hex.
- every other request: HMAC-SHA256 over `METHOD&url&oauth params` keyed with the LST
  (ibind signs the URL without its query; so does this server). An unknown or expired
  LST (`expire_lst`) answers 401 "Invalid or expired access token" (spec).

The brokerage session: `/iserver/*` (but auth/status and ssodh/init) answer 400 "no bridge"
until `POST /iserver/auth/ssodh/init` (`drop_brokerage_session` ends it). `/iserver/accounts`
must be read before live orders and snapshots ("The endpoint /iserver/accounts must be called
prior to /iserver/marketdata/snapshot", spec); the first live-orders read of a session
answers empty (ibind: "This endpoint requires a pre-flight request"); the first snapshot of a
conid answers no fields ("A pre-flight request must be made prior to ever receiving data",
spec) — `snapshot_warmup=False` turns that off.

Orders (`POST /iserver/account/{accountId}/orders`, validated against the spec's request
schema, `tests/fixtures/ibkr/orders_request.schema.json`): a market order fills at once at
`prices[symbol]`; limit/stop orders work until `fill(order_id, price)`; bracket children
(`parentId` = the parent's cOID) are PreSubmitted until the parent fills, then the
take-profit is Submitted and the stop stays PreSubmitted (triggered later), and a filled
child cancels its siblings; `isSingleGroup` makes an OCA group. A duplicate `cOID` is
refused with IBKR's "Order couldn't be submitted: Local order ID=... is already registered."
Questions: a market order is asked `o10151` (IBKR's market order warning) unless
`ask_market_warning=False`; `ask_next(message_id, text)` queues a question for the next
submission. `POST /iserver/reply/{id}` with `confirmed: true` proceeds, `false` discards
("Order not confirmed"). Executions go to `/iserver/account/trades` with `order_ref`.

`prompt_next` answers the next submission with the spec's `advancedOrderRejectPromptExample`
(p12); `cancel_latency` keeps a cancelled order `PendingCancel` for that many status reads.
Fault injection (`inject`) and `requests` (method, path, query, body) as in the Alpaca fake.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import jsonschema
from Crypto.Cipher import PKCS1_v1_5 as PKCS1Cipher
from Crypto.Hash import SHA256
from Crypto.PublicKey import RSA
from Crypto.Signature import PKCS1_v1_5 as PKCS1Signature
from Crypto.Util.number import getPrime
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ibkr"
BASE = "/v1/api/"
LST_LIFETIME_MS = 24 * 3600 * 1000  # "valid for 24 hours" (spec, live_session_token_expiration)
TIMESTAMP_SKEW_S = 300
CONIDS = {"AAPL": 265598, "MSFT": 272093, "IBM": 8314, "AMZN": 3691937}
WORKING = ("PreSubmitted", "Submitted", "PendingSubmit", "Inactive")
BARS = {"1min", "2min", "3min", "5min", "10min", "15min", "30min", "1h", "2h", "4h", "8h"}
BARS |= {"1d", "1w", "1m"}
PERIOD_UNITS = ("min", "h", "d", "w", "m", "y")
MARKET_WARNING = (
    "A Market Order is an instruction to trade your order at any available price. "
    "Are you sure you want to submit this order?"
)
_TYPE_NAMES = {  # orderType we accept -> (live orders' orderType, origOrderType)
    "MKT": ("Market", "MARKET"),
    "LMT": ("Limit", "LIMIT"),
    "STP": ("Stop", "STOP"),
    "STOP_LIMIT": ("Stop Limit", "STOP_LIMIT"),
    "TRAIL": ("Trail", "TRAIL"),
}


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@dataclass(frozen=True)
class OAuthMaterial:
    """What IBKR's Self Service portal would hand a consumer, made up for the tests."""

    consumer_key: str
    access_token: str
    access_token_secret: str  # base64 of the secret encrypted with the encryption key
    secret_bytes: bytes
    dh_prime_hex: str
    encryption_key_pem: str
    signature_key_pem: str
    signature_public: Any


_material_lock = threading.Lock()
_material: OAuthMaterial | None = None


def oauth_material() -> OAuthMaterial:
    """One set of keys per test process (RSA generation costs a second or so)."""
    global _material
    with _material_lock:
        if _material is None:
            encryption = RSA.generate(1024)  # noqa: S505 (test keys: fast to make)
            signature = RSA.generate(1024)  # noqa: S505
            secret = secrets.token_bytes(32)
            encrypted = PKCS1Cipher.new(encryption.publickey()).encrypt(secret)
            _material = OAuthMaterial(
                consumer_key="TESTCONS1",
                access_token="8c2d1e0f9a7b6c5d4e3f",
                access_token_secret=base64.b64encode(encrypted).decode(),
                secret_bytes=secret,
                dh_prime_hex=format(getPrime(512), "x"),
                encryption_key_pem=encryption.export_key().decode(),
                signature_key_pem=signature.export_key().decode(),
                signature_public=signature.publickey(),
            )
        return _material


def _to_byte_array(x: int) -> bytes:
    """The DH shared secret as bytes, with a leading zero byte when the top bit is set (the
    two's-complement form IBKR's Java side uses; ibind's `to_byte_array`)."""
    hex_string = format(x, "x")
    if len(hex_string) % 2:
        hex_string = "0" + hex_string
    raw = bytes.fromhex(hex_string)
    return b"\x00" + raw if len(bin(x)[2:]) % 8 == 0 else raw


def _parse_authorization(header: str) -> dict[str, str]:
    if not header.startswith("OAuth "):
        return {}
    params: dict[str, str] = {}
    for part in header[len("OAuth ") :].split(", "):
        key, _, value = part.partition("=")
        params[key.strip()] = value.strip().strip('"')
    return params


class VirtualClock:
    """Time for the adapter's pacer: it only moves when the pacer sleeps or the market
    (`FakeIbkr.fill`, `advance`) says so, so IBKR's 5-second pacing costs the tests nothing."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _base_string(method: str, url: str, params: dict[str, str]) -> str:
    pairs = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return "&".join([method, quote_plus(url), quote_plus(pairs)])


@dataclass
class Fault:
    method: str
    path: str
    status: int = 500
    after: bool = False  # answer with the error after doing the work (order placed)
    times: int = 1
    body: Any = None


def _now_ms() -> int:
    return int(time.time() * 1000)


class FakeIbkr:
    """The server; use as a context manager. `url` is the base URL the adapter is given."""

    def __init__(self, account_id: str = "DU1234567", *, paper: bool = True) -> None:
        self.account_id = account_id
        self.paper = paper
        self.material = oauth_material()
        self.clock = VirtualClock()
        self.examples = load_fixture("examples.json")
        self.lsts: dict[str, int] = {}  # valid LST -> expiry (ms)
        self.issued_lsts: list[str] = []  # every LST ever issued (expired ones too)
        self.nonces: set[str] = set()
        self.lst_requests = 0
        self.brokerage_authenticated = False
        self.ssodh_inits = 0
        self.tickles = 0
        self._accounts_read = False
        self._orders_preflight_done = False
        self._snapshot_warm: set[int] = set()
        self.snapshot_warmup = True
        self.ask_market_warning = True
        self.prompt_next = False  # answer the next submission with the spec's p12 prompt
        self.cancel_latency = 0  # status reads that still show PendingCancel after a cancel
        self._pending_cancels: dict[int, int] = {}
        self.prices: dict[str, float] = {}
        self.quotes: dict[str, dict[str, float]] = {}  # symbol -> bid/ask/sizes
        self.bars: dict[str, list[dict[str, Any]]] = {}  # symbol -> history `data` rows
        self.orders: dict[int, dict[str, Any]] = {}  # orderId -> live-order record
        self.foreign: list[dict[str, Any]] = []
        self.trades: list[dict[str, Any]] = []
        self.positions: dict[str, dict[str, float]] = {}  # symbol -> qty, avg
        self.cash = 100_000.0
        self.requests: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.questions: list[tuple[str, str]] = []
        self._pending: dict[str, dict[str, Any]] = {}  # reply id -> submission waiting
        self._next_id = 1_370_093_300
        self._schema = load_fixture("orders_request.schema.json")
        self._lock = threading.RLock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}{BASE}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeIbkr:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    # --- test controls ------------------------------------------------------------------

    def credentials(self, **overrides: str) -> Any:
        from chalicelib.adapters.ibkr.session import IbkrCredentials

        m = self.material
        values = {
            "consumer_key": m.consumer_key,
            "access_token": m.access_token,
            "access_token_secret": m.access_token_secret,
            "dh_prime": m.dh_prime_hex,
            "encryption_key_pem": m.encryption_key_pem,
            "signature_key_pem": m.signature_key_pem,
        }
        return IbkrCredentials(**(values | overrides))

    def session(self, **kwargs: Any) -> Any:
        """An `IbkrSession` of the real adapter signed in to this server."""
        from chalicelib.adapters.ibkr.session import IbkrSession, Pacer

        credentials = kwargs.pop("credentials", None) or self.credentials()
        kwargs.setdefault("pacer", Pacer(clock=self.clock, sleep=self.clock.sleep))
        return IbkrSession(credentials, account_id=self.account_id, base_url=self.url, **kwargs)

    def settings_env(self) -> dict[str, str]:
        """FLOWTRADER_IBKR_* for a `Settings` that points at this server."""
        m = self.material
        return {
            "broker": "ibkr",
            "ibkr_account_id": self.account_id,
            "ibkr_base_url": self.url,
            "ibkr_consumer_key": m.consumer_key,
            "ibkr_access_token": m.access_token,
            "ibkr_access_token_secret": m.access_token_secret,
            "ibkr_dh_prime": m.dh_prime_hex,
            "ibkr_encryption_key_pem": m.encryption_key_pem,
            "ibkr_signature_key_pem": m.signature_key_pem,
        }

    def expire_lst(self) -> None:
        """Every live session token stops working (as after 24 hours): 401 until renewed."""
        with self._lock:
            self.lsts.clear()

    def drop_brokerage_session(self) -> None:
        with self._lock:
            self.brokerage_authenticated = False
            self._accounts_read = False

    def inject(self, method: str, path: str, **kwargs: Any) -> None:
        self.faults.append(Fault(method, path, **kwargs))

    def ask_next(self, message_id: str, text: str) -> None:
        self.questions.append((message_id, text))

    def posts(self, path_part: str = "") -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST" and path_part in r["path"]]

    def add_foreign_orders(self) -> list[str]:
        """The spec's own live-order example (an AUD.CAD forex order) and an option order."""
        with self._lock:
            fx = copy.deepcopy(self.examples["live_orders"]["orders"][0])
            option = fx | {
                "orderId": 1370093239,
                "secType": "OPT",
                "ticker": "SPY",
                "description1": "SPY JAN2025 440 C",
                "status": "Submitted",
                "conid": 584891614,
            }
            self.foreign = [fx, option]
            return [str(fx["orderId"]), str(option["orderId"])]

    def fill(self, order_id: str | int, price: float) -> None:
        """The market fills a working order at `price`; OCA siblings are cancelled and a
        bracket parent's children start working."""
        with self._lock:
            order = self.orders[int(order_id)]
            if order["status"] not in WORKING:
                raise ValueError(f"order {order_id} is {order['status']}")
            self._fill_at(order, price)
            self.clock.advance(5.0)  # the market took its time: cached answers are stale

    # --- OAuth --------------------------------------------------------------------------

    def _check_oauth(self, request: Request, path: str) -> Response | None:
        params = _parse_authorization(request.headers.get("Authorization", ""))
        m = self.material
        if params.get("oauth_consumer_key") != m.consumer_key:
            return self._json({"error": "invalid consumer"}, 401)
        if params.get("oauth_token") != m.access_token:
            return self._json({"error": "invalid access token"}, 401)
        nonce, stamp = params.get("oauth_nonce", ""), params.get("oauth_timestamp", "0")
        if not nonce or nonce in self.nonces or abs(time.time() - int(stamp)) > TIMESTAMP_SKEW_S:
            return self._json({"error": "invalid nonce or timestamp"}, 401)
        self.nonces.add(nonce)
        signature = unquote_plus(params.pop("oauth_signature", ""))
        params.pop("realm", None)
        url = self.url + path
        if path == "oauth/live_session_token":
            if params.get("oauth_signature_method") != "RSA-SHA256":
                return self._json({"error": "signature method"}, 401)
            prepend = m.secret_bytes.hex()
            digest = SHA256.new((prepend + _base_string("POST", url, params)).encode())
            try:
                PKCS1Signature.new(m.signature_public).verify(digest, base64.b64decode(signature))
            except (ValueError, TypeError):
                return self._json({"error": "invalid signature"}, 401)
            return None
        if params.get("oauth_signature_method") != "HMAC-SHA256":
            return self._json({"error": "signature method"}, 401)
        base = _base_string(request.method, url, params).encode()
        now = _now_ms()
        for token, expires in list(self.lsts.items()):
            if expires < now:
                continue
            mac = hmac.new(base64.b64decode(token), base, hashlib.sha256).digest()
            if hmac.compare_digest(base64.b64encode(mac).decode(), signature):
                return None
        return self._json({"error": "Invalid or expired access token"}, 401)

    def _live_session_token(self, request: Request) -> Response:
        m = self.material
        params = _parse_authorization(request.headers.get("Authorization", ""))
        prime = int(m.dh_prime_hex, 16)
        challenge = int(params["diffie_hellman_challenge"], 16)
        b = secrets.randbits(256)
        shared = pow(challenge, b, prime)
        lst = base64.b64encode(
            hmac.new(_to_byte_array(shared), m.secret_bytes, hashlib.sha1).digest()
        ).decode()
        expires = _now_ms() + LST_LIFETIME_MS
        self.lsts[lst] = expires
        self.issued_lsts.append(lst)
        self.lst_requests += 1
        signature = hmac.new(base64.b64decode(lst), m.consumer_key.encode(), hashlib.sha1)
        return self._json(
            {
                "diffie_hellman_response": format(pow(2, b, prime), "x"),
                "live_session_token_expiration": expires,
                "live_session_token_signature": signature.hexdigest(),
            }
        )

    # --- HTTP ---------------------------------------------------------------------------

    def _json(self, body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, content_type="application/json")

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self._handle(request)(environ, start_response)

    def _handle(self, request: Request) -> Response:
        if not request.path.startswith(BASE):
            return self._json({"error": "not found"}, 404)
        path = request.path[len(BASE) :]
        body = request.get_json(silent=True) if request.data else None
        with self._lock:
            self.requests.append(
                {"method": request.method, "path": path, "query": dict(request.args), "body": body}
            )
            refused = self._check_oauth(request, path)
            if refused is not None:
                return refused
            fault = next(
                (f for f in self.faults if f.method == request.method and f.path == path), None
            )
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                if not fault.after:
                    return self._json(fault.body or {"error": "service unavailable"}, fault.status)
            response = self._route(request, path, body)
            if fault is not None and fault.after:
                return self._json({"error": "service unavailable"}, fault.status)
            return response

    def _route(self, request: Request, path: str, body: Any) -> Response:
        method = request.method
        if path == "oauth/live_session_token" and method == "POST":
            return self._live_session_token(request)
        if path == "tickle" and method == "POST":
            self.tickles += 1
            answer = copy.deepcopy(self.examples["tickle"])
            answer["iserver"]["authStatus"]["authenticated"] = self.brokerage_authenticated
            return self._json(answer)
        if path == "iserver/auth/status" and method == "POST":
            status = copy.deepcopy(self.examples["auth_status"])
            return self._json(status | {"authenticated": self.brokerage_authenticated})
        if path == "iserver/auth/ssodh/init" and method == "POST":
            if not isinstance(body, dict) or body.get("publish") is not True:
                return self._json({"error": "publish must be true"}, 400)
            self.ssodh_inits += 1
            self.brokerage_authenticated = True
            self._orders_preflight_done = False
            self._snapshot_warm.clear()
            return self._json(self.examples["ssodh_init"])
        if path.startswith("iserver/") and not self.brokerage_authenticated:
            return self._json({"error": "Bad Request: no bridge"}, 400)
        if path == "iserver/accounts" and method == "GET":
            self._accounts_read = True
            accounts = copy.deepcopy(self.examples["accounts"])
            acct = self.account_id
            accounts |= {"accounts": [acct], "selectedAccount": acct, "isPaper": self.paper}
            return self._json(accounts)
        if path == "portfolio/accounts" and method == "GET":
            return self._json([{"id": self.account_id, "accountId": self.account_id}])
        if path == "trsrv/stocks" and method == "GET":
            return self._stocks(request.args.get("symbols", ""))
        if path == "iserver/account/orders" and method == "GET":
            return self._live_orders()
        if path == f"iserver/account/{self.account_id}/orders" and method == "POST":
            return self._submit(body)
        if path.startswith("iserver/reply/") and method == "POST":
            return self._reply(path.rsplit("/", 1)[-1], body)
        if path.startswith(f"iserver/account/{self.account_id}/order/") and method == "DELETE":
            return self._cancel(path.rsplit("/", 1)[-1])
        if path.startswith("iserver/account/order/status/") and method == "GET":
            return self._order_status(path.rsplit("/", 1)[-1])
        if path == "iserver/account/trades" and method == "GET":
            return self._json(copy.deepcopy(self.trades))
        if path == f"portfolio/{self.account_id}/positions/invalidate" and method == "POST":
            return self._json({"message": "success"})
        if path.startswith(f"portfolio/{self.account_id}/positions/") and method == "GET":
            return self._positions(int(path.rsplit("/", 1)[-1]))
        if path == f"portfolio/{self.account_id}/summary" and method == "GET":
            return self._summary()
        if path == "iserver/marketdata/snapshot" and method == "GET":
            return self._snapshot(request.args)
        if path == "iserver/marketdata/history" and method == "GET":
            return self._history(request.args)
        if path.startswith(("iserver/account/", "portfolio/")):
            return self._json({"error": f"wrong account in {path}"}, 500)
        return self._json({"error": f"no route {method} {path}"}, 404)

    # --- contracts ----------------------------------------------------------------------

    def _symbol_of(self, conid: int) -> str | None:
        return next((s for s, c in CONIDS.items() if c == conid), None)

    def _stocks(self, symbols: str) -> Response:
        answer: dict[str, Any] = {}
        for symbol in [s for s in symbols.split(",") if s]:
            if symbol != symbol.upper():  # "Symbols must contain only capitalized letters"
                return self._json({"error": "symbols must be upper case"}, 400)
            if symbol not in CONIDS:
                continue
            answer[symbol] = [
                {
                    "assetClass": "STK",
                    "name": f"{symbol} INC",
                    "contracts": [
                        {"conid": CONIDS[symbol] + 1_000_000, "exchange": "IBIS", "isUS": False},
                        {"conid": CONIDS[symbol], "exchange": "NASDAQ", "isUS": True},
                    ],
                }
            ]
        return self._json(answer)

    # --- orders -------------------------------------------------------------------------

    def _live_orders(self) -> Response:
        if not self._accounts_read:
            return self._json({"error": "Please query /accounts first"}, 400)
        if not self._orders_preflight_done:
            self._orders_preflight_done = True
            return self._json({"orders": [], "snapshot": False})
        orders = [
            {k: v for k, v in o.items() if not k.startswith("_")} for o in self.orders.values()
        ]
        orders += copy.deepcopy(self.foreign)
        return self._json({"orders": orders, "snapshot": True})

    def _refuse_order(self, tickets: list[dict[str, Any]]) -> str | None:
        """What IBKR would refuse in the request, or None."""
        cids = [t.get("cOID") for t in tickets]
        known = {o["order_ref"] for o in self.orders.values()}
        for ticket in tickets:
            if ticket.get("acctId") not in (None, self.account_id):
                return f"account {ticket['acctId']} does not match"
            if self._symbol_of(int(ticket["conid"])) is None:
                return f"Contract {ticket['conid']} not found"
            kind = ticket["orderType"]
            if kind not in _TYPE_NAMES:
                return f"Invalid order type {kind}"
            if kind != "MKT" and kind != "TRAIL" and "price" not in ticket:
                return f"{kind} order needs price"
            if kind == "STOP_LIMIT" and "auxPrice" not in ticket:
                return "STOP_LIMIT order needs auxPrice"
            if kind == "TRAIL" and ("trailingAmt" not in ticket or "trailingType" not in ticket):
                return "TRAIL order needs trailingAmt and trailingType"
            if ticket.get("parentId") and ticket["parentId"] not in cids:
                return "parentId must be the cOID of the parent in the same request"
            if ticket.get("cOID") in known:
                return (
                    f"Order couldn't be submitted: Local order ID={ticket['cOID']} is already "
                    "registered."
                )
        return None

    def _submit(self, body: Any) -> Response:
        try:
            jsonschema.validate(body, self._schema)
        except jsonschema.ValidationError as exc:
            return self._json({"error": f"invalid request: {exc.message}"}, 400)
        tickets = body.get("orders") or []
        if not tickets:
            return self._json({"error": "no orders"}, 400)
        refusal = self._refuse_order(tickets)
        if refusal:
            return self._json({"error": refusal})
        if self.prompt_next:
            self.prompt_next = False
            return self._json(
                self.examples["order_submit"]["advancedOrderRejectPromptExample"]["value"]
            )
        queued = list(self.questions)
        self.questions.clear()
        if self.ask_market_warning and tickets[0]["orderType"] == "MKT":
            queued.append(("o10151", MARKET_WARNING))
        return self._ask_or_place({"tickets": tickets, "questions": queued})

    def _ask_or_place(self, pending: dict[str, Any]) -> Response:
        if pending["questions"]:
            message_id, text = pending["questions"].pop(0)
            reply_id = str(uuid.uuid4())
            self._pending[reply_id] = pending
            return self._json(
                [
                    {
                        "id": reply_id,
                        "isSuppressed": False,
                        "message": [text],
                        "messageIds": [message_id],
                    }
                ]
            )
        return self._json(self._place(pending["tickets"]))

    def _reply(self, reply_id: str, body: Any) -> Response:
        pending = self._pending.pop(reply_id, None)
        if pending is None:
            return self._json({"error": f"reply id not found: '{reply_id}'"})
        if not isinstance(body, dict) or not isinstance(body.get("confirmed"), bool):
            return self._json({"error": "confirmed must be a boolean"}, 400)
        if not body["confirmed"]:
            return self._json({"error": "Order not confirmed "})
        return self._ask_or_place(pending)

    def _place(self, tickets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        by_coid: dict[str, dict[str, Any]] = {}
        oca = f"oca-{self._next_id}" if any(t.get("isSingleGroup") for t in tickets) else None
        for ticket in tickets:
            self._next_id += 1
            symbol = self._symbol_of(int(ticket["conid"])) or ""
            live_type, orig_type = _TYPE_NAMES[ticket["orderType"]]
            parent = by_coid.get(ticket.get("parentId") or "")
            record: dict[str, Any] = {
                "acct": self.account_id,
                "account": self.account_id,
                "conid": str(ticket["conid"]),
                "conidex": str(ticket["conid"]),
                "orderId": self._next_id,
                "order_ref": ticket.get("cOID") or "",
                "ticker": symbol,
                "secType": "STK",
                "side": ticket["side"],
                "orderType": live_type,
                "origOrderType": orig_type,
                "totalSize": str(float(ticket["quantity"])),
                "filledQuantity": "0.0",
                "remainingQuantity": str(float(ticket["quantity"])),
                "avgPrice": "",
                "status": "PreSubmitted" if parent is not None else "Submitted",
                "timeInForce": ticket["tif"],
                "listingExchange": "NASDAQ.NMS",
                "companyName": f"{symbol} INC",
                "_oca": oca,
            }
            if "price" in ticket:
                record["price"] = str(ticket["price"])
            if "auxPrice" in ticket:
                record["auxPrice"] = str(ticket["auxPrice"])
            if parent is not None:
                record["parentId"] = parent["orderId"]
                record["_oca"] = f"bracket-{parent['orderId']}"
            self.orders[record["orderId"]] = record
            by_coid[record["order_ref"]] = record
        for record in by_coid.values():
            if record["origOrderType"] == "MARKET" and record["ticker"] in self.prices:
                self._fill_at(record, self.prices[record["ticker"]])
        return [
            {"order_id": str(r["orderId"]), "order_status": r["status"], "encrypt_message": "1"}
            for r in by_coid.values()
        ]

    def _fill_at(self, order: dict[str, Any], price: float) -> None:
        qty = float(order["totalSize"])
        order.update(
            {
                "status": "Filled",
                "filledQuantity": str(qty),
                "remainingQuantity": "0.0",
                "avgPrice": str(price),
                "lastExecutionTime_r": _now_ms(),
            }
        )
        symbol = order["ticker"]
        signed = qty if order["side"] == "BUY" else -qty
        held = self.positions.setdefault(symbol, {"qty": 0.0, "avg": 0.0})
        new_qty = held["qty"] + signed
        if held["qty"] * signed >= 0 and new_qty:
            held["avg"] = (held["avg"] * abs(held["qty"]) + price * qty) / abs(new_qty)
        held["qty"] = new_qty
        self.cash -= signed * price
        self.trades.append(
            {
                "account": self.account_id,
                "conid": int(order["conid"]),
                "execution_id": f"0000e0d5.{uuid.uuid4().hex[:8]}.01.01",
                "order_id": order["orderId"],
                "order_ref": order["order_ref"],
                "price": str(price),
                "sec_type": "STK",
                "side": "B" if order["side"] == "BUY" else "S",
                "size": qty,
                "symbol": symbol,
                "trade_time_r": _now_ms(),
            }
        )
        children = [o for o in self.orders.values() if o.get("parentId") == order["orderId"]]
        for child in children:
            if child["status"] == "PreSubmitted" and child["origOrderType"] == "LIMIT":
                child["status"] = "Submitted"  # the stop stays PreSubmitted until triggered
        if order.get("_oca"):
            for other in self.orders.values():
                same_group = other is not order and other.get("_oca") == order["_oca"]
                if same_group and other["status"] in WORKING:
                    other["status"] = "Cancelled"

    def _order_status(self, order_id: str) -> Response:
        """`GET /iserver/account/order/status/{orderId}` in the spec's orderStatusExample
        shape (a few of its fields)."""
        order = self.orders.get(int(order_id)) if order_id.isdigit() else None
        if order is None:
            return self._json({"error": f"OrderID {order_id} doesn't exist"}, 503)
        left = self._pending_cancels.get(order["orderId"])
        if left is not None:
            if left <= 0:
                order["status"] = "Cancelled"
                del self._pending_cancels[order["orderId"]]
            else:
                self._pending_cancels[order["orderId"]] = left - 1
        return self._json(
            {
                "account": self.account_id,
                "conid": int(order["conid"]),
                "symbol": order["ticker"],
                "order_id": order["orderId"],
                "order_status": order["status"],
                "order_type": order["origOrderType"],
                "side": "B" if order["side"] == "BUY" else "S",
                "total_size": order["totalSize"],
                "cum_fill": order["filledQuantity"],
                "average_price": order["avgPrice"],
                "sec_type": "STK",
                "tif": order["timeInForce"],
            }
        )

    def _cancel(self, order_id: str) -> Response:
        order = self.orders.get(int(order_id)) if order_id.isdigit() else None
        if order is None or order["status"] not in WORKING:
            return self._json({"error": f"OrderID {order_id} doesn't exist"})
        order["status"] = "PendingCancel" if self.cancel_latency else "Cancelled"
        if self.cancel_latency:
            self._pending_cancels[order["orderId"]] = self.cancel_latency
        for child in self.orders.values():
            if child.get("parentId") == order["orderId"] and child["status"] in WORKING:
                child["status"] = "Cancelled"
        return self._json(
            {
                "msg": "Request was submitted",
                "order_id": order_id,
                "conid": order["conid"],
                "account": self.account_id,
            }
        )

    # --- portfolio ----------------------------------------------------------------------

    def _positions(self, page: int) -> Response:
        template = next(p for p in self.examples["positions"] if p["assetClass"] == "STK")
        rows = []
        for symbol, held in sorted(self.positions.items()):
            if not held["qty"]:
                continue
            price = self.prices.get(symbol, held["avg"])
            rows.append(
                copy.deepcopy(template)
                | {
                    "acctId": self.account_id,
                    "conid": CONIDS[symbol],
                    "contractDesc": symbol,
                    "ticker": symbol,
                    "position": held["qty"],
                    "avgPrice": held["avg"],
                    "avgCost": held["avg"],
                    "mktPrice": price,
                    "mktValue": price * held["qty"],
                    "unrealizedPnl": (price - held["avg"]) * held["qty"],
                }
            )
        return self._json(rows[page * 100 : (page + 1) * 100])

    def _summary(self) -> Response:
        summary = copy.deepcopy(self.examples["summary"])
        value = sum(h["qty"] * self.prices.get(s, h["avg"]) for s, h in self.positions.items())
        equity = self.cash + value
        for key, amount in (
            ("netliquidation", equity),
            ("equitywithloanvalue", equity),
            ("previousdayequitywithloanvalue", 100_000.0),
            ("totalcashvalue", self.cash),
            ("buyingpower", 4 * equity),
        ):
            summary[key]["amount"] = amount
        summary["accountcode"]["value"] = self.account_id
        return self._json(summary)

    # --- market data --------------------------------------------------------------------

    def _snapshot(self, args: Any) -> Response:
        if not self._accounts_read:
            return self._json({"error": "Please query /accounts first"}, 400)
        fields = [f for f in args.get("fields", "").split(",") if f]
        answer = []
        for text in [c for c in args.get("conids", "").split(",") if c]:
            conid = int(text)
            symbol = self._symbol_of(conid)
            row: dict[str, Any] = {
                "conid": conid,
                "conidEx": str(conid),
                "_updated": _now_ms(),
                "6119": "q0",
                "server_id": "q0",
            }
            if symbol is None:
                continue
            if self.snapshot_warmup and conid not in self._snapshot_warm:
                self._snapshot_warm.add(conid)
                answer.append(row)
                continue
            quote = self.quotes.get(symbol, {})
            values = {
                "31": self.prices.get(symbol),
                "84": quote.get("bid"),
                "86": quote.get("ask"),
                "88": quote.get("bid_size"),
                "85": quote.get("ask_size"),
                "55": symbol,
                "6509": "RpB",
            }
            for field in fields:
                if values.get(field) is not None:
                    row[field] = str(values[field])
            answer.append(row)
        return self._json(answer)

    def _history(self, args: Any) -> Response:
        bar, period = args.get("bar", "1min"), args.get("period", "1d")
        if bar not in BARS:
            return self._json({"error": f"Invalid bar size {bar}"}, 400)
        digits = period.rstrip("".join(PERIOD_UNITS))
        if not digits.isdigit() or period[len(digits) :] not in PERIOD_UNITS:
            return self._json({"error": f"Invalid period {period}"}, 400)
        symbol = self._symbol_of(int(args.get("conid", "0")))
        if symbol is None:
            return self._json({"error": "invalid conid"}, 400)
        rows = self.bars.get(symbol, [])
        start_time = args.get("startTime")
        if start_time:
            end = datetime.strptime(start_time, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
            end_ms = int(end.timestamp() * 1000)
            unit = period[len(digits) :]
            minutes = {"min": 1, "h": 60, "d": 1440, "w": 10080, "m": 43200, "y": 525600}[unit]
            begin_ms = end_ms - int(digits) * minutes * 60_000
            rows = [r for r in rows if begin_ms < r["t"] <= end_ms]  # the period back from it
        answer = copy.deepcopy(self.examples["history"])
        answer |= {"symbol": symbol, "data": rows, "points": max(len(rows) - 1, 0)}
        answer |= {"timePeriod": period, "barLength": 60}
        return self._json(answer)
