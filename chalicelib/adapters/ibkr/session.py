"""The IBKR Client Portal Web API session over OAuth 1.0a, through ibind's `IbkrClient`.

OAuth 1.0a is what lets flowtrader run in a Lambda with no desktop gateway: a consumer key,
an access token and its (RSA-encrypted) secret, two private keys and a Diffie-Hellman prime
(IBKR's "Self Service OAuth" portal hands them out) are exchanged for a *live session
token* (LST) at `POST /oauth/live_session_token`; every other request is HMAC-signed with it
("Generate A Live Session Token": LSTs "are valid for 24 hours from this time", the spec's
`live_session_token_expiration`). Then:

1. the LST is cached with its expiry, in process and in the state table (`StateTableLstCache`),
   so a cold Lambda does not redo the exchange; it is renewed 10 minutes before it expires
   and whenever IBKR answers 401 ("Invalid or expired access token"), once per request;
2. the brokerage session is checked (`POST /iserver/auth/status`) and, when it is not
   authenticated, opened with `POST /iserver/auth/ssodh/init` (`publish: true`, `compete`:
   the setting) — "essential for using all /iserver endpoints" (ibind, IBKR's docs);
3. the pre-flight reads IBKR demands are made once: `GET /iserver/accounts` ("must be
   called prior to /iserver/marketdata/snapshot", "before modifying an order or querying open
   orders", spec), `GET /portfolio/accounts` (before the portfolio endpoints) and one
   `GET /iserver/account/orders` (live orders "require a pre-flight request": the first
   answer of a session can be empty, ibind's `live_orders`), so a lookup never trusts it;
4. `keep_alive` POSTs `/tickle`, which IBKR expects "approximately every 60 seconds to
   maintain the connection to the brokerage session" (spec, "Brokerage Keep-Alive Ping");
   app.py schedules it every minute.

ibind is built with no hidden retries (`max_retries=0`: its RestClient would otherwise
re-send a timed-out POST, an order included), no OAuth thread (`maintain_oauth=False`: a
Lambda freezes between calls; the schedule tickles instead), no signal/atexit handlers.
The private keys are handed to ibind as PEM text (ibind 0.2.2 `OAuth1aConfig.encryption_key`
/ `signature_key`), so nothing is written to disk; key *paths* are used as given.
Secrets never reach a log line or an error message: errors carry IBKR's `error` text only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from chalicelib.settings import Settings

log = logging.getLogger(__name__)

LST_RENEW_MARGIN_MS = 10 * 60 * 1000
LST_KEY = {"pk": {"S": "ibkr"}, "sk": {"S": "live_session_token"}}
DEFAULT_BASE_URL = "https://api.ibkr.com/v1/api/"


class IbkrError(Exception):
    """A failed call: `status` is the HTTP status (None: no answer, timeout, connection),
    `message` IBKR's own `error` text (or a short reason), never a secret."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message

    @property
    def transient(self) -> bool:
        """No answer, 5xx, 429 or an auth failure that a new session may fix."""
        return self.status is None or self.status >= 500 or self.status in (401, 429)


@dataclass(frozen=True, repr=False)
class IbkrCredentials:
    """What IBKR's Self Service OAuth portal issues for one consumer (paper or live)."""

    consumer_key: str
    access_token: str
    access_token_secret: str
    dh_prime: str
    encryption_key_pem: str = ""
    signature_key_pem: str = ""
    encryption_key_path: str = ""
    signature_key_path: str = ""
    realm: str = "limited_poa"

    def __repr__(self) -> str:  # never the values
        return f"IbkrCredentials(consumer_key=***, realm={self.realm!r})"

    def missing(self) -> list[str]:
        names = []
        for name in ("consumer_key", "access_token", "access_token_secret", "dh_prime"):
            if not getattr(self, name):
                names.append(name)
        if not (self.encryption_key_pem or self.encryption_key_path):
            names.append("encryption_key")
        if not (self.signature_key_pem or self.signature_key_path):
            names.append("signature_key")
        return names

    def secrets(self) -> tuple[str, ...]:
        """The values no log line may contain (tests assert it)."""
        return tuple(
            v
            for v in (
                self.access_token_secret,
                self.encryption_key_pem,
                self.signature_key_pem,
                self.access_token,
            )
            if v
        )


class LstCache(Protocol):
    """Where the live session token waits between invocations."""

    def load(self) -> tuple[str, int] | None:
        """(token, expires at in epoch ms), or None."""
        ...

    def save(self, token: str, expires_ms: int) -> None: ...


@dataclass
class MemoryLstCache:
    value: tuple[str, int] | None = None

    def load(self) -> tuple[str, int] | None:
        return self.value

    def save(self, token: str, expires_ms: int) -> None:
        self.value = (token, expires_ms)


class StateTableLstCache:
    """The LST in the state table (`pk=ibkr`, `sk=live_session_token`), with a TTL at its
    expiry. The table is encrypted at rest; the token is worth 24 hours at most."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def load(self) -> tuple[str, int] | None:
        try:
            item = self._client.get_item(TableName=self._table, Key=LST_KEY).get("Item")
        except Exception as exc:  # a cache: a failing read costs one token exchange
            log.warning("ibkr: cannot read the cached session token (%s)", type(exc).__name__)
            return None
        if not item:
            return None
        return item["token"]["S"], int(item["expires_ms"]["N"])

    def save(self, token: str, expires_ms: int) -> None:
        item = {
            **LST_KEY,
            "token": {"S": token},
            "expires_ms": {"N": str(expires_ms)},
            "expires_at": {"N": str(expires_ms // 1000)},
        }
        try:
            self._client.put_item(TableName=self._table, Item=item)
        except Exception as exc:
            log.warning("ibkr: cannot cache the session token (%s)", type(exc).__name__)


def _error_text(exc: Exception) -> tuple[int | None, str]:
    """(status, IBKR's error text) from an ibind exception, without request details."""
    from ibind.support.errors import ExternalBrokerError

    if isinstance(exc, TimeoutError):
        return None, "timed out"
    if not isinstance(exc, ExternalBrokerError):
        return None, type(exc).__name__
    status = exc.status_code
    if "no bridge" in str(exc):  # ibind re-raises IBKR's 400 "no bridge" without a status
        return 400, "no bridge: the brokerage session is not open"
    if status is None:
        return None, "no answer from IBKR"
    # ibind: "<client>: response error <result> :: <status> :: <reason> :: <body>"
    body = str(exc).split(" :: ", 3)[-1].strip()
    try:
        data = json.loads(body)
    except ValueError:
        return status, body[:200] or f"HTTP {status}"
    if isinstance(data, dict) and data.get("error"):
        return status, str(data["error"])[:300]
    return status, body[:200]


# IBKR's pacing ("Pacing Limitations", https://www.interactivebrokers.com/campus/ibkr-api-page/webapi-doc/#pacing-limitations):
# 10 requests a second overall; per endpoint, among others, live orders, trades, the
# partitioned P/L and /portfolio/accounts once every 5 seconds, snapshots 10 a second. Over
# the limit IBKR answers 429 and may put the IP "in a penalty box for 10 minutes".
GLOBAL_PER_SECOND = 10
PACED_GETS_S = {
    "iserver/account/orders": 5.0,
    "iserver/account/trades": 5.0,
    "iserver/account/pnl/partitioned": 5.0,
    "portfolio/accounts": 5.0,
    "portfolio/subaccounts": 5.0,
}
# What changes orders: a cached live-orders or trades answer is stale after any of these.
_ORDER_WRITES = ("iserver/account/", "iserver/reply/")


class Pacer:
    """Keeps one process under IBKR's pacing: waits (with `sleep`) before a request that
    would break a limit, rather than earning a 429 and the penalty box. `clock` and `sleep`
    are injectable so tests run on virtual time."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self._last: dict[str, float] = {}
        self._recent: list[float] = []
        self._lock = threading.Lock()
        self.waited_s = 0.0  # total time spent waiting (tests and logs read it)

    def acquire(self, method: str, path: str) -> None:
        with self._lock:
            interval = PACED_GETS_S.get(path, 0.0) if method == "GET" else 0.0
            last = self._last.get(path)
            wait = 0.0
            if interval and last is not None:
                wait = max(wait, last + interval - self.clock())
            window = [t for t in self._recent if t > self.clock() - 1.0]
            if len(window) >= GLOBAL_PER_SECOND:
                wait = max(wait, window[-GLOBAL_PER_SECOND] + 1.0 - self.clock())
            if wait > 0:
                self.waited_s += wait
                self.sleep(wait)
            now = self.clock()
            self._recent = [*window, now][-GLOBAL_PER_SECOND:]
            if interval:
                self._last[path] = now

    def age(self, path: str) -> float | None:
        """Seconds since the last paced GET of `path` (None: never)."""
        last = self._last.get(path)
        return None if last is None else self.clock() - last


class IbkrSession:
    """One OAuth session: a signed ibind client, its LST, the brokerage session.

    Reads of the 5-second endpoints (live orders, trades) are answered from the last answer
    while it is younger than the pacing interval *and* nothing was written since (an order,
    a reply, a cancel); any read after a write waits for the interval and asks IBKR again,
    so a lookup before a retry always sees IBKR's current answer.
    """

    def __init__(
        self,
        credentials: IbkrCredentials,
        *,
        account_id: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 10.0,
        cache: LstCache | None = None,
        compete: bool = True,
        paper: bool = True,
        clock: Callable[[], float] = time.time,
        pacer: Pacer | None = None,
    ) -> None:
        missing = credentials.missing()
        if missing or not account_id:
            names = ", ".join([*missing, *([] if account_id else ["account_id"])])
            raise IbkrError(
                None,
                f"IBKR OAuth is not configured (missing: {names}); set FLOWTRADER_IBKR_* or "
                "put them in the secret (docs/brokers/ibkr.md)",
            )
        self.credentials = credentials
        self.account_id = account_id
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._timeout_s = timeout_s
        self._cache = cache or MemoryLstCache()
        self._compete = compete
        self._paper = paper
        self._clock = clock
        self.pacer = pacer or Pacer()
        self._cached: dict[tuple[str, str], Any] = {}
        self._lock = threading.RLock()
        self._client: Any = None
        self._ready = False
        self.lst_renewals = 0  # exchanges made by this process (tests read it)

    # --- public -------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        """One request, signed with a valid LST; on 401 a new LST and one more try, on a
        brokerage session that is gone `ssodh/init` and one more try. A 401 means IBKR
        refused the signature before looking at the request, so the retry cannot double an
        order. Returns IBKR's JSON; a `{"error": ...}` answer is an `IbkrError`."""
        self.ensure_ready()
        try:
            return self._send(method, path, params, body)
        except IbkrError as exc:
            if exc.status == 401:
                log.info("ibkr: 401 on %s %s; renewing the live session token", method, path)
                self._renew_after_401()
                return self._send(method, path, params, body)
            if exc.status == 400 and "no bridge" in exc.message.lower():
                with self._lock:
                    self._open_brokerage_session()
                return self._send(method, path, params, body)
            raise

    def keep_alive(self) -> dict[str, Any]:
        """`POST /tickle`; reopens the brokerage session when the tickle says it is gone."""
        data = self.call("POST", "tickle") or {}
        status = (data.get("iserver") or {}).get("authStatus") or {}
        authenticated = bool(status.get("authenticated"))
        if not authenticated:
            log.warning("ibkr: brokerage session not authenticated at tickle; ssodh/init")
            with self._lock:
                self._open_brokerage_session()
        return {"authenticated": authenticated, "competing": bool(status.get("competing"))}

    def ensure_ready(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            self._load_or_new_lst()
            try:
                status = self._send("POST", "iserver/auth/status", None, None) or {}
            except IbkrError as exc:
                if exc.status != 401:
                    raise
                self._renew_after_401()  # the cached token was no longer good at IBKR
                status = self._send("POST", "iserver/auth/status", None, None) or {}
            if not status.get("authenticated"):
                self._open_brokerage_session()
            accounts = self._send("GET", "iserver/accounts", None, None) or {}
            self._check_account(accounts)
            self._send("GET", "portfolio/accounts", None, None)
            self._send("GET", "iserver/account/orders", None, None)  # the pre-flight read
            self._cached.clear()  # its answer may be empty: never serve it to a lookup
            self._ready = True

    # --- internals ----------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._build_client()
        return self._client

    def _build_client(self) -> Any:
        from ibind import IbkrClient
        from ibind.oauth.oauth1a import OAuth1aConfig

        c = self.credentials
        config = OAuth1aConfig(
            oauth_rest_url=self.base_url,
            access_token=c.access_token,
            access_token_secret=c.access_token_secret,
            consumer_key=c.consumer_key,
            dh_prime=c.dh_prime,
            encryption_key=c.encryption_key_pem or None,
            encryption_key_fp=None if c.encryption_key_pem else c.encryption_key_path,
            signature_key=c.signature_key_pem or None,
            signature_key_fp=None if c.signature_key_pem else c.signature_key_path,
            realm=c.realm,
            init_oauth=False,
            init_brokerage_session=False,
            maintain_oauth=False,
            shutdown_oauth=False,
        )
        try:
            return IbkrClient(
                account_id=self.account_id,
                timeout=self._timeout_s,
                max_retries=0,
                use_oauth=True,
                oauth_config=config,
                auto_register_shutdown=False,
            )
        except ValueError as exc:  # ibind's config check: a key path that does not exist
            raise IbkrError(None, f"IBKR OAuth configuration refused: {exc}") from exc

    def _send(
        self, method: str, path: str, params: dict[str, Any] | None, body: dict[str, Any] | None
    ) -> Any:
        paced = method == "GET" and path in PACED_GETS_S
        key = (path, json.dumps(params or {}, sort_keys=True))
        if paced and key in self._cached:
            age = self.pacer.age(path)
            if age is not None and age < PACED_GETS_S[path]:
                return self._cached[key]
        if method != "GET" and path.startswith(_ORDER_WRITES):
            self._cached.clear()
        self.pacer.acquire(method, path)
        data = self._request(method, path, params, body)
        if paced:
            self._cached[key] = data
        return data

    def _request(
        self, method: str, path: str, params: dict[str, Any] | None, body: dict[str, Any] | None
    ) -> Any:
        kwargs: dict[str, Any] = {}
        if params:
            kwargs["params"] = params
        if body is not None:
            kwargs["json"] = body
        try:
            data = self.client.request(method, path, **kwargs).data
        except IbkrError:
            raise
        except Exception as exc:
            status, message = _error_text(exc)
            raise IbkrError(status, message) from None
        if isinstance(data, dict) and data.get("error") and len(data) <= 2:
            raise IbkrError(200, str(data["error"])[:300])
        return data

    def _load_or_new_lst(self) -> None:
        cached = self._cache.load()
        now_ms = int(self._clock() * 1000)
        if cached and cached[1] - now_ms > LST_RENEW_MARGIN_MS:
            self.client.live_session_token = cached[0]
            self.client.live_session_token_expires_ms = cached[1]
            return
        self._new_lst()

    def _renew_after_401(self) -> None:
        """Another process may have renewed the token already (the state table holds the
        newest): take that one when it differs from ours, else make a new one. Concurrent
        Lambdas so converge on one token instead of taking turns invalidating each other's."""
        with self._lock:
            cached = self._cache.load()
            now_ms = int(self._clock() * 1000)
            mine = getattr(self.client, "live_session_token", None)
            if cached and cached[0] != mine and cached[1] - now_ms > LST_RENEW_MARGIN_MS:
                self.client.live_session_token = cached[0]
                self.client.live_session_token_expires_ms = cached[1]
                return
            self._new_lst()

    def _new_lst(self) -> None:
        from ibind.oauth.oauth1a import validate_live_session_token

        try:
            self.client.generate_live_session_token()
        except Exception as exc:
            status, message = _error_text(exc)
            raise IbkrError(
                status, f"IBKR refused the live session token request ({message})"
            ) from None
        client = self.client
        if not validate_live_session_token(
            client.live_session_token,
            client.live_session_token_signature,
            self.credentials.consumer_key,
        ):
            raise IbkrError(
                401,
                "IBKR's live session token did not validate: check the access token secret, "
                "the encryption key and the DH prime",
            )
        self.lst_renewals += 1
        self._cache.save(client.live_session_token, int(client.live_session_token_expires_ms))

    def _open_brokerage_session(self) -> None:
        data = (
            self._send(
                "POST", "iserver/auth/ssodh/init", None, {"publish": True, "compete": self._compete}
            )
            or {}
        )
        if not data.get("authenticated"):
            why = data.get("fail") or data.get("message") or "not authenticated"
            raise IbkrError(
                503,
                f"IBKR brokerage session could not be opened ({why}); another session for "
                "this username may be logged in (one brokerage session per username)",
            )

    def _check_account(self, accounts: dict[str, Any]) -> None:
        listed = [str(a) for a in accounts.get("accounts") or []]
        if listed and self.account_id not in listed:
            raise IbkrError(403, f"account {self.account_id} is not among this login's accounts")
        is_paper = accounts.get("isPaper")
        if is_paper is not None and bool(is_paper) != self._paper:
            kind = "paper" if is_paper else "live"
            raise IbkrError(
                403,
                f"the IBKR login is a {kind} account but FLOWTRADER_IBKR_PAPER is "
                f"{str(self._paper).lower()}: use the {'paper' if self._paper else 'live'} "
                "consumer key and access token",
            )


# --- construction from the settings --------------------------------------------------


@dataclass
class _Shared:
    sessions: dict[tuple[str, str, str], IbkrSession] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_shared = _Shared()


def credentials_from_settings(
    settings: Settings, read_secret: Callable[[str], dict[str, Any]] | None = None
) -> IbkrCredentials:
    """The OAuth material from the settings; what they leave empty from the JSON secret
    `ibkr_secret_id` (read only then, by `read_secret`). Secret keys are the settings'
    names with or without the `FLOWTRADER_` prefix, any case."""
    values = {
        "consumer_key": settings.ibkr_consumer_key.get_secret_value(),
        "access_token": settings.ibkr_access_token.get_secret_value(),
        "access_token_secret": settings.ibkr_access_token_secret.get_secret_value(),
        "dh_prime": settings.ibkr_dh_prime,
        "encryption_key_pem": settings.ibkr_encryption_key_pem.get_secret_value(),
        "signature_key_pem": settings.ibkr_signature_key_pem.get_secret_value(),
    }
    if settings.ibkr_secret_id and not all(values.values()):
        from chalicelib.adapters.secrets import SecretsUnavailable, fetch_secret_json

        try:
            raw = (read_secret or fetch_secret_json)(settings.ibkr_secret_id)
        except SecretsUnavailable as exc:
            raise IbkrError(None, f"cannot read the IBKR secret: {exc}") from exc
        found = {str(k).lower().removeprefix("flowtrader_"): str(v) for k, v in raw.items()}
        for name, value in values.items():
            values[name] = value or found.get(f"ibkr_{name}", "")
    return IbkrCredentials(
        **values,
        encryption_key_path=settings.ibkr_encryption_key_path,
        signature_key_path=settings.ibkr_signature_key_path,
        realm=settings.ibkr_realm,
    )


def session_for(
    settings: Settings,
    read_secret: Callable[[str], dict[str, Any]] | None = None,
    *,
    cache: LstCache | None = None,
    pacer: Pacer | None = None,
) -> IbkrSession:
    """The process's one session for this account: the broker, the market data and the
    tickle share it (IBKR allows one brokerage session per username)."""
    credentials = credentials_from_settings(settings, read_secret)
    key = (settings.ibkr_base_url, settings.ibkr_account_id, credentials.consumer_key)
    with _shared.lock:
        session = _shared.sessions.get(key)
        if session is None:
            session = IbkrSession(
                credentials,
                account_id=settings.ibkr_account_id,
                base_url=settings.ibkr_base_url,
                timeout_s=settings.ibkr_timeout_s,
                cache=cache,
                compete=settings.ibkr_compete,
                paper=settings.ibkr_paper,
                pacer=pacer,
            )
            if not settings.ibkr_paper:
                log.warning("ibkr: LIVE account; orders go to real money")
            _shared.sessions[key] = session
        return session


def forget_sessions() -> None:
    """Drop the shared sessions (tests; a container reset)."""
    with _shared.lock:
        _shared.sessions.clear()
