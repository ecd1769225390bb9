"""`GET/PUT /api/settings`: the settings a trader switches at run time, without a redeploy.

Only what is safe to change while trading is switchable (today: the market-data source).
A change is validated — an unknown setting or value is a 400, a source that cannot be
built here (no keys, no file) a 422 naming why — then stored (state table, versioned),
journaled under ``settings`` and announced. Every Lambda reads the stored value through a
short cache (`CACHE_S`), so a switch reaches every decision within seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from chalicelib.ports import RuntimeSettings, TradeRecords

DATA_SOURCES = ("tradingview", "alpaca", "ibkr", "files", "replay")
SWITCHABLE = {"data_source": DATA_SOURCES}
CACHE_S = 5.0


class BadSettings(ValueError):
    """The change names an unknown setting or value (HTTP 400)."""


class UnusableSetting(ValueError):
    """The value is valid but cannot work here, e.g. a source without its keys (HTTP 422)."""


def effective(store: RuntimeSettings, defaults: dict[str, str]) -> dict[str, Any]:
    """What is in force: the stored values over the deployment's defaults."""
    values, version, changes = store.read()
    return {
        **{name: values.get(name, defaults.get(name, "")) for name in SWITCHABLE},
        "choices": {name: list(choices) for name, choices in SWITCHABLE.items()},
        "version": version,
        "changes": changes,
    }


def change(
    store: RuntimeSettings,
    body: Any,
    *,
    now: datetime,
    by: str,
    usable: Callable[[str, str], str | None],
    defaults: dict[str, str] | None = None,
    journal: TradeRecords | None = None,
) -> dict[str, str]:
    """Validate and store `body` ({"data_source": "alpaca", "version": 3}); what changed.

    `usable(name, value)` says why a value cannot work here (None: it can). `version`,
    when sent, must be the one read (a concurrent change is a `Conflict`)."""
    if not isinstance(body, dict) or not body:
        raise BadSettings('send a JSON object, e.g. {"data_source": "alpaca"}')
    sent = body.get("version")
    if sent is not None and (not isinstance(sent, int) or isinstance(sent, bool)):
        raise BadSettings("version must be an integer")
    wanted = {k: v for k, v in body.items() if k != "version"}
    unknown = sorted(set(wanted) - set(SWITCHABLE))
    if unknown:
        raise BadSettings(f"not switchable at run time: {', '.join(unknown)}")
    for name, value in wanted.items():
        if not isinstance(value, str) or value not in SWITCHABLE[name]:
            raise BadSettings(f"{name} must be one of {', '.join(SWITCHABLE[name])}")
    for name, value in wanted.items():
        why = usable(name, value)
        if why:
            raise UnusableSetting(f"{name}={value} cannot be used: {why}")
    values, version, _ = store.read()
    in_force = (defaults or {}) | values
    changed = {k: v for k, v in wanted.items() if in_force.get(k) != v}
    if not changed:
        return {}
    store.write(changed, version=version if sent is None else sent, at=now, by=by)
    _cache.clear()
    if journal is not None:
        journal.append_journal("settings", "changed", {"changed": changed, "by": by}, now)
    return changed


class _Cache:
    """Per-Lambda memo of the stored values, so each decision need not read them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, str] | None = None
        self._read_at = 0.0

    def get(self, store: RuntimeSettings) -> dict[str, str]:
        with self._lock:
            if self._values is None or time.monotonic() - self._read_at > CACHE_S:
                self._values = store.read()[0]
                self._read_at = time.monotonic()
            return self._values

    def clear(self) -> None:
        with self._lock:
            self._values = None


_cache = _Cache()


def current(store: RuntimeSettings, name: str, default: str) -> str:
    """The value in force for one setting (cached for `CACHE_S`)."""
    return _cache.get(store).get(name, default)
