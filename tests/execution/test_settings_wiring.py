"""Risk and sizing settings reach the gate and the order rules as configured."""

from __future__ import annotations

from chalicelib.bootstrap import order_rules, risk_limits
from chalicelib.rules.checks import Cooldown, KillSwitch, MarketHours
from chalicelib.rules.gate import Gate
from chalicelib.rules.sizing import SizingMode
from chalicelib.settings import Settings


def test_market_hours_are_enforced_everywhere_but_the_local_stack_unless_set():
    assert Settings(stage="local").enforce_market_hours is False
    assert Settings(stage="prod").enforce_market_hours is True
    assert Settings(stage="prod", market_hours_only=False).enforce_market_hours is False
    assert Settings(stage="local", market_hours_only=True).enforce_market_hours is True


def test_market_hours_only_reads_the_documented_env_var(monkeypatch):
    monkeypatch.setenv("FLOWTRADER_STAGE", "dev")
    monkeypatch.setenv("FLOWTRADER_MARKET_HOURS_ONLY", "false")
    assert Settings().enforce_market_hours is False


def test_settings_become_the_gates_checks_and_the_order_rules():
    settings = Settings(
        stage="prod",
        kill_switch=True,
        max_trades_per_hour=5,
        cooldown_per_symbol=2,
        sizing_mode="risk_pct",
        risk_per_trade_pct=0.5,
    )
    checks = {type(c): c for c in Gate.from_limits(risk_limits(settings)).checks}
    assert checks[KillSwitch].engaged_by_setting is True
    assert checks[MarketHours].enabled is True
    assert (checks[Cooldown].max_trades, checks[Cooldown].per_symbol) == (5, 2)
    rules = order_rules(settings)
    assert rules.sizing_mode is SizingMode.RISK_PCT
    assert rules.risk_per_trade_pct == 0.5
    assert rules.max_position_notional_usd == settings.max_position_notional_usd
