"""The backtest configuration: TOML sections with defaults, `--set section.key=value` overrides.

Unknown sections or keys are errors (a typo must not silently run a different backtest).
Percent-like exits (`stop_loss_pct`, `take_profit_pct`, `trail_pct`) are fractions:
0.01 = 1 %.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """The configuration cannot describe a backtest; the message says which key and why."""


DEFAULTS: dict[str, dict[str, Any]] = {
    "account": {"cash": 100_000.0, "leverage": 1.0},
    "data": {"tz": "America/New_York", "symbol": ""},
    "strategy": {"name": "sma_cross", "params": {}, "allow_short": True, "alerts": ""},
    "sizing": {
        "mode": "fixed_qty",
        "qty": 100,
        "notional_usd": 0.0,
        "risk_pct": 0.0,
        "max_position_notional_usd": 0.0,
    },
    "exits": {
        "stop_loss_pct": 0.0,
        "take_profit_pct": 0.0,
        "stop_ref": "signal_close",
        "trail_pct": 0.0,
        "trail_atr_mult": 0.0,
        "atr_stop_mult": 0.0,
        "atr_target_mult": 0.0,
        "atr_period": 14,
        "exit_at_session_close": False,
        "close_at_end": True,
        "round_to_tick": False,
    },
    "costs": {
        "commission": {"model": "percent", "rate": 0.0},
        "slippage": {"model": "bps", "bps": 0.0},
    },
    "fill": {"entry": "next_open"},
    "risk": {
        "max_trades_per_hour": 0,
        "cooldown_per_symbol": 0,
        "cooldown_minutes": 60,
        "max_daily_loss_usd": 0.0,
        "max_open_positions": 0,
        "max_position_notional_usd": 0.0,
        "max_gross_exposure_usd": 0.0,
        "market_hours_only": False,
        "pdt_guard": False,
        "kill_switch": False,
    },
    "report": {"html": True, "progress": "auto"},
}

# Dict-valued keys take a whole table; their own keys are checked by the cost models.
_TABLE_KEYS = {("strategy", "params"), ("costs", "commission"), ("costs", "slippage")}


@dataclass(frozen=True)
class Config:
    """The merged configuration as nested dicts, plus where relative paths resolve from."""

    sections: dict[str, dict[str, Any]]
    base_dir: Path

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.sections[section]

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self.sections)


def _parse_value(raw: str) -> Any:
    """A `--set` value as TOML (numbers, booleans, strings, inline tables), else a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _merge(base: dict[str, dict[str, Any]], update: dict[str, Any], origin: str) -> None:
    for section, values in update.items():
        if section not in base:
            raise ConfigError(f"{origin}: unknown section [{section}]")
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: [{section}] must be a table")
        for key, value in values.items():
            if key not in base[section]:
                known = ", ".join(sorted(base[section]))
                raise ConfigError(f"{origin}: unknown key {section}.{key} (known: {known})")
            default = base[section][key]
            if (section, key) in _TABLE_KEYS:
                if not isinstance(value, dict):
                    raise ConfigError(f"{origin}: {section}.{key} must be a table")
                if key == "params" or "model" in value:
                    base[section][key] = dict(value)
                else:
                    base[section][key] = {**default, **value}
                continue
            base[section][key] = _coerce(section, key, default, value, origin)


def _coerce(section: str, key: str, default: Any, value: Any, origin: str) -> Any:
    name = f"{section}.{key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{origin}: {name} must be true or false, got {value!r}")
        return value
    if isinstance(default, int | float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{origin}: {name} must be a number, got {value!r}")
        if isinstance(default, int) and not isinstance(default, bool):
            if float(value) != int(value):
                raise ConfigError(f"{origin}: {name} must be a whole number, got {value!r}")
            return int(value)
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{origin}: {name} must be a string, got {value!r}")
        return value
    return value


def apply_override(sections: dict[str, dict[str, Any]], assignment: str) -> None:
    """Apply one `section.key=value` (also `costs.commission.rate=0.002`)."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected section.key=value")
    path, raw = assignment.split("=", 1)
    parts = [p.strip() for p in path.strip().split(".")]
    value = _parse_value(raw.strip())
    if len(parts) == 3 and (parts[0], parts[1]) in _TABLE_KEYS:
        section, key, sub = parts
        if section not in sections or key not in sections[section]:
            raise ConfigError(f"--set {assignment!r}: unknown key {section}.{key}")
        sections[section][key] = {**sections[section][key], sub: value}
        return
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set {assignment!r}: expected section.key=value")
    _merge(sections, {parts[0]: {parts[1]: value}}, f"--set {path}")


def load_config(path: Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults, then the TOML file, then each `--set` in order; validated."""
    sections = copy.deepcopy(DEFAULTS)
    base_dir = Path.cwd()
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from exc
        _merge(sections, data, str(path))
        base_dir = Path(path).resolve().parent
    for assignment in overrides:
        apply_override(sections, assignment)
    config = Config(sections, base_dir)
    validate(config)
    return config


def _choice(config: Config, section: str, key: str, choices: tuple[str, ...]) -> None:
    value = config[section][key]
    if value not in choices:
        raise ConfigError(f"{section}.{key} must be one of {', '.join(choices)}; got {value!r}")


def validate(config: Config) -> None:
    _choice(config, "sizing", "mode", ("fixed_qty", "notional", "risk_pct"))
    _choice(config, "exits", "stop_ref", ("signal_close", "fill"))
    _choice(config, "fill", "entry", ("next_open", "close"))
    _choice(config, "report", "progress", ("auto", "on", "off"))
    if config["account"]["cash"] <= 0:
        raise ConfigError("account.cash must be positive")
    if config["account"]["leverage"] <= 0:
        raise ConfigError("account.leverage must be positive")
    exits = config["exits"]
    for key in ("stop_loss_pct", "take_profit_pct", "trail_pct"):
        if not 0 <= exits[key] < 1:
            raise ConfigError(f"exits.{key} is a fraction (0.01 = 1 %); got {exits[key]}")
    for key in ("trail_atr_mult", "atr_stop_mult", "atr_target_mult"):
        if exits[key] < 0:
            raise ConfigError(f"exits.{key} must be >= 0")
    if exits["atr_period"] < 1:
        raise ConfigError("exits.atr_period must be >= 1")
    sizing = config["sizing"]
    mode = sizing["mode"]
    if mode == "fixed_qty" and sizing["qty"] <= 0:
        raise ConfigError("sizing.qty must be positive for fixed_qty sizing")
    if mode == "notional" and sizing["notional_usd"] <= 0:
        raise ConfigError("sizing.notional_usd must be positive for notional sizing")
    if mode == "risk_pct":
        if not 0 < sizing["risk_pct"] < 1:
            raise ConfigError("sizing.risk_pct is a fraction of equity (0.01 = 1 %), > 0")
        if exits["stop_loss_pct"] <= 0 and exits["atr_stop_mult"] <= 0:
            raise ConfigError(
                "risk_pct sizing needs a stop: set exits.stop_loss_pct or atr_stop_mult"
            )
    strategy = config["strategy"]
    if not strategy["alerts"] and not strategy["name"]:
        raise ConfigError("set strategy.name or strategy.alerts")
    # cost models are checked when they are built (backtest.costs)
    from backtest.costs import commission_params, slippage_params

    commission_params(config["costs"]["commission"])
    slippage_params(config["costs"]["slippage"])
