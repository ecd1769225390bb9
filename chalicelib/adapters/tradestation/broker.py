"""`TradeStationBroker`: one TradeStation account behind the `Broker` port (see the package
docstring for how orders, lookups and tokens work)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from chalicelib.adapters.tradestation.auth import (
    TOKEN_URL,
    SecretsManagerRefreshToken,
    StaticRefreshToken,
    TokenSource,
)
from chalicelib.adapters.tradestation.errors import (
    Transport,
    failure_of,
    is_duplicate,
    reject_reason,
)
from chalicelib.adapters.tradestation.orders import (
    CANCEL_PENDING,
    DONE,
    OPEN_STATUSES,
    STATUS,
    as_string,
    build_order_request,
    decimal_or_none,
    fingerprint,
    foreign_reason,
    foreign_view,
    links,
    parse_order,
    parse_time,
    price_string,
    raw_fingerprint,
)
from chalicelib.domain import Account, Order, OrderIntent, OrderStatus, Position, Side
from chalicelib.ports import BrokerRejected, BrokerUnavailable, RefreshTokenStore

if TYPE_CHECKING:
    import requests

    from chalicelib.settings import Settings

log = logging.getLogger(__name__)

SIM_URL = "https://sim-api.tradestation.com/v3"
LIVE_URL = "https://api.tradestation.com/v3"
NOT_CANCELABLE = "42210000"  # the port's code for "not cancelable" (tests/adapters contract)
MAX_ORDER_IDS = 50  # GET .../orders/{orderIds}: "1 to 50 Order IDs"
# An unknown POST's order is looked for among orders opened since the POST, less this much for
# the difference between our clock and TradeStation's.
SCAN_SKEW = timedelta(minutes=2)


class _OutcomeUnknown(Exception):
    """The POST may or may not have placed the order, and the scan found none."""


class TradeStationBroker:
    """One TradeStation account. Build with `connect(...)` or `from_settings(settings)`.

    `recorded_id`: our client order id -> TradeStation OrderID as recorded elsewhere (the
    state table), consulted when this process has not placed the order itself.
    """

    name = "tradestation"

    def __init__(
        self,
        session: requests.Session,
        tokens: TokenSource,
        account_id: str,
        *,
        base_url: str = SIM_URL,
        timeout_s: float = 5.0,
        read_attempts: int = 3,
        wait_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        cancel_settle_s: float = 2.0,
        recorded_id: Callable[[str], str | None] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not account_id:
            raise BrokerUnavailable(
                "TradeStation account is not configured: set FLOWTRADER_TRADESTATION_ACCOUNT_ID"
            )
        self._session = session
        self._tokens = tokens
        self._account = account_id
        self._base = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._read_attempts = max(1, read_attempts)
        self._wait_s = wait_s
        self._sleep = sleep
        self._cancel_settle_s = cancel_settle_s
        self._recorded_id = recorded_id
        self._now = now
        self._ids: dict[str, str] = {}  # our client order id -> the primary OrderID
        self._cids: dict[str, str] = {}  # OrderID -> our client order id
        # cid -> (fingerprint, placed no earlier than): POSTs whose outcome is unknown
        self._unsure: dict[str, tuple[tuple[str, ...], datetime | None]] = {}
        self._foreign_seen: set[str] = set()

    @classmethod
    def connect(
        cls,
        account_id: str,
        client_id: str,
        client_secret: str,
        store: RefreshTokenStore,
        *,
        base_url: str = SIM_URL,
        token_url: str = TOKEN_URL,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> TradeStationBroker:
        import requests

        if not client_id:
            raise BrokerUnavailable(
                "TradeStation API key is not configured: set FLOWTRADER_TRADESTATION_CLIENT_ID"
            )
        if base_url.rstrip("/") == LIVE_URL:
            log.warning("tradestation: LIVE trading; orders go to the live account")
        session = requests.Session()
        tokens = TokenSource(
            session, token_url, client_id, client_secret, store, timeout_s=timeout_s, clock=clock
        )
        return cls(session, tokens, account_id, base_url=base_url, timeout_s=timeout_s, **kwargs)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        secrets_client: Any | None = None,
        recorded_id: Callable[[str], str | None] | None = None,
    ) -> TradeStationBroker:
        """The refresh token lives in `tradestation_refresh_token_secret` (else the app secret,
        `secrets_arn`) when one is set, read and rotated there (the environment's token only
        until the secret holds one); else the environment's, in memory."""
        secret = settings.tradestation_refresh_token_secret or settings.secrets_arn
        store: RefreshTokenStore
        if secret:
            if secrets_client is None:
                import boto3

                secrets_client = boto3.session.Session().client("secretsmanager")
            store = SecretsManagerRefreshToken(
                secrets_client,
                secret,
                fallback=settings.tradestation_refresh_token.get_secret_value(),
            )
        else:
            store = StaticRefreshToken(settings.tradestation_refresh_token.get_secret_value())
        base = settings.tradestation_base_url or (
            SIM_URL if settings.tradestation_sim else LIVE_URL
        )
        return cls.connect(
            settings.tradestation_account_id,
            settings.tradestation_client_id,
            settings.tradestation_client_secret.get_secret_value(),
            store,
            base_url=base,
            token_url=settings.tradestation_token_url,
            timeout_s=settings.tradestation_timeout_s,
            recorded_id=recorded_id,
        )

    # --- Broker port -------------------------------------------------------------------

    def place_order(self, intent: OrderIntent) -> Order:
        """Look up, then POST once; on an unknown outcome scan today's orders before any retry.

        Raises `BrokerRejected` (do not retry) or `BrokerUnavailable` (outcome still unknown:
        place the same intent again later; its `OrderConfirmID` keeps it one order).
        """
        cid = intent.client_order_id
        known = self.get_order_by_client_id(cid)
        if known is not None:
            return known
        closes = intent.closes_position or intent.protects_position
        held = Decimal(0) if closes else self._held(intent.symbol)  # closes need no position
        path, body = build_order_request(intent, self._account, held)
        first = body["Orders"][0] if "Orders" in body else body
        print_ = fingerprint(first)
        since = self._now() - SCAN_SKEW
        try:
            resp = self._send("POST", path, json=body)
        except Transport as exc:
            return self._after_unknown(cid, print_, since, str(exc))
        if resp.status_code != 200:
            failure = failure_of(resp)
            if failure.transient:
                return self._after_unknown(cid, print_, since, str(failure))
            if is_duplicate(failure):  # placed before, maybe by another process: when unknown
                log.info("tradestation: %s already placed (duplicate OrderConfirmID)", cid)
                return self._after_unknown(cid, print_, None, str(failure))
            raise BrokerRejected(
                reject_reason(failure), code=failure.error or str(resp.status_code)
            )
        placed, errors = _order_responses(resp)
        if not placed:
            message = "; ".join(str(e.get("Message") or e.get("Error")) for e in errors)
            if "duplicate" in message.lower():
                return self._after_unknown(cid, print_, None, message)
            raise BrokerRejected(f"refused by TradeStation ({message or 'no order placed'})")
        if errors:
            log.warning(
                "tradestation: %s placed %d order(s) but %d failed: %s",
                cid,
                len(placed),
                len(errors),
                "; ".join(str(e.get("Message")) for e in errors),
            )
        self._unsure.pop(cid, None)
        try:
            by_id = {str(r.get("OrderID")): r for r in self._orders_by_id(placed)}
        except BrokerUnavailable:  # placed, not yet shown: what we sent, pending
            self._remember(cid, placed[0])
            return _unread(intent, placed[0])
        primary = _primary(placed, by_id)
        self._remember(cid, primary)
        if primary not in by_id:
            return _unread(intent, primary)
        return self._with_links(by_id[primary], by_id)

    def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        """By the OrderID remembered (or recorded) under our id; after an unknown outcome, by
        the intent's fingerprint among today's orders."""
        order_id = self._ids.get(client_order_id)
        if order_id is None and self._recorded_id is not None:
            try:
                order_id = self._recorded_id(client_order_id)
            except Exception as exc:  # the state table; OrderConfirmID still guards a re-POST
                log.warning("tradestation: recorded order lookup failed (%s)", type(exc).__name__)
                order_id = None
            if order_id:
                self._remember(client_order_id, order_id)
        if order_id is None and client_order_id in self._unsure:
            raw = self._scan(*self._unsure[client_order_id])
            if raw is None:
                return None
            order_id = str(raw["OrderID"])
            self._remember(client_order_id, order_id)
            self._unsure.pop(client_order_id, None)
        if order_id is None:
            return None
        found = self._orders_by_id([order_id])
        if not found:
            return None
        return self._with_links(found[0])

    def cancel_order(self, broker_order_id: str) -> None:
        """Cancel, and wait (up to `cancel_settle_s`) until TradeStation says it is done.

        DELETE answers "Cancel request sent": the order shows UCN ("Cancel Sent") until the
        exchange confirms, and its shares stay committed until then. A filled or finished
        order is refused here, before any DELETE.
        """
        raw = self._order_raw(broker_order_id)
        if raw is None:
            raise BrokerRejected("order not found at TradeStation", code="404")
        status = str(raw.get("Status") or "")
        if status in DONE:
            raise BrokerRejected(
                f"order is not cancelable (it is {raw.get('StatusDescription') or status})",
                code=NOT_CANCELABLE,
            )

        def cancel() -> None:
            resp = self._call("DELETE", f"/orderexecution/orders/{broker_order_id}")
            if resp.status_code != 200:
                failure = failure_of(resp)
                if failure.transient:
                    raise BrokerUnavailable(f"TradeStation unavailable ({failure})")
                raise BrokerRejected(
                    f"order is not cancelable ({failure.message or failure.error})",
                    code=NOT_CANCELABLE,
                )

        self._read(cancel)
        delay, waited = 0.05, 0.0
        while True:
            raw = self._order_raw(broker_order_id)
            if raw is None or str(raw.get("Status") or "") not in CANCEL_PENDING:
                return
            if waited >= self._cancel_settle_s:
                log.warning(
                    "tradestation: cancel of %s still pending after %.1f s", broker_order_id, waited
                )
                return
            self._sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.5)

    def replace_order(
        self,
        broker_order_id: str,
        *,
        qty: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
    ) -> Order:
        """Change a working order's quantity or prices (PUT /orderexecution/orders/{id})."""
        body: dict[str, Any] = {}
        if qty is not None:
            body["Quantity"] = as_string(Decimal(str(qty)))
        if limit_price is not None:
            body["LimitPrice"] = price_string(limit_price)
        if stop_price is not None:
            body["StopPrice"] = price_string(stop_price)
        if not body:
            raise BrokerRejected("a replace needs a quantity or a price")
        try:
            resp = self._send("PUT", f"/orderexecution/orders/{broker_order_id}", json=body)
        except Transport as exc:
            raise BrokerUnavailable(f"TradeStation did not confirm the replace ({exc})") from exc
        if resp.status_code != 200:
            failure = failure_of(resp)
            if failure.transient:
                raise BrokerUnavailable(f"TradeStation did not confirm the replace ({failure})")
            raise BrokerRejected(
                reject_reason(failure), code=failure.error or str(resp.status_code)
            )
        new_id = str((resp.json() or {}).get("OrderID") or broker_order_id)
        cid = self._cids.get(broker_order_id)
        if cid is not None:
            self._remember(cid, new_id)
        raw = self._order_raw(new_id)
        if raw is None:
            raise BrokerUnavailable(f"TradeStation replaced {broker_order_id} but cannot show it")
        return self._with_links(raw)

    def list_orders(self, status: str = "all", limit: int = 100) -> list[Order]:
        """Today's and open orders flowtrader trades, newest first, linked orders nested under
        their entry (or a group's first order); foreign ones left out."""
        orders = self._grouped()
        if status == "open":
            orders = [o for o in orders if o.status in OPEN_STATUSES]
        elif status == "closed":
            orders = [o for o in orders if o.status not in OPEN_STATUSES]
        return orders[: max(limit, 1)]

    def foreign_orders(self, status: str = "all", limit: int = 100) -> list[dict[str, Any]]:
        """Orders in the account of kinds flowtrader does not trade, for display only."""
        views = []
        for raw in self._today():
            reason = foreign_reason(raw)
            if reason is not None:
                views.append(self._note_foreign(raw, reason))
        return views[: max(limit, 1)]

    def working_exits(self, symbol: str) -> list[Order]:
        """The working orders that protect or close `symbol`'s position, flat: the OSO
        children of filled entries, the members of BRK/OCO groups, and plain orders on the
        side that reduces the position."""
        by_id = self._today_by_id()
        held = self._held(symbol)
        reducing = Side.SELL if held > 0 else Side.BUY
        exits: list[Order] = []
        for raw in by_id.values():
            if foreign_reason(raw) is not None:
                continue
            order = parse_order(raw, self._cid(raw))
            if order.symbol != symbol or order.status not in OPEN_STATUSES:
                continue
            parents = links(raw, "OSP")
            if parents:
                parent = by_id.get(parents[0])
                filled = parent is not None and STATUS.get(str(parent.get("Status"))) in (
                    OrderStatus.FILLED,
                    OrderStatus.PARTIALLY_FILLED,
                )
                if filled:
                    exits.append(order)
            elif links(raw, "BRK", "OCO") or (
                held and order.side is reducing and not links(raw, "OSO")
            ):
                exits.append(order)
        return exits

    def get_positions(self) -> list[Position]:
        """Stock positions; others the account holds (options, futures) are left out."""
        body = self._get_json(f"/brokerage/accounts/{self._account}/positions")
        positions = []
        for raw in body.get("Positions") or []:
            if (raw.get("AssetType") or "STOCK") != "STOCK":
                self._note_foreign_position(raw)
                continue
            qty = Decimal(str(raw.get("Quantity") or 0))
            if raw.get("LongShort") == "Short" and qty > 0:
                qty = -qty  # the spec says negative for shorts; both spellings read the same
            positions.append(
                Position(
                    symbol=str(raw["Symbol"]),
                    qty=float(qty),
                    avg_entry_price=decimal_or_none(raw.get("AveragePrice")) or 0.0,
                    market_price=decimal_or_none(raw.get("Last")),
                    unrealized_pl=decimal_or_none(raw.get("UnrealizedProfitLoss")),
                )
            )
        return positions

    def get_account(self) -> Account:
        """Real-time balances, with the beginning-of-day equity as `last_equity` (so the
        account's day P/L is equity − BOD equity, realized and unrealized)."""
        balances = self._get_json(f"/brokerage/accounts/{self._account}/balances")
        bod = self._get_json(f"/brokerage/accounts/{self._account}/bodbalances")
        raw = self._mine(balances.get("Balances"), balances)
        start = self._mine(bod.get("BODBalances"), bod)
        detail = raw.get("BalanceDetail") or {}
        return Account(
            equity=decimal_or_none(raw.get("Equity")) or 0.0,
            cash=decimal_or_none(raw.get("CashBalance")) or 0.0,
            buying_power=decimal_or_none(raw.get("BuyingPower")) or 0.0,
            daytrade_count=int(Decimal(str(detail.get("DayTrades") or 0))),
            last_equity=decimal_or_none((start.get("BalanceDetail") or {}).get("Equity")),
        )

    def get_portfolio(self) -> tuple[Account, list[Position]]:
        """TradeStation has no single call for both: balances, BOD balances, positions."""
        return self.get_account(), self.get_positions()

    # --- internals ----------------------------------------------------------------------

    def _mine(self, rows: Any, body: dict[str, Any]) -> dict[str, Any]:
        for row in rows or []:
            if str(row.get("AccountID")) == self._account:
                return dict(row)
        errors = "; ".join(str(e.get("Message")) for e in body.get("Errors") or [])
        raise BrokerRejected(
            f"TradeStation has no balances for account {self._account}"
            + (f" ({errors})" if errors else ""),
            code="account",
        )

    def _remember(self, cid: str, order_id: str) -> None:
        self._ids[cid] = order_id
        self._cids[order_id] = cid

    def _cid(self, raw: dict[str, Any]) -> str:
        return self._cids.get(str(raw.get("OrderID")), f"ts-{raw.get('OrderID')}")

    def _after_unknown(
        self, cid: str, print_: tuple[str, ...], since: datetime | None, why: str
    ) -> Order:
        """The POST's outcome is unknown (or TradeStation calls it a duplicate): scan."""
        log.warning("tradestation: order %s outcome unknown (%s)", cid, why)
        earlier = self._unsure.get(cid)
        if earlier is not None and since is not None and earlier[1] is not None:
            since = min(since, earlier[1])  # an earlier unknown POST may be the one placed
        elif earlier is not None:
            since = None
        self._unsure[cid] = (print_, since)
        found = self.get_order_by_client_id(cid)
        if found is not None:
            log.info("tradestation: %s was placed despite the error", cid)
            return found
        raise BrokerUnavailable(f"TradeStation did not confirm order {cid}: {why}")

    def _scan(self, print_: tuple[str, ...], since: datetime | None) -> dict[str, Any] | None:
        """The newest of today's orders with this fingerprint that no other id claims, opened
        no earlier than `since` (when known: this process's own unknown POST)."""
        for raw in self._today():
            if str(raw.get("OrderID")) in self._cids:
                continue
            if links(raw, "OSP"):
                continue  # a child of an OSO is never the order a request names first
            opened = parse_time(raw.get("OpenedDateTime"))
            if since is not None and opened is not None and opened < since:
                continue
            if raw_fingerprint(raw) == print_:
                return raw
        return None

    def _held(self, symbol: str) -> Decimal:
        for p in self.get_positions():
            if p.symbol == symbol:
                return Decimal(str(p.qty))
        return Decimal(0)

    def _with_links(
        self, raw: dict[str, Any], by_id: dict[str, dict[str, Any]] | None = None
    ) -> Order:
        """The order with its linked orders as legs: OSO children, or BRK/OCO siblings (from
        `by_id` when the caller listed today's orders, else one GET by their OrderIDs)."""
        cid = self._cid(raw)
        order = parse_order(raw, cid)
        linked = links(raw, "OSO") or links(raw, "BRK", "OCO")
        if by_id is None:
            by_id = {str(r.get("OrderID")): r for r in self._orders_by_id(linked)} if linked else {}
        legs = []
        for order_id in linked:
            leg_raw = by_id.get(order_id)
            if leg_raw is not None and foreign_reason(leg_raw) is None:
                leg_cid = self._cids.get(order_id, f"{cid}-{order_id}")
                legs.append(
                    parse_order(leg_raw, leg_cid).model_copy(update={"parent_client_order_id": cid})
                )
        return order.model_copy(update={"legs": tuple(legs)})

    def _grouped(self) -> list[Order]:
        """Top-level orders with their linked ones nested: an OSO entry with its children, a
        BRK/OCO group under its first (lowest) OrderID."""
        by_id = self._today_by_id()
        tops = []
        for order_id, raw in by_id.items():
            reason = foreign_reason(raw)
            if reason is not None:
                self._note_foreign(raw, reason)
                continue
            if links(raw, "OSP"):
                continue  # an OSO child: listed under its entry
            siblings = links(raw, "BRK", "OCO")
            if siblings and min([order_id, *siblings], key=_order_key) != order_id:
                continue  # listed under the group's first order
            tops.append(self._with_links(raw, by_id))
        return tops

    def _today(self) -> list[dict[str, Any]]:
        """GET /brokerage/accounts/{id}/orders: "today's orders and open orders", newest first,
        every page."""
        rows: list[dict[str, Any]] = []
        params: dict[str, Any] = {}
        while True:
            body = self._get_json(f"/brokerage/accounts/{self._account}/orders", params)
            rows.extend(body.get("Orders") or [])
            token = body.get("NextToken")
            if not token or token == params.get("nextToken"):
                return rows
            params = {"pageSize": 600, "nextToken": token}

    def _today_by_id(self) -> dict[str, dict[str, Any]]:
        return {str(raw.get("OrderID")): raw for raw in self._today()}

    def _orders_by_id(self, order_ids: list[str]) -> list[dict[str, Any]]:
        ids = ",".join(order_ids[:MAX_ORDER_IDS])
        try:
            body = self._get_json(f"/brokerage/accounts/{self._account}/orders/{ids}")
        except BrokerRejected as exc:
            if exc.code in ("404", "NotFound"):
                return []
            raise
        return list(body.get("Orders") or [])

    def _order_raw(self, order_id: str) -> dict[str, Any] | None:
        found = self._orders_by_id([order_id])
        return found[0] if found else None

    def _note_foreign(self, raw: dict[str, Any], reason: str) -> dict[str, Any]:
        view = foreign_view(raw, reason)
        if view["id"] not in self._foreign_seen:
            self._foreign_seen.add(view["id"])
            log.warning(
                "tradestation: %s %s (%s) is not traded by flowtrader; shown, never acted on",
                view["class"] or "order",
                view["symbol"] or view["id"],
                reason,
            )
        return view

    def _note_foreign_position(self, raw: dict[str, Any]) -> None:
        key = f"position:{raw.get('Symbol')}"
        if key not in self._foreign_seen:
            self._foreign_seen.add(key)
            log.warning(
                "tradestation: %s position %s is not traded by flowtrader; left out",
                raw.get("AssetType"),
                raw.get("Symbol"),
            )

    # --- HTTP -----------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> requests.Response:
        """One request with the bearer token; a 401 refreshes the token and repeats it once
        (an access token can be invalidated before its 20 minutes are up)."""
        import requests

        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self._tokens.access_token()}"}
            try:
                resp = self._session.request(
                    method,
                    f"{self._base}{path}",
                    headers=headers,
                    json=json,
                    params=params,
                    timeout=self._timeout_s,
                )
            except requests.RequestException as exc:
                raise Transport(type(exc).__name__) from exc
            if resp.status_code == 401 and attempt == 1:
                log.info("tradestation: access token refused; refreshing once")
                self._tokens.invalidate()
                continue
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self._send(method, path, **kwargs)
        except Transport as exc:
            raise BrokerUnavailable(f"TradeStation unreachable ({exc})") from exc

    def _get_json(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        def get() -> dict[str, Any]:
            resp = self._call("GET", path, params=params)
            if resp.status_code != 200:
                failure = failure_of(resp)
                if failure.transient:
                    raise BrokerUnavailable(f"TradeStation unavailable ({failure})")
                raise BrokerRejected(
                    reject_reason(failure), code=failure.error or str(resp.status_code)
                )
            body = resp.json()
            return body if isinstance(body, dict) else {}

        result: dict[str, Any] = self._read(get)
        return result

    def _read(self, fn: Callable[[], Any]) -> Any:
        """Run an idempotent call, retrying while TradeStation is unavailable."""
        retrying = Retrying(
            stop=stop_after_attempt(self._read_attempts),
            wait=wait_exponential(multiplier=self._wait_s, max=8 * self._wait_s),
            retry=retry_if_exception_type(BrokerUnavailable),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(fn)


def _primary(placed: list[str], by_id: dict[str, dict[str, Any]]) -> str:
    """The order a request names first: an OSO's entry (the one without a parent), a group's
    lowest OrderID; the order of OrderIDs in TradeStation's answer is not relied on."""
    tops = [i for i in placed if i in by_id and not links(by_id[i], "OSP")]
    return min(tops, key=_order_key) if tops else placed[0]


def _order_key(order_id: str) -> tuple[int, str]:
    return (int(order_id), order_id) if order_id.isdigit() else (0, order_id)


def _order_responses(resp: requests.Response) -> tuple[list[str], list[dict[str, Any]]]:
    """(OrderIDs placed, errors) of an `OrderResponses` answer. The spec types the answer as
    an array of OrderResponses and shows one object as its example; both are read."""
    body = resp.json()
    bodies = body if isinstance(body, list) else [body]
    placed: list[str] = []
    errors: list[dict[str, Any]] = []
    for item in bodies:
        if not isinstance(item, dict):
            continue
        placed += [str(o["OrderID"]) for o in item.get("Orders") or [] if o.get("OrderID")]
        errors += [e for e in item.get("Errors") or [] if isinstance(e, dict)]
    return placed, errors


def _unread(intent: OrderIntent, order_id: str) -> Order:
    """A placed order TradeStation could not show yet: what we sent, status pending."""
    return Order(
        broker_order_id=order_id,
        client_order_id=intent.client_order_id,
        symbol=intent.symbol,
        side=intent.side,
        qty=intent.qty,
        order_type=intent.order_type,
        status=OrderStatus.PENDING,
        limit_price=intent.limit_price,
        stop_price=intent.stop_price,
    )
