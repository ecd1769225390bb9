"""Every setting flowtrader reads, in one pydantic-settings class (env prefix FLOWTRADER_).

Nothing reads `os.environ` at import time: `load_settings()` is called by the composition
root the first time a setting is needed, and the result is cached there.
"""

from __future__ import annotations

import ipaddress
from functools import cached_property

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# TradingView sends webhooks only from these addresses (TradingView support docs).
TRADINGVIEW_IPS = ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWTRADER_", extra="ignore", frozen=True)

    stage: str = Field("local", description="Deployment stage: local, dev or prod.")
    webhook_passphrase: SecretStr = Field(
        SecretStr(""), description="Shared secret every alert must carry in `passphrase`."
    )
    api_token: SecretStr = Field(
        SecretStr(""), description="Bearer token for the /api/* read endpoints."
    )
    allowed_ips: str = Field(
        "",
        description="Comma-separated IPs/CIDRs allowed to post alerts; empty allows any.",
    )
    max_body_bytes: int = Field(16 * 1024, description="Largest webhook body accepted.")
    duplicate_window_s: int = Field(
        60, description="An alert without `time` repeats an identical one within this window."
    )
    dedupe_ttl_days: int = Field(7, description="How long idempotency keys are remembered.")
    # --- alert freshness --- (rules/alert_age.py; services/ingest_alert.py answers 422)
    max_alert_age_s: int = Field(
        300,
        ge=0,
        description="Refuse alerts older than this: by `timenow`, else `time` plus the bar's "
        "`interval` (seconds; 0: off).",
    )
    alert_clock_skew_s: int = Field(
        10, ge=0, description="How far in the future `time`/`timenow` may be (seconds)."
    )

    alerts_table: str = Field("flowtrader-alerts", description="DynamoDB table of alerts.")
    state_table: str = Field(
        "flowtrader-state", description="DynamoDB table of cooldowns, risk, orders, positions."
    )
    queue_url: str = Field("", description="SQS queue the worker consumes alerts from.")
    topic_arn: str = Field("", description="SNS topic for notifications.")
    reports_bucket: str = Field("", description="S3 bucket for PnL CSVs and reports.")

    # --- broker --- (adapters/alpaca.py, adapters/paper_broker.py; built in bootstrap.broker)
    broker: str = Field(
        "paper", description="Which broker places orders: paper, alpaca, ibkr or tradestation."
    )
    alpaca_paper: bool = Field(
        True, description="Alpaca paper account (true) or live money (false)."
    )
    alpaca_api_key: SecretStr = Field(
        SecretStr(""), description="Alpaca key id; empty reads it from secrets_arn."
    )
    alpaca_secret_key: SecretStr = Field(
        SecretStr(""), description="Alpaca secret key; empty reads it from secrets_arn."
    )
    alpaca_base_url: str = Field(
        "", description="Override of Alpaca's trading URL (tests point it at a local fake)."
    )
    alpaca_timeout_s: float = Field(5.0, description="Per-request timeout towards Alpaca.")
    alpaca_submit_attempts: int = Field(
        1,
        description="POSTs per adapter call (1: the worker's own retry, after a lookup by "
        "client order id, is the one retry layer: at most 2 POSTs per receive).",
    )
    secrets_arn: str = Field(
        "",
        description="Secrets Manager secret (JSON: ALPACA_API_KEY, ALPACA_SECRET_KEY) "
        "read on first use when the keys are not in the environment.",
    )
    paper_slippage_bps: float = Field(
        5.0, description="Paper broker: market/stop fills this many bps worse than the price."
    )
    paper_starting_cash: float = Field(
        100_000.0, description="Paper broker: cash of a fresh account (USD)."
    )
    # --- notifications --- (adapters/sns.py, services/notify.py; bootstrap.notifier)
    notify_sms_chars: int = Field(
        160, description="Longest SMS text; longer first lines are cut with an ellipsis."
    )

    # --- risk and sizing --- (rules/gate.py, rules/orders.py; services/process_alert.py)
    # A limit of 0 turns its check off.
    kill_switch: bool = Field(False, description="Place no orders at all (closes included).")
    market_hours_only: bool | None = Field(
        None,
        description="Only trade in the NYSE regular session; unset: off for stage local, "
        "on everywhere else (see `enforce_market_hours`).",
    )
    max_trades_per_hour: int = Field(
        3, description="Opening orders per rolling 60 minutes, per account (0: off)."
    )
    cooldown_per_symbol: int = Field(
        0, description="Opening orders per rolling 60 minutes in one symbol (0: off)."
    )
    max_daily_loss_usd: float = Field(
        1_000.0, description="No new positions once today's P/L reaches −this (USD; 0: off)."
    )
    max_open_positions: int = Field(5, description="Symbols held at once (0: off).")
    max_position_notional_usd: float = Field(
        10_000.0, description="Largest position in one symbol (USD; caps sizing too; 0: off)."
    )
    max_gross_exposure_usd: float = Field(
        50_000.0, description="Sum of |position notional| over all symbols (USD; 0: off)."
    )
    pdt_guard: bool = Field(
        True, description="Under $25k equity, no new position after 3 day trades in 5 days."
    )
    sizing_mode: str = Field(
        "fixed_qty",
        pattern="^(fixed_qty|notional|risk_pct)$",
        description="fixed_qty, notional or risk_pct (when the alert has no qty).",
    )
    use_alert_quantity: bool = Field(
        True, description="An alert's `quantity` wins over sizing_mode (still capped)."
    )
    default_qty: float = Field(1.0, description="Shares per order in fixed_qty mode.")
    default_notional_usd: float = Field(1_000.0, description="USD per order in notional mode.")
    risk_per_trade_pct: float = Field(
        1.0, description="risk_pct mode: % of equity lost if the stop is hit (1.0 = 1 %)."
    )
    default_stop_pct: float = Field(
        2.0, description="Stop this % from entry when the alert has none (0: no stop)."
    )
    default_target_pct: float = Field(
        4.0, description="Target this % from entry when the alert has none (0: no target)."
    )
    stop_atr_multiple: float = Field(
        0.0, description="Default stop this many ATRs away when an ATR is known (0: use %)."
    )
    target_atr_multiple: float = Field(
        0.0, description="Default target this many ATRs away when an ATR is known (0: use %)."
    )

    # --- market data, settings switch, day type (issue 11) ---
    # (its fields go below, above the next section)
    context_deadline_s: float = Field(
        1.5,
        gt=0,
        le=10,
        description="How long the worker waits for market data, day type and flow together "
        "before deciding without the late ones (each gap is journaled).",
    )
    # day type and volume: rules/day_type.py, rules/volume.py, services/classify_day.py
    day_type_at: str = Field(
        "10:00",
        pattern=r"^([01]?\d|2[0-3]):[0-5]\d$",
        description="New York time (HH:MM) the scheduled classify_day classifies the session at.",
    )
    day_type_symbol: str = Field(
        "SPY",
        min_length=1,
        max_length=24,
        description="Reference symbol whose bars classify the day (trend/choppy/no_trade).",
    )
    choppy_size_scale: float = Field(
        0.5,
        ge=0,
        le=1,
        description="On a choppy day, entries flowtrader sizes get this share of their size.",
    )
    choppy_min_score: float = Field(
        0.0,
        ge=0,
        le=100,
        description="On a choppy day, entries need at least this score (0..100; 0: no raise).",
    )
    volume_confirm_k: float = Field(
        1.5,
        gt=0,
        description="Breakout bar volume must be ≥ k × the usual volume for its time of day.",
    )
    require_volume_confirmation: bool = Field(
        False,
        description="Deny entries whose breakout volume does not confirm (else journal only).",
    )
    # market data sources (adapters/*_market_data.py, tradingview_bars.py, replay.py;
    # bootstrap.Container.market_data)
    data_source: str = Field(
        "tradingview",
        pattern="^(alpaca|ibkr|tradingview|files|replay)$",
        description="Where bars and prices come from by default: alpaca, ibkr, tradingview "
        "(the OHLCV alerts carry), files (FLOWTRADER_DATA_FILE) or replay.",
    )
    alpaca_data_feed: str = Field(
        "iex",
        pattern="^(iex|sip)$",
        description="Alpaca market-data feed: iex (free plans) or sip (all exchanges; paid).",
    )
    alpaca_data_url: str = Field(
        "", description="Override of Alpaca's market-data URL (tests point it at a local fake)."
    )
    data_file: str = Field(
        "", description="CSV/Parquet bar file the `files` source reads (the backtest's shapes)."
    )
    data_symbol: str = Field(
        "",
        description="Symbol of the bars in data_file/replay_file; empty: the file name's part "
        "before the first `_` (AMZN_1min.csv is AMZN), or its symbol column.",
    )

    # --- price poll and replay (issue 11) ---
    # (its fields go below, above the next section)
    replay_file: str = Field(
        "",
        description="Bar file a market replay plays (data_source replay); `make run` "
        "defaults to the shipped AMZN sample.",
    )
    replay_speed: float = Field(
        60.0, gt=0, description="Replay: market seconds per wall-clock second (60: 1 min/s)."
    )
    price_poll_s: float = Field(
        5.0,
        gt=0,
        description="Local stack: seconds between price polls feeding the paper broker "
        "(AWS polls every minute in the session).",
    )

    # --- flow (issue 12) ---
    # (its fields go below, above the next section)
    # adapters/unusual_whales.py, rules/flow.py, services/flow.py, services/flow_scan.py
    unusual_whales_api_key: SecretStr = Field(
        SecretStr(""),
        description="Unusual Whales API token (bearer); empty reads it from secrets_arn, and "
        "with none flow is off (decisions go on without it and say so).",
    )
    uw_base_url: str = Field(
        "https://api.unusualwhales.com",
        description="Unusual Whales API address (tests point it at a local fake).",
    )
    uw_requests_per_minute: int = Field(
        120,
        ge=0,
        description="Your Unusual Whales plan's requests per minute, shared by every Lambda "
        "through the state table (0: no client-side limit).",
    )
    uw_timeout_s: float = Field(
        1.2,
        gt=0,
        description="Longest an alert's flow lookup may take, retries and rate-limit waits "
        "included (seconds; keep it under FLOWTRADER_CONTEXT_DEADLINE_S); past it the "
        "decision goes on without flow.",
    )
    uw_scan_timeout_s: float = Field(
        8.0, gt=0, description="The same budget for each call of the flow scanner (seconds)."
    )
    flow_scan_budget_s: float = Field(
        20.0,
        gt=0,
        description="A flow scan starts no vendor call after this long (seconds; under the "
        "scan Lambda's 30 s timeout).",
    )
    uw_attempts: int = Field(
        3, ge=1, description="Tries per Unusual Whales call on 429, 5xx or no answer."
    )
    uw_cache_ttl_s: float = Field(
        20.0,
        ge=0,
        description="How long Unusual Whales answers are shared between Lambdas through the "
        "state table (seconds; 0: no cache).",
    )
    flow_window_minutes: int = Field(
        30, ge=1, description="Options and dark-pool flow this many minutes before an alert."
    )
    flow_min_imbalance: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Flow is bullish/bearish when (bullish − bearish) / (bullish + bearish) "
        "premium is at least this far from 0 (0.2: a 60/40 split), else neutral.",
    )
    require_flow_agreement: bool = Field(
        False,
        description="Refuse entries whose options flow points the other way (missing or "
        "neutral flow never refuses).",
    )
    watchlist: str = Field(
        "",
        description="Comma-separated tickers whose flow highlights are notified; "
        "PUT /api/watchlist replaces it.",
    )
    flow_scan_lookback_minutes: int = Field(
        10, ge=1, description="Each flow scan reads the flow alerts of this many minutes."
    )
    flow_sweep_min_premium_usd: float = Field(
        250_000.0, ge=0, description="A sweep is a highlight from this premium (USD)."
    )
    flow_repeat_min_alerts: int = Field(
        3,
        ge=2,
        description="Repeated hits: this many flow alerts on one contract within a scan.",
    )
    flow_repeat_min_premium_usd: float = Field(
        100_000.0, ge=0, description="... summing to at least this premium (USD)."
    )
    flow_darkpool_size_multiple: float = Field(
        10.0,
        gt=0,
        description="A dark-pool print is a highlight at this many times the day's average "
        "print size (watchlist tickers)...",
    )
    flow_darkpool_min_premium_usd: float = Field(
        1_000_000.0, ge=0, description="... and at least this notional (USD)."
    )

    # --- score, notes and ranking (issue 12) ---
    # (its fields go below, above the next section)
    # (rules/score.py, adapters/openai_scorer.py, services/scoring.py, premarket_note.py)
    openai_api_key: SecretStr = Field(
        SecretStr(""),
        description="OpenAI API key for the GPT scorer and the pre-market note; empty: the "
        "deterministic score and note (reads it from secrets_arn when set there).",
    )
    openai_base_url: str = Field(
        "", description="Override of OpenAI's API URL (a proxy; tests point it at a local fake)."
    )
    score_model: str = Field("gpt-4o-mini", description="The OpenAI model that scores setups.")
    score_timeout_s: float = Field(
        4.0, gt=0, description="Hard deadline of one model call (seconds); then deterministic."
    )
    score_max_output_tokens: int = Field(
        300, gt=0, description="Cap on the model's answer (tokens) for a score."
    )
    score_daily_cost_cap_usd: float = Field(
        1.0,
        ge=0,
        description="Model spend per UTC day (USD, tracked in the state table); once reached, "
        "scores and notes are deterministic (0: never call the model).",
    )
    openai_prices: str = Field(
        '{"gpt-4o-mini": [0.15, 0.60]}',
        description="JSON: model → [USD per 1M input tokens, per 1M output tokens]; an "
        "unpriced model is never called (the cap needs its price).",
    )
    min_score: float = Field(
        0.0,
        ge=0,
        le=100,
        description="Deny entries whose setup score (GPT or deterministic) is below this "
        "(0-100; 0: off). Closes are never denied.",
    )
    rank_model_file: str = Field(
        "",
        description="A model.json from `python -m backtest rank-train`: alerts that arrive "
        "together (one queue batch) are ranked by its P(winner) for the cooldown's slots; "
        "empty: by their setup score.",
    )
    rank_window_s: int = Field(
        0,
        ge=0,
        le=300,
        description="The queue's batching window (seconds, read when the app is packaged): "
        "alerts arriving within it reach the worker as one batch and compete by rank; 0: "
        "no wait (a batch is what is waiting when the worker polls).",
    )
    note_symbols: str = Field(
        "SPY,QQQ", description="Comma-separated symbols the pre-market note covers."
    )
    note_max_output_tokens: int = Field(
        400, gt=0, description="Cap on the pre-market note's length (tokens)."
    )

    # --- dashboard and actions (issue 13) ---
    # (its fields go below, above the next section)
    dashboard_session_hours: float = Field(
        12.0, gt=0, le=168, description="How long a dashboard login lasts (hours)."
    )
    dashboard_refresh_s: int = Field(
        5, ge=2, le=300, description="How often the dashboard refreshes its panels (seconds)."
    )

    # --- reports and alert channels (issue 13) ---
    # (its fields go below, above the next section)
    # (services/alerting.py, adapters/twilio_voice.py, libnotify.py, espeak.py;
    #  services/daily_report.py, adapters/s3_reports.py, google_sheets.py)
    alert_routes: str = Field(
        "",
        description="Which channels hear which event, JSON merged over the defaults, e.g. "
        '{"rejected": ["log"], "filled": ["log", "sns", "speech"]}. Events: placed, filled, '
        "closed, partially_filled, stopped_out, rejected, failed, drift, flow_highlight, "
        'daily_summary, info, "*" (the rest); channels: log, sns, voice, desktop, speech.',
    )
    alert_quiet_hours: str = Field(
        "", description="New York time span with only quiet_allow channels, e.g. 22:00-07:00."
    )
    alert_quiet_allow: str = Field(
        "log", description="Comma-separated channels that still deliver in quiet hours."
    )
    alert_quiet_bypass: str = Field(
        "failed", description="Comma-separated events that ignore quiet hours."
    )
    alert_dedupe_s: int = Field(
        300, ge=0, description="The same event and text within this many seconds goes out once."
    )
    alert_burst_limit: int = Field(
        3,
        ge=0,
        description="Messages of one event per burst window; the rest go out as one digest "
        "(0: no limit).",
    )
    alert_burst_window_s: int = Field(
        300, ge=1, description="The burst window (seconds) of alert_burst_limit."
    )
    twilio_account_sid: str = Field("", description="Twilio account SID (AC…) for voice calls.")
    twilio_auth_token: SecretStr = Field(
        SecretStr(""), description="Twilio auth token; empty reads it from secrets_arn."
    )
    twilio_from_number: str = Field("", description="Twilio number calls come from (E.164).")
    twilio_to_numbers: str = Field(
        "", description="Comma-separated E.164 numbers the voice channel calls."
    )
    twilio_base_url: str = Field(
        "", description="Override of https://api.twilio.com (tests point it at a local fake)."
    )
    twilio_timeout_s: float = Field(5.0, description="Per-request timeout towards Twilio.")
    desktop_alerts: bool | None = Field(
        None,
        description="Desktop pop-ups via notify-send; unset: on when the binary exists, "
        "stage local and not in Lambda.",
    )
    spoken_alerts: bool | None = Field(
        None,
        description="Spoken alerts via espeak-ng; unset: on when the binary exists, stage "
        "local and not in Lambda.",
    )
    reports_dir: str = Field(
        "reports", description="Where daily reports go when reports_bucket is empty."
    )
    google_sheets_id: str = Field(
        "", description="Spreadsheet id the journal is appended to (empty: no Sheets export)."
    )
    google_service_account_secret: str = Field(
        "",
        description="Secrets Manager secret holding the Google service-account JSON key.",
    )
    google_sheets_base_url: str = Field(
        "", description="Override of https://sheets.googleapis.com (tests: a local fake)."
    )

    # --- ibkr (issue 14) ---
    # (its fields go below, above the next section)
    # (adapters/ibkr/; docs/brokers/ibkr.md) OAuth material from IBKR's Self Service portal.
    ibkr_account_id: str = Field("", description="IBKR account id orders clear to (U… or DU…).")
    ibkr_paper: bool = Field(
        True,
        description="IBKR paper account (true) or live (false); must match the consumer key's "
        "login (checked against /iserver/accounts).",
    )
    ibkr_base_url: str = Field(
        "https://api.ibkr.com/v1/api/",
        description="Client Portal Web API base URL (tests point it at a local fake).",
    )
    ibkr_consumer_key: SecretStr = Field(
        SecretStr(""), description="IBKR OAuth consumer key (9 characters)."
    )
    ibkr_access_token: SecretStr = Field(SecretStr(""), description="IBKR OAuth access token.")
    ibkr_access_token_secret: SecretStr = Field(
        SecretStr(""), description="IBKR OAuth access token secret (base64, as issued)."
    )
    ibkr_dh_prime: str = Field(
        "", description="Diffie-Hellman prime (hex) from the consumer's dhparam.pem."
    )
    ibkr_encryption_key_path: str = Field(
        "", description="Path of the private encryption key PEM (or use the _pem setting)."
    )
    ibkr_signature_key_path: str = Field(
        "", description="Path of the private signature key PEM (or use the _pem setting)."
    )
    ibkr_encryption_key_pem: SecretStr = Field(
        SecretStr(""), description="Private encryption key PEM text (from the secret)."
    )
    ibkr_signature_key_pem: SecretStr = Field(
        SecretStr(""), description="Private signature key PEM text (from the secret)."
    )
    ibkr_secret_id: str = Field(
        "",
        description="Secrets Manager secret with the IBKR_* OAuth values, read when they are "
        "not set (besides secrets_arn, whose keys fill these settings too).",
    )
    ibkr_realm: str = Field(
        "limited_poa", description="OAuth realm: limited_poa (test_realm for TESTCONS)."
    )
    ibkr_compete: bool = Field(
        True,
        description="ssodh/init may disconnect another brokerage session of the same username.",
    )
    ibkr_timeout_s: float = Field(10.0, description="Per-request timeout towards IBKR.")
    ibkr_confirm_message_ids: str = Field(
        "o10151,o10152,o10153,o10331,o403",
        description="IBKR order-question message ids answered yes; any other question "
        "rejects the order.",
    )
    ibkr_conid_ttl_s: float = Field(
        86_400.0, description="How long a symbol's IBKR contract id is cached (seconds)."
    )
    ibkr_cancel_settle_s: float = Field(
        2.0, description="How long a cancel waits for IBKR to report it cancelled (seconds)."
    )

    # --- tradestation (issue 14) ---
    # (its fields go below, above the next section)
    tradestation_account_id: str = Field(
        "", description="TradeStation account to trade (a SIM account with the simulator)."
    )
    tradestation_sim: bool = Field(
        True, description="TradeStation simulator (true) or live money (false)."
    )
    tradestation_client_id: str = Field("", description="TradeStation API key (OAuth client id).")
    tradestation_client_secret: SecretStr = Field(
        SecretStr(""), description="TradeStation API secret; empty reads it from secrets_arn."
    )
    tradestation_refresh_token: SecretStr = Field(
        SecretStr(""),
        description="TradeStation refresh token when no secret holds it (a rotated token "
        "is then lost on restart).",
    )
    tradestation_refresh_token_secret: str = Field(
        "",
        description="Secret (JSON key tradestation_refresh_token) the refresh token is read "
        "from and rotated into; empty uses secrets_arn.",
    )
    tradestation_base_url: str = Field(
        "", description="Override of TradeStation's v3 URL (tests point it at a local fake)."
    )
    tradestation_token_url: str = Field(
        "https://signin.tradestation.com/oauth/token",
        description="TradeStation's OAuth token endpoint.",
    )
    tradestation_timeout_s: float = Field(
        5.0, description="Per-request timeout towards TradeStation."
    )

    @property
    def enforce_market_hours(self) -> bool:
        """`market_hours_only` as set, else on in every stage but the local paper stack."""
        if self.market_hours_only is not None:
            return self.market_hours_only
        return self.stage != "local"

    @cached_property
    def allowed_networks(
        self,
    ) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        parts = [p.strip() for p in self.allowed_ips.split(",") if p.strip()]
        return tuple(ipaddress.ip_network(p, strict=False) for p in parts)


def load_settings() -> Settings:
    settings = Settings()
    # --- deploy/secrets --- a deployed stage keeps its keys in one JSON secret
    # (FLOWTRADER_SECRETS_ARN, infra/template.yaml); one GetSecretValue per cold start.
    if settings.secrets_arn:
        from chalicelib.adapters.secrets import overlay_secrets

        return overlay_secrets(settings)
    return settings
