"""An Interactive Brokers account behind the `Broker` port (Client Portal Web API, OAuth).

Money safety, as for Alpaca (adapters/alpaca.py), with IBKR's own shape:
- Before a submission, and whenever its outcome is unknown (timeout, connection drop, 5xx,
  429, a 401 the renewed session did not cure), the order is looked up by our client order
  id. IBKR has no such lookup: the live orders of the session and the executions of the
  last 7 days are scanned for `order_ref` (orders.py). A lookup that finds nothing after an
  unknown outcome raises `BrokerUnavailable`; the use case places the same intent again
  later, and the lookup before that submission finds the order if it exists by then.
- POSTs are never retried here (`submit_attempts` is not a thing: the use case is the one
  retry layer) and ibind is built without its own retries (session.py). Reads are retried
  (`read_attempts`) while IBKR is unavailable.
- IBKR's order questions are answered by `ReplyPolicy` (orders.py): a whitelist of message
  ids; every other question is refused at IBKR and raised as `BrokerRejected`.
- Orders of kinds flowtrader does not trade (options, FX, ...) are listed apart
  (`foreign_orders`) and never acted on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.ibkr.contracts import ConidResolver, UnknownSymbol
from chalicelib.adapters.ibkr.orders import (
    INVALID,
    OPEN,
    ReplyPolicy,
    apply_status,
    build_tickets,
    foreign_reason,
    group_orders,
    is_oco,
    order_from_trades,
    orders_from_answer,
    parse_live_order,
)
from chalicelib.adapters.ibkr.session import IbkrError, IbkrSession
from chalicelib.domain import Account, Order, OrderIntent, OrderStatus, Position, Side
from chalicelib.ports import BrokerRejected, BrokerUnavailable

if TYPE_CHECKING:
    from chalicelib.settings import Settings

log = logging.getLogger(__name__)

MAX_QUESTIONS = 10  # replies per submission before giving up (ibind allows 20)
POSITIONS_PAGE = 100  # "Max 100 positions returned per page" (spec)
TRADE_DAYS = "7"  # "up to a maximum of 7" days of executions (spec)
_DUPLICATE = ("already registered", "local order id", "duplicate")
WORKING_STATUSES = frozenset({"inactive", "pendingsubmit", "presubmitted", "submitted"})
WORKING_STATUSES |= {"pendingcancel", "warnstate"}


def reject_reason(status: int | None, message: str) -> str:
    """A trader's reading of an IBKR refusal; IBKR's own words follow in parentheses."""
    text = message.lower()
    if "insufficient" in text or "buying power" in text or "margin" in text:
        label = "insufficient buying power or margin"
    elif "short" in text and ("locate" in text or "not available" in text):
        label = "the asset cannot be sold short"
    elif "price" in text and ("tick" in text or "increment" in text or "invalid" in text):
        label = "invalid price for this contract"
    elif "not cancel" in text or "doesn't exist" in text or "cannot be cancel" in text:
        label = "order is not cancelable"
    elif status == 401:
        label = "IBKR refused the session (check the OAuth consumer key and access token)"
    elif status == 403:
        label = "forbidden by IBKR"
    elif status == 404:
        label = "not found at IBKR"
    else:
        label = "refused by IBKR"
    return f"{label} (ibkr: {message})" if message else label


class IbkrBroker:
    """One IBKR account. Build with `from_settings(settings, read_secret)`.

    `read_attempts`: tries for reads while IBKR is unavailable; `wait_s`: the first backoff
    (doubling); `cancel_settle_s`: how long a cancel waits for IBKR to report it done.
    """

    name = "ibkr"

    def __init__(
        self,
        session: IbkrSession,
        *,
        contracts: ConidResolver | None = None,
        policy: ReplyPolicy | None = None,
        read_attempts: int = 3,
        wait_s: float = 0.5,
        cancel_settle_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._session = session
        self._account = session.account_id
        self._contracts = contracts or ConidResolver(session)
        self._policy = policy or ReplyPolicy()
        self._read_attempts = max(1, read_attempts)
        self._wait_s = wait_s
        self._cancel_settle_s = cancel_settle_s
        self._sleep = sleep
        self._foreign: dict[str, dict[str, Any]] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        read_secret: Callable[[str], dict[str, Any]] | None = None,
        *,
        dynamodb_client: Any = None,
    ) -> IbkrBroker:
        from chalicelib.adapters.ibkr.session import StateTableLstCache, session_for

        cache = (
            StateTableLstCache(dynamodb_client, settings.state_table) if dynamodb_client else None
        )
        try:
            session = session_for(settings, read_secret, cache=cache)
        except IbkrError as exc:
            raise BrokerUnavailable(exc.message) from exc
        return cls(
            session,
            contracts=ConidResolver(session, ttl_s=settings.ibkr_conid_ttl_s),
            policy=ReplyPolicy.from_setting(settings.ibkr_confirm_message_ids),
            cancel_settle_s=settings.ibkr_cancel_settle_s,
        )

    # --- Broker port -------------------------------------------------------------------

    def place_order(self, intent: OrderIntent) -> Order:
        """Look up, submit once, answer IBKR's questions by the policy, return the order.

        `BrokerRejected`: IBKR (or the policy) said no; `BrokerUnavailable`: the outcome is
        unknown and the lookup found nothing — place the same intent again later.
        """
        cid = intent.client_order_id
        existing = self.get_order_by_client_id(cid)
        if existing is not None:
            log.info("ibkr: %s already placed; returning it", cid)
            return existing
        try:
            conid = self._read(lambda: self._contracts.conid(intent.symbol))
        except UnknownSymbol as exc:
            raise BrokerRejected(f"asset not found or not tradable ({exc})", code=INVALID) from exc
        except IbkrError as exc:
            raise self._mapped(exc) from exc
        body = build_tickets(intent, conid, self._account)
        try:
            answer = self._session.call(
                "POST", f"iserver/account/{self._account}/orders", body=body
            )
            answer_list = self._through_questions(answer)
        except IbkrError as exc:
            if exc.status == 200 and any(d in exc.message.lower() for d in _DUPLICATE):
                found = self.get_order_by_client_id(cid)
                if found is not None:
                    return found
                raise BrokerUnavailable(f"IBKR holds {cid} but the lookup found nothing") from exc
            if not exc.transient:
                raise BrokerRejected(
                    reject_reason(exc.status, exc.message), code=str(exc.status)
                ) from exc
            log.warning("ibkr: order %s outcome unknown (%s)", cid, exc)
            found = self.get_order_by_client_id(cid)
            if found is not None:
                log.info("ibkr: %s was placed despite the error", cid)
                return found
            raise BrokerUnavailable(f"IBKR did not confirm order {cid}: {exc}") from exc
        return self._acknowledged(intent, body["orders"], answer_list)

    def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        """The live orders of the session first, then the last 7 days of executions."""
        for order in self._grouped():
            if order.client_order_id == client_order_id:
                return order
        trades = self._call("GET", "iserver/account/trades", params={"days": TRADE_DAYS}) or []
        return order_from_trades(client_order_id, trades)

    def cancel_order(self, broker_order_id: str) -> None:
        """Cancel a working order and wait (up to `cancel_settle_s`) until IBKR reports it
        cancelled: `DELETE` only acknowledges "the request to cancel", it "does not report
        whether the cancellation can or will ultimately be enacted" (spec)."""
        current = self._flat_order(broker_order_id)
        if current is None:
            raise BrokerRejected(f"order {broker_order_id} not found at IBKR", code="404")
        if current.status not in OPEN:
            raise BrokerRejected(
                f"order is not cancelable (it is {current.status.value})", code=INVALID
            )
        try:
            self._read(
                lambda: self._session.call(
                    "DELETE", f"iserver/account/{self._account}/order/{broker_order_id}"
                )
            )
        except IbkrError as exc:
            if exc.transient:
                raise BrokerUnavailable(f"IBKR unavailable ({exc})") from exc
            raise BrokerRejected(reject_reason(exc.status, exc.message), code=INVALID) from exc
        delay, waited = 0.05, 0.0
        while True:
            if not self._still_working(broker_order_id):
                return
            if waited >= self._cancel_settle_s:
                log.warning(
                    "ibkr: cancel of %s still pending after %.1f s", broker_order_id, waited
                )
                return
            self._sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.5)

    def _still_working(self, broker_order_id: str) -> bool:
        """The order's state from `GET /iserver/account/order/status/{orderId}` (not paced
        like the live orders, so a cancel can be watched closely)."""
        try:
            raw = self._session.call("GET", f"iserver/account/order/status/{broker_order_id}")
        except IbkrError as exc:
            log.info("ibkr: status of %s not read (%s)", broker_order_id, exc)
            return False
        status = str((raw or {}).get("order_status") or "").lower().replace(" ", "")
        return status in WORKING_STATUSES

    def list_orders(self, status: str = "all", limit: int = 100) -> list[Order]:
        """The session's orders flowtrader trades, newest first, legs nested."""
        orders = self._grouped()
        if status == "open":
            orders = [o for o in orders if o.status in OPEN]
        elif status == "closed":
            orders = [o for o in orders if o.status not in OPEN]
        return orders[: max(limit, 1)]

    def foreign_orders(self, status: str = "all", limit: int = 100) -> list[dict[str, Any]]:
        """Orders in the account of kinds flowtrader does not trade, for display only."""
        self._grouped()
        return list(self._foreign.values())[:limit]

    def working_exits(self, symbol: str) -> list[Order]:
        """Working orders that protect or close `symbol`'s position, flat: the open legs of
        filled bracket/OTO entries, both orders of an OCO, and plain open orders on the side
        that reduces the position held."""
        held = next((p.qty for p in self.get_positions() if p.symbol == symbol), 0.0)
        reducing = Side.SELL if held > 0 else Side.BUY
        exits: list[Order] = []
        for order in self._grouped():
            if order.symbol != symbol:
                continue
            if is_oco(order):
                exits += [o for o in (order, *order.legs) if o.status in OPEN]
            elif order.legs:
                if order.status in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED):
                    exits += [leg for leg in order.legs if leg.status in OPEN]
            elif order.status in OPEN and held and order.side is reducing:
                exits.append(order)
        return [o.model_copy(update={"legs": ()}) for o in exits]

    def get_positions(self) -> list[Position]:
        """Stock positions (`GET /portfolio/{accountId}/positions/{page}`), after
        invalidating IBKR's portfolio cache so a fill of a moment ago shows."""
        self._call("POST", f"portfolio/{self._account}/positions/invalidate")
        positions: list[Position] = []
        for page in range(50):
            rows = self._call("GET", f"portfolio/{self._account}/positions/{page}") or []
            for raw in rows:
                if str(raw.get("assetClass") or "STK") != "STK":
                    continue
                qty = float(raw.get("position") or 0)
                if not qty:
                    continue
                positions.append(
                    Position(
                        symbol=str(raw.get("ticker") or raw.get("contractDesc") or ""),
                        qty=qty,
                        avg_entry_price=float(raw.get("avgPrice") or raw.get("avgCost") or 0),
                        market_price=_float(raw.get("mktPrice")),
                        unrealized_pl=_float(raw.get("unrealizedPnl")),
                    )
                )
            if len(rows) < POSITIONS_PAGE:
                break
        return positions

    def get_account(self) -> Account:
        """From `GET /portfolio/{accountId}/summary`: equity is `netliquidation`, buying
        power `buyingpower`, cash `totalcashvalue`; the day's P/L is today's
        `equitywithloanvalue` less `previousdayequitywithloanvalue` (IBKR's own prior-close
        figure), carried as `last_equity` so `Account.day_pl` reads it."""
        raw = self._call("GET", f"portfolio/{self._account}/summary") or {}

        def amount(key: str) -> float | None:
            value = raw.get(key)
            if isinstance(value, dict):
                return None if value.get("isNull") else _float(value.get("amount"))
            return _float(value)

        equity = amount("netliquidation") or 0.0
        elv, previous = amount("equitywithloanvalue"), amount("previousdayequitywithloanvalue")
        last_equity = equity - (elv - previous) if elv is not None and previous else None
        remaining = raw.get("daytradesremaining")
        left = _float(remaining.get("value") if isinstance(remaining, dict) else remaining)
        return Account(
            equity=equity,
            cash=amount("totalcashvalue") or 0.0,
            buying_power=amount("buyingpower") or 0.0,
            daytrade_count=max(0, 3 - int(left)) if left is not None and left >= 0 else 0,
            last_equity=last_equity,
        )

    def get_portfolio(self) -> tuple[Account, list[Position]]:
        """IBKR has no single call for both: the summary, then the positions."""
        return self.get_account(), self.get_positions()

    # --- internals ----------------------------------------------------------------------

    def _acknowledged(
        self, intent: OrderIntent, tickets: list[dict[str, Any]], answer: list[dict[str, Any]]
    ) -> Order:
        """Our order from IBKR's acknowledgement, its fill read from the order status."""
        cid = intent.client_order_id
        try:
            flat = orders_from_answer(tickets, answer)
        except (ValueError, KeyError) as exc:
            log.info("ibkr: %s acknowledged in an unexpected shape (%s); looking it up", cid, exc)
            found = self.get_order_by_client_id(cid)
            if found is None:
                raise BrokerUnavailable(f"IBKR accepted {cid} but does not list it yet") from exc
            return found
        flat = [o.model_copy(update={"symbol": intent.symbol}) for o in flat]
        head = flat[0]
        try:
            raw = self._session.call("GET", f"iserver/account/order/status/{head.broker_order_id}")
            flat[0] = apply_status(head, raw or {})
        except IbkrError as exc:  # the order exists; its fill shows at the next sync
            log.info("ibkr: status of %s not read (%s)", head.broker_order_id, exc)
        return group_orders(flat)[0]

    def _through_questions(self, answer: Any) -> list[dict[str, Any]]:
        """Follow IBKR's answer until the order is acknowledged (a list of `order_id`s);
        each question is confirmed or refused by the policy."""
        for _ in range(MAX_QUESTIONS):
            if isinstance(answer, dict) and answer.get("messageId"):  # a reject prompt (p12)
                mid = str(answer["messageId"])
                raise self._policy.refusal([mid], [str(answer.get("text") or "")])
            if not isinstance(answer, list) or not answer:
                raise IbkrError(
                    None, f"unexpected order answer from IBKR ({type(answer).__name__})"
                )
            question = next((a for a in answer if a.get("id") and a.get("message")), None)
            if question is None:
                if all(a.get("order_id") for a in answer):
                    return answer
                raise IbkrError(None, "IBKR's order answer names no order id")
            ids = [str(i) for i in question.get("messageIds") or []]
            messages = [str(m) for m in question.get("message") or []]
            reply = f"iserver/reply/{question['id']}"
            if not self._policy.answer(ids):
                try:
                    self._session.call("POST", reply, body={"confirmed": False})
                except IbkrError as exc:  # "Order not confirmed" is the expected answer
                    log.info("ibkr: declined question answered %s", exc.message)
                raise self._policy.refusal(ids, messages)
            log.info("ibkr: confirming %s by policy", ",".join(ids))
            answer = self._session.call("POST", reply, body={"confirmed": True})
        raise BrokerRejected("IBKR asked too many questions about one order", code="reply")

    def _live(self) -> list[dict[str, Any]]:
        data = self._call("GET", "iserver/account/orders") or {}
        return list(data.get("orders") or [])

    def _parsed(self) -> list[Order]:
        parsed: list[Order] = []
        for raw in self._live():
            reason = foreign_reason(raw)
            if reason is None:
                try:
                    parsed.append(parse_live_order(raw))
                    continue
                except (ValueError, KeyError, TypeError) as exc:
                    reason = f"unreadable order ({exc})"
            self._note_foreign(raw, reason)
        return sorted(parsed, key=lambda o: int(o.broker_order_id), reverse=True)

    def _grouped(self) -> list[Order]:
        return group_orders(self._parsed())

    def _flat_order(self, broker_order_id: str) -> Order | None:
        return next((o for o in self._parsed() if o.broker_order_id == broker_order_id), None)

    def _note_foreign(self, raw: dict[str, Any], reason: str) -> None:
        key = str(raw.get("orderId", ""))
        if key not in self._foreign:
            log.warning(
                "ibkr: %s %s (%s) is not traded by flowtrader; shown, never acted on",
                raw.get("secType") or "order",
                raw.get("ticker") or key,
                reason,
            )
        self._foreign[key] = {
            "id": key,
            "client_order_id": str(raw.get("order_ref") or ""),
            "symbol": str(raw.get("ticker") or raw.get("description1") or ""),
            "class": str(raw.get("secType") or ""),
            "status": str(raw.get("status") or ""),
            "side": str(raw.get("side") or ""),
            "qty": raw.get("totalSize"),
            "reason": reason,
        }

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        def call() -> Any:
            return self._session.call(method, path, **kwargs)

        try:
            return self._read(call)
        except IbkrError as exc:
            raise self._mapped(exc) from exc

    @staticmethod
    def _mapped(exc: IbkrError) -> Exception:
        if exc.transient:
            return BrokerUnavailable(f"IBKR unavailable ({exc})")
        return BrokerRejected(reject_reason(exc.status, exc.message), code=str(exc.status))

    def _read(self, fn: Callable[[], Any]) -> Any:
        """Run an idempotent call, retrying while IBKR is unavailable."""
        delay = self._wait_s
        for attempt in range(self._read_attempts):
            try:
                return fn()
            except IbkrError as exc:
                if not exc.transient or attempt == self._read_attempts - 1:
                    raise
                self._sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover


def _float(value: Any) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None
