"""Loading bars in the accepted shapes, and the configuration's defaults and overrides."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from backtest.config import ConfigError, defaults, load_config
from backtest.data import DataError, load_bars
from chalicelib.rules.gate import RiskLimits
from chalicelib.rules.orders import OrderRules
from chalicelib.rules.sizing import SizingMode


def frame(n: int = 4) -> pd.DataFrame:
    index = pd.date_range("2024-03-08 15:58", periods=n, freq="1min")
    return pd.DataFrame(
        {"Open": 10.0, "High": 11.0, "Low": 9.0, "Close": 10.5, "Volume": 100.0}, index=index
    )


def test_backtesting_py_style_csv_with_an_unnamed_date_index(tmp_path):
    path = tmp_path / "goog.csv"
    frame().to_csv(path)
    bars = load_bars(path)
    assert bars.symbol == "GOOG"
    assert len(bars) == 4
    assert str(bars.time.tz) == "America/New_York"
    assert bars.time[0].hour == 15


def test_parquet_with_timestamp_column_and_utc_times(tmp_path):
    data = frame().reset_index(names="Timestamp")
    data["Timestamp"] = data["Timestamp"].dt.tz_localize("UTC")
    path = tmp_path / "bars.parquet"
    data.to_parquet(path)
    bars = load_bars(path, symbol="XYZ")
    assert bars.symbol == "XYZ"
    assert bars.time[0].tz_convert("UTC").hour == 15
    assert bars.time[0].hour == 10  # 15:58 UTC is 10:58 in New York (EST in early March)


def test_sessions_split_on_the_exchange_date(tmp_path):
    data = frame(3)
    data.index = pd.DatetimeIndex(["2024-01-02 15:59", "2024-01-03 09:30", "2024-01-03 09:31"])
    path = tmp_path / "bars.csv"
    data.to_csv(path)
    bars = load_bars(path)
    assert list(bars.session_last) == [True, False, True]
    assert not bars.daily


def test_daily_bars_are_detected(tmp_path):
    data = frame(3)
    data.index = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04"])
    path = tmp_path / "d.csv"
    data.to_csv(path)
    assert load_bars(path).daily


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_bars(tmp_path / "nope.csv")


def test_defaults_and_file_and_overrides_merge(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[strategy]\nname = "sma_cross"\nparams = { fast = 5, slow = 8 }\n'
        '[costs]\ncommission = { model = "per_order", fee = 1 }\n'
    )
    config = load_config(path, ["exits.stop_loss_pct=2", "strategy.params.fast=3"])
    assert config.strategy.params == {"fast": 3, "slow": 8}
    assert config.costs.commission == {"model": "per_order", "fee": 1}
    assert config.exits.stop_loss_pct == 2
    assert config.account.cash == defaults()["account"]["cash"]
    assert config.base_dir == tmp_path


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("nosection.key=1", "unknown section"),
        ("exits.stop_loss_pct=100", "exits.stop_loss_pct \\(a percent: 2 = 2 %\\) must be < 100"),
        ("exits.trail_pct=-1", "must be >= 0"),
        ("sizing.risk_pct=101", "must be <= 100"),
        ("exits.stop_loss_pct='x'", "must be a number"),
        ("sizing.qty=1.5", "must be a whole number"),
        ("exits.stop_pct=1", "unknown key exits.stop_pct"),
        ("fill.entry='next_bar'", "must be one of"),
        ("sizing.mode='risk_pct'", "risk_pct"),
        ("strategy.allow_short=1", "true or false"),
        ("exits", "section.key=value"),
    ],
)
def test_bad_config_values_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_epoch_timestamps_in_seconds_or_milliseconds(tmp_path):
    for scale in (1, 1000):
        path = tmp_path / f"epoch{scale}.csv"
        path.write_text(
            "time,open,high,low,close,volume\n"
            f"{1704205800 * scale},10,11,9,10.5,100\n{1704205860 * scale},10,11,9,10.5,100\n"
        )
        bars = load_bars(path)
        assert bars.time[0].isoformat() == "2024-01-02T09:30:00-05:00"


def test_parquet_with_an_unnamed_datetime_index(tmp_path):
    path = tmp_path / "bars.parquet"
    frame().to_parquet(path)
    assert len(load_bars(path)) == 4


def test_csv_writer_quotes_only_when_it_must(tmp_path):
    from backtest.report import write_csv

    path = tmp_path / "t.csv"
    write_csv(pd.DataFrame({"symbol": ["A"], "pnl": [1.0000000001]}), path)
    assert path.read_text() == "symbol,pnl\nA,1\n"
    write_csv(pd.DataFrame({"symbol": ["A,B"], "pnl": [2.5]}), path)
    assert path.read_text().splitlines()[1] == '"A,B",2.5'


ISSUE_SAMPLE = """
[account]
cash = 100000
[strategy]
name = "sma_cross"
params = { fast = 10, slow = 30 }
allow_short = true
[sizing]
mode = "fixed_qty"
qty = 100
[exits]
stop_loss_pct = 1
take_profit_pct = 2
stop_ref = "signal_close"
trail_pct = 0
atr_stop_mult = 0
atr_target_mult = 0
atr_period = 14
exit_at_session_close = false
[costs]
commission = { model = "percent", rate = 0.001 }
slippage = { model = "bps", bps = 0 }
[fill]
entry = "next_open"
[risk]
max_trades_per_hour = 0
"""


def test_the_configuration_in_the_issue_loads_as_written(tmp_path):
    path = tmp_path / "issue.toml"
    path.write_text(ISSUE_SAMPLE)
    config = load_config(path)
    assert config.exits.take_profit_pct == 2
    assert config.costs.commission == {"model": "percent", "rate": 0.001}


# --- percents are percents; old fractions are caught where they can be -------------------

OLD_UNIT = """
[sizing]
mode = "risk_pct"
risk_pct = 0.005
[exits]
stop_loss_pct = 0.02
"""


def test_an_unmarked_file_with_a_percent_below_1_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "old.toml"
    path.write_text(OLD_UNIT)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: sizing.risk_pct is a percent: 0.005 means 0.005 %")
    assert "write 0.5 for 0.5 %" in message
    assert f'units = "percent" at the top of {path}' in message


def test_the_units_marker_confirms_a_file_s_percents_below_1(tmp_path):
    path = tmp_path / "new.toml"
    path.write_text('units = "percent"\n' + OLD_UNIT)
    config = load_config(path)
    assert config.sizing.risk_pct == 0.005
    assert config.exits.stop_loss_pct == 0.02
    assert config.order_rules().default_stop_pct == 0.02


def test_values_of_1_or_more_need_no_marker_the_old_unit_refused_them(tmp_path):
    path = tmp_path / "plain.toml"
    path.write_text("[exits]\nstop_loss_pct = 2\ntake_profit_pct = 0\n")
    assert load_config(path).exits.stop_loss_pct == 2


def test_a_set_override_below_1_needs_its_own_units_marker(tmp_path):
    path = tmp_path / "new.toml"
    path.write_text('units = "percent"\n[exits]\nstop_loss_pct = 0.5\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, ["exits.stop_loss_pct=0.02"])
    message = str(caught.value)
    assert message.startswith("--set exits.stop_loss_pct: exits.stop_loss_pct is a percent:")
    assert "0.02 means 0.02 %, write 2 for 2 %" in message
    assert "--set units=percent" in message
    config = load_config(path, ["exits.stop_loss_pct=0.02", "units=percent"])
    assert config.exits.stop_loss_pct == 0.02
    assert load_config(path, ["exits.stop_loss_pct=2"]).exits.stop_loss_pct == 2


def test_a_set_marker_does_not_vouch_for_the_file(tmp_path):
    path = tmp_path / "old.toml"
    path.write_text(OLD_UNIT)
    with pytest.raises(ConfigError, match=r"sizing\.risk_pct is a percent"):
        load_config(path, ["units=percent"])


def test_units_other_than_percent_are_refused(tmp_path):
    path = tmp_path / "frac.toml"
    path.write_text('units = "fraction"\n[exits]\nstop_loss_pct = 0.02\n')
    with pytest.raises(ConfigError, match='units must be "percent"'):
        load_config(path)


def test_units_inside_a_section_says_where_it_belongs(tmp_path):
    path = tmp_path / "late.toml"
    path.write_text('[exits]\nunits = "percent"\nstop_loss_pct = 0.5\n')
    with pytest.raises(ConfigError, match="at the top of the file"):
        load_config(path)


def test_every_shipped_config_loads_and_is_marked():
    from pathlib import Path

    for path in sorted((Path(__file__).parents[2] / "backtest" / "data").glob("*.toml")):
        assert load_config(path).units == "percent"
        assert 'units = "percent"' in path.read_text()


def test_sections_validate_into_the_live_limits_and_order_rules():
    config = load_config(
        None,
        [
            "units=percent",
            "sizing.mode='risk_pct'",
            "sizing.risk_pct=0.5",
            "sizing.max_position_notional_usd=20000",
            "exits.stop_loss_pct=2",
            "exits.take_profit_pct=4",
            "exits.atr_stop_mult=1.5",
            "exits.atr_target_mult=3",
            "risk.max_trades_per_hour=2",
            "risk.cooldown_minutes=30",
            "risk.max_daily_loss_usd=500",
            "risk.market_hours_only=true",
        ],
    )
    assert config.order_rules() == OrderRules(
        sizing_mode=SizingMode.RISK_PCT,
        default_qty=100.0,
        default_notional_usd=0.0,
        risk_per_trade_pct=0.5,
        use_alert_quantity=True,
        default_stop_pct=2.0,
        default_target_pct=4.0,
        stop_atr_multiple=1.5,
        target_atr_multiple=3.0,
        max_position_notional_usd=20_000.0,
    )
    assert config.risk_limits() == RiskLimits(
        kill_switch=False,
        market_hours_only=True,
        max_trades_per_hour=2,
        cooldown_per_symbol=0,
        cooldown_window=timedelta(minutes=30),
        max_daily_loss_usd=500.0,
        max_open_positions=0,
        max_position_notional_usd=0.0,
        max_gross_exposure_usd=0.0,
        pdt_guard=False,
    )


def test_the_resolved_config_says_its_unit():
    assert load_config(None).as_dict()["units"] == "percent"
