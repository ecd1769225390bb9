"""The local stack's market replay: `make run` plays a bar file as the market clock.

By default (FLOWTRADER_DATA_SOURCE unset) the stack replays the shipped sample of real AMZN
minute bars (backtest/data/AMZN_1min_2025-01-13.csv) at 60× — one market minute per second,
a session in 6.5 minutes. FLOWTRADER_DATA_SOURCE=tradingview (or alpaca, files…) runs on
the wall clock instead.

The clock starts at the file's first session open and is handed to every process of the
stack as FLOWTRADER_CLOCK, so the app and the worker agree on the time. It is saved in the
data dir as it runs: a restart resumes where the replay was (state kept under
FLOWTRADER_DATA_DIR lives in the replayed time); FLOWTRADER_FRESH=1 plays it from the start.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from chalicelib import clock
from chalicelib.adapters.files_market_data import FilesMarketData
from chalicelib.adapters.replay import ReplayClock, first_session_open
from chalicelib.clock import CLOCK_ENV
from chalicelib.rules.market_calendar import to_eastern

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "backtest" / "data" / "AMZN_1min_2025-01-13.csv"
DEFAULT_SPEED = 60.0
SAVED = "replay.json"
SAVE_EVERY_S = 2.0
# Wall seconds the stack takes to come up: the replay reaches the open about when the banner
# shows, rather than a quarter of an hour (at 60×) into the session.
STARTUP_S = 15.0


@dataclass(frozen=True)
class Replay:
    clock: ReplayClock
    file: Path
    symbol: str
    resumed: bool

    def describe(self) -> str:
        market = to_eastern(max(self.clock(), self.clock.market_start)).strftime(
            "%Y-%m-%d %H:%M New York"
        )
        how = "resumed at" if self.resumed else "from"
        return (
            f"market replay: {self.symbol} bars of {self.file.name}, {how} {market}, "
            f"{self.clock.speed:g}× real time"
        )


def configure(environ: dict[str, str] | os._Environ[str], data_dir: Path) -> Replay | None:
    """Set up the replay the environment asks for (the default), install its clock here and
    put it in `environ` for the stack's other processes; None when not replaying."""
    environ.setdefault("FLOWTRADER_DATA_SOURCE", "replay")
    if environ["FLOWTRADER_DATA_SOURCE"] != "replay":
        return None
    environ.setdefault("FLOWTRADER_REPLAY_FILE", str(SAMPLE))
    path = Path(environ["FLOWTRADER_REPLAY_FILE"]).resolve()
    speed = float(environ.get("FLOWTRADER_REPLAY_SPEED") or DEFAULT_SPEED)
    files = FilesMarketData(path, environ.get("FLOWTRADER_DATA_SYMBOL", ""))
    start = first_session_open(files.series.bars)
    resumed = False
    saved = _saved(data_dir, path)
    if saved is not None and saved > start:
        start, resumed = saved, True
    replay_clock = ReplayClock(start, speed, time.time() + (0.0 if resumed else STARTUP_S))
    environ[CLOCK_ENV] = replay_clock.spec
    clock.install(replay_clock)
    return Replay(replay_clock, path, files.series.symbol, resumed)


def _saved(data_dir: Path, path: Path) -> datetime | None:
    if os.environ.get("FLOWTRADER_FRESH", "") not in ("", "0"):
        return None
    try:
        saved = json.loads((data_dir / SAVED).read_text())
    except (OSError, ValueError):
        return None
    if saved.get("file") != str(path):
        return None
    return datetime.fromtimestamp(float(saved["market_time"]), UTC)


class ReplaySaver(threading.Thread):
    """Writes the replay's market time to the data dir every few seconds (and at stop)."""

    def __init__(self, replay: Replay, data_dir: Path) -> None:
        super().__init__(name="replay-saver", daemon=True)
        self._replay = replay
        self._path = data_dir / SAVED
        self._stopping = threading.Event()

    def save(self) -> None:
        body = {"file": str(self._replay.file), "market_time": self._replay.clock().timestamp()}
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body))
        tmp.replace(self._path)

    def run(self) -> None:
        while not self._stopping.wait(SAVE_EVERY_S):
            self.save()

    def stop(self) -> None:
        self._stopping.set()
        self.save()
