"""Hand-computed commission and slippage for every model (the engine's own formulas)."""

from __future__ import annotations

import pytest

from backtest.config import ConfigError, load_config
from backtest.costs import CostModelError, commission_usd, fill_price


def test_percent_commission_is_a_share_of_the_fill_value():
    table = {"model": "percent", "rate": 0.001}
    assert commission_usd(table, 100, 50.0, is_sell=False) == pytest.approx(5.0)
    assert commission_usd(table, 100, 50.0, is_sell=True) == pytest.approx(5.0)


def test_per_share_commission_with_minimum_and_maximum():
    table = {"model": "per_share", "rate": 0.005, "min": 1.0, "max": 0.01}
    assert commission_usd(table, 1000, 50.0, is_sell=False) == pytest.approx(5.0)
    assert commission_usd(table, 100, 50.0, is_sell=False) == pytest.approx(1.0)  # the minimum
    # 10 000 × 0.005 = 50, above 1 % of 10 000 × 0.20 = 20: capped at 20
    assert commission_usd(table, 10_000, 0.20, is_sell=False) == pytest.approx(20.0)
    no_floor = {"model": "per_share", "rate": 0.005}
    assert commission_usd(no_floor, 10, 50.0, is_sell=False) == pytest.approx(0.05)


def test_per_order_commission_is_flat():
    table = {"model": "per_order", "fee": 4.95}
    assert commission_usd(table, 1, 10.0, is_sell=False) == 4.95
    assert commission_usd(table, 10_000, 500.0, is_sell=True) == 4.95


def test_alpaca_charges_sec_fee_and_taf_on_sells_only_rounded_up_to_the_cent():
    table = {"model": "alpaca"}
    assert commission_usd(table, 100, 50.0, is_sell=False) == 0.0
    # SEC: 5 000 × 27.80e-6 = 0.139 → 0.14; TAF: 100 × 0.000166 = 0.0166 → 0.02
    assert commission_usd(table, 100, 50.0, is_sell=True) == pytest.approx(0.16)
    # TAF capped at 8.30: 100 000 shares × 0.000166 = 16.60 → 8.30; SEC 1 000 000 × … = 27.80
    assert commission_usd(table, 100_000, 10.0, is_sell=True) == pytest.approx(27.80 + 8.30)


def test_alpaca_rates_are_configurable():
    table = {"model": "alpaca", "sec_rate": 0.0, "taf_per_share": 0.0002, "taf_max": 10}
    assert commission_usd(table, 1000, 20.0, is_sell=True) == pytest.approx(0.20)


def test_bps_slippage_is_worse_for_the_taker_both_ways():
    table = {"model": "bps", "bps": 5}
    assert fill_price(table, 100.0, 10, 1000, +1) == pytest.approx(100.05)
    assert fill_price(table, 100.0, 10, 1000, -1) == pytest.approx(99.95)


def test_cents_slippage_is_an_amount_per_share():
    table = {"model": "cents", "per_share": 0.02}
    assert fill_price(table, 50.0, 10, 1000, +1) == pytest.approx(50.02)
    assert fill_price(table, 50.0, 10, 1000, -1) == pytest.approx(49.98)


def test_spread_slippage_pays_half_the_spread():
    table = {"model": "spread", "bps": 10}
    assert fill_price(table, 100.0, 10, 1000, +1) == pytest.approx(100.05)
    assert fill_price(table, 100.0, 10, 1000, -1) == pytest.approx(99.95)


def test_volume_slippage_grows_with_the_square_root_of_participation():
    table = {"model": "volume", "impact": 0.1}
    # 100 of 10 000 shares: 0.1 × sqrt(0.01) = 1 %
    assert fill_price(table, 100.0, 100, 10_000, +1) == pytest.approx(101.0)
    assert fill_price(table, 100.0, 400, 10_000, -1) == pytest.approx(98.0)
    assert fill_price(table, 100.0, 100, 0, +1) == pytest.approx(110.0)  # no volume: all of it


def test_no_costs_models():
    assert commission_usd({"model": "none"}, 100, 10.0, is_sell=True) == 0.0
    assert fill_price({"model": "none"}, 10.0, 100, 10, +1) == 10.0


@pytest.mark.parametrize(
    "table",
    [
        {"model": "flat"},
        {"model": "percent", "rate": -0.001},
        {"model": "percent", "rate": 0.2},
        {"model": "per_share", "rate": 0.005, "cap": 1},
        {"rate": 0.001},
    ],
)
def test_bad_commission_tables_are_refused(table):
    with pytest.raises(CostModelError):
        commission_usd(table, 1, 1.0, is_sell=False)


def test_bad_cost_config_is_a_config_error():
    with pytest.raises((ConfigError, CostModelError)):
        load_config(None, ["costs.slippage={ model = 'bps', spread = 3 }"])
