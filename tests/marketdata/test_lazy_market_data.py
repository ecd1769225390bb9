"""The market-data adapters and the price poll load in a Lambda without alpaca-py or pandas
(both cost seconds of cold start): only building an Alpaca client or reading a bar file
imports them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_market_data_modules_import_without_alpaca_or_pandas():
    code = (
        "import sys, app, chalicelib.adapters.alpaca_market_data, "
        "chalicelib.adapters.tradingview_bars, chalicelib.adapters.files_market_data, "
        "chalicelib.adapters.replay, chalicelib.adapters.price_poll_marks, "
        "chalicelib.services.price_poll, chalicelib.services.bars, chalicelib.clock; "
        "print(sorted(m for m in ('alpaca', 'pandas', 'backtest') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
