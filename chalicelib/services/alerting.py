"""Which channels hear about what, and when: the `Notifier` the composition root hands out.

`RoutingNotifier.notify(subject, message, event=...)`:
1. routes: `event` → channel names (`FLOWTRADER_ALERT_ROUTES`, JSON, merged over
   `DEFAULT_ROUTES`; `"*"` is every event not named). Channels not configured (no topic, no
   Twilio number, no notify-send binary, Lambda for the desktop) are skipped.
2. quiet hours (New York time, `FLOWTRADER_ALERT_QUIET_HOURS`, e.g. `22:00-07:00`): only the
   channels in `quiet_allow` deliver, except for events in `quiet_bypass` (a failed order).
3. de-duplication: the same event, subject and message within `dedupe` goes out once.
4. rate limit with a digest: at most `burst_limit` messages of one event per window
   (`burst_window`); the rest are counted and their lines kept, and `flush_digests` (every
   minute, app.py's schedule) sends one summary per event and window — a burst of 50
   rejections is 3 texts and one "47 more rejected" summary, not 50.
The log channel always hears everything (it is the record); de-duplication and the burst
counter live in the state table (`AlertThrottle`), atomically, because Lambdas run at once.
A storage failure fails open (the message goes out), and a failing channel is logged and
never touches the others or the order path (`notify` never raises).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from chalicelib.ports import AlertThrottle, Notifier
from chalicelib.rules.market_calendar import to_eastern
from chalicelib.services.notify import APP, deliver, sms_text

log = logging.getLogger(__name__)

EVENTS = (
    "placed",
    "filled",
    "closed",
    "partially_filled",
    "stopped_out",
    "rejected",
    "failed",
    "drift",
    "flow_highlight",
    "daily_summary",
    "info",
)
CHANNELS = ("log", "sns", "voice", "desktop", "speech")
LOUD = ["log", "sns", "voice", "desktop", "speech"]
DEFAULT_ROUTES: dict[str, list[str]] = {
    "*": ["log", "sns", "desktop"],
    "stopped_out": LOUD,
    "failed": LOUD,
    "daily_summary": ["log", "sns"],
}
DIGEST_LINES = 10


class BadRoutes(ValueError):
    """FLOWTRADER_ALERT_ROUTES cannot be used; the message says why."""


def parse_routes(raw: str) -> dict[str, list[str]]:
    """`DEFAULT_ROUTES` with the JSON object `raw` (event → list of channels) merged over it."""
    routes = {k: list(v) for k, v in DEFAULT_ROUTES.items()}
    if not raw.strip():
        return routes
    try:
        given = json.loads(raw)
    except ValueError as exc:
        raise BadRoutes(f"alert_routes is not JSON: {exc}") from None
    if not isinstance(given, dict):
        raise BadRoutes('alert_routes must be an object like {"rejected": ["log"]}')
    for event, channels in given.items():
        if event != "*" and event not in EVENTS:
            raise BadRoutes(f"alert_routes: unknown event {event!r}; events: {', '.join(EVENTS)}")
        if not isinstance(channels, list) or not all(c in CHANNELS for c in channels):
            raise BadRoutes(
                f"alert_routes[{event!r}] must be a list of channels: {', '.join(CHANNELS)}"
            )
        routes[event] = list(channels)
    return routes


def parse_quiet_hours(raw: str) -> tuple[time, time] | None:
    """`"22:00-07:00"` → (22:00, 07:00) New York time; "" → None (no quiet hours)."""
    if not raw.strip():
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in raw.split("-"))
    except ValueError:
        raise BadRoutes("alert_quiet_hours must look like 22:00-07:00") from None
    return start, end


def in_quiet_hours(now: datetime, quiet: tuple[time, time] | None) -> bool:
    """Whether `now` falls in the quiet span, read on New York's clock (DST included)."""
    if quiet is None:
        return False
    start, end = quiet
    local = to_eastern(now).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # spans midnight


def window_start(now: datetime, window: timedelta) -> datetime:
    """The start of the fixed burst window `now` falls in (UTC, aligned to the epoch)."""
    seconds = int(window.total_seconds()) or 1
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def _minutes(window: timedelta) -> str:
    minutes = window.total_seconds() / 60
    return f"{minutes:g} min"


@dataclass
class RoutingNotifier:
    """The router (module docstring). `channels` maps a channel name to its adapter."""

    channels: Mapping[str, Notifier]
    routes: dict[str, list[str]] = field(default_factory=lambda: parse_routes(""))
    throttle: AlertThrottle | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    quiet: tuple[time, time] | None = None
    quiet_allow: tuple[str, ...] = ("log",)
    quiet_bypass: tuple[str, ...] = ("failed",)
    dedupe: timedelta = timedelta(minutes=5)
    burst_limit: int = 3
    burst_window: timedelta = timedelta(minutes=5)

    def route(self, event: str, now: datetime) -> list[str]:
        """The channel names `event` goes to at `now` (quiet hours applied)."""
        names = self.routes.get(event, self.routes.get("*", ["log"]))
        if in_quiet_hours(now, self.quiet) and event not in self.quiet_bypass:
            names = [n for n in names if n in self.quiet_allow]
        return [n for n in names if n in self.channels]

    def notify(self, subject: str, message: str, *, event: str = "info") -> None:
        now = self.clock()
        names = self.route(event, now)
        self._send("log", subject, message, event)
        outward = [n for n in names if n != "log"]
        if not outward or not self._fresh(event, subject, message, now):
            return
        if not self._within_burst(event, message, now):
            return
        for name in outward:
            self._send(name, subject, message, event)

    def flush_digests(self) -> int:
        """Send one summary per held-back burst whose window has ended; how many went out."""
        if self.throttle is None:
            return 0
        now = self.clock()
        try:
            digests = self.throttle.take_digests(window_start(now, self.burst_window))
        except Exception:
            log.warning("alert digests could not be read", exc_info=True)
            return 0
        for event, started, held, lines in digests:
            what = event.replace("_", " ")
            text = f"{held} more {what} in {_minutes(self.burst_window)}"
            if lines:
                text += ": " + "; ".join(lines[:3])
            detail = "\n".join(
                [f"window from {started.isoformat()}", *lines[:DIGEST_LINES]]
                + ([f"… and {len(lines) - DIGEST_LINES} more"] if len(lines) > DIGEST_LINES else [])
            )
            subject = sms_text(f"{APP}: {held} more {what}", 100)
            message = f"{sms_text(text)}\n\n{detail}"
            for name in self.route(event, now):
                self._send(name, subject, message, event)
        return len(digests)

    def _fresh(self, event: str, subject: str, message: str, now: datetime) -> bool:
        if self.throttle is None or self.dedupe <= timedelta(0):
            return True
        key = hashlib.sha256(f"{event}\0{subject}\0{message}".encode()).hexdigest()[:32]
        try:
            fresh = self.throttle.first_time(key, now, self.dedupe)
        except Exception:
            log.warning("alert de-duplication unavailable; sending", exc_info=True)
            return True
        if not fresh:
            log.info("notify [%s]: duplicate of a message sent in the last %s", event, self.dedupe)
        return fresh

    def _within_burst(self, event: str, message: str, now: datetime) -> bool:
        if self.throttle is None or self.burst_limit <= 0:
            return True
        start = window_start(now, self.burst_window)
        try:
            n = self.throttle.count(event, start, self.burst_window * 4)
            if n <= self.burst_limit:
                return True
            line = sms_text(message, 120) if n <= self.burst_limit + 50 else ""
            self.throttle.add_to_digest(event, start, line)
        except Exception:
            log.warning("alert rate limit unavailable; sending", exc_info=True)
            return True
        return False

    def _send(self, name: str, subject: str, message: str, event: str) -> None:
        channel = self.channels.get(name)
        if channel is None:
            return
        try:
            deliver(channel, subject, message, event)
        except Exception:
            log.warning("channel %s failed for %r", name, subject, exc_info=True)
