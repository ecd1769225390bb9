"""The backtest: the live rules (`chalicelib.rules`) replayed over history.

`python -m backtest run --data FILE --config FILE.toml --out DIR`; see backtest/README.md
for the execution semantics.
"""

from __future__ import annotations

import os
from pathlib import Path

# numba's on-disk cache (compiled kernels) goes under the repo's gitignored .cache/ unless
# the caller chose a place; must be set before numba is first imported.
_REPO = Path(__file__).resolve().parent.parent
if "NUMBA_CACHE_DIR" not in os.environ:
    _cache = _REPO / ".cache" / "numba"
    try:
        _cache.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(_cache)
    except OSError:
        pass
