"""Replayed alerts: parsed by the webhook's Alert model, decided by the live decide_orders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backtest import kernel
from backtest.alerts import AlertFileError, alert_signal
from backtest.config import load_config
from backtest.engine import run_backtest
from chalicelib.domain import Account, Alert, Position
from chalicelib.rules.orders import DecisionKind, OrderRules, decide_orders
from tests.backtest.conftest import make_bars

BASE = (100.0, 100.5, 99.5, 100.0)


def replay(tmp_path, lines, *overrides, rows=None):
    path = tmp_path / "alerts.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    bars = make_bars(rows or [BASE] * 6, symbol="AAPL")
    config = load_config(None, [f"strategy.alerts='{path}'", *overrides])
    return run_backtest(bars, config, progress=False)


ALERT_SHAPES = [
    {"action": "buy", "market_position": "long"},
    {"action": "sell", "market_position": "short"},
    {"action": "sell", "market_position": "flat"},
    {"action": "buy", "market_position": "flat"},
    {"action": "buy"},
    {"action": "short"},
    {"action": "sell"},
    {"action": "cover"},
    {"action": "exit"},
]


@pytest.mark.parametrize("shape", ALERT_SHAPES, ids=lambda s: "/".join(s.values()))
@pytest.mark.parametrize("held", [-10, 0, 10])
def test_signal_mapping_agrees_with_the_live_decision_table(shape, held):
    alert = Alert(ticker="AAPL", price=100.0, **shape)
    positions = [Position(symbol="AAPL", qty=held, avg_entry_price=100.0)] if held else []
    account = Account(equity=1e6, cash=1e6, buying_power=1e6)
    decision = decide_orders(alert, "a1", account=account, positions=positions, rules=OrderRules())
    code = int(alert_signal(alert))
    side = int(np.sign(held))
    closes = bool(side) and kernel._closes(code, side)
    opens = kernel._wanted_side(code) != 0 and (side == 0 or closes)
    expected = {
        (False, False): {DecisionKind.NOTHING, DecisionKind.IGNORE},  # nothing placed
        (True, False): {DecisionKind.CLOSE},
        (False, True): {DecisionKind.OPEN},
        (True, True): {DecisionKind.REVERSE},
    }[(closes, opens)]
    assert decision.kind in expected


@pytest.mark.parametrize("prev_size", [None, 10], ids=["contracts-only", "prev-size"])
def test_a_replayed_strategy_flip_opens_the_new_side_not_the_whole_order(tmp_path, prev_size):
    """TradingView's `{{strategy.order.contracts}}` of a flip from long 10 to short 10 is 20
    (https://www.tradingview.com/support/solutions/43000531021): the replay ends short 10."""
    flip = {
        "ticker": "AAPL",
        "action": "sell",
        "market_position": "short",
        "prev_market_position": "long",
        "quantity": 20,
        "time": "2024-01-02T14:32:00Z",
    }
    if prev_size is not None:
        flip["prev_market_position_size"] = prev_size
    lines = [
        {"ticker": "AAPL", "action": "buy", "market_position": "long",
         "prev_market_position": "flat", "quantity": 10, "time": "2024-01-02T14:30:00Z"},
        flip,
    ]  # fmt: skip
    result = replay(tmp_path, lines, "exits.stop_loss_pct=0", "exits.take_profit_pct=0")
    assert list(result.trades.side) == ["long", "short"]
    assert list(result.trades.qty) == [10, 10]


def test_alerts_replay_through_decide_orders_and_the_gate(tmp_path):
    lines = [
        {"ticker": "NASDAQ:AAPL", "action": "buy", "market_position": "long", "quantity": 7,
         "time": "2024-01-02T14:30:30Z", "stop_loss_pct": 1.5, "passphrase": "x"},
        {"ticker": "AAPL", "action": "sell", "market_position": "flat",
         "time": "2024-01-02T14:33:00Z"},
        {"ticker": "MSFT", "action": "buy", "time": "2024-01-02T14:31:00Z"},
    ]  # fmt: skip
    result = replay(tmp_path, lines, "exits.take_profit_pct=5")
    trade = result.trades.iloc[0]
    assert len(result.trades) == 1
    assert trade.qty == 7  # the alert's quantity
    assert trade.entry_bar == 1  # alert at 09:30:30 → bar 09:30's close → 09:31 open
    assert trade.exit_bar == 4  # the 09:33 flat alert fills at the 09:34 open
    assert trade.exit_reason == "signal"
    assert trade.stop_price == pytest.approx(98.5)  # decide_orders: 100 × (1 − 1.5 %), on tick
    assert trade.target_price == pytest.approx(105.0)  # the configured default target


def test_cooldown_applies_to_replayed_alerts(tmp_path):
    lines = [
        {"ticker": "AAPL", "action": "buy", "time": "2024-01-02T14:30:00Z"},
        {"ticker": "AAPL", "action": "sell", "time": "2024-01-02T14:31:00Z"},
        {"ticker": "AAPL", "action": "buy", "time": "2024-01-02T14:32:00Z"},
    ]
    result = replay(tmp_path, lines, "risk.max_trades_per_hour=1")
    assert len(result.trades) == 1
    assert result.denials == {"cooldown": 1}


def test_bad_alert_line_is_named(tmp_path):
    path = tmp_path / "alerts.jsonl"
    path.write_text('{"ticker": "AAPL", "action": "buy", "time": "2024-01-02T14:30:00Z"}\n'
                    '{"ticker": "AAPL", "action": "hold"}\n')  # fmt: skip
    config = load_config(None, [f"strategy.alerts='{path}'"])
    with pytest.raises(AlertFileError, match="line 2"):
        run_backtest(make_bars([BASE] * 3, symbol="AAPL"), config, progress=False)


def test_tradingview_trade_list_export_is_replayed(tmp_path):
    path = tmp_path / "trades.csv"
    path.write_text(
        "Trade #,Type,Signal,Date/Time,Price USD,Contracts,Profit USD\n"
        "1,Entry short,SE,2024-01-02 09:30,100,5,\n"
        "1,Exit short,Cover,2024-01-02 09:32,100,5,0\n"
    )
    config = load_config(None, [f"strategy.alerts='{path}'"])
    result = run_backtest(make_bars([BASE] * 5, symbol="AAPL"), config, progress=False)
    trade = result.trades.iloc[0]
    assert trade.side == "short"
    assert trade.qty == 5
    assert (trade.entry_bar, trade.exit_bar) == (1, 3)
