"""The one writer of trades.csv and daily_pnl.csv (chalicelib/rules/report_rows.py): number
formatting, quoting, and the backtest writing through it."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pandas as pd

from backtest.engine import TRADE_COLUMNS as BACKTEST_TRADE_COLUMNS
from backtest.report import write_csv
from chalicelib.rules.report_rows import DAILY_COLUMNS, TRADE_COLUMNS, csv_text, format_column


def test_numbers_have_six_decimals_at_most_and_no_trailing_zeros():
    values = [100.0, 1.5, -0.000001, 1e-7, 123456789.123456, 0.1 + 0.2, -0.0, -5.92, 1e16]
    assert format_column(np.array(values)) == [
        "100",
        "1.5",
        "-0.000001",
        "0",
        "123456789.123456",
        "0.3",
        "0",
        "-5.92",
        "10000000000000000",
    ]
    assert format_column(np.array([math.nan, math.inf])) == ["", "inf"]
    assert format_column([1.25, None, "x", 3]) == ["1.25", "", "x", "3"]
    assert format_column(np.array([3, -2])) == ["3", "-2"]
    assert format_column(np.array([], dtype=float)) == []


def test_text_is_quoted_only_when_it_must_be_and_reads_back():
    text = csv_text(("symbol", "note", "pnl"), {"symbol": ["A,B", "C"], "note": ['say "hi"', "x"],
                                               "pnl": [2.5, -1.0]})  # fmt: skip
    assert text.splitlines() == ["symbol,note,pnl", '"A,B","say ""hi""",2.5', "C,x,-1"]
    assert list(csv.reader(io.StringIO(text)))[1] == ["A,B", 'say "hi"', "2.5"]
    assert csv_text(("a",), {"a": []}) == "a\n"


def test_the_backtest_writes_through_the_shared_writer_and_columns(tmp_path):
    assert list(TRADE_COLUMNS) == BACKTEST_TRADE_COLUMNS
    frame = pd.DataFrame(
        {
            "date": ["2026-03-02", "2026-03-03"],
            "trades": [2, 0],
            "gross_pnl": [9.05, 0.0],
            "commission": [0.0, 0.0],
            "net_pnl": [9.05, 0.0],
            "cum_net_pnl": [9.05, 9.05],
            "equity": [100_009.05, 100_009.05],
        }
    )[list(DAILY_COLUMNS)]
    path = tmp_path / "daily_pnl.csv"

    write_csv(frame, path)

    assert path.read_text() == csv_text(DAILY_COLUMNS, {c: frame[c] for c in DAILY_COLUMNS})
    assert path.read_text().splitlines()[1] == "2026-03-02,2,9.05,0,9.05,9.05,100009.05"
