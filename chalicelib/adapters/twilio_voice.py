"""Voice calls through Twilio: the phone rings and a voice reads the alert (TwiML `<Say>`).

One `POST /2010-04-01/Accounts/{AccountSid}/Calls.json` per number with `Twiml` inline
(Twilio: "Make outbound phone calls", https://www.twilio.com/docs/voice/make-calls; the
`twiml` parameter of the Call resource, https://www.twilio.com/docs/voice/api/call-resource),
through the official `twilio` SDK. `base_url` (tests: a local server in Twilio's shapes)
swaps the host in a custom HTTP client, the SDK's documented hook
(https://github.com/twilio/twilio-python/blob/main/advanced-examples/custom-http-client.md).

Raises on failure (a `TwilioRestException`, a timeout): the router logs it and carries on.
"""

from __future__ import annotations

from typing import Any

from chalicelib.services.notify import sms_text

TWILIO_API = "https://api.twilio.com"
SAY_CHARS = 300  # a call should say what happened, not read the email


def twiml_say(text: str, voice: str = "alice") -> str:
    """`<Response><Say>…</Say></Response>`, the text XML-escaped by the SDK's builder."""
    from twilio.twiml.voice_response import VoiceResponse

    response = VoiceResponse()
    response.say(text, voice=voice)
    return str(response)


def _http_client(base_url: str, timeout_s: float) -> Any:
    from twilio.http.http_client import TwilioHttpClient

    class _Rebased(TwilioHttpClient):
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if base_url and url.startswith(TWILIO_API):
                url = base_url.rstrip("/") + url[len(TWILIO_API) :]
            return super().request(method, url, *args, **kwargs)

    return _Rebased(timeout=timeout_s)


class TwilioVoiceNotifier:
    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        to_numbers: list[str],
        *,
        base_url: str = "",
        timeout_s: float = 5.0,
    ) -> None:
        from twilio.rest import Client

        self._client = Client(
            account_sid, auth_token, http_client=_http_client(base_url, timeout_s)
        )
        self._from = from_number
        self._to = list(to_numbers)
        self.sids: list[str] = []  # the calls placed (for the log and tests)

    def notify(self, subject: str, message: str, *, event: str = "info") -> None:
        text = f"Flowtrader alert. {sms_text(message, SAY_CHARS)}"
        twiml = twiml_say(text)
        failures: list[Exception] = []
        for number in self._to:
            try:
                call = self._client.calls.create(to=number, from_=self._from, twiml=twiml)
                self.sids.append(str(call.sid))
            except Exception as exc:  # one number failing still rings the others
                failures.append(exc)
        if failures:
            raise failures[0]
