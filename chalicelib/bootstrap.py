"""The composition root: the one place that knows which adapter serves which port, and the
one place that turns `Settings` into the limits the rules enforce (`risk_limits`,
`order_rules`) and the worker's pipeline (`Container.execution`).

Adapters (and the boto3/vendor clients inside them) are built lazily, on first use, so a
cold start pays only for what the invoked handler touches.
"""

from __future__ import annotations

import logging
import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable  # flow (issue 12)
    from datetime import datetime

    from chalicelib.domain import (
        Alert,
        DayClassification,
        FlowSummary,  # flow (issue 12)
        MarketSnapshot,
    )
    from chalicelib.ports import (
        AlertQueue,
        AlertStore,
        Broker,
        DashboardSessions,
        FlowHighlights,  # flow (issue 12)
        FlowSource,  # flow (issue 12)
        MarketData,
        Notifier,
        PollMarks,
        RecentAlerts,
        ReportSink,
        RuntimeSettings,
        StateStore,
        Subscriptions,
    )
    from chalicelib.rules.flow_highlights import ScanRules  # flow (issue 12)
    from chalicelib.rules.gate import RiskLimits
    from chalicelib.rules.orders import OrderRules
    from chalicelib.rules.rank_model import RankModel
    from chalicelib.services.alerting import RoutingNotifier
    from chalicelib.services.context import ContextSources
    from chalicelib.services.process_alert import Execution
    from chalicelib.settings import Settings


def risk_limits(settings: Settings) -> RiskLimits:
    """The gate's limits as configured (`FLOWTRADER_*`; the backtest's `[risk]` maps to the
    same type)."""
    from chalicelib.rules.gate import RiskLimits

    return RiskLimits(
        kill_switch=settings.kill_switch,
        market_hours_only=settings.enforce_market_hours,
        max_trades_per_hour=settings.max_trades_per_hour,
        cooldown_per_symbol=settings.cooldown_per_symbol,
        max_daily_loss_usd=settings.max_daily_loss_usd,
        max_open_positions=settings.max_open_positions,
        max_position_notional_usd=settings.max_position_notional_usd,
        max_gross_exposure_usd=settings.max_gross_exposure_usd,
        pdt_guard=settings.pdt_guard,
        choppy_min_score=settings.choppy_min_score,
        require_volume_confirmation=settings.require_volume_confirmation,
        require_flow_agreement=settings.require_flow_agreement,
        min_score=settings.min_score,
    )


def order_rules(settings: Settings) -> OrderRules:
    """Sizing and default exits as configured (the backtest's `[sizing]`/`[exits]` map to the
    same type)."""
    from chalicelib.rules.orders import OrderRules
    from chalicelib.rules.sizing import SizingMode

    return OrderRules(
        sizing_mode=SizingMode(settings.sizing_mode),
        default_qty=settings.default_qty,
        default_notional_usd=settings.default_notional_usd,
        risk_per_trade_pct=settings.risk_per_trade_pct,
        use_alert_quantity=settings.use_alert_quantity,
        default_stop_pct=settings.default_stop_pct,
        default_target_pct=settings.default_target_pct,
        stop_atr_multiple=settings.stop_atr_multiple,
        target_atr_multiple=settings.target_atr_multiple,
        max_position_notional_usd=settings.max_position_notional_usd,
        choppy_size_scale=settings.choppy_size_scale,
    )


log = logging.getLogger(__name__)


class Container:
    """Adapters built from one `Settings`, each on first use."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings

    @cached_property
    def settings(self) -> Settings:
        from chalicelib.settings import load_settings  # pydantic-settings: paid on first use

        return self._settings or load_settings()

    @cached_property
    def boto_session(self) -> Any:
        import boto3

        return boto3.session.Session()

    @cached_property
    def dynamodb_client(self) -> Any:
        """A DynamoDB client for the health probes (each adapter has its own)."""
        return self.boto_session.client("dynamodb")

    @cached_property
    def sqs_client(self) -> Any:
        """An SQS client for the health probes (the queue adapter has its own)."""
        return self.boto_session.client("sqs")

    @cached_property
    def secrets_client(self) -> Any:
        return self.boto_session.client("secretsmanager")

    def read_secret(self, secret_id: str) -> dict[str, Any]:
        """A Secrets Manager secret's JSON (the client is built on the first read)."""
        from chalicelib.adapters.secrets import fetch_secret_json

        return fetch_secret_json(secret_id, self.secrets_client)

    @cached_property
    def alert_store(self) -> AlertStore:
        from chalicelib.adapters.dynamodb_alerts import DynamoAlertStore

        return DynamoAlertStore(self.boto_session.client("dynamodb"), self.settings.alerts_table)

    @cached_property
    def alert_queue(self) -> AlertQueue:
        from chalicelib.adapters.sqs import SqsAlertQueue

        return SqsAlertQueue(self.boto_session.client("sqs"), self.settings.queue_url)

    @cached_property
    def state_store(self) -> StateStore:
        """Risk state, cooldown slots, journal, orders and positions (the state table)."""
        from chalicelib.adapters.dynamodb_state import DynamoStateStore

        return DynamoStateStore(self.boto_session.client("dynamodb"), self.settings.state_table)

    @cached_property
    def notifier(self) -> Notifier:
        """Every channel behind the alert router, which never raises: the log, SNS when
        `topic_arn` is set (SMS/email subscribers of the topic), Twilio voice, desktop
        pop-ups and speech where configured; routes, quiet hours, de-duplication and the
        burst digest from the settings (`routing_notifier`)."""
        return routing_notifier(self)

    @cached_property
    def report_sink(self) -> ReportSink:
        """Daily reports: S3 when `reports_bucket` is set, else the `reports_dir` folder."""
        return build_report_sink(self)

    @cached_property
    def broker(self) -> Broker:
        """The order venue `settings.broker` names: paper (simulated in the state table),
        alpaca (paper or live account by `alpaca_paper`), ibkr (by `ibkr_paper`) or
        tradestation (SIM or live by `tradestation_sim`)."""
        s = self.settings
        if s.broker == "alpaca":
            from chalicelib.adapters.alpaca import AlpacaBroker

            return AlpacaBroker.from_settings(s, read_secret=self.read_secret)
        if s.broker == "ibkr":
            from chalicelib.adapters.ibkr.broker import IbkrBroker

            return IbkrBroker.from_settings(
                s, self.read_secret, dynamodb_client=self.boto_session.client("dynamodb")
            )
        if s.broker == "tradestation":
            from chalicelib.adapters.tradestation import TradeStationBroker

            return TradeStationBroker.from_settings(
                s, secrets_client=self.secrets_client, recorded_id=self._recorded_broker_id
            )
        if s.broker != "paper":
            raise ValueError(
                f"unknown broker {s.broker!r}; use paper, alpaca, ibkr or tradestation"
            )
        from chalicelib.adapters.paper_broker import PaperBroker

        return PaperBroker(
            self.boto_session.client("dynamodb"),
            s.state_table,
            slippage_bps=s.paper_slippage_bps,
            starting_cash=s.paper_starting_cash,
        )

    def _recorded_broker_id(self, client_order_id: str) -> str | None:
        """The broker's id of an order the state table recorded under our id (TradeStation
        echoes no client order id, so its adapter looks placed orders up through this)."""
        recorded = self.state_store.recorded_order(client_order_id)
        return str(recorded["broker_order_id"]) if recorded else None

    @cached_property
    def runtime_settings(self) -> RuntimeSettings:
        """Settings switched at run time (`PUT /api/settings`), in the state table."""
        from chalicelib.adapters.dynamodb_settings import DynamoRuntimeSettings

        return DynamoRuntimeSettings(
            self.boto_session.client("dynamodb"), self.settings.state_table
        )

    @property
    def runtime_defaults(self) -> dict[str, str]:
        """The deployment's values for the run-time settings (before any switch)."""
        return {"data_source": self.settings.data_source}

    def current_data_source(self) -> str:
        from chalicelib.services.runtime_settings import current

        return current(self.runtime_settings, "data_source", self.runtime_defaults["data_source"])

    def why_unusable(self, name: str, value: str) -> str | None:
        """Why a run-time setting's value cannot work in this deployment (None: it can)."""
        if name != "data_source":
            return None
        build = getattr(self, "market_data", None)
        if build is None:
            return "market data sources are not available in this build"
        try:
            build(value)
        except Exception as exc:  # construction checks keys/files; its message says which
            return f"{type(exc).__name__}: {exc}"
        return None

    @cached_property
    def execution(self) -> Execution:
        """The worker's pipeline: the state table, the broker, the gate and the order rules
        from the settings, the notifier."""
        from chalicelib.rules.gate import Gate
        from chalicelib.services.process_alert import Execution

        return Execution(
            state=self.state_store,
            broker=self.broker,
            gate=Gate.from_limits(risk_limits(self.settings)),
            rules=order_rules(self.settings),
            notifier=self.notifier,
            context=self.context_sources,
        )

    @cached_property
    def rank_model(self) -> RankModel | None:
        """The batch ranking's model (settings.rank_model_file), or None: rank by score. A
        file that does not load is logged and ignored (ranking never stops a decision)."""
        path = self.settings.rank_model_file
        if not path:
            return None
        import json

        from chalicelib.rules.rank_model import RankModel, RankModelError

        try:
            with open(path, encoding="utf-8") as file:
                return RankModel.from_dict(json.load(file))
        except (OSError, ValueError, RankModelError) as exc:
            log.error("rank model %s not used (ranking by score): %s", path, exc)
            return None

    @property
    def context_sources(self) -> ContextSources:
        """Where the decision's context comes from: the market-data source in force (read
        per alert, so `PUT /api/settings` switches it), today's stored day type, the
        options flow and the scorer where configured."""
        from chalicelib.services.classify_day import todays_classification
        from chalicelib.services.context import ContextSources
        from chalicelib.services.market_context import market_snapshot

        s = self.settings

        def market(alert: Alert, now: datetime) -> MarketSnapshot | None:
            source = self.market_data(self.current_data_source())
            return market_snapshot(alert, source, now, volume_k=s.volume_confirm_k)

        def day(alert: Alert, now: datetime) -> DayClassification | None:
            return todays_classification(self.state_store, now)

        return ContextSources(
            market=market,
            day=day,
            flow=flow_for_alerts(self),
            score=score_source(self),
            deadline_s=s.context_deadline_s,
            score_deadline_s=s.score_timeout_s + 1.0,  # the scorer gives up first, falls back
        )

    def market_data(self, name: str | None = None) -> MarketData:
        """The market-data source `name` names (default `settings.data_source`): alpaca,
        ibkr, tradingview, files or replay; each built once, on first use."""
        chosen = name or self.settings.data_source
        with _lock:
            sources: dict[str, MarketData] = self.__dict__.setdefault("_market_data", {})
            if chosen not in sources:
                sources[chosen] = build_market_data(chosen, self)
            return sources[chosen]

    @cached_property
    def poll_marks(self) -> PollMarks:
        """How far the price poll has fed each symbol (the state table)."""
        from chalicelib.adapters.price_poll_marks import DynamoPollMarks

        return DynamoPollMarks(self.dynamodb_client, self.settings.state_table)


_lock = threading.Lock()
_container: Container | None = None


def container() -> Container:
    global _container
    if _container is None:
        with _lock:
            if _container is None:
                _container = Container()
    return _container


def reset(new: Container | None = None) -> None:
    """Drop the cached container (tests, and the local stack after it sets the env)."""
    global _container
    with _lock:
        _container = new


# --- market data, settings switch, day type (issue 11) ---
# (its additions go below, above the next section)

MARKET_DATA_SOURCES = ("alpaca", "ibkr", "tradingview", "files", "replay")


def build_market_data(name: str, c: Container) -> MarketData:
    """One market-data source from the container's settings (see `Container.market_data`)."""
    s = c.settings
    if name == "alpaca":
        from chalicelib.adapters.alpaca_market_data import AlpacaMarketData

        return AlpacaMarketData.from_settings(s, read_secret=c.read_secret)
    if name == "tradingview":
        from chalicelib.adapters.tradingview_bars import TradingViewBars

        return TradingViewBars(c.dynamodb_client, s.state_table)
    if name == "files":
        from chalicelib.adapters.files_market_data import FilesMarketData

        if not s.data_file:
            raise ValueError("the files data source needs FLOWTRADER_DATA_FILE (a CSV/Parquet)")
        return FilesMarketData(s.data_file, s.data_symbol)
    if name == "replay":
        return replay_market_data(s)
    if name == "ibkr":
        try:  # the ibkr adapter (issue 14); a build without it says so
            from chalicelib.adapters.ibkr import ibkr_market_data
        except ImportError as exc:
            raise ValueError(
                "the ibkr data source is not available in this build "
                "(no chalicelib.adapters.ibkr.ibkr_market_data)"
            ) from exc
        return ibkr_market_data(s, c.read_secret)
    raise ValueError(f"unknown data source {name!r}; use one of {', '.join(MARKET_DATA_SOURCES)}")


# --- price poll and replay (issue 11) ---
# (its additions go below, above the next section)


def replay_market_data(settings: Settings) -> MarketData:
    """The replay of `settings.replay_file`, read at the stack's replay clock.

    Only a stack started as a replay has that clock (`FLOWTRADER_CLOCK`, set by the local
    stack for all its processes): a replay against the wall clock would show every bar at
    once, and switching the clock of a running stack would move its time by years, so
    anywhere else (a Lambda, a run-time switch) the replay is refused."""
    from chalicelib import clock
    from chalicelib.adapters.files_market_data import FilesMarketData
    from chalicelib.adapters.replay import ReplayClock, ReplayMarketData

    if not settings.replay_file:
        raise ValueError("the replay data source needs FLOWTRADER_REPLAY_FILE (a bar file)")
    clock.now()  # installs the clock FLOWTRADER_CLOCK names, if any
    if not isinstance(clock.current(), ReplayClock):
        raise ValueError(
            "the replay data source needs the replay clock: start the local stack with "
            "FLOWTRADER_DATA_SOURCE=replay make run"
        )
    return ReplayMarketData(FilesMarketData(settings.replay_file, settings.data_symbol), clock.now)


# --- flow (issue 12) ---
# (its additions go below, above the next section)


def flow_source(c: Container, *, timeout_s: float | None = None) -> FlowSource | None:
    """Unusual Whales when a token is set, else None (flow is off). Its rate limit and
    response cache live in the state table, shared by every Lambda. `timeout_s` overrides
    FLOWTRADER_UW_TIMEOUT_S (the scanner's longer budget); one adapter per budget."""
    s = c.settings
    if not s.unusual_whales_api_key.get_secret_value():
        return None
    budget = s.uw_timeout_s if timeout_s is None else timeout_s
    sources: dict[float, FlowSource] = c.__dict__.setdefault("_flow_sources", {})
    if budget not in sources:
        from chalicelib.adapters.dynamodb_rate_limit import DynamoRateLimit
        from chalicelib.adapters.dynamodb_response_cache import DynamoResponseCache
        from chalicelib.adapters.unusual_whales import NAME, UnusualWhales

        client = c.boto_session.client("dynamodb")
        sources[budget] = UnusualWhales.from_settings(
            s,
            rate_limit=DynamoRateLimit(client, s.state_table, NAME),
            cache=DynamoResponseCache(client, s.state_table, NAME),
            timeout_s=budget,
        )
    return sources[budget]


def flow_for_alerts(c: Container) -> Callable[[Alert, datetime], FlowSummary] | None:
    """The decision's flow slot (`ContextSources.flow`): the alert's ticker over
    FLOWTRADER_FLOW_WINDOW_MINUTES, judged against its entry side; None without a token.
    It raises `FlowUnavailable` within FLOWTRADER_UW_TIMEOUT_S (a gap in the context)."""
    source = flow_source(c)
    if source is None:
        return None
    from chalicelib.services.flow import flow_summary_for

    s = c.settings

    def flow(alert: Alert, now: datetime) -> FlowSummary:
        return flow_summary_for(
            alert.symbol,
            alert.entry_side,
            source,
            now,
            window_minutes=s.flow_window_minutes,
            min_imbalance=s.flow_min_imbalance,
        )

    return flow


def flow_highlights(c: Container) -> FlowHighlights:
    """The scanner's highlights and the watchlist (state table)."""
    store: FlowHighlights | None = c.__dict__.get("_flow_highlights")
    if store is None:
        from chalicelib.adapters.dynamodb_flow_highlights import DynamoFlowHighlights

        store = DynamoFlowHighlights(c.boto_session.client("dynamodb"), c.settings.state_table)
        c.__dict__["_flow_highlights"] = store
    return store


def run_flow_scan(c: Container, *, force: bool = False) -> dict[str, Any]:
    """One pass of the flow scanner as configured: the app's `scan_flow` schedule and the
    local stack's job (`force`: at any hour) both call this."""
    from chalicelib.domain import utc_now
    from chalicelib.services.flow_scan import current_watchlist, scan_flow

    s = c.settings
    store = flow_highlights(c)
    watchlist, _ = current_watchlist(store, s.watchlist)
    return scan_flow(
        flow_source(c, timeout_s=s.uw_scan_timeout_s),
        store,
        c.notifier,
        utc_now(),
        rules=flow_scan_rules(s),
        watchlist=watchlist,
        lookback_minutes=s.flow_scan_lookback_minutes,
        budget_s=s.flow_scan_budget_s,
        force=force,
    )


def flow_scan_rules(settings: Settings) -> ScanRules:
    """The scanner's thresholds as configured."""
    from chalicelib.rules.flow_highlights import ScanRules

    return ScanRules(
        sweep_min_premium_usd=settings.flow_sweep_min_premium_usd,
        repeat_min_alerts=settings.flow_repeat_min_alerts,
        repeat_min_premium_usd=settings.flow_repeat_min_premium_usd,
        darkpool_size_multiple=settings.flow_darkpool_size_multiple,
        darkpool_min_premium_usd=settings.flow_darkpool_min_premium_usd,
    )


# --- score, notes and ranking (issue 12) ---
# (its additions go below, above the next section)

if TYPE_CHECKING:
    from chalicelib.ports import MarketData, NoteStore, ScoreBudget, Scorer


_build_lock = threading.Lock()


def _once(c: Container, name: str, build: Any) -> Any:
    """Build an adapter once per container (the Container's own cached_property, for the
    sections that add to it from below)."""
    cache = c.__dict__.setdefault("_built", {})
    if name not in cache:
        with _build_lock:
            if name not in cache:
                cache[name] = build()
    return cache[name]


def scorer(c: Container) -> Scorer | None:
    """The GPT scorer when an OpenAI key is set (FLOWTRADER_OPENAI_API_KEY or the secret's
    `openai_api_key`), else None: `services.scoring.score_setup` then scores
    deterministically and journals `no_key`."""
    s = c.settings
    key = s.openai_api_key.get_secret_value()
    if not key:
        return None

    def build() -> Scorer:
        from chalicelib.adapters.openai_scorer import OpenAIScorer, parse_prices

        try:
            prices = parse_prices(s.openai_prices)
        except ValueError as exc:  # unpriced: every call falls back with this reason
            import logging

            logging.getLogger(__name__).error("%s: the model will not be called", exc)
            prices = {}
        return OpenAIScorer(
            key,
            model=s.score_model,
            prices=prices,
            timeout_s=s.score_timeout_s,
            max_output_tokens=s.score_max_output_tokens,
            base_url=s.openai_base_url,
        )

    return _once(c, "scorer", build)


def score_budget(c: Container) -> ScoreBudget:
    """The day's model spend in the state table (FLOWTRADER_SCORE_DAILY_COST_CAP_USD)."""

    def build() -> ScoreBudget:
        from chalicelib.adapters.dynamodb_score_budget import DynamoScoreBudget

        return DynamoScoreBudget(c.boto_session.client("dynamodb"), c.settings.state_table)

    return _once(c, "score_budget", build)


def note_store(c: Container) -> NoteStore:
    """Pre-market notes in the state table (GET /api/notes/latest)."""

    def build() -> NoteStore:
        from chalicelib.adapters.dynamodb_notes import DynamoNoteStore

        return DynamoNoteStore(c.boto_session.client("dynamodb"), c.settings.state_table)

    return _once(c, "note_store", build)


def note_market_data(c: Container) -> MarketData | None:
    """The market-data source in force for the note's levels (`Container.market_data` by
    `current_data_source`), or None where there is none or it cannot be built (the note
    then says the levels are missing)."""
    build = getattr(c, "market_data", None)
    if build is None:
        return None
    try:
        return build(c.current_data_source())
    except Exception as exc:  # keys, a missing file: the note goes out without levels
        import logging

        logging.getLogger(__name__).warning("pre-market note: no market data: %s", exc)
        return None


def note_flow_highlights(c: Container) -> list[dict[str, Any]]:
    """The flow scanner's highlights of the last 24 hours for the note, largest premium
    first (the `summary` line is the scanner's headline); none when they cannot be read."""
    from datetime import timedelta

    from chalicelib.domain import utc_now

    now = utc_now()
    try:
        found = flow_highlights(c).recent(now - timedelta(hours=24), now, limit=100)
    except Exception as exc:  # the note goes out without flow rather than not at all
        import logging

        logging.getLogger(__name__).warning("pre-market note: no flow highlights: %s", exc)
        return []
    found = sorted(found, key=lambda h: h.premium_usd, reverse=True)[:10]
    return [
        {
            "summary": h.headline,
            "symbol": h.symbol,
            "kind": h.kind,
            "direction": h.direction,
            "premium_usd": h.premium_usd,
            "at": h.at.isoformat(),
        }
        for h in found
    ]


def score_source(c: Container) -> Any:
    """The worker's score slot (`ContextSources.score`): `(alert, view, now) -> (Score,
    journal record)`, GPT when a key is set, else deterministic. Give the slot a deadline
    above FLOWTRADER_SCORE_TIMEOUT_S (the scorer gives up first and falls back).

    Importing the openai SDK takes seconds on a cold start, longer than the scorer's
    deadline, so it is built on a thread of its own as soon as the slot is made; until it
    is ready alerts are scored deterministically (`fallback_reason` "warming")."""
    from chalicelib.services.scoring import score_setup

    s = c.settings
    if s.openai_api_key.get_secret_value():
        threading.Thread(target=scorer, args=(c,), name="warm-scorer", daemon=True).start()

    def score(alert: Any, view: Any, now: Any) -> Any:
        ready = c.__dict__.get("_built", {}).get("scorer")
        warming = ready is None and bool(s.openai_api_key.get_secret_value())
        return score_setup(
            alert,
            view,
            ready,
            score_budget(c),
            now,
            daily_cap_usd=s.score_daily_cost_cap_usd,
            min_score=s.min_score,
            missing_scorer="warming" if warming else "no_key",
        )

    return score


# --- dashboard and actions (issue 13) ---
# (its additions go below, above the next section)


def dashboard_sessions(c: Container) -> DashboardSessions:
    """Dashboard login sessions in the state table, over the container's DynamoDB client."""
    from chalicelib.adapters.dynamodb_sessions import DynamoSessionStore

    return DynamoSessionStore(c.dynamodb_client, c.settings.state_table)


def recent_alerts_store(c: Container) -> RecentAlerts:
    """The alerts table's `recent` index (the alert store's adapter implements it)."""
    from chalicelib.adapters.dynamodb_alerts import DynamoAlertStore

    store = c.alert_store
    if not isinstance(store, DynamoAlertStore):
        raise TypeError(f"{type(store).__name__} cannot list recent alerts")
    return store


# --- reports and alert channels (issue 13) ---
# (its additions go below, above the next section)


def _in_lambda() -> bool:
    import os

    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def _local_channel(wanted: bool | None, stage: str, found: bool) -> bool:
    """Desktop and speech: never in Lambda; unset means on for the local stack when the
    binary exists."""
    if _in_lambda() or not found:
        return False
    return wanted if wanted is not None else stage == "local"


def alert_channels(c: Container) -> dict[str, Notifier]:
    """The channels the settings configure, by the names the routes use."""
    from chalicelib.services.notify import LogNotifier

    s = c.settings
    channels: dict[str, Notifier] = {"log": LogNotifier()}
    if s.topic_arn:
        from chalicelib.adapters.sns import SnsNotifier

        channels["sns"] = SnsNotifier(
            c.boto_session.client("sns"), s.topic_arn, sms_chars=s.notify_sms_chars
        )
    to_numbers = [n.strip() for n in s.twilio_to_numbers.split(",") if n.strip()]
    token = s.twilio_auth_token.get_secret_value()
    if s.twilio_account_sid and token and s.twilio_from_number and to_numbers:
        from chalicelib.adapters.twilio_voice import TwilioVoiceNotifier

        channels["voice"] = TwilioVoiceNotifier(
            s.twilio_account_sid,
            token,
            s.twilio_from_number,
            to_numbers,
            base_url=s.twilio_base_url,
            timeout_s=s.twilio_timeout_s,
        )
    from chalicelib.adapters import espeak, libnotify

    if _local_channel(s.desktop_alerts, s.stage, libnotify.available()):
        channels["desktop"] = libnotify.DesktopNotifier()
    if _local_channel(s.spoken_alerts, s.stage, espeak.available()):
        channels["speech"] = espeak.SpokenNotifier()
    return channels


def routing_notifier(c: Container) -> RoutingNotifier:
    from datetime import timedelta

    from chalicelib.adapters.dynamodb_alerting import DynamoAlertThrottle
    from chalicelib.services.alerting import RoutingNotifier, parse_quiet_hours, parse_routes

    s = c.settings

    def names(raw: str) -> tuple[str, ...]:
        return tuple(x.strip() for x in raw.split(",") if x.strip())

    return RoutingNotifier(
        channels=alert_channels(c),
        routes=parse_routes(s.alert_routes),
        throttle=DynamoAlertThrottle(c.boto_session.client("dynamodb"), s.state_table),
        quiet=parse_quiet_hours(s.alert_quiet_hours),
        quiet_allow=names(s.alert_quiet_allow),
        quiet_bypass=names(s.alert_quiet_bypass),
        dedupe=timedelta(seconds=s.alert_dedupe_s),
        burst_limit=s.alert_burst_limit,
        burst_window=timedelta(seconds=s.alert_burst_window_s),
    )


def build_report_sink(c: Container) -> ReportSink:
    s = c.settings
    if s.reports_bucket:
        from chalicelib.adapters.s3_reports import S3ReportSink

        return S3ReportSink(c.boto_session.client("s3"), s.reports_bucket)
    from chalicelib.adapters.s3_reports import DirectoryReportSink

    return DirectoryReportSink(s.reports_dir)


def subscriptions(c: Container) -> Subscriptions:
    """The topic's subscribers (`POST/DELETE /api/subscriptions`)."""
    from chalicelib.adapters.sns import SnsSubscriptions

    if not c.settings.topic_arn:
        raise ValueError("no SNS topic configured (FLOWTRADER_TOPIC_ARN)")
    return SnsSubscriptions(c.boto_session.client("sns"), c.settings.topic_arn)


def sheets_journal(c: Container) -> Any:
    """The Google Sheets journal when `google_sheets_id` is set, else None."""
    s = c.settings
    if not s.google_sheets_id:
        return None
    from chalicelib.adapters.google_sheets import SheetsJournal

    return SheetsJournal.from_settings(s, read_secret=c.read_secret)


# --- ibkr (issue 14) ---
# (its additions go below, above the next section)


def uses_ibkr(settings: Settings) -> bool:
    """IBKR is the broker or the market data source: its session must be kept alive."""
    return settings.broker == "ibkr" or getattr(settings, "data_source", "") == "ibkr"


def _switched_to_ibkr(c: Container) -> bool:
    """The data source switched to ibkr at run time (`PUT /api/settings`)."""
    try:
        return c.current_data_source() == "ibkr"
    except Exception:  # the state table unreachable: the deployment's setting decides
        return False


def ibkr_keep_alive(c: Container) -> dict[str, Any]:
    """Tickle the shared IBKR session (app.py's schedule, the local worker's timer);
    nothing when IBKR is not in use."""
    if not (uses_ibkr(c.settings) or _switched_to_ibkr(c)):
        return {"skipped": "ibkr not in use"}
    from chalicelib.adapters.ibkr.session import IbkrError, StateTableLstCache, session_for

    cache = StateTableLstCache(c.boto_session.client("dynamodb"), c.settings.state_table)
    try:
        return session_for(c.settings, c.read_secret, cache=cache).keep_alive()
    except IbkrError as exc:
        return {"error": exc.message}


# --- tradestation (issue 14) ---
# (its additions go below, above the next section)
