"""The backtest configuration: TOML sections validated into the live path's typed limits.

`load_config(path, overrides)` merges the TOML file and each `--set section.key=value` into
one pydantic model per section (`BacktestConfig`), so a typo or a bad value is refused with
a message naming the key, never silently run. `[risk]` becomes the live gate's
`chalicelib.rules.gate.RiskLimits` (`config.risk_limits()`), `[sizing]` and `[exits]` the live
decision's `chalicelib.rules.orders.OrderRules` (`config.order_rules()`); what only the
backtest knows (stop reference, trailing stops, ATR period, session exits…) stays typed in
its section.

**Percents are percents** (2 = 2 %), as in the webhook's `stop_loss_pct` and the
`FLOWTRADER_*_PCT` settings: `sizing.risk_pct`, `exits.stop_loss_pct`,
`exits.take_profit_pct`, `exits.trail_pct`. Before, the backtest read them as fractions
(0.02 = 2 %) and refused anything ≥ 1, so a value ≥ 1 (or 0) can only be a percent, but one
strictly between 0 and 1 may be an old fraction. Such a value is accepted only from a source
that says it writes percents: a config file with `units = "percent"` at its top (before any
table), or a `--set` list that includes `--set units=percent`. Otherwise the run stops:
"exits.stop_loss_pct is a percent: 0.02 means 0.02 %, write 2 for 2 % …". Cost-model
parameters keep their own units (bps, USD, `rate` as a fraction; see `backtest.costs`).
"""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chalicelib.rules.gate import RiskLimits
from chalicelib.rules.orders import OrderRules
from chalicelib.rules.sizing import SizingMode


class ConfigError(ValueError):
    """The configuration cannot describe a backtest; the message says which key and why."""


UNITS = "percent"
# (section, key) of every percent; a value in (0, 1) needs the `units = "percent"` marker.
PERCENT_KEYS = (
    ("sizing", "risk_pct"),
    ("exits", "stop_loss_pct"),
    ("exits", "take_profit_pct"),
    ("exits", "trail_pct"),
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class AccountConfig(_Section):
    cash: float = Field(100_000.0, gt=0)  # USD
    leverage: float = Field(1.0, gt=0)  # buying power = equity × leverage


class DataConfig(_Section):
    tz: str = "America/New_York"
    symbol: str = ""


class StrategyConfig(_Section):
    name: str = "sma_cross"
    params: dict[str, Any] = Field(default_factory=dict)
    allow_short: bool = True
    alerts: str = ""  # alerts.jsonl or a TradingView trade list, relative to the config file


class SizingConfig(_Section):
    """Sizing for entries without an alert quantity (→ `OrderRules`)."""

    mode: Literal["fixed_qty", "notional", "risk_pct"] = "fixed_qty"
    qty: int = Field(100, ge=0)  # shares, fixed_qty
    notional_usd: float = Field(0.0, ge=0)  # USD per entry, notional
    risk_pct: float = Field(0.0, ge=0, le=100)  # % of equity lost at the stop, risk_pct
    max_position_notional_usd: float = Field(0.0, ge=0)  # caps every entry (0: no cap)


class ExitsConfig(_Section):
    """Default protection (→ `OrderRules`) plus the backtest's own exit knobs."""

    stop_loss_pct: float = Field(0.0, ge=0, lt=100)  # % from the reference (0: no stop)
    take_profit_pct: float = Field(0.0, ge=0, lt=100)  # % from the reference (0: no target)
    stop_ref: Literal["signal_close", "fill"] = "signal_close"
    trail_pct: float = Field(0.0, ge=0, lt=100)  # trailing stop % below the best close
    trail_atr_mult: float = Field(0.0, ge=0)
    atr_stop_mult: float = Field(0.0, ge=0)  # > 0: stop this many ATRs away instead
    atr_target_mult: float = Field(0.0, ge=0)
    atr_period: int = Field(14, ge=1)
    exit_at_session_close: bool = False
    close_at_end: bool = True
    round_to_tick: bool = False


class CostsConfig(_Section):
    """Cost-model tables; their keys are checked by `backtest.costs` when built."""

    commission: dict[str, Any] = Field(default_factory=lambda: {"model": "percent", "rate": 0.0})
    slippage: dict[str, Any] = Field(default_factory=lambda: {"model": "bps", "bps": 0.0})


class FillConfig(_Section):
    entry: Literal["next_open", "close"] = "next_open"


class RiskConfig(_Section):
    """The live gate's limits (→ `RiskLimits`); 0 turns a limit off."""

    max_trades_per_hour: int = Field(0, ge=0)
    cooldown_per_symbol: int = Field(0, ge=0)
    cooldown_minutes: int = Field(60, ge=1)
    max_daily_loss_usd: float = Field(0.0, ge=0)
    max_open_positions: int = Field(0, ge=0)
    max_position_notional_usd: float = Field(0.0, ge=0)
    max_gross_exposure_usd: float = Field(0.0, ge=0)
    market_hours_only: bool = False
    pdt_guard: bool = False
    kill_switch: bool = False


class DayTypeConfig(_Section):
    """The live day-type and volume checks on entries (backtest/daytype.py)."""

    gate: bool = False  # no_trade denies entries, choppy scales them (as FLOWTRADER_*)
    at: str = Field("10:00", pattern=r"^([01]?\d|2[0-3]):[0-5]\d$")  # New York
    choppy_size_scale: float = Field(0.5, ge=0, le=1)
    volume_confirm: bool = False  # entries need breakout volume ≥ volume_k × usual
    volume_k: float = Field(1.5, gt=0)


class ReportConfig(_Section):
    html: bool = True
    progress: Literal["auto", "on", "off"] = "auto"


SECTIONS: dict[str, type[_Section]] = {
    "account": AccountConfig,
    "data": DataConfig,
    "strategy": StrategyConfig,
    "sizing": SizingConfig,
    "exits": ExitsConfig,
    "costs": CostsConfig,
    "fill": FillConfig,
    "risk": RiskConfig,
    "daytype": DayTypeConfig,
    "report": ReportConfig,
}
# Dict-valued keys take a whole table; `--set section.key.sub=value` sets one entry of it.
_TABLE_KEYS = {("strategy", "params"), ("costs", "commission"), ("costs", "slippage")}


class BacktestConfig(BaseModel):
    """The merged, validated configuration, plus where relative paths resolve from."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    units: Literal["percent"] = UNITS
    account: AccountConfig = Field(default_factory=AccountConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    sizing: SizingConfig = Field(default_factory=SizingConfig)
    exits: ExitsConfig = Field(default_factory=ExitsConfig)
    costs: CostsConfig = Field(default_factory=CostsConfig)
    fill: FillConfig = Field(default_factory=FillConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    daytype: DayTypeConfig = Field(default_factory=DayTypeConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> BacktestConfig:
        sizing, exits = self.sizing, self.exits
        if sizing.mode == "fixed_qty" and sizing.qty <= 0:
            raise ValueError("sizing.qty must be positive for fixed_qty sizing")
        if sizing.mode == "notional" and sizing.notional_usd <= 0:
            raise ValueError("sizing.notional_usd must be positive for notional sizing")
        if sizing.mode == "risk_pct":
            if sizing.risk_pct <= 0:
                raise ValueError("sizing.risk_pct (% of equity, 1 = 1 %) must be > 0")
            if exits.stop_loss_pct <= 0 and exits.atr_stop_mult <= 0:
                raise ValueError(
                    "risk_pct sizing needs a stop: set exits.stop_loss_pct or atr_stop_mult"
                )
        if not self.strategy.alerts and not self.strategy.name:
            raise ValueError("set strategy.name or strategy.alerts")
        return self

    def risk_limits(self) -> RiskLimits:
        """`[risk]` as the live gate's limits."""
        risk = self.risk
        return RiskLimits(
            kill_switch=risk.kill_switch,
            market_hours_only=risk.market_hours_only,
            max_trades_per_hour=risk.max_trades_per_hour,
            cooldown_per_symbol=risk.cooldown_per_symbol,
            cooldown_window=timedelta(minutes=risk.cooldown_minutes),
            max_daily_loss_usd=risk.max_daily_loss_usd,
            max_open_positions=risk.max_open_positions,
            max_position_notional_usd=risk.max_position_notional_usd,
            max_gross_exposure_usd=risk.max_gross_exposure_usd,
            pdt_guard=risk.pdt_guard,
            require_volume_confirmation=self.daytype.volume_confirm,
        )

    def order_rules(self) -> OrderRules:
        """`[sizing]` and `[exits]` as the live decision's rules (percents as percents)."""
        sizing, exits = self.sizing, self.exits
        return OrderRules(
            sizing_mode=SizingMode(sizing.mode),
            default_qty=float(sizing.qty),
            default_notional_usd=sizing.notional_usd,
            risk_per_trade_pct=sizing.risk_pct,
            use_alert_quantity=True,
            default_stop_pct=exits.stop_loss_pct,
            default_target_pct=exits.take_profit_pct,
            stop_atr_multiple=exits.atr_stop_mult,
            target_atr_multiple=exits.atr_target_mult,
            max_position_notional_usd=sizing.max_position_notional_usd,
            choppy_size_scale=self.daytype.choppy_size_scale if self.daytype.gate else 1.0,
        )

    def as_dict(self) -> dict[str, Any]:
        """The resolved configuration, JSON-ready (summary.json's `config`)."""
        return self.model_dump(mode="json")


Config = BacktestConfig  # the name the engine and the tests use


def defaults() -> dict[str, dict[str, Any]]:
    """Every section's defaults as plain dicts."""
    return {name: model().model_dump() for name, model in SECTIONS.items()}


def _parse_value(raw: str) -> Any:
    """A `--set` value as TOML (numbers, booleans, strings, inline tables), else a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


class _Merge:
    """Defaults, then each source's values, remembering which source set each key."""

    def __init__(self) -> None:
        self.sections = defaults()
        self.origin: dict[tuple[str, str], str] = {}
        self.units: dict[str, Any] = {}  # source → the `units` it declared

    def source(self, origin: str, values: dict[str, Any]) -> None:
        for section, table in values.items():
            if section == "units":
                self.units[origin] = table
                continue
            if section not in self.sections:
                known = ", ".join(["units", *SECTIONS])
                raise ConfigError(f"{origin}: unknown section [{section}] (known: {known})")
            if not isinstance(table, dict):
                raise ConfigError(f"{origin}: [{section}] must be a table")
            for key, value in table.items():
                self.set(origin, section, key, value)

    def set(self, origin: str, section: str, key: str, value: Any) -> None:
        current = self.sections[section]
        if key == "units":
            raise ConfigError(
                f'{origin}: {section}.units: write units = "percent" at the top of the file, '
                "before the first [section]"
            )
        if key not in current:
            known = ", ".join(sorted(current))
            raise ConfigError(f"{origin}: unknown key {section}.{key} (known: {known})")
        if (section, key) in _TABLE_KEYS:
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: {section}.{key} must be a table")
            if key != "params" and "model" not in value:
                value = {**current[key], **value}  # a partial cost table updates the model's
            current[key] = dict(value)
        else:
            current[key] = value
        self.origin[(section, key)] = origin

    def check_units(self, marked: dict[str, bool], hint: dict[str, str]) -> None:
        """Refuse a percent in (0, 1) from a source that did not declare `units = "percent"`."""
        for origin, units in self.units.items():
            if units != UNITS:
                raise ConfigError(
                    f'{origin}: units must be "percent" (percents are percents: 2 = 2 %); '
                    f"got {units!r}. Fractions are no longer read: multiply them by 100"
                )
        for section, key in PERCENT_KEYS:
            origin = self.origin.get((section, key))
            value = self.sections[section][key]
            if origin is None or marked.get(origin, False):
                continue
            if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1:
                as_percent = f"{round(value * 100, 9):g}"
                raise ConfigError(
                    f"{origin}: {section}.{key} is a percent: {value:g} means {value:g} %, "
                    f"write {as_percent} for {as_percent} %. The backtest used to read it as a "
                    f"fraction, so a value below 1 needs {hint[origin]} to confirm it is a "
                    "percent"
                )


def _set_origin(path: str) -> str:
    return f"--set {path}"


def _split_override(assignment: str) -> tuple[list[str], Any]:
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected section.key=value")
    path, raw = assignment.split("=", 1)
    parts = [p.strip() for p in path.strip().split(".")]
    if not all(parts):
        raise ConfigError(f"--set {assignment!r}: expected section.key=value")
    return parts, _parse_value(raw.strip())


def _apply_override(merge: _Merge, assignment: str) -> str:
    """Apply one `section.key=value` (also `costs.commission.rate=0.002`, `units=percent`)."""
    parts, value = _split_override(assignment)
    origin = _set_origin(".".join(parts))
    if parts == ["units"]:
        merge.units[origin] = value
        return origin
    if len(parts) == 3 and (parts[0], parts[1]) in _TABLE_KEYS:
        section, key, sub = parts
        merge.set(origin, section, key, {**merge.sections[section][key], sub: value})
        return origin
    if len(parts) != 2:
        raise ConfigError(f"--set {assignment!r}: expected section.key=value")
    merge.source(origin, {parts[0]: {parts[1]: value}})
    return origin


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc


def _describe(error: dict[str, Any]) -> str:
    """One pydantic error as "section.key must …, got …"."""
    loc = [str(part) for part in error["loc"]]
    name = ".".join(loc)
    value = error.get("input")
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "bool_type":
        return f"{name} must be true or false, got {value!r}"
    if kind == "int_type":
        return f"{name} must be a whole number, got {value!r}"
    if kind == "float_type":
        return f"{name} must be a number, got {value!r}"
    if kind in ("string_type", "literal_error"):
        if "expected" in ctx:
            choices = ctx["expected"].replace("'", "").replace(" or ", ", ")
            return f"{name} must be one of {choices}; got {value!r}"
        return f"{name} must be a string, got {value!r}"
    if kind == "dict_type":
        return f"{name} must be a table, got {value!r}"
    bounds = {
        "greater_than": ">",
        "greater_than_equal": ">=",
        "less_than": "<",
        "less_than_equal": "<=",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()))
        unit = " (a percent: 2 = 2 %)" if tuple(loc) in PERCENT_KEYS else ""
        return f"{name}{unit} must be {bounds[kind]} {limit:g}, got {value!r}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return f"{name}: {error['msg']}"


def load_config(path: Path | None, overrides: list[str] | tuple[str, ...] = ()) -> BacktestConfig:
    """Defaults, then the TOML file, then each `--set` in order; validated."""
    merge = _Merge()
    marked: dict[str, bool] = {}
    hint: dict[str, str] = {}
    base_dir = Path.cwd()
    if path is not None:
        data = _read_toml(Path(path))
        merge.source(str(path), data)
        marked[str(path)] = data.get("units") == UNITS
        hint[str(path)] = f'units = "percent" at the top of {path}'
        base_dir = Path(path).resolve().parent
    set_origins = [_apply_override(merge, assignment) for assignment in overrides]
    set_marked = merge.units.get(_set_origin("units")) == UNITS
    for origin in set_origins:
        marked[origin] = set_marked
        hint[origin] = "--set units=percent"
    merge.check_units(marked, hint)
    try:
        config = BacktestConfig.model_validate({**merge.sections, "base_dir": base_dir})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(str(part) for part in first["loc"])
        origin = merge.origin.get(loc[:2]) if len(loc) >= 2 else None
        message = _describe(first)
        raise ConfigError(f"{origin}: {message}" if origin else message) from None
    # cost models are checked when they are built (backtest.costs)
    from backtest.costs import commission_params, slippage_params

    commission_params(config.costs.commission)
    slippage_params(config.costs.slippage)
    return config


__all__ = [
    "PERCENT_KEYS",
    "SECTIONS",
    "UNITS",
    "BacktestConfig",
    "Config",
    "ConfigError",
    "defaults",
    "load_config",
]
