"""The alert router: per-event routes, quiet hours on New York's clock, de-duplication and the
burst digest, with the shared state in the state table on moto's server (Lambdas run at
once, so the counter must be atomic there), and channels that fail alone."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, time, timedelta

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb_alerting import DynamoAlertThrottle
from chalicelib.domain import ClosedTrade, ExitReason, MarketPosition
from chalicelib.services import notify
from chalicelib.services.alerting import (
    BadRoutes,
    RoutingNotifier,
    in_quiet_hours,
    parse_quiet_hours,
    parse_routes,
)

T0 = datetime(2026, 7, 15, 15, 0, 30, tzinfo=UTC)  # 11:00 New York (EDT)


class Recording:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def notify(self, subject: str, message: str, *, event: str = "info") -> None:
        with self._lock:
            self.sent.append((subject, message, event))


class OldStyle:
    """A channel written before events: two arguments only."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def notify(self, subject: str, message: str) -> None:
        self.sent.append((subject, message))


class Broken:
    def notify(self, subject: str, message: str, *, event: str = "info") -> None:
        raise ConnectionError("twilio is down")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def router(channels, **kwargs) -> RoutingNotifier:
    kwargs.setdefault("clock", Clock(T0))
    return RoutingNotifier(channels=channels, **kwargs)


def channels(*names: str) -> dict[str, Recording]:
    return {name: Recording() for name in names}


@pytest.fixture
def throttle(aws) -> DynamoAlertThrottle:
    return DynamoAlertThrottle(boto3.client("dynamodb"), os.environ["FLOWTRADER_STATE_TABLE"])


def stop_out() -> notify.Notice:
    trade = ClosedTrade(
        key="f-1",
        symbol="AAPL",
        side=MarketPosition.LONG,
        qty=10,
        entry_price=190.0,
        exit_price=186.88,
        pnl_usd=-31.2,
        exit_reason=ExitReason.STOP_LOSS,
        exit_time=T0,
    )
    return notify.position_closed(trade)


def test_a_stop_out_is_its_own_event_and_rings_every_loud_channel():
    notice = stop_out()
    chans = channels("log", "sns", "voice", "desktop", "speech")

    assert notice.event == "stopped_out"
    assert notify.send(router(chans), notice)

    assert {name for name, c in chans.items() if c.sent} == {
        "log",
        "sns",
        "voice",
        "desktop",
        "speech",
    }
    assert chans["voice"].sent[0][2] == "stopped_out"


def test_a_rejection_goes_by_default_to_text_and_desktop_not_to_the_phone():
    chans = channels("log", "sns", "voice", "desktop", "speech")

    notify.send(router(chans), notify.order_rejected("AAPL", "cooldown"))

    assert {name for name, c in chans.items() if c.sent} == {"log", "sns", "desktop"}


def test_routes_from_the_setting_replace_the_default_of_their_event():
    routes = parse_routes('{"rejected": ["log"], "filled": ["log", "speech"]}')
    chans = channels("log", "sns", "speech")
    r = router(chans, routes=routes)

    r.notify("s", "Rejected AAPL: cooldown", event="rejected")
    r.notify("s", "Filled BUY 10 AAPL @ 190.04", event="filled")

    assert [e for *_, e in chans["log"].sent] == ["rejected", "filled"]
    assert chans["sns"].sent == []
    assert [e for *_, e in chans["speech"].sent] == ["filled"]
    assert routes["stopped_out"] == parse_routes("")["stopped_out"]  # the rest keep defaults


@pytest.mark.parametrize(
    "raw",
    ['{"rejectd": ["log"]}', '{"rejected": ["pager"]}', '{"rejected": "log"}', "[1]", "{"],
)
def test_bad_routes_are_refused_with_a_reason(raw):
    with pytest.raises(BadRoutes):
        parse_routes(raw)


def test_quiet_hours_read_new_york_time_in_summer_and_winter():
    quiet = parse_quiet_hours("22:00-07:00")
    # 23:30 New York is 03:30 UTC under EDT (July) and 04:30 UTC under EST (January).
    assert in_quiet_hours(datetime(2026, 7, 16, 3, 30, tzinfo=UTC), quiet)
    assert in_quiet_hours(datetime(2026, 1, 16, 4, 30, tzinfo=UTC), quiet)
    # 07:30 New York is awake: 11:30 UTC in July, 12:30 UTC in January.
    assert not in_quiet_hours(datetime(2026, 7, 16, 11, 30, tzinfo=UTC), quiet)
    assert not in_quiet_hours(datetime(2026, 1, 16, 12, 30, tzinfo=UTC), quiet)
    # 06:30 New York in January (11:30 UTC) is still quiet; the same UTC time in July is not.
    assert in_quiet_hours(datetime(2026, 1, 16, 11, 30, tzinfo=UTC), quiet)
    assert in_quiet_hours(datetime(2026, 1, 16, 11, 30, tzinfo=UTC), (time(6), time(7)))
    assert not in_quiet_hours(datetime(2026, 7, 16, 11, 30, tzinfo=UTC), (time(6), time(7)))
    assert parse_quiet_hours("") is None
    with pytest.raises(BadRoutes):
        parse_quiet_hours("late")


def test_quiet_hours_keep_only_the_allowed_channels_but_a_failure_still_rings():
    night = Clock(datetime(2026, 7, 16, 3, 30, tzinfo=UTC))  # 23:30 New York
    chans = channels("log", "sns", "voice", "speech")
    r = router(chans, clock=night, quiet=parse_quiet_hours("22:00-07:00"))

    notify.send(r, stop_out())
    assert [len(chans[n].sent) for n in ("log", "sns", "voice", "speech")] == [1, 0, 0, 0]

    notify.send(r, notify.order_error("broker unavailable", "a-1", "AAPL"))
    assert [len(chans[n].sent) for n in ("log", "sns", "voice", "speech")] == [2, 1, 1, 1]


def test_the_same_message_twice_goes_out_once_until_the_window_passes(throttle):
    clock = Clock(T0)
    chans = channels("log", "sns")
    r = router(chans, throttle=throttle, clock=clock, dedupe=timedelta(minutes=5))

    notify.send(r, notify.order_rejected("AAPL", "cooldown", "a-1"))
    notify.send(r, notify.order_rejected("AAPL", "cooldown", "a-1"))
    notify.send(r, notify.order_rejected("AAPL", "cooldown", "a-2"))  # another alert: new text
    assert len(chans["sns"].sent) == 2
    assert len(chans["log"].sent) == 3  # the log is the record: it hears everything

    clock.now = T0 + timedelta(minutes=6)
    notify.send(r, notify.order_rejected("AAPL", "cooldown", "a-1"))
    assert len(chans["sns"].sent) == 3


def test_a_burst_of_50_rejections_is_three_texts_and_one_digest(throttle):
    clock = Clock(T0)
    chans = channels("log", "sns")
    r = router(chans, throttle=throttle, clock=clock, burst_limit=3)

    for i in range(50):
        notify.send(r, notify.order_rejected("AAPL" if i % 2 else "MSFT", "cooldown", f"a-{i}"))
    assert len(chans["sns"].sent) == 3
    assert r.flush_digests() == 0  # the window is still open: nothing to summarise yet

    clock.now = T0 + timedelta(minutes=5)
    assert r.flush_digests() == 1
    assert r.flush_digests() == 0  # handed out once
    assert len(chans["sns"].sent) == 4
    subject, message, event = chans["sns"].sent[-1]
    assert event == "rejected"
    assert subject == "flowtrader: 47 more rejected"
    first = message.splitlines()[0]
    assert first.startswith("47 more rejected in 5 min: Rejected ")
    assert len(first) <= 160
    assert "Rejected AAPL: cooldown" in message
    assert "Rejected MSFT: cooldown" in message


def test_parallel_lambdas_never_exceed_the_burst_limit(throttle):
    chans = channels("log", "sns")
    r = router(chans, throttle=throttle, burst_limit=3)
    start = threading.Barrier(12)

    def one(i: int) -> None:
        start.wait()
        notify.send(r, notify.order_rejected("AAPL", "max open positions", f"p-{i}"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(chans["sns"].sent) == 3
    r.clock = Clock(T0 + timedelta(minutes=5))
    assert r.flush_digests() == 1
    assert chans["sns"].sent[-1][0] == "flowtrader: 9 more rejected"


def test_separate_events_have_separate_limits(throttle):
    chans = channels("log", "sns")
    r = router(chans, throttle=throttle, burst_limit=1)

    notify.send(r, notify.order_rejected("AAPL", "cooldown", "a-1"))
    notify.send(r, notify.order_rejected("AAPL", "cooldown", "a-2"))
    notify.send(r, stop_out())

    assert [e for *_, e in chans["sns"].sent] == ["rejected", "stopped_out"]


def test_a_failing_channel_never_stops_the_others_nor_raises(caplog):
    chans = {"log": Recording(), "sns": Recording(), "voice": Broken(), "speech": Recording()}

    assert notify.send(router(chans), stop_out()) is True

    assert (len(chans["sns"].sent), len(chans["speech"].sent)) == (1, 1)
    assert "channel voice failed" in caplog.text


def test_unreachable_alert_state_fails_open(aws, caplog):
    missing = DynamoAlertThrottle(boto3.client("dynamodb"), "no-such-table")
    chans = channels("log", "sns")

    notify.send(router(chans, throttle=missing), notify.order_rejected("AAPL", "cooldown"))

    assert len(chans["sns"].sent) == 1
    assert "de-duplication unavailable" in caplog.text
    assert router(chans, throttle=missing).flush_digests() == 0


def test_a_two_argument_channel_keeps_working_behind_the_router():
    old = OldStyle()
    notify.send(router({"log": Recording(), "sns": old}), notify.order_rejected("AAPL", "x"))
    notify.FanOutNotifier([old]).notify("s", "m", event="filled")

    assert [s for s, _ in old.sent] == ["flowtrader: rejected AAPL", "s"]


def test_the_container_routes_through_the_state_table(aws, monkeypatch):
    monkeypatch.setenv("FLOWTRADER_ALERT_BURST_LIMIT", "1")
    bootstrap.reset()
    n = bootstrap.container().notifier

    assert isinstance(n, RoutingNotifier)
    assert set(n.channels) >= {"log", "sns"}
    assert "voice" not in n.channels  # no Twilio account configured
    assert n.burst_limit == 1
