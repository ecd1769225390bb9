"""The CLI: outputs written whole, bad data refused with exit code 2 and the first bad row."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from backtest.__main__ import main

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "backtest" / "data"
GOOD = """date,Open,HIGH,low,close,volume
2024-01-02,100,101,99,100.5,1000
2024-01-03,100.5,102,100,101.5,1000
2024-01-04,101.5,103,101,102.5,1000
2024-01-05,102.5,103,101,101.0,1000
"""
SUMMARY_KEYS = {
    "n_trades",
    "n_long",
    "n_short",
    "win_rate",
    "total_net_pnl",
    "avg_net_pnl_per_trade",
    "avg_win",
    "avg_loss",
    "profit_factor",
    "max_drawdown_usd",
    "max_drawdown_pct",
    "sharpe",
    "exposure_pct",
    "start_equity",
    "final_equity",
    "commissions_total",
    "slippage_total",
    "open_position_at_end",
}
TRADE_HEADER = [
    "symbol",
    "side",
    "qty",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "exit_reason",
    "gross_pnl",
    "commission",
    "slippage_cost",
    "net_pnl",
    "return_pct",
    "bars_held",
]


def run_cli(tmp_path: Path, data: Path, *args: str) -> tuple[int, Path]:
    out = tmp_path / "out"
    code = main(["run", "--data", str(data), "--out", str(out), "--quiet", *args])
    return code, out


def test_sample_config_writes_every_output(tmp_path):
    code, out = run_cli(
        tmp_path, SAMPLE / "IBM.csv", "--config", str(SAMPLE / "sma_cross_daily.toml")
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "daily_pnl.csv",
        "report.html",
        "summary.json",
        "trades.csv",
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["n_trades"] > 50
    with open(out / "trades.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == TRADE_HEADER
    assert len(rows) - 1 == summary["n_trades"]
    net = sum(float(r[11]) for r in rows[1:])
    assert net == pytest.approx(summary["total_net_pnl"], abs=1e-3)
    assert summary["final_equity"] == pytest.approx(summary["start_equity"] + net, abs=1e-3)
    with open(out / "daily_pnl.csv") as fh:
        daily = list(csv.DictReader(fh))
    assert list(daily[0]) == [
        "date", "trades", "gross_pnl", "commission", "net_pnl", "cum_net_pnl", "equity",
    ]  # fmt: skip
    assert float(daily[-1]["equity"]) == pytest.approx(summary["final_equity"])
    assert summary["config"]["units"] == "percent"
    assert summary["config"]["exits"]["stop_loss_pct"] == 5
    page = (out / "report.html").read_text()
    assert f"<th>max_drawdown_pct</th><td>{summary['max_drawdown_pct']:,.2f} %</td>" in page
    assert f"<th>win_rate</th><td>{summary['win_rate'] * 100:,.2f} %</td>" in page
    assert page.count("<svg") == 3
    assert "<script" not in page
    assert "http://" not in page
    assert "https://" not in page


def test_set_overrides_config_keys(tmp_path):
    data = SAMPLE / "IBM.csv"
    cfg = str(SAMPLE / "sma_cross_daily.toml")
    code, out = run_cli(tmp_path, data, "--config", cfg, "--set", "strategy.allow_short=false")
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_short"] == 0
    assert summary["config"]["strategy"]["allow_short"] is False
    code, out = run_cli(
        tmp_path, data, "--config", cfg, "--set", "costs.commission.rate=0.01", "--no-html"
    )
    assert code == 0
    assert json.loads((out / "summary.json").read_text())["config"]["costs"]["commission"][
        "rate"
    ] == pytest.approx(0.01)
    assert not (out / "report.html").exists()


BAD_DATA = [
    ("date,open,high,low,volume\n2024-01-02,1,2,1,5\n", "missing column(s) close"),
    (GOOD.replace("101.5,1000", "nan,1000", 1), "row 2 (line 3): close is missing"),
    (GOOD.replace("2024-01-04", "2024-01-01"), "row 3 (line 4): timestamp is earlier"),
    (GOOD.replace("2024-01-04", "2024-01-03"), "row 3 (line 4): duplicate timestamp"),
    (GOOD.replace("102.5,103,101,101.0", "102.5,100,101,101.0"), "row 4 (line 5): high is below"),
    (GOOD.replace("100,101,99,100.5", "0,101,99,100.5"), "row 1 (line 2): open is not positive"),
    (GOOD.replace("2024-01-03,", "yesterday,"), "row 2 (line 3): missing or unreadable time"),
]


@pytest.mark.parametrize(("text", "message"), BAD_DATA)
def test_bad_data_exits_2_naming_the_first_bad_row_and_writes_nothing(
    tmp_path, capsys, text, message
):
    data = tmp_path / "bars.csv"
    data.write_text(text)
    code, out = run_cli(tmp_path, data)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bars.csv"]


def test_bad_config_exits_2(tmp_path, capsys):
    data = tmp_path / "bars.csv"
    data.write_text(GOOD)
    code, _ = run_cli(tmp_path, data, "--set", "exits.stop_pct=0.01")
    assert code == 2
    assert "unknown key exits.stop_pct" in capsys.readouterr().err


def test_a_config_in_the_old_fraction_unit_exits_2_naming_the_key(tmp_path, capsys):
    data = tmp_path / "bars.csv"
    data.write_text(GOOD)
    old = tmp_path / "old.toml"
    old.write_text("[exits]\nstop_loss_pct = 0.05\ntake_profit_pct = 0.10\n")
    code, out = run_cli(tmp_path, data, "--config", str(old))
    assert code == 2
    err = capsys.readouterr().err
    assert "exits.stop_loss_pct is a percent: 0.05 means 0.05 %, write 5 for 5 %" in err
    assert not out.exists()
    cfg = str(SAMPLE / "sma_cross_daily.toml")
    code, _ = run_cli(tmp_path, data, "--config", cfg, "--set", "exits.stop_loss_pct=0.02")
    assert code == 2
    assert "--set units=percent" in capsys.readouterr().err
    code, out = run_cli(
        tmp_path,
        data,
        "--config",
        cfg,
        "--set",
        "exits.stop_loss_pct=0.02",
        "--set",
        "units=percent",
    )
    assert code == 0
    assert (
        json.loads((out / "summary.json").read_text())["config"]["exits"]["stop_loss_pct"] == 0.02
    )


def test_failed_run_leaves_the_previous_reports_alone(tmp_path):
    data = tmp_path / "bars.csv"
    data.write_text(GOOD)
    code, out = run_cli(tmp_path, data)
    assert code == 0
    before = (out / "summary.json").read_text()
    (tmp_path / "bad.csv").write_text(GOOD.replace("2024-01-04", "2024-01-01"))
    code, _ = run_cli(tmp_path, tmp_path / "bad.csv")
    assert code == 2
    assert (out / "summary.json").read_text() == before


def test_python_dash_m_backtest_exit_code_on_bad_data(tmp_path):
    data = tmp_path / "bars.csv"
    data.write_text(GOOD.replace("102.5,103,101,101.0", "102.5,100,101,101.0"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "backtest",
            "run",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "o"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "row 4" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_multi_symbol_file_needs_symbol(tmp_path, capsys):
    data = tmp_path / "stocks.csv"
    rows = GOOD.splitlines()
    body = [f"ticker,{rows[0]}"] + [f"AAA,{r}" for r in rows[1:]] + [f"BBB,{r}" for r in rows[1:]]
    data.write_text("\n".join(body) + "\n")
    code, _ = run_cli(tmp_path, data)
    assert code == 2
    assert "pass --symbol" in capsys.readouterr().err
    code, out = run_cli(tmp_path, data, "--symbol", "bbb")
    assert code == 0
    assert json.loads((out / "summary.json").read_text())["symbol"] == "BBB"
