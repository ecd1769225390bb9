"""alpaca-py pulls pandas (seconds of cold start): nothing the Lambdas import at start-up may
import it; only building an `AlpacaBroker` does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_app_and_adapters_import_without_alpaca_or_pandas():
    code = (
        "import sys, app, chalicelib.bootstrap, chalicelib.adapters.alpaca, "
        "chalicelib.adapters.paper_broker, chalicelib.adapters.sns, chalicelib.services.notify; "
        "print(sorted(m for m in ('alpaca', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
