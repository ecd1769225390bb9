"""The alert channels: a Twilio voice call through the twilio SDK against a local server in
Twilio's shapes, desktop pop-ups through notify-send, spoken alerts through espeak-ng (heard
as a WAV file), and a failing channel that never touches the order path."""

from __future__ import annotations

import os
import shutil
import stat
import wave
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
from twilio.base.exceptions import TwilioRestException

from chalicelib import bootstrap
from chalicelib.adapters import espeak, libnotify
from chalicelib.adapters.twilio_voice import TwilioVoiceNotifier, twiml_say
from chalicelib.domain import ClosedTrade, ExitReason, MarketPosition
from chalicelib.services import notify
from tests.fakes.twilio_server import ACCOUNT_SID, AUTH_TOKEN, TwilioServer

T0 = datetime(2026, 7, 15, 15, 0, tzinfo=UTC)
FROM = "+15005550006"  # Twilio's magic test "From" number (docs/iam/test-credentials)
TO = "+15551234567"


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


@pytest.fixture
def twilio():
    with TwilioServer() as server:
        yield server


def voice(server: TwilioServer, *numbers: str, token: str = AUTH_TOKEN) -> TwilioVoiceNotifier:
    return TwilioVoiceNotifier(
        ACCOUNT_SID, token, FROM, list(numbers or [TO]), base_url=server.base_url
    )


# --- Twilio voice -------------------------------------------------------------------------


def test_a_stop_out_rings_the_phone_and_says_what_happened(twilio):
    channel = voice(twilio)
    notice = stop_out()

    channel.notify(notice.subject, notice.message, event=notice.event)

    [call] = twilio.calls
    assert (call["To"], call["From"]) == (TO, FROM)
    root = ElementTree.fromstring(call["Twiml"])  # noqa: S314 - our own TwiML
    assert root.tag == "Response"
    [say] = list(root)
    assert say.tag == "Say"
    assert say.text.startswith("Flowtrader alert. Stop-loss hit AAPL: −$31.20")
    assert "client order id" not in say.text  # the call says the first line, not the email
    assert channel.sids
    assert channel.sids[0].startswith("CA")


def test_twiml_escapes_what_the_alert_says():
    xml = twiml_say("AAPL <b> & 'quotes'")
    say = ElementTree.fromstring(xml).find("Say")  # noqa: S314 - the SDK's own TwiML
    assert say.text == "AAPL <b> & 'quotes'"


def test_each_number_is_called_and_one_failure_still_rings_the_rest(twilio):
    channel = voice(twilio, "+15551230001", "not-a-number", "+15551230002")

    with pytest.raises(TwilioRestException) as raised:
        channel.notify("s", "Stop-loss hit AAPL", event="stopped_out")

    assert raised.value.code == 21211  # Twilio's "not a valid phone number"
    assert [c["To"] for c in twilio.calls] == ["+15551230001", "+15551230002"]


def test_a_wrong_auth_token_is_twilios_20003(twilio):
    with pytest.raises(TwilioRestException) as raised:
        voice(twilio, token="wrong").notify("s", "m")
    assert (raised.value.status, raised.value.code) == (401, 20003)
    assert twilio.calls == []


def test_the_container_builds_the_voice_channel_from_settings(aws, twilio, monkeypatch):
    monkeypatch.setenv("FLOWTRADER_TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("FLOWTRADER_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("FLOWTRADER_TWILIO_FROM_NUMBER", FROM)
    monkeypatch.setenv("FLOWTRADER_TWILIO_TO_NUMBERS", f"{TO}, +15557654321")
    monkeypatch.setenv("FLOWTRADER_TWILIO_BASE_URL", twilio.base_url)
    bootstrap.reset()

    assert notify.send(bootstrap.container().notifier, stop_out())

    assert [c["To"] for c in twilio.calls] == [TO, "+15557654321"]


def test_a_twilio_outage_never_touches_the_order_path(aws, twilio, monkeypatch):
    """Every call fails (Twilio answers 500): the order is placed once, the outcome
    recorded, and the other channels (the SNS topic) still hear about it."""
    from tests.execution.test_invariants import Lambda, execution, make_broker, run, store_alert

    monkeypatch.setenv("FLOWTRADER_TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("FLOWTRADER_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("FLOWTRADER_TWILIO_FROM_NUMBER", FROM)
    monkeypatch.setenv("FLOWTRADER_TWILIO_TO_NUMBERS", TO)
    monkeypatch.setenv("FLOWTRADER_TWILIO_BASE_URL", twilio.base_url)
    monkeypatch.setenv("FLOWTRADER_ALERT_ROUTES", '{"*": ["log", "sns", "voice"]}')
    bootstrap.reset()
    router = bootstrap.container().notifier
    sent: list[str] = []

    class Seen:  # still the real SNS publish; remembers what went out
        def __init__(self, sns) -> None:
            self.sns = sns

        def notify(self, subject: str, message: str, *, event: str = "info") -> None:
            self.sns.notify(subject, message, event=event)
            sent.append(subject)

    router.channels["sns"] = Seen(router.channels["sns"])
    for _ in range(10):
        twilio.fail_next(500)
    lam = Lambda()
    broker = make_broker("paper")
    alert_id = store_alert(lam, "01JVOICE000000000000000000")

    outcome = run(lam, alert_id, execution(lam, broker, router))

    assert outcome.status in ("accepted", "filled")
    assert len(broker.list_orders()) == 1
    assert lam.alerts.get(alert_id)["status"] == outcome.status
    assert twilio.calls == []  # every call failed ...
    assert sent  # ... and the topic was still told


# --- desktop pop-ups ---------------------------------------------------------------------


def fake_binary(tmp_path: Path, name: str, monkeypatch) -> Path:
    """An executable `name` on PATH that writes its argv, one per line, to `name`.args."""
    out = tmp_path / f"{name}.args"
    script = tmp_path / "bin" / name
    script.parent.mkdir(exist_ok=True)
    script.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "{out}"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    return out


def test_a_desktop_pop_up_is_notify_send_with_urgency(tmp_path, monkeypatch):
    args = fake_binary(tmp_path, "notify-send", monkeypatch)
    channel = libnotify.DesktopNotifier()
    notice = stop_out()

    channel.notify(notice.subject, notice.message, event=notice.event)
    assert channel.last is not None
    assert channel.last.wait(timeout=30) == 0

    argv = args.read_text().splitlines()
    assert argv[:3] == ["--urgency=critical", "--app-name=flowtrader", "--"]
    assert argv[3] == notice.subject
    assert argv[4] == notice.text
    assert libnotify.command("s", "-rf /", "filled")[-2:] == ["s", "-rf /"]  # after "--"
    assert libnotify.command("s", "m", "filled")[1] == "--urgency=normal"


# --- spoken alerts -----------------------------------------------------------------------

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (.ci/run installs it)"
)


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)  # espeak-ng: 16-bit mono PCM
        return w.getnframes() / w.getframerate()


@needs_espeak
def test_a_spoken_alert_is_speech_length_audio(tmp_path):
    text = espeak.spoken_text(stop_out().message)
    words = len(text.split())
    wav = tmp_path / "alert.wav"

    espeak.render_wav(text, wav)

    seconds = wav_seconds(wav)
    expected = words / espeak.WORDS_PER_MINUTE * 60  # at the rate the channel speaks
    assert 0.5 * expected < seconds < 2.5 * expected, (words, seconds)
    short = tmp_path / "short.wav"
    espeak.render_wav("Filled", short)
    assert wav_seconds(short) < seconds / 3  # one word is much shorter than a sentence


def test_spoken_text_reads_symbols_as_words():
    said = espeak.spoken_text("Stop-loss hit AAPL: −$31.20 (−1.6 %) · long 10 @ 186.88")
    assert said == "Stop-loss hit AAPL: minus dollars 31.20 (minus 1.6 %) , long 10 at 186.88"


def test_the_speech_channel_runs_espeak_ng_with_the_text(tmp_path, monkeypatch):
    args = fake_binary(tmp_path, "espeak-ng", monkeypatch)
    channel = espeak.SpokenNotifier()

    channel.notify("s", "Filled BUY 10 AAPL @ 190.04\n\nclient order id x")
    assert channel.last is not None
    assert channel.last.wait(timeout=30) == 0

    assert args.read_text().splitlines() == ["-s", "165", "--", "Filled BUY 10 AAPL at 190.04"]


def test_desktop_and_speech_are_off_in_lambda_and_on_for_the_local_stack(
    aws, tmp_path, monkeypatch
):
    fake_binary(tmp_path, "notify-send", monkeypatch)
    fake_binary(tmp_path, "espeak-ng", monkeypatch)
    monkeypatch.delenv("FLOWTRADER_DESKTOP_ALERTS")  # the aws fixture turns them off
    monkeypatch.delenv("FLOWTRADER_SPOKEN_ALERTS")
    monkeypatch.setenv("FLOWTRADER_STAGE", "local")
    assert {"desktop", "speech"} <= set(bootstrap.alert_channels(bootstrap.Container()))

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "flowtrader-dev")
    assert not {"desktop", "speech"} & set(bootstrap.alert_channels(bootstrap.Container()))

    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    monkeypatch.setenv("FLOWTRADER_STAGE", "prod")
    assert not {"desktop", "speech"} & set(bootstrap.alert_channels(bootstrap.Container()))
    monkeypatch.setenv("FLOWTRADER_SPOKEN_ALERTS", "true")
    assert "speech" in bootstrap.alert_channels(bootstrap.Container())
