"""Every port the services talk to, and the port errors; adapters in `chalicelib/adapters/`
implement them, `chalicelib/bootstrap.py` decides which adapter serves which.

Ports import only the domain. The rules re-export the one protocol they need
(`chalicelib.rules.risk_state.RiskState`), so the backtest and the gate keep their import.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from chalicelib.domain import (
    Account,
    Alert,
    Bar,
    ClosedTrade,
    DarkPoolPrint,
    DayClassification,
    DayType,
    FlowHighlight,
    FlowPrint,
    MarketNote,
    MarketTide,
    MarketTrade,
    ModelAnswer,
    NetPremTick,
    Order,
    OrderIntent,
    Position,
    Quote,
)


class StorageUnavailable(Exception):
    """The store could not be reached; nothing was written."""


class QueueUnavailable(Exception):
    """The queue could not be reached; nothing was sent."""


class StoredAlert(Protocol):
    alert_id: str


class AlertStore(Protocol):
    """Alerts and their outcomes, stored once per idempotency key."""

    def store_once(
        self,
        alert_id: str,
        dedupe_key: str,
        alert: Alert,
        received_at: datetime,
        dedupe_until: datetime,
        source_ip: str | None,
    ) -> str | None:
        """Store the alert unless its key was seen; return the first alert's id when it was."""
        ...

    def get(self, alert_id: str) -> dict[str, Any] | None: ...

    def mark_unqueued(self, alert_id: str) -> None:
        """The enqueue after the store failed; the alert waits for the sweeper."""
        ...

    def mark_queued(self, alert_id: str) -> None:
        """The sweeper queued the alert; it leaves the pending set."""
        ...

    def pending(self, older_than: datetime) -> list[str]:
        """Ids of alerts stored before `older_than` that no worker has taken yet."""
        ...

    def record_outcome(
        self,
        alert_id: str,
        status: str,
        reason: str,
        details: dict[str, Any] | None = None,
        only_if_status_in: tuple[str, ...] | None = None,
        updated_at: datetime | None = None,
    ) -> bool:
        """Record where the alert ended; False when `only_if_status_in` did not hold.

        `updated_at`, when given, is stored as the time the outcome was reached (the
        caller's clock)."""
        ...

    def claim(
        self,
        alert_id: str,
        status: str,
        reason: str,
        only_if_status_in: tuple[str, ...],
        updated_at: datetime,
    ) -> dict[str, Any] | None:
        """`record_outcome` for the worker's claim, in one write: the record as it was
        before the claim, or None when the alert is missing or its status did not allow it."""
        ...


class AlertQueue(Protocol):
    def enqueue(self, alert_id: str) -> None: ...

    def depth(self) -> int:
        """Messages on the queue (waiting, in flight, delayed): the sweeper's evidence that
        a `queued` alert's message was lost."""
        ...


class BrokerRejected(Exception):
    """The broker refused the order for a reason retrying cannot fix (recorded as rejected).

    `code` is the broker's error code where it has one (Alpaca: 40310000, 42210000, ...).
    """

    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class BrokerUnavailable(Exception):
    """Timeout, 5xx or rate limit: the outcome is unknown until the order is looked up."""


class Broker(Protocol):
    """One brokerage account. Placing is idempotent on `intent.client_order_id`."""

    name: str

    def place_order(self, intent: OrderIntent) -> Order:
        """Submit, or return the order already known under the same client_order_id."""
        ...

    def get_order_by_client_id(self, client_order_id: str) -> Order | None: ...

    def cancel_order(self, broker_order_id: str) -> None: ...

    def list_orders(self, status: str = "all", limit: int = 100) -> list[Order]: ...

    def working_exits(self, symbol: str) -> list[Order]:
        """The working orders that protect or close the position in `symbol`: bracket/OTO
        legs of filled entries, OCO pairs and plain stop/limit exits, flat (no nesting).

        The service cancels these before a close and re-protects a remainder from them, so
        a partial exit never leaves shares without the stop they had.
        """
        ...

    def get_positions(self) -> list[Position]: ...

    def get_account(self) -> Account: ...

    def get_portfolio(self) -> tuple[Account, list[Position]]:
        """The account and its positions together (one read where the broker allows)."""
        ...


class SimulatedBroker(Broker, Protocol):
    """A broker with no market of its own (the paper broker): working orders (limit, stop,
    trailing, bracket/OTO legs) only fill when it is told about prices.

    Call `on_price` with every price learnt (the alert's price, market data, a bar's
    high/low); it returns the orders that filled or were canceled on that move, for the
    journal and notifications. Alpaca needs no such call: its own market works the orders.
    """

    def on_price(
        self,
        symbol: str,
        price: float,
        time: datetime,
        *,
        high: float | None = None,
        low: float | None = None,
    ) -> list[Order]: ...

    def working_symbols(self) -> dict[str, datetime | None]:
        """Every symbol with a position or a working order (legs included), with when its
        newest working order was placed (None: a position with nothing working)."""
        ...

    def mark(self, symbol: str, price: float, time: datetime) -> None:
        """Remember a price without working any order (for a symbol with nothing working:
        no fill can follow, so the price poll needs no account lease for it)."""
        ...


class AccountLock(Protocol):
    """One decision at a time per account.

    The cooldown is claimed atomically, but position and exposure limits are checked against
    the broker's positions: two workers deciding at once would each see the other's order
    missing. Holding this lease from reading the account to placing the order makes every
    limit hold under concurrency (an invariant in docs/architecture.md). The lease expires
    after `ttl`, so a crashed holder cannot block the account for longer.
    """

    def acquire_account_lock(self, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take the lease (or renew it for the same holder); False while another holds it."""
        ...

    def release_account_lock(self, holder: str) -> None:
        """Give the lease back; a lease another holder took after expiry is left alone."""
        ...

    def account_lock_held(self, now: datetime) -> bool:
        """Whether someone holds an unexpired lease at `now` (a look, not a claim)."""
        ...


@runtime_checkable
class RiskState(Protocol):
    """What the gate's checks read, and the cooldown claims the gate writes.

    A claim is the one write that must be atomic: `claim_trade_slot` either takes a slot
    under the limit or returns False, so concurrent callers can never exceed it. Scopes:
    `symbol=None` is the account-wide window, `symbol="AAPL"` a per-symbol one. Claims are
    keyed by `claim_id` (the alert id), so a redelivered alert re-finds its own slot.
    """

    def kill_switch(self) -> str | None:
        """The reason the kill switch was engaged, or None when trading is allowed."""
        ...

    def set_kill_switch(self, reason: str | None, now: datetime) -> None:
        """Engage (with a reason) or release (None) the kill switch."""
        ...

    def trade_times(
        self,
        now: datetime,
        window: timedelta,
        *,
        symbol: str | None = None,
        exclude_claim: str | None = None,
    ) -> list[datetime]:
        """When the trades claimed within (now − window, now] were claimed, oldest first."""
        ...

    def claim_trade_slot(
        self,
        claim_id: str,
        now: datetime,
        *,
        window: timedelta,
        limit: int,
        symbol: str | None = None,
    ) -> bool:
        """Atomically take one of `limit` slots in the rolling window; False when all are taken.

        True without taking another slot when `claim_id` already holds one in the window.
        """
        ...

    def release_trade_slot(self, claim_id: str, *, symbol: str | None = None) -> None:
        """Give a slot back (the broker refused the order); a no-op when none is held."""
        ...

    def realized_pl(self, day: date) -> float:
        """Realized P/L in USD booked on trading day `day` (losses negative)."""
        ...

    def add_realized_pl(self, day: date, amount_usd: float, *, key: str) -> bool:
        """Book realized P/L once per `key` (e.g. a fill id); False when `key` was booked."""
        ...

    def day_type(self, day: date) -> DayType | None:
        """The day's classification (trend / choppy / no_trade), or None if not classified."""
        ...

    def set_day_type(self, day: date, day_type: DayType) -> None: ...


class TradeRecords(Protocol):
    """The journal, orders and positions the API shows (state table; adapters/dynamodb_state).

    The risk half of the state store is `RiskState` (the gate's reads and cooldown claims);
    the DynamoDB state store implements both (`StateStore`).
    """

    def append_journal(
        self, alert_id: str, event: str, data: dict[str, Any], at: datetime, seq: int = 0
    ) -> None:
        """Add one event; `seq` orders events written at the same `at` (one per step)."""
        ...

    def append_journal_many(
        self, alert_id: str, events: list[tuple[str, dict[str, Any], datetime, int]]
    ) -> None:
        """Add several events (event, data, at, seq) in as few writes as the store allows."""
        ...

    def journal(self, alert_id: str) -> list[dict[str, Any]]:
        """The alert's events, oldest first: {"event", "at", "data"}."""
        ...

    def record_order(self, alert_id: str, order: Order, at: datetime) -> None:
        """Insert or update one order by its client_order_id."""
        ...

    def orders(self, limit: int = 100) -> list[dict[str, Any]]:
        """Recorded orders, newest alert first, each with its alert_id and recorded_at."""
        ...

    def recorded_order(self, client_order_id: str) -> dict[str, Any] | None:
        """One recorded order (as in `orders`), or None when it was never recorded."""
        ...

    def replace_positions(
        self, positions: list[Position], at: datetime, previous: list[Position] | None = None
    ) -> None:
        """Make the stored snapshot equal the broker's positions; `previous`, when the
        caller just read the snapshot, saves reading it again."""
        ...

    def positions(self) -> list[Position]: ...

    def refresh_marks(
        self, positions: list[Position], previous: list[Position], at: datetime
    ) -> int:
        """Write the new marks (price, unrealized P/L) of positions whose quantity has not
        changed, each only while its stored document is still `previous`'s: a decision that
        changed the snapshot meanwhile wins. Returns how many were written."""
        ...

    def record_trade(self, trade: ClosedTrade) -> bool:
        """Store a closed trade once (by `trade.key`); False when it was already stored."""
        ...

    def trades(self, start: date, end: date) -> list[ClosedTrade]:
        """Closed trades that exited on trading days `start`..`end`, oldest first."""
        ...

    def booked_fills(self) -> tuple[tuple[str, ...], int]:
        """The fill keys already booked by sync_portfolio (bounded, newest last), a version."""
        ...

    def save_booked_fills(self, keys: tuple[str, ...], version: int) -> bool:
        """Replace the booked keys; False when another sync saved since `version`."""
        ...

    def save_account(self, account: Account, at: datetime) -> None: ...

    def account_snapshot(self) -> tuple[Account, datetime] | None: ...


class SyncState(TradeRecords, RiskState, Protocol):
    """What a portfolio sync writes: trade records, and the realized P/L the daily loss
    limit reads."""


class LeasedState(SyncState, AccountLock, Protocol):
    """The state table as the scheduled sync needs it: records plus the account lease."""


class Notifier(Protocol):
    """Tells the trader what happened. Failures are logged by the caller, never raised on.

    `event` names what happened (filled, stopped_out, rejected, failed, drift,
    flow_highlight, daily_summary, ...) so a router can pick the channels; callers that
    pass only (subject, message) send an "info" event (`services/notify.deliver` calls
    older channels without it)."""

    def notify(self, subject: str, message: str, *, event: str = "info") -> None: ...


# --- market data (issue 11) ----------------------------------------------------------------


class MarketDataUnavailable(Exception):
    """The source could not answer (down, timed out, not entitled, unknown symbol). The
    decision goes on without its slot; the message says why, without secrets."""


class MarketDataRateLimited(MarketDataUnavailable):
    """The source refused for too many requests (HTTP 429): retry later, slower."""


class MarketData(Protocol):
    """Where bars and prices come from: alpaca | ibkr | tradingview | files | replay.

    `timeframe` is Alpaca's spelling: "1Min", "5Min", "15Min", "1Hour", "1Day". Times are
    UTC; `start` inclusive, `end` exclusive; bars oldest first. Sources that have no tape
    return [] from `trades`.
    """

    name: str

    def bars(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> list[Bar]: ...

    def latest_price(self, symbol: str) -> float | None:
        """The last trade (or the last bar's close where the source has no trades)."""
        ...

    def latest_quote(self, symbol: str) -> Quote | None: ...

    def trades(self, symbol: str, start: datetime, end: datetime) -> list[MarketTrade]: ...


class RuntimeSettings(Protocol):
    """Settings changed at run time (`PUT /api/settings`), stored so every Lambda agrees."""

    def read(self) -> tuple[dict[str, str], int, list[dict[str, Any]]]:
        """(values, version, recent changes newest first)."""
        ...

    def write(self, changed: dict[str, str], *, version: int, at: datetime, by: str) -> int:
        """Apply `changed` if the settings are still at `version`; the new version."""
        ...


# --- day type (issue 11) ---------------------------------------------------------------


class DayClassifications(Protocol):
    """The stored day classification with its features (services/classify_day.py writes it,
    `GET /api/day-type` reads it). Saving one also sets `RiskState.day_type(day)`, which the
    gate reads when the decision's context has no day."""

    def save_day_classification(self, classification: DayClassification) -> None:
        """Store (or replace) the classification of `classification.day`."""
        ...

    def day_classification(self, day: date) -> DayClassification | None:
        """The day's stored classification; a day type set by `set_day_type` alone comes
        back with no features and the reason saying so; None if never classified."""
        ...


class DayTypeState(RiskState, DayClassifications, Protocol):
    """The state the day-type service needs: where it stores the classification."""


# --- price poll and replay (issue 11) -----------------------------------------------------


class PollMarks(Protocol):
    """How far the price poll has fed each symbol's bars to the simulated broker, so no bar
    is fed twice (a second pass over an old low would fill an order placed after it)."""

    def fed_until(self, symbol: str) -> datetime | None:
        """The end of the last bar fed for `symbol`, or None before the first."""
        ...

    def set_fed_until(self, symbol: str, at: datetime) -> None:
        """Move the mark forward to `at` (an older `at` leaves it alone)."""
        ...


# --- flow (issue 12) -----------------------------------------------------------------------


class FlowUnavailable(Exception):
    """The flow vendor could not answer in time (down, rate-limited, timed out, a body that
    is not its documented shape). The decision goes on without flow; the message says why,
    without secrets."""


class FlowSource(Protocol):
    """Options flow and dark-pool prints (Unusual Whales). Every call returns within
    `timeout_s` seconds (retries and rate-limit waits included) or raises `FlowUnavailable`.
    Times are UTC; lists as the vendor orders them (newest first)."""

    name: str
    timeout_s: float

    def flow_alerts(
        self,
        symbols: tuple[str, ...] = (),
        *,
        newer_than: datetime | None = None,
        min_premium: float | None = None,
        is_sweep: bool | None = None,
        side: str | None = None,
        option_type: str | None = None,
        limit: int = 100,
    ) -> list[FlowPrint]:
        """Flow alerts for `symbols` (all tickers when empty); `side` "ask" | "bid",
        `option_type` "call" | "put" filter at the vendor."""
        ...

    def net_prem_ticks(self, symbol: str, day: date | None = None) -> list[NetPremTick]:
        """Per-minute net call/put premium for the trading day (default: the current one)."""
        ...

    def darkpool(
        self,
        symbol: str,
        *,
        day: date | None = None,
        newer_than: datetime | None = None,
        limit: int = 500,
    ) -> list[DarkPoolPrint]: ...

    def market_tide(self, day: date | None = None) -> list[MarketTide]: ...


class SharedRateLimit(Protocol):
    """A request budget shared by every Lambda (the state table): `try_acquire` takes one
    request of the current minute's `limit`; `block_until` makes every caller wait (the
    vendor said so: a 429's Retry-After, an exhausted per-minute budget)."""

    def try_acquire(self, now_s: float, limit: int) -> bool: ...

    def block_until(self, until_s: float) -> None: ...

    def blocked_until(self) -> float | None: ...


class ResponseCache(Protocol):
    """Vendor answers shared by concurrent Lambdas for a few seconds (the state table)."""

    def get(self, key: str, now_s: float) -> bytes | None: ...

    def put(self, key: str, body: bytes, now_s: float, ttl_s: float) -> None: ...


class FlowHighlights(Protocol):
    """The scanner's highlights and the user's watchlist (the state table)."""

    def record_once(self, highlight: FlowHighlight, seen_at: datetime) -> bool:
        """Store the highlight unless its key is known; True when it was new."""
        ...

    def recent(self, since: datetime, until: datetime, limit: int = 100) -> list[FlowHighlight]:
        """Highlights of prints from `since` (on the UTC days up to `until`), newest first."""
        ...

    def watchlist(self) -> tuple[str, ...] | None:
        """The stored watchlist, or None when none was ever stored."""
        ...

    def set_watchlist(self, symbols: tuple[str, ...], at: datetime) -> None: ...


# --- score (issue 12) ----------------------------------------------------------------------


# --- dashboard and actions (issue 13) -----------------------------------------------------


class RecentAlerts(Protocol):
    """The alerts a trading day received, newest first (the dashboard's live setups)."""

    def recent(self, day: date, limit: int) -> list[dict[str, Any]]:
        """At most `limit` alerts received on UTC day `day`, newest first, each as `get`."""
        ...


class DashboardSessions(Protocol):
    """Dashboard login sessions, keyed by a hash of the session id (never the id itself)."""

    def save_session(
        self, key: str, *, csrf: str, token_tag: str, expires_at: datetime
    ) -> None: ...

    def load_session(self, key: str) -> dict[str, Any] | None:
        """{"csrf", "token_tag", "expires_at"} or None when there is no such session."""
        ...

    def delete_session(self, key: str) -> None: ...


class ScoreUnavailable(Exception):
    """The model gave no usable score; the deterministic formula scores instead.

    `reason` is a short code the journal and `Score.fallback_reason` carry: `timeout`,
    `rate_limited`, `error`, `refusal`, `malformed`, `cost_cap` or `no_key`. `answer` is what
    the model said (refusal text, unparseable JSON) and `cost_usd` what it cost anyway.
    """

    def __init__(
        self, reason: str, detail: str = "", *, answer: str | None = None, cost_usd: float = 0.0
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.answer = answer
        self.cost_usd = cost_usd


class Scorer(Protocol):
    """A model that scores a setup from a prompt (chat messages) with a strict JSON schema.

    `score` returns a `ModelAnswer` whose fields passed the schema, or raises
    `ScoreUnavailable`; it never waits longer than its own hard timeout.
    """

    model: str

    def max_cost_usd(self, messages: list[dict[str, str]]) -> float:
        """The most this prompt can cost: its tokens (estimated high) at the input price plus
        the output-token cap at the output price (USD). The budget reserves this first."""
        ...

    def score(self, messages: list[dict[str, str]]) -> ModelAnswer: ...


class ScoreBudget(Protocol):
    """The daily model spend (USD), shared by every Lambda (the state table live).

    `reserve` is the one atomic write: it adds `amount_usd` to the day's spend only when the
    result stays within `cap_usd`, so concurrent scorers can never overspend the cap.
    """

    def reserve(self, day: date, amount_usd: float, cap_usd: float) -> bool: ...

    def settle(self, day: date, delta_usd: float) -> None:
        """Correct a reservation by what the call really cost (delta may be negative)."""
        ...

    def spent_usd(self, day: date) -> float: ...


class NoteWriter(Protocol):
    """A model that writes a short text (the pre-market note) under the same deadline."""

    model: str

    def max_write_cost_usd(self, messages: list[dict[str, str]], max_output_tokens: int) -> float:
        """The most this prompt can cost (USD), reserved against the daily budget first."""
        ...

    def write(self, messages: list[dict[str, str]], max_output_tokens: int) -> tuple[str, float]:
        """The text and what it cost (USD); raises `ScoreUnavailable` like `Scorer.score`."""
        ...


class NoteStore(Protocol):
    """Where the pre-market notes are kept for the dashboard (the state table live)."""

    def save_note(self, note: MarketNote) -> None: ...

    def latest_note(self) -> MarketNote | None: ...


# --- reports and alert channels (issue 13) -------------------------------------------------


class AlertThrottle(Protocol):
    """The alert router's shared memory (state table; adapters/dynamodb_alerting): Lambdas
    run concurrently, so de-duplication and the burst counter must be atomic in storage."""

    def first_time(self, key: str, now: datetime, ttl: timedelta) -> bool:
        """True once per `key` within `ttl` (a conditional put); False for a repeat."""
        ...

    def count(self, event: str, window_start: datetime, ttl: timedelta) -> int:
        """Count one more `event` in the window starting at `window_start`; the new count."""
        ...

    def add_to_digest(self, event: str, window_start: datetime, line: str) -> None:
        """Hold back one message of a burst: counted (and its line kept) for the digest."""
        ...

    def take_digests(self, before: datetime) -> list[tuple[str, datetime, int, list[str]]]:
        """Digests of windows that started before `before`: (event, window_start, held back,
        lines), each handed out once however many callers ask at once."""
        ...


class ReportSink(Protocol):
    """Where report files go: S3 (`reports_bucket`) or a local directory (`./reports/`)."""

    def put(self, name: str, body: bytes, content_type: str) -> None: ...

    def get(self, name: str) -> bytes | None:
        """The file's bytes, or None when it was never written."""
        ...


class Subscriptions(Protocol):
    """Who hears the SNS topic: phone numbers (SMS) and email addresses."""

    def subscribe(self, protocol: str, endpoint: str, events: list[str] | None) -> str:
        """Add (or update) the subscriber; its subscription ARN (`pending confirmation` for
        an email until the link in SNS's mail is followed). `events` limits what it hears."""
        ...

    def unsubscribe(self, protocol: str, endpoint: str) -> int:
        """Remove every confirmed subscription of the endpoint; how many went."""
        ...


# --- the whole state table ---------------------------------------------------------------


class StateStore(RiskState, TradeRecords, AccountLock, DayClassifications, Protocol):
    """The state table: the gate's risk state, journal, orders, positions, account lease,
    the day's classification."""


# --- tradestation (issue 14) -----------------------------------------------------------------


class RefreshTokenStore(Protocol):
    """Where an OAuth refresh token is kept (Secrets Manager when deployed).

    TradeStation can rotate the refresh token on every grant; the new one must be saved
    before it is relied on, or the next cold start cannot sign in.
    """

    def load(self) -> str:
        """The current refresh token ("" when none is stored)."""
        ...

    def save(self, refresh_token: str) -> None:
        """Keep a rotated refresh token in place of the old one."""
        ...
