"""Hand-computed fills: every entry, exit, stop, target, trailing and session rule."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.backtest.conftest import F, L, S, config, make_bars, only_trade, simulate

# (open, high, low, close)
BASE = (100.0, 100.5, 99.5, 100.0)


def test_next_open_entry_fills_at_the_next_bars_open():
    bars = make_bars([BASE, (101, 102, 100.5, 101.5), (101.5, 102, 101, 102)])
    trade = only_trade(simulate(bars, [L, 0, 0]))
    assert trade.entry_price == 101.0
    assert trade.entry_bar == 1
    assert trade.exit_reason == "end_of_data"
    assert trade.exit_price == 102.0  # the last close
    assert trade.gross_pnl == pytest.approx(100 * (102 - 101))


def test_close_entry_fills_at_the_signal_bars_close_and_stops_start_next_bar():
    # the signal bar's own low (95) is below the stop but happened before the fill
    bars = make_bars([(100, 100.5, 95, 100), (100, 100.2, 99.5, 99.8), (99.8, 99.9, 98.5, 99)])
    trade = only_trade(simulate(bars, [L, 0, 0], "fill.entry='close'", "exits.stop_loss_pct=1"))
    assert trade.entry_bar == 0
    assert trade.entry_price == 100.0
    assert trade.exit_reason == "stop_loss"
    assert trade.exit_bar == 2
    assert trade.exit_price == pytest.approx(99.0)  # 100 × (1 − 0.01), touched at bar 2


def test_stop_is_checked_on_the_entry_bar():
    bars = make_bars([BASE, (100, 100.2, 98.0, 99.0), (99, 99.5, 98.5, 99)])
    trade = only_trade(simulate(bars, [L, 0, 0], "exits.stop_loss_pct=1"))
    assert (trade.entry_bar, trade.exit_bar) == (1, 1)
    assert trade.exit_price == pytest.approx(99.0)
    assert trade.bars_held == 0


def test_stop_gapped_through_fills_at_the_open():
    bars = make_bars([BASE, (100, 100.5, 99.6, 100), (97, 97.5, 96, 96.5)])
    trade = only_trade(simulate(bars, [L, 0, 0], "exits.stop_loss_pct=1"))
    assert trade.exit_reason == "stop_loss"
    assert trade.exit_price == 97.0


def test_target_fills_at_its_level_and_gapped_target_at_the_open():
    bars = make_bars([BASE, (100, 101.5, 99.8, 101), (101, 101.2, 100.5, 101)])
    trade = only_trade(simulate(bars, [L, 0, 0], "exits.take_profit_pct=1"))
    assert trade.exit_reason == "take_profit"
    assert trade.exit_price == pytest.approx(101.0)  # 100 × 1.01
    gap = make_bars([BASE, (100, 100.4, 99.8, 100.2), (103, 103.5, 102.5, 103)])
    trade = only_trade(simulate(gap, [L, 0, 0], "exits.take_profit_pct=1"))
    assert trade.exit_price == 103.0


def test_when_one_bar_touches_stop_and_target_the_stop_wins():
    bars = make_bars([BASE, (100, 100.3, 99.8, 100), (100, 102, 98, 100)])
    trade = only_trade(
        simulate(bars, [L, 0, 0], "exits.stop_loss_pct=1", "exits.take_profit_pct=1")
    )
    assert trade.exit_reason == "stop_loss"
    assert trade.exit_price == pytest.approx(99.0)


def test_short_stop_above_and_target_below():
    bars = make_bars([BASE, (100, 100.3, 99.8, 100), (100, 100.4, 98.9, 99.2)])
    trade = only_trade(
        simulate(bars, [S, 0, 0], "exits.stop_loss_pct=1", "exits.take_profit_pct=1")
    )
    assert trade.side == "short"
    assert trade.exit_reason == "take_profit"
    assert trade.exit_price == pytest.approx(99.0)
    assert trade.gross_pnl == pytest.approx(100 * (100 - 99.0))
    stopped = make_bars([BASE, (100, 100.3, 99.8, 100), (101.5, 102, 101, 101.8)])
    trade = only_trade(simulate(stopped, [S, 0, 0], "exits.stop_loss_pct=1"))
    assert trade.exit_reason == "stop_loss"
    assert trade.exit_price == 101.5  # gapped above the 101 stop: the open
    assert trade.net_pnl == pytest.approx(-150.0)


def test_stop_from_the_fill_with_stop_ref_fill():
    bars = make_bars([BASE, (102, 102.5, 101.5, 102), (102, 102.1, 100.9, 101)])
    trade = only_trade(simulate(bars, [L, 0, 0], "exits.stop_loss_pct=1", "exits.stop_ref='fill'"))
    assert trade.exit_reason == "stop_loss"
    assert trade.exit_price == pytest.approx(102 * 0.99)  # 100.98, from the 102 fill
    assert trade.stop_price == pytest.approx(100.98)


def test_trailing_stop_ratchets_on_closes_not_highs():
    rows = [
        BASE,
        (100, 100.5, 99.5, 100),  # entry at 100; trail 98 (from the signal close)
        (100, 110, 100, 105),  # high 110 does not move it; close 105 → 105 × 0.98 = 102.9
        (105, 105.5, 103.5, 104),  # close 104 would give 101.92 < 102.9: no change
        (104, 104.5, 102.0, 103),  # low 102 crosses 102.9
    ]
    trade = only_trade(simulate(make_bars(rows), [L, 0, 0, 0, 0], "exits.trail_pct=2"))
    assert trade.exit_reason == "trailing_stop"
    assert trade.exit_bar == 4
    assert trade.exit_price == pytest.approx(102.9)


def test_fixed_stop_beyond_the_trail_is_reported_as_stop_loss():
    rows = [BASE, (100, 100.5, 99.5, 100), (100, 100.2, 98.5, 99)]
    trade = only_trade(
        simulate(make_bars(rows), [L, 0, 0], "exits.trail_pct=5", "exits.stop_loss_pct=1")
    )
    assert trade.exit_reason == "stop_loss"
    assert trade.exit_price == pytest.approx(99.0)


def test_reversal_closes_and_opens_at_the_same_fill():
    rows = [BASE, (100, 101, 99.5, 101), (101, 101.5, 100.5, 101), (102, 102.5, 101.5, 102)]
    result = simulate(make_bars(rows), [L, 0, S, 0])
    first, second = result.trades.iloc[0], result.trades.iloc[1]
    assert first.side == "long"
    assert first.exit_reason == "signal"
    assert first.exit_price == second.entry_price == 102.0
    assert first.exit_bar == second.entry_bar == 3
    assert second.side == "short"


def test_flat_signal_closes_without_opening():
    rows = [BASE, (100, 101, 99.5, 101), (101, 101.5, 100.5, 101), (102, 102.5, 101.5, 102)]
    result = simulate(make_bars(rows), [L, 0, F, 0])
    trade = only_trade(result)
    assert trade.exit_reason == "signal"
    assert trade.exit_price == 102.0
    assert result.open_position_at_end is None


def test_signal_on_the_side_already_held_is_ignored():
    rows = [BASE] * 4
    result = simulate(make_bars(rows), [L, L, L, 0])
    trade = only_trade(result)
    assert trade.entry_bar == 1
    assert result.entries_proposed == 1


def test_session_close_flattens_and_drops_the_overnight_entry():
    day1 = make_bars([BASE] * 3).time
    times = day1.append(day1 + pd.Timedelta(days=1))
    rows = [BASE, (100, 101, 99.5, 100.5), (100.5, 101, 100, 100.8)] + [BASE] * 3
    bars = make_bars(rows, time=times)
    result = simulate(bars, [L, 0, L, 0, 0, 0], "exits.exit_at_session_close=true")
    trade = only_trade(result)
    assert trade.exit_reason == "session_close"
    assert trade.exit_bar == 2
    assert trade.exit_price == 100.8
    assert result.entries_proposed == 1  # the LONG at the session's last bar is dropped


def test_open_position_at_end_is_reported_when_not_closed():
    bars = make_bars([BASE, (100, 101, 99.5, 100.5), (100.5, 101, 100, 101)])
    result = simulate(bars, [L, 0, 0], "exits.close_at_end=false")
    assert result.trades.empty
    assert result.open_position_at_end["side"] == "long"
    assert result.open_position_at_end["closed_at_end"] is False
    assert result.final_equity == pytest.approx(100_000 + 100 * (101 - 100))


def test_slippage_and_commission_are_charged_on_both_fills():
    bars = make_bars([BASE, (100, 101, 99.5, 100.5), (100.5, 101, 100, 101), (101, 101, 100, 100)])
    result = simulate(
        bars,
        [L, 0, F, 0],
        "costs.slippage={ model = 'bps', bps = 10 }",
        "costs.commission={ model = 'percent', rate = 0.001 }",
    )
    trade = only_trade(result)
    entry = 100 * 1.001  # bought 10 bps above the 100 open
    exit_ = 101 * 0.999  # sold 10 bps below the 101 open
    assert trade.entry_price == pytest.approx(entry)
    assert trade.exit_price == pytest.approx(exit_)
    assert trade.gross_pnl == pytest.approx(100 * (101 - 100))
    assert trade.slippage_cost == pytest.approx(100 * (entry - 100) + 100 * (101 - exit_))
    assert trade.commission == pytest.approx(100 * entry * 0.001 + 100 * exit_ * 0.001)
    assert trade.net_pnl == pytest.approx(100 * (exit_ - entry) - trade.commission)
    assert result.final_equity == pytest.approx(100_000 + trade.net_pnl)


def test_take_profit_fills_without_slippage():
    bars = make_bars([BASE, (100, 101.5, 99.8, 101), (101, 101.2, 100.5, 101)])
    trade = only_trade(
        simulate(
            bars,
            [L, 0, 0],
            "exits.take_profit_pct=1",
            "costs.slippage={model='cents', per_share=0.05}",
        )
    )
    assert trade.entry_price == pytest.approx(100.05)
    assert trade.exit_price == pytest.approx(101.0)
    assert trade.slippage_cost == pytest.approx(100 * 0.05)


def test_atr_stop_distance():
    rows = [(100, 101, 99, 100)] * 3 + [(100, 100.5, 99.5, 100), (100, 100.2, 97.9, 98)]
    trade = only_trade(
        simulate(make_bars(rows), [0, 0, L, 0, 0], "exits.atr_stop_mult=1", "exits.atr_period=2")
    )
    # ATR(2) at the signal bar = mean true range 2.0 → stop 100 − 2 = 98
    assert trade.stop_price == pytest.approx(98.0)
    assert trade.exit_price == pytest.approx(98.0)


def test_risk_pct_sizing_uses_the_live_sizing_rule():
    bars = make_bars([BASE, (100, 100.5, 99.5, 100), (100, 100.5, 99.5, 100)])
    trade = only_trade(
        simulate(
            bars,
            [L, 0, 0],
            "sizing.mode='risk_pct'",
            "sizing.risk_pct=1",
            "exits.stop_loss_pct=2",
        )
    )
    # floor(100 000 × 1 % / |100 − 98|) = 500 shares
    assert trade.qty == 500


def test_notional_sizing_is_capped_by_buying_power():
    bars = make_bars([BASE, (100, 100.5, 99.5, 100), (100, 100.5, 99.5, 100)])
    trade = only_trade(
        simulate(bars, [L, 0, 0], "sizing.mode='notional'", "sizing.notional_usd=250000")
    )
    assert trade.qty == 1000  # 100 000 USD of buying power at 100


def test_cooldown_denies_entries_over_the_hourly_limit_through_the_gate():
    rows = [BASE] * 130
    signals = [0] * 130
    for i in (0, 10, 20, 70):  # entries at 09:31, 09:41, 09:51 and 10:41
        signals[i] = L
    for i in (5, 15, 25, 75):
        signals[i] = F
    result = simulate(make_bars(rows), signals, "risk.max_trades_per_hour=2")
    assert list(result.trades.entry_bar) == [1, 11, 71]
    assert result.denials == {"cooldown": 1}


def test_daily_loss_limit_stops_new_entries_for_the_day():
    rows = [BASE, (100, 100.2, 98, 98.5), (98.5, 99, 98, 98.5), (98.5, 99, 98, 98.5), BASE]
    result = simulate(
        make_bars(rows), [L, 0, L, 0, 0], "exits.stop_loss_pct=1", "risk.max_daily_loss_usd=50"
    )
    trade = only_trade(result)
    assert trade.net_pnl == pytest.approx(-100.0)
    assert result.denials == {"daily_loss_limit": 1}


def test_equity_curve_marks_open_positions_to_each_close():
    bars = make_bars([BASE, (100, 101, 99.5, 100.5), (100.5, 101, 100, 99.5)])
    result = simulate(bars, [L, 0, 0], "exits.close_at_end=false")
    assert list(result.equity) == pytest.approx([100_000, 100_050, 99_950])
    assert list(result.position) == [0, 1, 1]
    assert not math.isnan(result.final_equity)


def test_pausing_for_progress_reports_changes_nothing(monkeypatch, capsys):
    from backtest import engine

    rows = [BASE, (100, 101, 99.5, 100.5), (100.5, 103, 100, 102), (102, 102.5, 98, 99)] * 5
    signals = [L, 0, S, 0] * 5
    args = (
        "exits.stop_loss_pct=1",
        "exits.trail_pct=1",
        "costs.slippage={model='bps', bps=3}",
    )
    straight = simulate(make_bars(rows), signals, *args)
    monkeypatch.setattr(engine, "CHUNK_BARS", 3)
    chunked = engine.run_backtest(
        make_bars(rows), config(*args), progress=True, signals=np.array(signals)
    )
    pd.testing.assert_frame_equal(straight.trades, chunked.trades)
    assert list(straight.equity) == list(chunked.equity)
    assert "backtest" in capsys.readouterr().err  # the progress bar was drawn


def test_progress_bar_stays_off_when_stderr_is_not_a_terminal(capsys):
    rows = [BASE] * 4
    simulate(make_bars(rows), [L, 0, 0, 0], "report.progress='auto'")
    assert capsys.readouterr().err == ""


def test_round_to_tick_puts_levels_on_cents_away_from_the_market():
    rows = [(100.0, 100.5, 99.5, 100.003), (100, 100.3, 99.5, 100), (100, 100.3, 99.0, 99.2)]
    args = ("exits.stop_loss_pct=0.75", "exits.take_profit_pct=0.33")
    raw = only_trade(simulate(make_bars(rows), [L, 0, 0], *args))
    assert raw.stop_price == pytest.approx(100.003 * 0.9925)  # 99.252978
    ticked = only_trade(simulate(make_bars(rows), [L, 0, 0], *args, "exits.round_to_tick=true"))
    assert ticked.stop_price == 99.25  # rounded down for a long stop
    assert ticked.target_price == 100.34  # 100.333 rounded up for a long target
    assert ticked.exit_price == 99.25
    short = only_trade(simulate(make_bars(rows), [S, 0, 0], *args, "exits.round_to_tick=true"))
    assert short.stop_price == 100.76  # 100.753 rounded up for a short stop
    assert short.target_price == 99.67  # 99.673 rounded down for a short target
